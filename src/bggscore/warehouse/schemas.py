"""Table schemas: one definition per table, in BigQuery types.

Both engines create their tables from these definitions, and frames are cast to
them before every write, so the embedded warehouse mirrors production columns.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import polars as pl

STRING, INT64, FLOAT64, TIMESTAMP = "STRING", "INT64", "FLOAT64", "TIMESTAMP"
ARRAY_STRING, ARRAY_FLOAT64 = "ARRAY<STRING>", "ARRAY<FLOAT64>"

POLARS_TYPES: dict[str, pl.DataType] = {
    STRING: pl.String(),
    INT64: pl.Int64(),
    FLOAT64: pl.Float64(),
    TIMESTAMP: pl.Datetime("us", "UTC"),
    ARRAY_STRING: pl.List(pl.String()),
    ARRAY_FLOAT64: pl.List(pl.Float64()),
}
DUCKDB_TYPES = {
    STRING: "VARCHAR",
    INT64: "BIGINT",
    FLOAT64: "DOUBLE",
    TIMESTAMP: "TIMESTAMPTZ",
    ARRAY_STRING: "VARCHAR[]",
    ARRAY_FLOAT64: "DOUBLE[]",
}


@dataclass(frozen=True)
class TableSchema:
    """Columns of one logical table and how BigQuery lays it out."""

    logical: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...] = ()
    partition_by_day: str | None = None
    # an INT64 column BigQuery partitions by (RANGE_BUCKET over 0..STAGE_PARTITIONS)
    partition_by_range: str | None = None
    cluster_by: tuple[str, ...] = ()
    owned: bool = True  # False: produced by the warehouse's own jobs, not by bggscore
    required: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {name: POLARS_TYPES[kind] for name, kind in self.columns}

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Select and cast a frame to this schema; absent columns become NULL."""
        exprs = []
        for name, dtype in self.polars_schema().items():
            if name in frame.columns:
                exprs.append(pl.col(name).cast(dtype))
            else:
                exprs.append(pl.lit(None, dtype=dtype).alias(name))
        return frame.select(exprs)


HASHED_FIELDS = (
    "year_published",
    "categories",
    "mechanics",
    "designers",
    "artists",
    "publishers",
    "families",
    "min_age",
    "min_playtime",
    "max_playtime",
    "min_players",
    "max_players",
    "description",
)
ARRAY_FIELDS = ("categories", "mechanics", "publishers", "designers", "artists", "families")

GAMES_FEATURES = TableSchema(
    "games_features",
    (
        ("game_id", INT64),
        ("name", STRING),
        ("year_published", FLOAT64),
        ("bayes_average", FLOAT64),
        ("average_rating", FLOAT64),
        ("average_weight", FLOAT64),
        ("users_rated", INT64),
        ("hurdle", INT64),
        ("geek_rating", FLOAT64),
        ("complexity", FLOAT64),
        ("rating", FLOAT64),
        ("log_users_rated", FLOAT64),
        ("num_weights", INT64),
        ("min_players", INT64),
        ("max_players", INT64),
        ("min_playtime", INT64),
        ("max_playtime", INT64),
        ("min_age", INT64),
        ("image", STRING),
        ("thumbnail", STRING),
        ("description", STRING),
        ("categories", ARRAY_STRING),
        ("mechanics", ARRAY_STRING),
        ("publishers", ARRAY_STRING),
        ("designers", ARRAY_STRING),
        ("artists", ARRAY_STRING),
        ("families", ARRAY_STRING),
        ("load_timestamp", TIMESTAMP),
        ("last_updated", TIMESTAMP),
    ),
    key=("game_id",),
    owned=False,
    # what a features export must carry; the rest may be absent (NULL)
    required=(
        "game_id",
        "name",
        "year_published",
        "bayes_average",
        "average_rating",
        "average_weight",
        "users_rated",
        "num_weights",
        *HASHED_FIELDS[1:],
    ),
)

GAME_FEATURES_HASH = TableSchema(
    "game_features_hash",
    (("game_id", INT64), ("name", STRING), ("feature_hash", INT64), ("last_updated", TIMESTAMP)),
    key=("game_id",),
    owned=False,
)

