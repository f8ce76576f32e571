"""Raw warehouse columns -> model inputs, shared by training and scoring.

``Features`` takes a polars frame of ``games_features`` columns (plus chain inputs
such as ``predicted_complexity``) and returns a sparse design matrix. Because it
lives inside each registered model, scoring needs no preprocessing code of its own
and training/serving can never drift apart. Vocabularies are learned at fit time;
unseen values are ignored at predict time.

``FeatureBuilder`` is the same class as a scikit-learn transformer, for training
pipelines (``bggscore.feature_builder``); it is imported on first use, so scoring
with registered models never imports scikit-learn.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

if TYPE_CHECKING:  # scipy is imported where a sparse matrix is built: linear models never do
    from scipy import sparse

# zeros in these columns mean "unknown" (domain docs)
ZERO_IS_MISSING = ("min_age", "min_playtime", "max_playtime", "min_players", "max_players")
LIST_COLUMNS = ("categories", "mechanics", "designers", "artists", "publishers", "families")
# admin/leakage families carry bookkeeping, not game content
EXCLUDED_FAMILY_PREFIXES = ("Admin:", "Misc:")
PLAYER_COUNTS = range(1, 11)
YEAR_REFERENCE = 2035.0  # later than any game scored; keeps log(ref - year) finite
# The builder reads only the length of the description: scoring may read this derived
# column (computed in the warehouse) instead of the text, which is most of the bytes.
DESCRIPTION_CHARS = "description_chars"


def _vocabulary_rules(builder: Features) -> dict[str, tuple[int | None, int]]:
    """Column -> (keep at most N most frequent, minimum count).

    People and families are capped too: thousands of rare designers slow every fit
    and add little signal."""
    return {
        "categories": (builder.max_categories, 1),
        "mechanics": (builder.max_mechanics, 1),
        "designers": (builder.max_people, builder.min_designers),
        "artists": (builder.max_people, builder.min_artists),
        "publishers": (builder.max_people, builder.min_publishers),
        "families": (builder.max_families, builder.min_families),
    }


def __getattr__(name: str) -> Any:
    # the scikit-learn flavour, imported only when asked for (and when unpickling it)
    if name == "FeatureBuilder":
        from bggscore.feature_builder import FeatureBuilder

        return FeatureBuilder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Features:
    """Turns games_features rows into a sparse numeric matrix.

    ``chain_inputs`` names columns produced earlier in the scoring chain (e.g.
    ``predicted_complexity``); they are used as-is, with missing values imputed.
    """

    def __init__(
        self,
        max_categories: int = 500,
        max_mechanics: int = 500,
        min_designers: int = 5,
        min_artists: int = 5,
        min_publishers: int = 10,
        min_families: int = 10,
        max_people: int = 250,
        max_families: int = 500,
        chain_inputs: tuple[str, ...] = (),
        text_column: str | None = None,
    ) -> None:
        self.max_categories = max_categories
        self.max_mechanics = max_mechanics
        self.min_designers = min_designers
        self.min_artists = min_artists
        self.min_publishers = min_publishers
        self.min_families = min_families
        self.max_people = max_people
        self.max_families = max_families
        self.chain_inputs = chain_inputs
        self.text_column = text_column

    # -- what the builder needs ----------------------------------------------------------
    def input_columns(self) -> list[str]:
        """Warehouse and chain columns transform reads (the model's signature)."""
        return [
            "year_published",
            *ZERO_IS_MISSING,
            *LIST_COLUMNS,
            "description",
            *self.chain_inputs,
        ]

    def read_columns(self) -> list[str]:
        """What transform needs read from the warehouse: the description's length only."""
        return [DESCRIPTION_CHARS if c == "description" else c for c in self.input_columns()]

    # -- fit / transform -------------------------------------------------------------------
    def fit(self, X: pl.DataFrame, y: Any = None) -> Features:
        frame = self._check(X)
        numeric = self._numeric(frame)
        self.medians_ = {
            name: float(np.nanmedian(col)) if np.isfinite(col).any() else 0.0
            for name, col in numeric.items()
        }
        self.vocabularies_: dict[str, list[str]] = {}
        for column, (top, min_count) in _vocabulary_rules(self).items():
            values = self._list_values(frame, column)
            counts = values.value_counts(name="n").filter(pl.col("n") >= min_count)
            counts = counts.sort(["n", column], descending=[True, False])
            if top is not None:
                counts = counts.head(top)
            self.vocabularies_[column] = counts[column].to_list()
        self.numeric_names_ = list(numeric)
        self.base_fingerprint_ = hashlib.sha256(
            json.dumps([self.medians_, self.vocabularies_], sort_keys=True).encode()
        ).hexdigest()
        return self._set_chain(frame)

    def with_chain_inputs(self, chain_inputs: tuple[str, ...], X: pl.DataFrame) -> Features:
        """A copy of this fitted builder that also reads ``chain_inputs``.

        Outcomes share one fitted base (same vocabularies, same medians), so scoring
        builds the base matrix once per batch for every model (see ``BaseCache``).
        """
        other = copy.deepcopy(self)
        other.chain_inputs = tuple(chain_inputs)
        # check against the copy's columns, so a missing chain input is named clearly
        return other._set_chain(other._check(X) if chain_inputs else X)

    def _set_chain(self, frame: pl.DataFrame) -> Features:
        chain = frame.select(pl.col(c).cast(pl.Float64) for c in self.chain_inputs)
        self.chain_medians_ = {
            c: float(cast(float, chain[c].median())) if chain[c].drop_nulls().len() else 0.0
            for c in self.chain_inputs
        }
        self.feature_names_out_ = np.array(
            self.numeric_names_
            + [f"{col}::{v}" for col, vocab in self.vocabularies_.items() for v in vocab]
            + list(self.chain_inputs),
            dtype=object,
        )
        self.n_features_in_ = len(self.input_columns())
        return self

    def transform(
        self, X: pl.DataFrame, base: sparse.csr_matrix | None = None
    ) -> sparse.csr_matrix:
        """Base block (numeric + one-hot) followed by the chain inputs.

        ``base`` is a base block already built for this frame by a builder with the
        same ``base_fingerprint_``.
        """
        frame = self._check(X)
        if base is None:
            base = self.transform_base(frame)
        if not self.chain_inputs:
            return base
        from scipy import sparse

        chain = sparse.csr_matrix(self.chain_values(frame))
        return sparse.hstack([base, chain], format="csr")

    def chain_values(self, frame: pl.DataFrame) -> np.ndarray:
        """The chain inputs (rows x chain_inputs), missing values imputed."""
        return np.column_stack(
            [
                frame[c]
                .cast(pl.Float64)
                .fill_nan(None)
                .fill_null(self.chain_medians_[c])
                .to_numpy()
                for c in self.chain_inputs
            ]
        )

    def transform_base(self, frame: pl.DataFrame) -> sparse.csr_matrix:
        return self.base_block(frame).matrix()

    def base_block(self, frame: pl.DataFrame) -> BaseBlock:
        """The base features of ``frame``: dense numeric columns and one-hot pairs."""
        n = len(frame)
        numeric = self._numeric(frame)
        dense = np.empty((n, len(self.numeric_names_)), dtype=np.float64, order="F")
        for i, name in enumerate(self.numeric_names_):
            col = numeric[name]
            dense[:, i] = np.where(np.isfinite(col), col, self.medians_[name])
        rows, cols = [], []
        offset = dense.shape[1]
        for column, vocab in self.vocabularies_.items():
            r, c = self._pairs(frame, column, vocab)
            rows.append(r)
            cols.append(c + offset)
            offset += len(vocab)
        return BaseBlock(dense, np.concatenate(rows), np.concatenate(cols), offset)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_out_

    def plain(self) -> Features:
        """This fitted builder as a plain ``Features``: loading it needs no scikit-learn."""
        out = Features.__new__(Features)
        out.__dict__.update({k: v for k, v in vars(self).items() if k != "_sklearn_version"})
        return out

    # -- helpers -----------------------------------------------------------------------------
    def _check(self, X: Any) -> pl.DataFrame:
        """A polars frame holding every input column (chain inputs included)."""
        if not isinstance(X, pl.DataFrame):
            X = pl.DataFrame(X)
        given = set(X.columns)
        if DESCRIPTION_CHARS in given:
            given.add("description")
        missing = [c for c in self.input_columns() if c not in given]
        if missing:
            raise KeyError(f"feature columns missing: {', '.join(missing)}")
        return X

    def _numeric(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """Dense numeric features as float arrays; NaN marks missing (imputed later)."""
        f64 = pl.Float64

        def known(name: str) -> pl.Expr:
            col = pl.col(name).cast(f64)
            return pl.when(col > 0).then(col).otherwise(None)

        # NaN (a float column's other "unknown") is missing like NULL
        raw_year = pl.col("year_published").cast(f64).fill_nan(None)
        year = raw_year.clip(1900, YEAR_REFERENCE - 1)
        exprs = [
            ((year - 2000) / 10).alias("year_linear"),
            (-(YEAR_REFERENCE - year).log1p()).alias("year_log"),
            raw_year.is_null().cast(f64).alias("year_missing"),
            known("min_age").alias("min_age"),
            known("min_age").is_null().cast(f64).alias("min_age_missing"),
            known("min_playtime").log1p().alias("log_min_playtime"),
            known("max_playtime").log1p().alias("log_max_playtime"),
            known("max_playtime").is_null().cast(f64).alias("playtime_missing"),
            known("min_players").alias("min_players"),
            known("max_players").clip(upper_bound=20).alias("max_players"),
            known("max_players").is_null().cast(f64).alias("players_missing"),
            (known("max_playtime") / known("max_players")).log1p().alias("log_time_per_player"),
            _description_chars(frame).cast(f64).log1p().alias("log_description_chars"),
        ]
        lo, hi = known("min_players"), known("max_players")
        exprs += [
            ((lo <= k) & (hi >= k)).fill_null(False).cast(f64).alias(f"players_{k}")
            for k in PLAYER_COUNTS
        ]
        exprs += [
            pl.col(c).list.len().fill_null(0).cast(f64).log1p().alias(f"log_n_{c}")
            for c in LIST_COLUMNS
        ]
        out = frame.select(exprs)
        return {name: out[name].to_numpy().astype(np.float64) for name in out.columns}

    def _list_values(self, frame: pl.DataFrame, column: str) -> pl.Series:
        values = frame.select(pl.col(column).explode().drop_nulls())[column]
        if column == "families":
            values = values.filter(~values.str.starts_with(EXCLUDED_FAMILY_PREFIXES[0]))
            for prefix in EXCLUDED_FAMILY_PREFIXES[1:]:
                values = values.filter(~values.str.starts_with(prefix))
        return values

    @staticmethod
    def _pairs(frame: pl.DataFrame, column: str, vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, vocabulary index) of every known value in a list column, each pair once."""
        if not vocab:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        # values outside the vocabulary become null in the Enum and are dropped; pairs
        # stay in list order, so sums over a game's columns run in the same order every
        # time and its score is the same bit for bit whatever batch it is in
        pairs = (
            frame.select(
                pl.int_range(pl.len(), dtype=pl.Int64).alias("__row"),
                pl.col(column).list.unique(maintain_order=True),
            )
            .explode(column)
            .select(
                "__row",
                pl.col(column).cast(pl.Enum(vocab), strict=False).to_physical().alias("__col"),
            )
            .drop_nulls()
        )
        return pairs["__row"].to_numpy(), pairs["__col"].to_numpy().astype(np.int64)


def _description_chars(frame: pl.DataFrame) -> pl.Expr:
    """Characters of the description (NULL counts as 0), read or computed."""
    if DESCRIPTION_CHARS in frame.columns:
        return pl.col(DESCRIPTION_CHARS).fill_null(0)
    return pl.col("description").fill_null("").str.len_chars()


class BaseBlock:
    """A batch's base features: dense numeric columns, then one-hot columns as pairs.

    Linear models take ``dot`` (a matrix product and one ``bincount``) without ever
    building the sparse matrix; ``matrix`` builds it for everything else.
    """

    def __init__(self, dense: np.ndarray, rows: np.ndarray, cols: np.ndarray, width: int):
        self.dense, self.rows, self.cols, self.width = dense, rows, cols, width
        self._matrix: sparse.csr_matrix | None = None

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """The base columns times ``weights`` (one weight per base column)."""
        n, k = self.dense.shape
        # column by column rather than BLAS: BLAS may sum in an order that depends on
        # memory alignment, and a game must score the same, bit for bit, every time
        out = np.zeros(n, dtype=np.float64)
        for j in range(k):
            out += self.dense[:, j] * weights[j]
        if len(self.rows):
            out += np.bincount(self.rows, weights=weights[self.cols], minlength=n)
        return out

    def matrix(self) -> sparse.csr_matrix:
        if self._matrix is None:
            from scipy import sparse

            n, k = self.dense.shape
            ones = np.ones(len(self.rows), dtype=np.float64)
            one_hot = sparse.csr_matrix(
                (ones, (self.rows, self.cols - k)), shape=(n, self.width - k)
            )
            self._matrix = sparse.hstack([sparse.csr_matrix(self.dense), one_hot], format="csr")
        return self._matrix


class BaseCache:
    """Base feature blocks of ONE batch (make a new cache per batch), shared by every
    model whose builder has the same fitted base."""

    def __init__(self) -> None:
        self.blocks: dict[str, BaseBlock] = {}

    def block(self, builder: Features, frame: pl.DataFrame) -> BaseBlock:
        key = builder.base_fingerprint_
        if key not in self.blocks:
            self.blocks[key] = builder.base_block(frame)
        return self.blocks[key]

    def features(self, builder: Features, frame: pl.DataFrame) -> sparse.csr_matrix:
        return builder.transform(frame, base=self.block(builder, frame).matrix())
