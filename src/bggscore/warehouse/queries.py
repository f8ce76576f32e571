"""Canonical queries (BigQuery SQL over logical table names; see ``sql.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bggscore.errors import UsageError
from bggscore.stages import DEFAULT_END_YEAR, DEFAULT_START_YEAR, MAX_COUNT
from bggscore.warehouse.schemas import (
    GAMES_FEATURES,
    LANDING_PREDICTIONS,
    TABLES,
    interval_columns,
)
from bggscore.warehouse.sql import Typed, column_list
from bggscore.wording import counted

# Which games a command works on; every filter is a parameter, never SQL text.
SELECTION_WHERE = (
    "(@all_years OR (f.year_published >= @start_year AND f.year_published < @end_year) "
    "OR (@include_null_year AND f.year_published IS NULL)) "
    "AND (@include_null_year OR f.year_published IS NOT NULL) "
    "AND (@all_ids OR f.game_id IN UNNEST(@game_ids)) "
    # a game with no users_rated never passes a minimum (NULL >= n is not true)
    "AND (@any_users_rated OR (f.users_rated IS NOT NULL AND f.users_rated >= @min_users_rated))"
)


@dataclass(frozen=True)
class Selection:
    """Games chosen by year range and/or explicit ids, and optionally by how many users
    rated them (``min_users_rated``: production's rated-game backfill)."""

    start_year: int = DEFAULT_START_YEAR
    end_year: int = DEFAULT_END_YEAR
    all_years: bool = False
    game_ids: tuple[int, ...] | None = None
    include_null_year: bool = False
    min_users_rated: int | None = None

    def __post_init__(self) -> None:
        if not self.all_years and self.start_year >= self.end_year:
            raise UsageError(
                f"--start-year {self.start_year} must be before --end-year {self.end_year} "
                "(the end year is exclusive)"
            )
        minimum = self.min_users_rated
        if minimum is not None and not 0 <= minimum <= MAX_COUNT:
            raise UsageError(
                f"--min-users-rated {minimum} must be a whole number from 0 to {MAX_COUNT} "
                "(a count of ratings, e.g. 25)"
            )

    def params(self) -> dict[str, Any]:
        # explicit ids bypass the year and ratings filters: asking for a game by id means
        # that game (the CLI refuses those flags beside ids)
        by_ids = self.game_ids is not None
        any_users_rated = by_ids or self.min_users_rated is None
        return {
            "all_years": self.all_years or by_ids,
            "start_year": float(self.start_year),
            "end_year": float(self.end_year),
            "include_null_year": self.include_null_year or by_ids,
            "all_ids": not by_ids,
            "game_ids": Typed(list(self.game_ids or ()), "ARRAY<INT64>"),
            "any_users_rated": any_users_rated,
            "min_users_rated": 0 if any_users_rated else self.min_users_rated,
        }

    def describe(self) -> str:
        if self.game_ids is not None:
            return counted(len(self.game_ids), "requested game id")
        unknown = " (with unknown years)" if self.include_null_year else ""
        rated = (
            f", users_rated >= {self.min_users_rated}" if self.min_users_rated is not None else ""
        )
        if self.all_years:
            return "all years" + unknown + rated
        return f"years {self.start_year}-{self.end_year - 1}{unknown}{rated}"


# Columns computed from games_features where the data lives: reading a description's
# length instead of its text cuts most of the bytes a scoring run reads.
DESCRIPTION_CHARS = "description_chars"
DERIVED_COLUMNS = {DESCRIPTION_CHARS: "CHAR_LENGTH(f.`description`)"}


def _select_list(columns: list[str]) -> str:
    unknown = sorted(set(columns) - set(GAMES_FEATURES.names) - set(DERIVED_COLUMNS))
    if unknown:
        raise ValueError(f"not games_features columns: {unknown}")
    return ", ".join(
        f"{DERIVED_COLUMNS[c]} AS `{c}`" if c in DERIVED_COLUMNS else column_list([c], "f")
        for c in columns
    )


# pseudo-columns of a features read: the embeddings table's vector of each game (none:
# null) and its hash, read in the same query (each read of the table bills all of it)
INPUT_VECTOR = "_input_embedding"
INPUT_VECTOR_HASH = "_input_hash"
# and the table's check on every row (INPUT_EMBEDDING_WIDTHS: its vectors, their narrowest
# and widest width), for a read that is the command's only one of the table
INPUT_WIDTHS = ("_input_vectors", "_input_narrowest", "_input_widest")


def features_sql(columns: list[str], with_hash: bool = False) -> str:
    """Selected games; ``with_hash`` adds their current feature_hash; ``INPUT_VECTOR``
    among the columns adds the embeddings table's vector and its hash, ``INPUT_WIDTHS``
    its check.

    No ORDER BY: sorting a whole catalogue before the first batch costs seconds and
    memory that grows with it; readers sort each batch instead (``read_features``).
    """
    vectors = INPUT_VECTOR in columns
    pseudo = (INPUT_VECTOR, INPUT_VECTOR_HASH, *INPUT_WIDTHS)
    select = _select_list([c for c in columns if c not in pseudo])
    joins = ""
    if with_hash:
        select += ", h.feature_hash"
        joins += " LEFT JOIN game_features_hash AS h ON h.game_id = f.game_id"
    if vectors:
        select += f", e.embedding AS {INPUT_VECTOR}, {EMBEDDING_HASH} AS {INPUT_VECTOR_HASH}"
        joins += (
            f" LEFT JOIN embeddings_input AS e ON e.game_id = f.game_id AND {EMBEDDING_PRESENT}"
        )
    if INPUT_WIDTHS[0] in columns:  # one aggregate row, joined to every game
        n, lo, hi = INPUT_WIDTHS
        select += f", w.n AS {n}, w.lo AS {lo}, w.hi AS {hi}"
        joins += f" CROSS JOIN ({INPUT_EMBEDDING_WIDTHS}) AS w"
    return (
        f"SELECT {select} FROM games_features AS f{joins} "  # noqa: S608
        f"WHERE {SELECTION_WHERE}"
    )


# Which job last wrote each of some games' output of one stage, and when: its timestamp is
# the partition of the stage's table that holds the row (a stage writes its rows and its
# state rows with one timestamp), so the output is read from those partitions alone.
STATE_REFS = (
    "SELECT s.game_id, s.job_id, s.score_ts FROM scoring_state AS s "
    "WHERE s.stage_partition = @partition AND s.stage = @stage "
    "AND s.game_id IN UNNEST(@game_ids)"
)

# STATE_REFS of several stages at once (their partitions), for the games of a batch
STATE_REFS_OF = (
    "SELECT s.stage, s.game_id, s.job_id, s.score_ts FROM scoring_state AS s "
    "WHERE s.stage_partition IN UNNEST(@partitions) AND s.stage IN UNNEST(@stages) "
    "AND s.game_id IN UNNEST(@game_ids)"
)

# The complexity each game was last scored with (what `--stage main` reads), and the raw
# value the chain reads (rows written before it was kept hold the clipped value only);
# joined with STATE_REFS on (game_id, job_id).
COMPLEXITY_ROWS = (
    "SELECT c.game_id, c.job_id, c.predicted_complexity, "
    "COALESCE(c.predicted_complexity_raw, c.predicted_complexity) AS predicted_complexity_raw "
    "FROM complexity_predictions AS c "
    "WHERE c.score_ts IN UNNEST(@stamps) AND c.game_id IN UNNEST(@game_ids)"
)

COUNT_SELECTION = f"SELECT COUNT(*) AS n FROM games_features AS f WHERE {SELECTION_WHERE}"  # noqa: S608

GAME_BY_ID = "SELECT f.game_id, f.name FROM games_features AS f WHERE f.game_id = @game_id"
# as `similar` matches names: equal ignoring case, else the shortest containing the text
GAME_BY_NAME = (
    "SELECT f.game_id, f.name FROM games_features AS f "
    "WHERE STRPOS(LOWER(f.name), LOWER(@name)) > 0 "
    "ORDER BY LOWER(f.name) <> LOWER(@name), LENGTH(f.name), f.game_id "
    "LIMIT @limit"
)
STAGE_STATE_OF_GAME = (
    "SELECT s.game_id FROM scoring_state AS s "
    "WHERE s.stage_partition = @partition AND s.stage = @stage AND s.game_id = @game_id"
)
EXISTING_IDS = "SELECT f.game_id FROM games_features AS f WHERE f.game_id IN UNNEST(@game_ids)"

HASHES_FOR_IDS = (
    "SELECT h.game_id, h.feature_hash, h.last_updated FROM game_features_hash AS h "
    "WHERE h.game_id IN UNNEST(@game_ids)"
)

ALL_HASHES = "SELECT h.game_id, h.feature_hash, h.last_updated FROM game_features_hash AS h"

# One game's name and year, for `detect-changes --explain`.
GAME_NAME_YEAR = "SELECT f.name, f.year_published FROM games_features AS f WHERE f.game_id = @id"

# The demo's closing example: the game most users rated, among those with a known year.
MOST_RATED_GAME = (
    "SELECT f.game_id FROM games_features AS f WHERE f.year_published IS NOT NULL "
    "ORDER BY f.users_rated DESC, f.game_id LIMIT 1"
)

# Moves with every features load (the similar-games index keys its names on it: names come
# from games_features and are not hashed, but a load moves its newest load_timestamp).
FEATURES_VERSION = (
    "SELECT COUNT(*) AS n, MAX(f.load_timestamp) AS last_load FROM games_features AS f"
)

# The mark `bggscore demo` leaves in a warehouse whose catalogue it created (a runs row).
DEMO_MARKER = (
    "SELECT COUNT(*) AS n FROM runs AS r WHERE r.job_id = @job_id AND r.command = @command"
)

LAST_RUNS = (
    "SELECT job_id, command, stage, status, games, started_at, finished_at, message "
    "FROM runs ORDER BY started_at DESC, job_id DESC LIMIT @limit"
)


# The stage lease (BigQuery: a run on another machine). Times are parameters: the
# holder's clock decides expiry, so tests can move it; leases last minutes, not seconds.
LEASE_HOLDERS = (
    "SELECT l.stage, l.holder, l.job_id, l.command, l.acquired_at, l.expires_at "
    "FROM leases AS l WHERE l.stage IN UNNEST(@lease_stages) ORDER BY l.stage"
)

# All the stages or none, in one statement: the source is empty while any of them is held
# by another live lease. Two machines racing: BigQuery aborts one MERGE (concurrent update).
TAKE_LEASE = (
    "MERGE leases AS t "
    "USING (SELECT stage FROM UNNEST(@lease_stages) AS stage WHERE NOT EXISTS ("
    "SELECT l.stage FROM leases AS l WHERE l.stage IN UNNEST(@lease_stages) "
    "AND l.job_id <> @lease_job AND l.expires_at >= @lease_now)) AS s "
    "ON t.stage = s.stage "
    "WHEN MATCHED THEN UPDATE SET holder = @lease_holder, job_id = @lease_job, "
    "command = @lease_command, acquired_at = @lease_now, expires_at = @lease_expires "
    "WHEN NOT MATCHED THEN INSERT (stage, holder, job_id, command, acquired_at, expires_at) "
    "VALUES (s.stage, @lease_holder, @lease_job, @lease_command, @lease_now, @lease_expires)"
)

RENEW_LEASE = "UPDATE leases SET expires_at = @lease_expires WHERE job_id = @lease_job"

RELEASE_LEASE = "DELETE FROM leases WHERE job_id = @lease_job"

# The runs a stopped holder left `running`, closed when its expired lease is taken over.
CLOSE_STALE_RUNS = (
    "UPDATE runs SET status = @failed, message = @message, finished_at = @lease_now "
    "WHERE job_id IN UNNEST(@stale_jobs) AND status = @running"
)


def landing_rows_sql(bounded: bool = False) -> str:
    """One job's landing rows (``compare``): game, name and every numeric prediction.

    The table is partitioned by score_ts and clustered by game_id, not by job: ``bounded``
    reads only the rows scored from ``@since`` to before ``@until`` (a bggscore job id
    names the second its rows were scored in), else the whole landing history.
    """
    select = ", ".join(f"p.`{name}`" for name in ("game_id", "name", *LANDING_PREDICTIONS))
    where = "p.score_ts >= @since AND p.score_ts < @until AND " if bounded else ""
    return (
        f"SELECT {select} FROM ml_predictions_landing AS p "  # noqa: S608
        f"WHERE {where}p.job_id = @job_id"
    )


def count_sql(logical: str) -> str:
    if logical not in TABLES:  # the name is formatted into the SQL: only our own names
        raise ValueError(f"unknown logical table {logical!r}")
    return f"SELECT COUNT(*) AS n FROM {logical}"  # noqa: S608 - logical name from our schema


# The description embedding each game last got (what game embeddings read), from the
# partitions STATE_REFS names; joined with it on (game_id, job_id).
TEXT_EMBEDDING_ROWS = (
    "SELECT e.game_id, e.job_id, e.embedding AS description_embedding "
    "FROM description_embeddings AS e "
    "WHERE e.created_ts IN UNNEST(@stamps) AND e.game_id IN UNNEST(@game_ids)"
)

# When each job whose embeddings one model version last wrote ran: the partitions of the
# game embeddings LATEST_GAME_EMBEDDINGS reads.
STAGE_STAMPS = (
    "SELECT DISTINCT s.score_ts FROM scoring_state AS s "
    "WHERE s.stage_partition = @partition AND s.stage = @stage AND s.model_key = @model_key"
)

# Every game's latest embedding from one model version: readers never mix versions.
# No ORDER BY: sorting the vectors in the warehouse needs them all in its memory at once.
LATEST_GAME_EMBEDDINGS = (
    "SELECT s.game_id, f.name, f.year_published, e.embedding "
    "FROM scoring_state AS s JOIN game_embeddings AS e "
    "ON e.job_id = s.job_id AND e.game_id = s.game_id "
    "LEFT JOIN games_features AS f ON f.game_id = s.game_id "
    "WHERE s.stage_partition = @partition AND s.stage = @stage AND s.model_key = @model_key "
    "AND e.created_ts IN UNNEST(@stamps)"
)

# Changes whenever a stage writes: count and newest score of its state rows.
STAGE_VERSION = (
    "SELECT COUNT(*) AS n, MAX(s.score_ts) AS last_ts, MAX(s.job_id) AS last_job "
    "FROM scoring_state AS s "
    "WHERE s.stage_partition = @partition AND s.stage = @stage AND s.model_key = @model_key"
)

# What the text stage records of each of some games' description (its md5): read only to
# confirm the games detection found by their feature hash, never on a no-op.
DESCRIPTION_MD5 = (
    "SELECT f.game_id, TO_HEX(MD5(COALESCE(f.description, ''))) AS input_hash "
    "FROM games_features AS f WHERE f.game_id IN UNNEST(@game_ids)"
)


# -- the embeddings input (features.embeddings_table: game_id, embedding ARRAY<FLOAT64>) ----
def embedding_present(alias: str) -> str:
    """Whether a row of the embeddings table holds a vector (an empty one is none)."""
    return f"ARRAY_LENGTH({alias}.embedding) > 0"


def embedding_hash(alias: str) -> str:
    """What a stage reading the table records of a game's vector (its upstream key part
    `<input>:<md5>`): one expression, run by the engine both when scoring reads
    the vectors and in detection, so reloading the same numbers changes nothing."""
    return f"TO_HEX(MD5(TO_JSON_STRING({alias}.embedding)))"


EMBEDDING_PRESENT = embedding_present("e")
EMBEDDING_HASH = embedding_hash("e")

# the vectors of some games, with the hash their key part records
INPUT_EMBEDDINGS = (
    f"SELECT e.game_id, e.embedding, {EMBEDDING_HASH} AS input_hash "  # noqa: S608
    f"FROM embeddings_input AS e WHERE e.game_id IN UNNEST(@game_ids) AND {EMBEDDING_PRESENT}"
)

# how many vectors the table holds and their widths (a model reads exactly one width)
INPUT_EMBEDDING_WIDTHS = (
    "SELECT COUNT(*) AS n, MIN(ARRAY_LENGTH(e.embedding)) AS lo, "  # noqa: S608
    f"MAX(ARRAY_LENGTH(e.embedding)) AS hi FROM embeddings_input AS e WHERE {EMBEDDING_PRESENT}"
)

# the widths, and the selected games without a vector (reported as missing_inputs, never
# scored nor dropped silently), in one statement: each read of the table bills its whole
# column. The widths on every row, one row per game without a vector (else one, null)
# (detection carries the same rows, ``INPUT_CHECK_FROM``, in its one statement)
INPUT_CHECK_FROM = (
    f"FROM ({INPUT_EMBEDDING_WIDTHS}) AS w LEFT JOIN ("  # noqa: S608
    "SELECT f.game_id FROM games_features AS f "
    f"WHERE {SELECTION_WHERE} AND NOT EXISTS (SELECT e.game_id FROM embeddings_input AS e "
    f"WHERE e.game_id = f.game_id AND {EMBEDDING_PRESENT})) AS m ON TRUE"
)
INPUT_EMBEDDING_CHECK = f"SELECT w.n, w.lo, w.hi, m.game_id {INPUT_CHECK_FROM} ORDER BY m.game_id"

# the widths of the vectors a load of these games keeps (those of every other game)
KEPT_EMBEDDING_WIDTHS = (
    "SELECT ARRAY_LENGTH(e.embedding) AS width, COUNT(*) AS n "  # noqa: S608
    f"FROM embeddings_input AS e WHERE {EMBEDDING_PRESENT} "
    "AND e.game_id NOT IN UNNEST(@game_ids) GROUP BY width ORDER BY n DESC, width"
)

# the stages an older state table holds rows of (`warehouse migrate`)
STATE_STAGES = "SELECT DISTINCT s.stage FROM scoring_state AS s ORDER BY s.stage"

# -- `bggscore report`: reads only ---------------------------------------------------------
# The runs of a window (the demo's catalogue mark is a runs row too: commands filter it out).
REPORT_RUNS = (
    "SELECT r.job_id, r.command, r.stage, r.status, r.games, r.started_at, r.finished_at "
    "FROM runs AS r WHERE r.started_at >= @since AND r.started_at <= @until "
    "AND r.command IN UNNEST(@commands) ORDER BY r.started_at, r.job_id"
)
REPORT_JOB = (
    "SELECT r.job_id, r.command, r.stage, r.status, r.games, r.started_at, r.finished_at "
    "FROM runs AS r WHERE r.job_id = @job_id"
)
# the newest job of a command that finished (the report's job by default)
LATEST_JOB = (
    "SELECT r.job_id FROM runs AS r WHERE r.command = @command AND r.status = @status "
    "AND r.games > @min_games AND r.started_at >= @since "
    "ORDER BY r.started_at DESC, r.job_id DESC LIMIT @limit"
)

# What each stage's history table records of a game's inputs (lineage): its timestamp, the
# model columns, and the upstream value it read (main: the complexity it was scored with).
LINEAGE: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "complexity_predictions": ("score_ts", ("model_fingerprint",), None),
    "ml_predictions_landing": ("score_ts", ("model_fingerprint",), "predicted_complexity"),
    "description_embeddings": ("created_ts", ("embedding_model", "embedding_version"), None),
    "game_embeddings": ("created_ts", ("embedding_model", "embedding_version"), None),
}


