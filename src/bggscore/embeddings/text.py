"""Description embeddings learned from the catalogue: PPMI + SVD word vectors, SIF documents.

No downloaded model: word vectors come from the training descriptions themselves.

1. ``tokenize``: HTML entities decoded (``&quot;``, ``&#10;``, ``&amp;quot;`` ...), tags
   stripped, lower-cased word tokens of letters and digits with inner apostrophes (``don't``).
   Only polars string expressions run per document; Python's ``html.unescape`` runs once per
   *distinct* entity, never per row.
2. Vocabulary: words seen at least ``min_count`` times, at most ``max_vocab`` most frequent
   (ties by word, so the vocabulary is deterministic). Other words are dropped before windowing.
3. Co-occurrence: symmetric counts of word pairs at most ``window`` tokens apart inside one
   description, built from flat numpy arrays (one vectorised pass per offset 1..window).
4. Positive PMI with context distribution smoothing (Levy, Goldberg & Dagan 2015):
   ``max(0, log(#(w,c) / (#(w) * P_0.75(c))))`` where ``P_0.75(c) = #(c)^0.75 / sum #(c')^0.75``;
   raising context counts to 0.75 stops rare contexts from getting huge PMI values.
5. ``TruncatedSVD(dim)`` (randomized, on a float32 copy: twice as fast on a large vocabulary);
   word vectors are ``U * sqrt(S)`` (symmetric eigenvalue weighting, which works better than
   ``U * S`` for similarity tasks).
6. Documents (Arora, Liang & Ma 2017, "smooth inverse frequency"): the average of the word
   vectors of a description's known tokens weighted by ``a / (a + p(w))``, minus its projection
   on the first principal component (uncentred, as in the paper) of the *training* document
   vectors, stored at fit so every later transform removes the same direction.

Descriptions without any known token (null, empty, HTML-only, or only rare words) get a zero
vector, never NaN; ``empty_mask``/``count_empty`` say which, so callers can report them.
Document vectors are not normalised: use cosine similarity to compare them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.utils.validation import check_is_fitted

from bggscore.embeddings.documents import (
    DESCRIPTION_COLUMN,
    _descriptions,
    _token_ids,
    empty_mask,
    sif_average,
    tokenize,
)
from bggscore.errors import InputError

__all__ = ["DESCRIPTION_COLUMN", "MIN_DOCUMENTS", "TextEmbedder", "tokenize"]

MIN_DOCUMENTS = 20  # descriptions with words needed to fit
CONTEXT_SMOOTHING = 0.75  # the alpha of context distribution smoothing


# -- the transformer ----------------------------------------------------------------------------
class TextEmbedder(TransformerMixin, BaseEstimator):
    """Description -> ``dim`` SIF document vector, from PPMI + SVD word vectors.

    ``fit(X)``/``transform(X)`` take a polars frame with a ``description`` column (or the
    series itself) and return float64 arrays of shape ``(n, dim)``.

    Fitted attributes: ``vocabulary_`` (words, most frequent first), ``word_vectors_``
    ``(len(vocabulary_), dim)``, ``word_probability_`` (unigram probability of each word among
    all training tokens), ``principal_component_`` (unit vector removed from every document),
    ``dim_``, ``n_documents_`` (training descriptions, empty ones included),
    ``n_empty_documents_`` (of those, how many had no known token) and ``n_tokens_``.
    """

    def __init__(
        self,
        window: int = 5,
        min_count: int = 5,
        dim: int = 100,
        sif_a: float = 1e-3,
        max_vocab: int = 50_000,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.min_count = min_count
        self.dim = dim
        self.sif_a = sif_a
        self.max_vocab = max_vocab
        self.random_state = random_state

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> TextEmbedder:
        self._check_params()
        tokens = tokenize(_descriptions(X))
        n_docs = len(tokens)
        lengths = tokens.list.len().to_numpy()
        self._check_documents(int(np.count_nonzero(lengths)))

        words = tokens.explode().drop_nulls().alias("word")
        counts = (
            words.value_counts(name="n")
            .filter(pl.col("n") >= self.min_count)
            .sort(["n", "word"], descending=[True, False])
            .head(self.max_vocab)
        )
        vocabulary = counts["word"].to_list()
        n_words = len(vocabulary)
        if self.dim >= n_words:
            raise InputError(
                f"--dim {self.dim} is larger than the {n_words} words the descriptions give; "
                "use a smaller --dim or more games"
            )
        doc, ids = _token_ids(tokens, vocabulary)
        self._check_documents(len(np.unique(doc)), known=True)

        ppmi = _ppmi(_cooccurrence(doc, ids, n_words, self.window))
        svd = TruncatedSVD(self.dim, algorithm="randomized", random_state=self.random_state)
        # float32 halves the memory traffic of the sparse products that dominate the fit
        scaled = svd.fit_transform(ppmi.astype(np.float32)).astype(np.float64)  # U * S
        singular = svd.singular_values_.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            word_vectors = np.where(singular > 0, scaled / np.sqrt(singular), 0.0)

        self.vocabulary_: list[str] = vocabulary
        self.word_vectors_ = np.ascontiguousarray(word_vectors, dtype=np.float64)
        self.word_probability_ = counts["n"].to_numpy().astype(np.float64) / len(words)
        self.dim_ = int(self.dim)
        self.n_documents_ = n_docs
        self.n_tokens_ = len(words)

        documents, empty = self._average(doc, ids, n_docs)
        self.n_empty_documents_ = int(empty.sum())
        self.principal_component_ = _first_component(documents[~empty])
        return self

    def _check_params(self) -> None:
        checks = [
            (self.window, 1, "window"),
            (self.min_count, 1, "min_count"),
            (self.dim, 1, "dim"),
            (self.max_vocab, 1, "max_vocab"),
        ]
        for value, low, name in checks:
            if int(value) != value or value < low:
                raise InputError(f"--{name.replace('_', '-')} must be a whole number >= {low}")
        if not self.sif_a > 0:
            raise InputError(f"--sif-a must be positive, got {self.sif_a}")

    def _check_documents(self, n: int, known: bool = False) -> None:
        if n < MIN_DOCUMENTS:
            what = f"with words seen at least {self.min_count} times" if known else "with words"
            raise InputError(
                f"too few descriptions to fit text embeddings: {n} {what} "
                f"(needs at least {MIN_DOCUMENTS})",
                "embed more games, or lower --min-count" if known else "embed more games",
            )

    # -- transform --------------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """``(n, dim)`` float64 document vectors; zero rows for descriptions with no known word."""
        return self.embed(X)[0]

    def embed(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Document vectors and the boolean mask of descriptions that got a zero vector."""
        check_is_fitted(self, "principal_component_")
        tokens = tokenize(_descriptions(X))
        doc, ids = _token_ids(tokens, self.vocabulary_)
        documents, empty = self._average(doc, ids, len(tokens))
        u = self.principal_component_
        documents -= np.outer(documents @ u, u)  # zero rows stay zero
        return documents, empty

    def empty_mask(self, X: Any) -> np.ndarray:
        """True for descriptions without any vocabulary word (they embed as zeros)."""
        check_is_fitted(self, "principal_component_")
        return empty_mask(X, self.vocabulary_)

    def count_empty(self, X: Any) -> int:
        """How many descriptions embed as zero vectors (null, empty, HTML-only, unknown words)."""
        return int(self.empty_mask(X).sum())

    def _average(
        self, doc: np.ndarray, ids: np.ndarray, n_docs: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """SIF-weighted mean of the known word vectors of each document (before PC removal)."""
        return sif_average(doc, ids, n_docs, self.word_vectors_, self.word_probability_, self.sif_a)


# -- helpers ------------------------------------------------------------------------------------
def _cooccurrence(doc: np.ndarray, ids: np.ndarray, n_words: int, window: int) -> sparse.csr_matrix:
    """Symmetric counts of word pairs at most ``window`` known tokens apart in one document."""
    counts = sparse.csr_matrix((n_words, n_words), dtype=np.float64)
    for offset in range(1, window + 1):
        if offset >= len(ids):
            break
        same = doc[:-offset] == doc[offset:]
        rows, cols = ids[:-offset][same], ids[offset:][same]
        counts = counts + sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n_words, n_words)
        )
    return (counts + counts.T).tocsr()


def _ppmi(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Positive PMI with context distribution smoothing (contexts counted ^ 0.75)."""
    counts = counts.tocoo()
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    contexts = np.asarray(counts.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    context_p = contexts / contexts.sum() if contexts.sum() > 0 else contexts
    pmi = np.log(counts.data / (word_totals[counts.row] * context_p[counts.col]))
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)


def _first_component(documents: np.ndarray) -> np.ndarray:
    """Unit first right singular vector (uncentred) of the document matrix, sign fixed."""
    gram = documents.T @ documents
    _, vectors = np.linalg.eigh(gram)
    u = vectors[:, -1]
    if u[np.argmax(np.abs(u))] < 0:
        u = -u
    return np.ascontiguousarray(u, dtype=np.float64)
