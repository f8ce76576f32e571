"""Embeddings of games and their descriptions, learned from the catalogue itself.

``bggscore.embeddings.text`` turns descriptions into SIF document vectors over PPMI + SVD word
vectors (no downloaded model); ``bggscore.embeddings.game`` combines the preprocessed features,
predicted complexity and those description vectors into unit-length game embeddings with 2-D
plot coordinates. Both are scikit-learn transformers that pickle with joblib. Import the
submodules directly: this package imports nothing, so ``import bggscore`` stays light.
"""