def _known(logical: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """Columns of our own schema for ``logical`` (they are formatted into SQL): checked."""
    unknown = sorted(set(columns) - set(TABLES[logical].names))
    if unknown:
        raise ValueError(f"not {logical} columns: {unknown}")
    return columns


def lineage_sql(logical: str) -> str:
    """Per job of a window, its games grouped by what differs from each game's previous row
    of the same table: none (``is_new``), the feature hash, the model, the upstream value."""
    if logical not in LINEAGE:
        raise ValueError(f"no lineage for {logical!r}")
    ts, models, upstream = LINEAGE[logical]
    _known(logical, (ts, *models, *((upstream,) if upstream else ())))
    model = " OR ".join(f"t.`{m}` IS DISTINCT FROM LAG(t.`{m}`) OVER g" for m in models)
    moved = f"t.`{upstream}` IS DISTINCT FROM LAG(t.`{upstream}`) OVER g" if upstream else "FALSE"
    return (
        f"WITH w AS (SELECT t.job_id, t.`{ts}` AS ts, "  # noqa: S608
        "LAG(t.job_id) OVER g IS NULL AS is_new, "
        "t.feature_hash IS DISTINCT FROM LAG(t.feature_hash) OVER g AS features, "
        f"({model}) AS model, ({moved}) AS upstream "
        f"FROM {logical} AS t "
        f"WINDOW g AS (PARTITION BY t.game_id ORDER BY t.`{ts}`, t.job_id)) "
        "SELECT w.job_id, w.is_new, w.features, w.model, w.upstream, COUNT(*) AS games "
        "FROM w WHERE w.ts >= @since AND w.ts <= @until "
        "GROUP BY w.job_id, w.is_new, w.features, w.model, w.upstream"
    )


LANDING = "ml_predictions_landing"
# the outcomes the report follows, as landing names them
REPORT_OUTCOMES = ("complexity", "rating", "users_rated", "geek_rating")
REPORT_POINTS = (
    "predicted_complexity",
    "predicted_rating",
    "predicted_users_rated",
    "predicted_geek_rating",
)
REPORT_BOUNDS = tuple(column for outcome in REPORT_OUTCOMES for column in interval_columns(outcome))


MOVE_COLUMNS = ("job_id", "game_id", "name", "feature_hash", "model_fingerprint", *REPORT_POINTS)


def moves_sql() -> str:
    """One job's landing rows of games scored before, beside each game's previous row."""
    _known(LANDING, MOVE_COLUMNS)
    now = ", ".join(f"w.`{c}`" for c in ("game_id", "name", *REPORT_POINTS))
    own = ", ".join(f"t.`{c}`" for c in MOVE_COLUMNS)
    lags = ", ".join(
        f"LAG(t.`{c}`) OVER g AS `previous_{c}`"
        for c in ("job_id", "feature_hash", "model_fingerprint", *REPORT_POINTS)
    )
    before = ", ".join(
        f"w.`previous_{c}`" for c in ("job_id", "feature_hash", "model_fingerprint", *REPORT_POINTS)
    )
    return (
        f"WITH w AS (SELECT {own}, {lags} FROM ml_predictions_landing AS t "  # noqa: S608
        "WHERE t.game_id IN (SELECT j.game_id FROM ml_predictions_landing AS j "
        "WHERE j.job_id = @job_id) "
        "WINDOW g AS (PARTITION BY t.game_id ORDER BY t.score_ts, t.job_id)) "
        f"SELECT {now}, w.feature_hash, w.model_fingerprint, {before} FROM w "
        "WHERE w.job_id = @job_id AND w.previous_job_id IS NOT NULL"
    )


# the actuals each outcome is judged against (scoring.outcomes names the same targets)
ACTUAL_COLUMNS = ("average_weight", "num_weights", "average_rating", "users_rated", "bayes_average")


def predictions_as_of_sql() -> str:
    """Each game's newest landing row scored at or before @as_of, with its actuals."""
    shown = _known(LANDING, ("game_id", "name", "year_published", *REPORT_POINTS, *REPORT_BOUNDS))
    _known(GAMES_FEATURES.logical, ACTUAL_COLUMNS)
    predicted = ", ".join(f"p.`{c}`" for c in shown)
    actual = ", ".join(f"f.`{c}` AS `actual_{c}`" for c in ACTUAL_COLUMNS)
    return (
        f"SELECT {predicted}, {actual} FROM ml_predictions_landing AS p "  # noqa: S608
        "LEFT JOIN games_features AS f ON f.game_id = p.game_id "
        "WHERE p.score_ts <= @as_of "
        "QUALIFY p.score_ts = MAX(p.score_ts) OVER (PARTITION BY p.game_id)"
    )


# every game's latest 2-D coordinates (the game-embeddings stage's current rows)
# the map's rows come from the partitions the stage's state stamps name (MAP_STAMPS)
MAP_STAMPS = (
    "SELECT DISTINCT s.score_ts FROM scoring_state AS s "
    "WHERE s.stage_partition = @partition AND s.stage = @stage"
)
MAP_POINTS = (
    "SELECT s.game_id, f.name, e.coordinates_2d FROM scoring_state AS s "
    "JOIN game_embeddings AS e ON e.job_id = s.job_id AND e.game_id = s.game_id "
    "LEFT JOIN games_features AS f ON f.game_id = s.game_id "
    "WHERE s.stage_partition = @partition AND s.stage = @stage "
    "AND e.created_ts IN UNNEST(@stamps)"
)

# The model columns each history table keeps, by model type (what a job scored with).
JOB_MODEL_COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "complexity_predictions": {"complexity": ("complexity_model_name", "complexity_model_version")},
    "ml_predictions_landing": {
        "hurdle": ("hurdle_model_name", "hurdle_model_version"),
        "rating": ("rating_model_name", "rating_model_version"),
        "users_rated": ("users_rated_model_name", "users_rated_model_version"),
        "geek_rating": ("geek_rating_model_name", "geek_rating_model_version"),
    },
    "description_embeddings": {"text_embeddings": ("embedding_model", "embedding_version")},
    "game_embeddings": {"game_embeddings": ("embedding_model", "embedding_version")},
}


