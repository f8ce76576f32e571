"""Fitted embedders as plain arrays: what `embed` loads, without scikit-learn.

Training fits ``text.TextEmbedder`` and ``game.GameEmbedder``, scikit-learn estimators;
``plain`` turns each into the arrays its transform reads before it is registered, as
``training.compile`` does for the linear models, so unpickling an embedder imports
numpy, polars and scipy only (scikit-learn's import is most of a second of a daily
run). The transforms do the same operations on the same arrays as the estimators',
so they give the same numbers; embedders registered before stay as they are and load
as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import sparse

from bggscore.embeddings.documents import (
    _descriptions,
    _token_ids,
    empty_mask,
    sif_average,
    tokenize,
)
from bggscore.errors import InputError
from bggscore.features import DESCRIPTION_CHARS, Features

TEXT_COLUMN = "description_embedding"


class PlainTextEmbedder:
    """Description -> SIF document vector (see ``text.TextEmbedder``), from its arrays."""

    def __init__(self, fitted: Any) -> None:
        self.vocabulary_: list[str] = list(fitted.vocabulary_)
        self.word_vectors_ = np.asarray(fitted.word_vectors_, dtype=np.float64)
        self.word_probability_ = np.asarray(fitted.word_probability_, dtype=np.float64)
        self.principal_component_ = np.asarray(fitted.principal_component_, dtype=np.float64)
        self.sif_a = float(fitted.sif_a)
        self.dim_ = int(fitted.dim_)
        self.n_documents_ = int(fitted.n_documents_)
        self.n_empty_documents_ = int(fitted.n_empty_documents_)
        self.n_tokens_ = int(fitted.n_tokens_)
        # the fitting parameters, for what a registration shows
        self.params = {k: getattr(fitted, k) for k in ("window", "min_count", "dim", "max_vocab")}

    def embed(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Document vectors and the boolean mask of descriptions that got a zero vector."""
        tokens = tokenize(_descriptions(X))
        doc, ids = _token_ids(tokens, self.vocabulary_)
        documents, empty = sif_average(
            doc, ids, len(tokens), self.word_vectors_, self.word_probability_, self.sif_a
        )
        u = self.principal_component_
        documents -= np.outer(documents @ u, u)  # zero rows stay zero
        return documents, empty

    def transform(self, X: Any) -> np.ndarray:
        """``(n, dim)`` float64 document vectors; zero rows for descriptions with no known word."""
        return self.embed(X)[0]

    def empty_mask(self, X: Any) -> np.ndarray:
        """True for descriptions without any vocabulary word (they embed as zeros)."""
        return empty_mask(X, self.vocabulary_)

    def count_empty(self, X: Any) -> int:
        return int(self.empty_mask(X).sum())