# The description embeddings emb_* models read (features.embeddings_table): production's
# `predictions.bgg_description_embeddings`, filled by the warehouse on BigQuery, by
# `warehouse load --embeddings` in the embedded one. One row per game.
EMBEDDINGS_INPUT = TableSchema(
    "embeddings_input",
    (("game_id", INT64), ("embedding", ARRAY_FLOAT64)),
    key=("game_id",),
    owned=False,
)

MODEL_COLUMNS_FOR = ("hurdle", "complexity", "rating", "users_rated", "geek_rating")
INTERVAL_OUTCOMES = ("complexity", "rating", "users_rated", "geek_rating")


def interval_columns(outcome: str) -> tuple[str, str]:
    """An outcome's 90% bounds (5th, 95th percentile), named as in production's landing."""
    return f"{outcome}_lower_90", f"{outcome}_upper_90"


INTERVAL_COLUMNS = tuple(column for o in INTERVAL_OUTCOMES for column in interval_columns(o))


def _model_columns(model: str) -> tuple[tuple[str, str], ...]:
    return (
        (f"{model}_model_name", STRING),
        (f"{model}_model_version", INT64),
        (f"{model}_experiment", STRING),
    )


ML_PREDICTIONS_LANDING = TableSchema(
    "ml_predictions_landing",
    (
        ("job_id", STRING),
        ("game_id", INT64),
        ("name", STRING),
        ("year_published", FLOAT64),
        ("predicted_hurdle_prob", FLOAT64),
        ("predicted_complexity", FLOAT64),
        ("predicted_rating", FLOAT64),
        ("predicted_users_rated", FLOAT64),
        ("predicted_geek_rating", FLOAT64),
        *[col for model in MODEL_COLUMNS_FOR for col in _model_columns(model)],
        *[(column, FLOAT64) for column in INTERVAL_COLUMNS],
        ("sample_status", STRING),
        ("training_cutoff_year", INT64),
        ("score_ts", TIMESTAMP),
        ("source_environment", STRING),
        # lineage (bggscore additions; downstream appends with ALLOW_FIELD_ADDITION)
        ("predicted_users_rated_raw", FLOAT64),
        ("feature_hash", INT64),
        ("model_fingerprint", STRING),
    ),
    key=("job_id", "game_id"),
    partition_by_day="score_ts",
    cluster_by=("game_id",),
)

# The landing table's numeric predictions (what `compare` reads of a job): every FLOAT64
# column but the game's year.
LANDING_PREDICTIONS = tuple(
    name
    for name, kind in ML_PREDICTIONS_LANDING.columns
    if kind == FLOAT64
    if name != "year_published"
)

COMPLEXITY_PREDICTIONS = TableSchema(
    "complexity_predictions",
    (
        ("game_id", INT64),
        ("name", STRING),
        ("year_published", FLOAT64),
        ("predicted_complexity", FLOAT64),
        *_model_columns("complexity"),
        ("score_ts", TIMESTAMP),
        ("job_id", STRING),
        ("source_environment", STRING),
        ("feature_hash", INT64),
        ("model_fingerprint", STRING),
        # the model's own value before the [1, 5] clip: what the main stage chains from
        ("predicted_complexity_raw", FLOAT64),
    ),
    key=("job_id", "game_id"),
    partition_by_day="score_ts",
    cluster_by=("game_id",),
)

GAME_EMBEDDINGS = TableSchema(
    "game_embeddings",
    (
        ("game_id", INT64),
        ("name", STRING),
        ("year_published", FLOAT64),
        ("embedding", ARRAY_FLOAT64),
        ("embedding_8", ARRAY_FLOAT64),
        ("embedding_16", ARRAY_FLOAT64),
        ("embedding_32", ARRAY_FLOAT64),
        ("embedding_model", STRING),
        ("embedding_version", INT64),
        ("embedding_dim", INT64),
        ("algorithm", STRING),
        ("created_ts", TIMESTAMP),
        ("job_id", STRING),
        ("coordinates_2d", ARRAY_FLOAT64),
        ("feature_hash", INT64),
    ),
    key=("job_id", "game_id"),
    partition_by_day="created_ts",
    cluster_by=("game_id",),
)

