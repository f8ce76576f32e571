"""Game embeddings: TruncatedSVD over the model features, predicted complexity and text.

Input matrix, one row per game:

* the ``FeatureBuilder`` design matrix (numeric columns, one-hot categories, mechanics, people,
  families) plus ``predicted_complexity`` as a chain input, scaled column-wise by a
  ``MaxAbsScaler``: it keeps the matrix sparse and puts numeric columns (years, ages, player
  counts, complexity) on the same [-1, 1] range as the 0/1 one-hot columns, as the prediction
  models do;
* the description embedding (``description_embedding``, a list of floats per game; null or
  empty -> zeros), L2-normalised per game and multiplied by ONE scalar chosen at fit so the
  text block carries ``TEXT_SHARE`` (a third) of the total variance of the matrix. One scalar
  keeps the geometry (cosines) of the text vectors intact; column-wise MaxAbs scaling of the
  dense block would instead blow up its low-variance dimensions. A fixed share means neither
  a hundred dense text columns dominate the few non-zeros of a game's one-hot features nor
  are they drowned by them, whatever the text model's vector lengths are.

``TruncatedSVD(dim)`` (uncentred, so the matrix stays sparse) gives the embedding; rows are
L2-normalised, so the cosine similarity of two games is the dot product of their embeddings.
Components come in decreasing singular value, so the first k columns are the best k-dimensional
truncation (re-normalise a truncation before using dot products as cosines). ``coordinates``
gives 2-D PCA coordinates of the embeddings for plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.preprocessing import MaxAbsScaler
from sklearn.utils.validation import check_is_fitted

from bggscore.embeddings.plain import TEXT_COLUMN, as_list, dense_csr, text_block, unit_rows
from bggscore.errors import InputError
from bggscore.features import DESCRIPTION_CHARS, FeatureBuilder

CHAIN_COLUMN = "predicted_complexity"
TEXT_SHARE = 1 / 3  # share of the total variance given to the description block


class GameEmbedder(TransformerMixin, BaseEstimator):
    """Games -> ``(n, dim)`` unit-length embeddings (cosine similarity = dot product).

    ``X``: ``games_features`` columns, ``predicted_complexity`` and, optionally,
    ``description_embedding`` (``List(Float64)``; games without one get zeros in that block;
    without the column at fit the embedding uses the features alone).

    Fitted attributes: ``builder_`` (``FeatureBuilder`` reading ``predicted_complexity``),
    ``scaler_`` (``MaxAbsScaler`` of the feature block), ``text_weight_`` (scalar applied to
    the unit-length description vectors), ``svd_`` (``TruncatedSVD``), ``pca_`` (2-D ``PCA``
    of the training embeddings), ``text_dim_`` (0 without descriptions), ``dim_``,
    ``n_features_`` (columns of the SVD input).
    """

    def __init__(self, dim: int = 64, random_state: int = 0) -> None:
        self.dim = dim
        self.random_state = random_state

    # -- fit ------------------------------------------------------------------------------------
    def fit(
        self, X: pl.DataFrame, y: Any = None, base: FeatureBuilder | None = None
    ) -> GameEmbedder:
        """Fit on ``X``; with ``base`` (a fitted ``FeatureBuilder``, e.g. ``fit_base``'s) its
        vocabularies and medians are reused and only the chain input is added."""
        frame = _frame(X)
        if int(self.dim) != self.dim or self.dim < 2:
            raise InputError(f"--dim must be a whole number >= 2, got {self.dim}")
        if base is not None:
            _require(frame, [*base.input_columns(), CHAIN_COLUMN])
            builder = base.with_chain_inputs((CHAIN_COLUMN,), frame)
        else:
            builder = FeatureBuilder(chain_inputs=(CHAIN_COLUMN,))
            _require(frame, builder.input_columns())
            builder.fit(frame)
        self.builder_ = builder
        self.text_dim_ = _text_dim(frame)

        features = builder.transform(frame)
        self.scaler_ = MaxAbsScaler().fit(features)
        features = self.scaler_.transform(features)
        self.text_weight_ = 0.0
        if self.text_dim_:
            text = unit_rows(self._text(frame))
            text_variance = float(text.var(axis=0).sum())
            if text_variance > 0:
                ratio = TEXT_SHARE / (1 - TEXT_SHARE)
                self.text_weight_ = float(np.sqrt(ratio * _variance(features) / text_variance))
            matrix = sparse.hstack([features, dense_csr(text * self.text_weight_)], format="csr")
        else:
            matrix = features
        n_games, n_features = matrix.shape
        if self.dim > n_features:
            raise InputError(
                f"--dim {self.dim} is larger than the {n_features} features the games give; "
                "use a smaller --dim"
            )
        if self.dim > n_games:
            raise InputError(
                f"--dim {self.dim} is larger than the {n_games} games to embed; "
                "use a smaller --dim or more games"
            )
        self.n_features_ = n_features
        self.dim_ = int(self.dim)
        self.svd_ = TruncatedSVD(self.dim_, algorithm="randomized", random_state=self.random_state)
        embeddings = unit_rows(self.svd_.fit_transform(matrix))
        self.pca_ = PCA(2, random_state=self.random_state).fit(embeddings)
        return self

    # -- transform --------------------------------------------------------------------------------
    def transform(self, X: pl.DataFrame) -> np.ndarray:
        """``(n, dim)`` float64 embeddings with unit L2 norm per row."""
        check_is_fitted(self, "svd_")
        return unit_rows(self.svd_.transform(self._matrix(_frame(X))))

    def coordinates(self, X: pl.DataFrame) -> np.ndarray:
        """``(n, 2)`` PCA coordinates of the embeddings (PCA fitted on the training games)."""
        check_is_fitted(self, "pca_")
        return self.pca_.transform(self.transform(X))

    def _matrix(self, frame: pl.DataFrame) -> sparse.csr_matrix:
        _require(frame, self.builder_.input_columns())
        features = self.scaler_.transform(self.builder_.transform(frame))
        if not self.text_dim_:
            return features
        if TEXT_COLUMN not in frame.columns:
            raise InputError(
                f"game embeddings need a '{TEXT_COLUMN}' column (the model was fitted with "
                "description embeddings)",
                "embed the descriptions first",
            )
        text = unit_rows(self._text(frame)) * self.text_weight_
        return sparse.hstack([features, dense_csr(text)], format="csr")

    def _text(self, frame: pl.DataFrame) -> np.ndarray:
        """The description block as a dense array; null/empty lists and null values -> 0."""
        return text_block(frame, self.text_dim_)


# -- helpers ------------------------------------------------------------------------------------
def _frame(X: Any) -> pl.DataFrame:
    return X if isinstance(X, pl.DataFrame) else pl.DataFrame(X)


def _require(frame: pl.DataFrame, columns: list[str]) -> None:
    given = set(frame.columns)
    if DESCRIPTION_CHARS in given:  # the builder reads only the description's length
        given.add("description")
    missing = [c for c in dict.fromkeys(columns) if c not in given]
    if missing:
        raise InputError(
            f"game embeddings need columns missing from the games: {', '.join(missing)}"
        )


def _text_dim(frame: pl.DataFrame) -> int:
    """Length of the description embeddings (0 when the column is absent or all null)."""
    if TEXT_COLUMN not in frame.columns:
        return 0
    lengths = as_list(frame[TEXT_COLUMN]).list.len().drop_nulls()
    sizes = lengths.filter(lengths > 0).unique().sort().to_list()
    if len(sizes) > 1:
        raise InputError(
            f"description embeddings have different lengths ({', '.join(map(str, sizes))})",
            "embed all descriptions with one text model",
        )
    return int(sizes[0]) if sizes else 0


def _variance(matrix: sparse.spmatrix) -> float:
    """Total variance (sum over columns) of a sparse matrix, without densifying it."""
    mean = np.asarray(matrix.mean(axis=0)).ravel()
    mean_sq = np.asarray(matrix.multiply(matrix).mean(axis=0)).ravel()
    return float(np.sum(mean_sq - mean**2))