class Projection:
    """A fitted 2-D PCA's transform (``PCA.transform`` without whitening): the same
    products in the same order as scikit-learn's."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.components_ = np.asarray(components, dtype=np.float64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = X @ self.components_.T
        out -= np.reshape(self.mean_, (1, -1)) @ self.components_.T
        return out


class PlainGameEmbedder:
    """Games -> unit-length embeddings (see ``game.GameEmbedder``), from its arrays: the
    feature builder as plain ``Features``, the MaxAbs scale of its block, the scalar of the
    description block, the SVD's components and the 2-D projection (``pca_``)."""

    def __init__(self, fitted: Any) -> None:
        self.builder_ = fitted.builder_.plain()
        self.scale_ = np.asarray(fitted.scaler_.scale_, dtype=np.float64)
        self.text_weight_ = float(fitted.text_weight_)
        self.text_dim_ = int(fitted.text_dim_)
        self.components_ = np.asarray(fitted.svd_.components_, dtype=np.float64)
        self.dim_ = int(fitted.dim_)
        self.n_features_ = int(fitted.n_features_)
        pca = fitted.pca_
        self.pca_ = Projection(pca.mean_, pca.components_)

    def read_columns(self) -> list[str]:
        """What transform reads of games_features: a description's length, not its text."""
        chain = set(self.builder_.chain_inputs)
        return [c for c in self.builder_.read_columns() if c not in chain]

    def transform(self, X: pl.DataFrame) -> np.ndarray:
        """``(n, dim)`` float64 embeddings with unit L2 norm per row."""
        matrix = self._matrix(X if isinstance(X, pl.DataFrame) else pl.DataFrame(X))
        return unit_rows(np.asarray(matrix @ self.components_.T))

    def coordinates(self, X: pl.DataFrame) -> np.ndarray:
        return self.pca_.transform(self.transform(X))

    def _matrix(self, frame: pl.DataFrame) -> sparse.csr_matrix:
        columns = set(frame.columns)
        if DESCRIPTION_CHARS in columns:  # the builder reads only the description's length
            columns.add("description")
        missing = [c for c in self.builder_.input_columns() if c not in columns]
        if missing:
            raise InputError(
                f"game embeddings need columns missing from the games: {', '.join(missing)}"
            )
        features = _scaled(self.builder_, frame, self.scale_)
        if not self.text_dim_:
            return features
        if TEXT_COLUMN not in frame.columns:
            raise InputError(
                f"game embeddings need a '{TEXT_COLUMN}' column (the model was fitted with "
                "description embeddings)",
                "embed the descriptions first",
            )
        text = unit_rows(text_block(frame, self.text_dim_)) * self.text_weight_
        return sparse.hstack([features, dense_csr(text)], format="csr")


def _scaled(builder: Features, frame: pl.DataFrame, scale: np.ndarray) -> sparse.csr_matrix:
    """The builder's matrix divided column-wise by ``scale``, as MaxAbsScaler does it."""
    matrix = sparse.csr_matrix(builder.transform(frame), dtype=np.float64, copy=True)
    matrix.data *= (1.0 / scale).take(matrix.indices, mode="clip")
    return matrix


# -- shared with game.GameEmbedder ---------------------------------------------------------------
def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def dense_csr(block: np.ndarray) -> sparse.csr_matrix:
    """A dense block as CSR without scanning it for zeros (every entry is stored)."""
    n, d = block.shape
    return sparse.csr_matrix(
        (
            np.ascontiguousarray(block, dtype=np.float64).ravel(),
            np.tile(np.arange(d, dtype=np.int32), n),
            np.arange(0, n * d + 1, d, dtype=np.int64),
        ),
        shape=(n, d),
    )


def as_list(column: pl.Series) -> pl.Series:
    """The description embeddings as a List(Float64)-like column (Array and Null allowed)."""
    if isinstance(column.dtype, pl.Array):
        return column.arr.to_list()
    if not isinstance(column.dtype, pl.List):
        if column.dtype == pl.Null:
            return column.cast(pl.List(pl.Float64))
        raise InputError(
            f"'{TEXT_COLUMN}' must hold lists of numbers, got {column.dtype}",
        )
    return column


def text_block(frame: pl.DataFrame, text_dim: int) -> np.ndarray:
    """The description block as a dense array; null/empty lists and null values -> 0."""
    n = len(frame)
    out = np.zeros((n, text_dim), dtype=np.float64)
    column = as_list(frame[TEXT_COLUMN])
    lengths = column.list.len().fill_null(0).to_numpy()
    present = lengths > 0
    wrong = present & (lengths != text_dim)
    if wrong.any():
        raise InputError(
            f"{int(wrong.sum())} description embeddings have {int(lengths[wrong][0])} "
            f"values, the game embedder expects {text_dim}",
            "embed all descriptions with the text model the game embedder was fitted on",
        )
    if present.any():
        values = (
            column.filter(pl.Series(present))
            .explode()
            .cast(pl.Float64)
            .fill_nan(None)
            .fill_null(0.0)
            .to_numpy()
        )
        out[present] = values.reshape(-1, text_dim)
    return out