DESCRIPTION_EMBEDDINGS = TableSchema(
    "description_embeddings",
    (
        ("game_id", INT64),
        ("name", STRING),
        ("embedding", ARRAY_FLOAT64),
        ("embedding_model", STRING),
        ("embedding_version", INT64),
        ("embedding_dim", INT64),
        ("algorithm", STRING),
        ("document_method", STRING),
        ("created_ts", TIMESTAMP),
        ("job_id", STRING),
        ("feature_hash", INT64),
    ),
    key=("job_id", "game_id"),
    partition_by_day="created_ts",
    cluster_by=("game_id",),
)

# The warehouse layout this version reads and writes; `bggscore warehouse migrate` carries
# an older one forward. 1: scoring_state without stage partitions; 2: partitioned by stage.
WAREHOUSE_SCHEMA_VERSION = 2
STAGE_PARTITIONS = 4000  # integer partitions of the state table (BigQuery allows 10,000)
STAGE_PARTITION = "stage_partition"


def stage_partition(stage: str) -> int:
    """The state table's partition of a stage's rows: a number derived from its name alone,
    so every version and every stage added later agree on it without a lookup table. Two
    stages sharing one only share a partition (the key still tells them apart)."""
    return zlib.crc32(stage.encode("utf-8")) % STAGE_PARTITIONS


def with_stage_partition(frame: pl.DataFrame) -> pl.DataFrame:
    """State rows with their partition column filled from their stage."""
    stages = frame["stage"].unique().to_list()
    mapping = {stage: stage_partition(stage) for stage in stages}
    return frame.with_columns(
        pl.col("stage").replace_strict(mapping, return_dtype=pl.Int64).alias(STAGE_PARTITION)
    )


# What each stage last produced for each game: detection joins this, never the history.
# Partitioned by stage (integer range on stage_partition), so reading or merging one
# stage's rows bills that stage's partition, not every stage's.
SCORING_STATE = TableSchema(
    "scoring_state",
    (
        ("stage", STRING),
        ("game_id", INT64),
        ("feature_hash", INT64),
        ("model_key", STRING),
        ("upstream_key", STRING),
        ("job_id", STRING),
        ("score_ts", TIMESTAMP),
        # a stage's own input fingerprint when the feature hash is too broad (text: the
        # description's md5), so an unrelated feature change does not re-embed text
        ("input_hash", STRING),
        (STAGE_PARTITION, INT64),  # stage_partition(stage); schema version 2
    ),
    key=("stage", "game_id"),
    partition_by_range=STAGE_PARTITION,
    cluster_by=("stage", "game_id"),
)

# columns an older layout lacks that `warehouse init` cannot simply add (existing rows
# need values, and BigQuery must re-create the table to partition by them)
MIGRATED_COLUMNS = {"scoring_state": (STAGE_PARTITION,)}

RUNS = TableSchema(
    "runs",
    (
        ("job_id", STRING),
        ("command", STRING),
        ("stage", STRING),
        ("status", STRING),
        ("games", INT64),
        ("started_at", TIMESTAMP),
        ("finished_at", TIMESTAMP),
        ("message", STRING),
        ("source_environment", STRING),
    ),
    key=("job_id", "stage"),
)

# Who writes which stage, across machines (BigQuery): one row per stage while a command
# that writes it runs; a row past expires_at belongs to a holder that stopped.
LEASES = TableSchema(
    "leases",
    (
        ("stage", STRING),
        ("holder", STRING),
        ("job_id", STRING),
        ("command", STRING),
        ("acquired_at", TIMESTAMP),
        ("expires_at", TIMESTAMP),
    ),
    key=("stage",),
)

TABLES: dict[str, TableSchema] = {
    schema.logical: schema
    for schema in (
        GAMES_FEATURES,
        GAME_FEATURES_HASH,
        EMBEDDINGS_INPUT,
        ML_PREDICTIONS_LANDING,
        COMPLEXITY_PREDICTIONS,
        GAME_EMBEDDINGS,
        DESCRIPTION_EMBEDDINGS,
        SCORING_STATE,
        RUNS,
        LEASES,
    )
}
