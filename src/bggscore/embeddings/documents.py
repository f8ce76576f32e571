"""Descriptions -> tokens -> SIF document vectors: what embedding text needs once fitted.

The tokenizer and the weighted average of word vectors that ``text.TextEmbedder`` fits
and applies, without scikit-learn (polars, numpy and scipy only), so a registered text
model of plain arrays (``plain.PlainTextEmbedder``) embeds the very same numbers.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import polars as pl
from scipy import sparse

from bggscore.errors import InputError

DESCRIPTION_COLUMN = "description"
ENTITY_PATTERN = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
TAG_PATTERN = r"<[A-Za-z/!?][^<>]*>"
TOKEN_PATTERN = r"[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*"
APOSTROPHES = ["\u2019", "\u2018", "\u02bc", "`"]  # typographic forms of '
MAX_UNESCAPE_PASSES = 3  # BGG text is sometimes escaped twice (&amp;quot;)


# -- tokens -----------------------------------------------------------------------------------
def _unescape(text: pl.Series) -> pl.Series:
    """Decode HTML entities: each distinct entity once with ``html.unescape``, then one
    vectorised multi-pattern replace over the column (repeated for double escaping)."""
    for _ in range(MAX_UNESCAPE_PASSES):
        entities = text.str.extract_all(ENTITY_PATTERN).explode().drop_nulls().unique().sort()
        if entities.is_empty():
            break
        patterns = entities.to_list()
        text = text.str.replace_many(patterns, [html.unescape(e) for e in patterns])
    return text


def tokenize(descriptions: pl.Series) -> pl.Series:
    """Word tokens of each description as a ``List(String)`` series (same length and order).

    HTML entities are decoded (``&quot;`` ``&#10;`` ``&amp;`` ``&rsquo;`` ...), tags removed,
    text lower-cased; a token is a run of letters/digits with inner apostrophes (``it's``;
    typographic apostrophes count as ``'``). Null, empty and markup-only descriptions give an
    empty list.
    """
    text = descriptions.cast(pl.String).fill_null("")
    text = _unescape(text)
    text = text.str.replace_all(TAG_PATTERN, " ")
    text = text.str.replace_many(APOSTROPHES, ["'"] * len(APOSTROPHES))
    return text.str.to_lowercase().str.extract_all(TOKEN_PATTERN).alias(descriptions.name)


def _descriptions(X: Any) -> pl.Series:
    if isinstance(X, pl.Series):
        return X
    if not isinstance(X, pl.DataFrame):
        X = pl.DataFrame(X)
    if DESCRIPTION_COLUMN not in X.columns:
        raise InputError(
            f"text embeddings need a '{DESCRIPTION_COLUMN}' column; the frame has "
            f"{', '.join(X.columns) or 'no columns'}"
        )
    return X[DESCRIPTION_COLUMN]


def _token_ids(tokens: pl.Series, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, word id) of every known token, in document and reading order.

    The flat tokens are cast to an ``Enum`` over the vocabulary: its physical codes are the
    word ids and unknown words become null (one vectorised lookup, no Python per token)."""
    lengths = tokens.list.len().fill_null(0).to_numpy()
    words = tokens.explode(empty_as_null=False, keep_nulls=False)
    codes = words.cast(pl.Enum(vocabulary), strict=False).to_physical()
    known = codes.is_not_null().to_numpy()
    ids = codes.fill_null(0).to_numpy().astype(np.int32)[known]
    doc = np.repeat(np.arange(len(tokens), dtype=np.int32), lengths)[known]
    return doc, ids


def sif_average(
    doc: np.ndarray,
    ids: np.ndarray,
    n_docs: int,
    word_vectors: np.ndarray,
    word_probability: np.ndarray,
    sif_a: float,
) -> tuple[np.ndarray, np.ndarray]:
    """SIF-weighted mean of the known word vectors of each document (before PC removal),
    and the mask of documents without any known word."""
    weights = sif_a / (sif_a + word_probability)
    weighted = word_vectors * weights[:, None]
    lengths = np.bincount(doc, minlength=n_docs)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # ``doc`` is sorted, so the rows of the document-term matrix are contiguous runs;
    # repeated words stay as duplicate entries, which the product sums.
    terms = sparse.csr_matrix(
        (np.ones(len(ids), dtype=np.float64), ids, indptr),
        shape=(n_docs, len(word_vectors)),
    )
    empty = lengths == 0
    documents = np.asarray(terms @ weighted)
    documents /= np.where(empty, 1, lengths)[:, None]
    return documents, empty


def empty_mask(X: Any, vocabulary: list[str]) -> np.ndarray:
    """True for descriptions without any vocabulary word (they embed as zeros)."""
    tokens = tokenize(_descriptions(X))
    doc, _ = _token_ids(tokens, vocabulary)
    empty = np.ones(len(tokens), dtype=bool)
    empty[doc] = False
    return empty