def job_models_sql(logical: str) -> str:
    """The distinct model names and versions of one job's rows in a history table."""
    if logical not in JOB_MODEL_COLUMNS:
        raise ValueError(f"no model columns for {logical!r}")
    names = _known(logical, tuple(c for pair in JOB_MODEL_COLUMNS[logical].values() for c in pair))
    select = ", ".join(f"t.`{c}`" for c in names)
    return f"SELECT DISTINCT {select} FROM {logical} AS t WHERE t.job_id = @job_id"  # noqa: S608


# -- `warehouse check`: state and outputs that disagree ----------------------------------------
def state_without_output_sql(output: str) -> str:
    """A stage's state rows whose game has no row in the stage's output table for the job
    the state names: detection takes those games for scored, yet their output is gone."""
    if output not in TABLES:  # the name is formatted into the SQL: only our own names
        raise ValueError(f"unknown logical table {output!r}")
    return (
        "SELECT COUNT(*) AS n, MIN(s.game_id) AS example FROM scoring_state AS s "  # noqa: S608
        f"LEFT JOIN {output} AS o ON o.job_id = s.job_id AND o.game_id = s.game_id "
        "WHERE s.stage_partition = @partition AND s.stage = @stage AND o.game_id IS NULL"
    )


def repeated_keys_sql(logical: str) -> str:
    """Keys a one-row-per-key table holds more than once (each write would then fail)."""
    if logical not in TABLES or "game_id" not in TABLES[logical].key:
        raise ValueError(f"no logical table keyed by game {logical!r}")
    key = ", ".join(f"t.`{name}`" for name in TABLES[logical].key)  # the schema's own names
    return (
        f"SELECT COUNT(*) AS n, MIN(r.game_id) AS example FROM (SELECT {key} "  # noqa: S608
        f"FROM {logical} AS t GROUP BY {key} HAVING COUNT(*) > 1) AS r"
    )
