"""The detection query: one canonical statement per stage (see bggscore.detection).

Every fragment is one of this module's constants or a stage name from the stage graph;
every value is a query parameter (tests/test_security.py scans this module).
"""

from __future__ import annotations

import re

from bggscore.errors import UsageError
from bggscore.stages import EMBEDDINGS_TABLE, GRAPH, StageGraph
from bggscore.warehouse.queries import (
    INPUT_CHECK_FROM,
    INPUT_VECTOR,
    INPUT_VECTOR_HASH,
    SELECTION_WHERE,
    embedding_hash,
    embedding_present,
)

# a stage keyed on one column (Stage.input_column) records the md5 of it (input_hash);
# every other stage the warehouse feature hash. That column must be one of the hashed
# fields: detection finds candidates by the feature hash and never reads the column
# itself (its md5 is computed by whoever reads the text: queries.DESCRIPTION_MD5, or the
# text stage as it embeds). Column names come from the stage graph.
INPUT_HASH = ("CAST(NULL AS STRING)", "input_hash")  # the current md5: not computed here
FEATURE_HASH = ("h.feature_hash", "feature_hash")
HASHED_COLUMNS = ("description",)  # input columns that are part of the feature hash


def _input_hash(stage: str, graph: StageGraph) -> tuple[str, str] | None:
    column = graph.get(stage).input_column
    if column is None:
        return None
    if column not in HASHED_COLUMNS:
        raise ValueError(f"stage {stage} is keyed on {column}, which the feature hash omits")
    return INPUT_HASH


def _expected_upstream_sql(upstream: tuple[str, ...], inputs: tuple[str, ...] = ()) -> str:
    """SQL for the upstream key a stage would record if it ran now (NULL if any is missing):
    each upstream stage's job (``u{i}``), then each input's vector hash (``e{k}``)."""
    parts = [f"CONCAT('{up}:', u{i}.job_id)" for i, up in enumerate(upstream)]
    vectors = [embedding_hash(f"e{i}") for i in range(len(inputs))]  # e0: the first input's
    parts += [f"CONCAT('{up}:', {vector})" for up, vector in zip(inputs, vectors, strict=True)]
    if not parts:
        return "CAST(NULL AS STRING)"
    return parts[0] if len(parts) == 1 else "CONCAT(" + ", '|', ".join(parts) + ")"


def _upstream_moved_sql(upstream: tuple[str, ...]) -> str:  # stages, then inputs
    """Whether the recorded upstream key differs from the one the stage would record now.

    Compares ``s.upstream_key`` with the parts ``p{i}.part`` each upstream scan computed
    (``complexity:<job>``, with the ``|`` separator on every part but the last), without
    building the whole expected key for every row: a key of two parts is exactly the
    first part followed by the last when it starts with one, ends with the other and is
    as long as both. Games missing an upstream are not flagged (nothing to read yet).
    """
    n = len(upstream)
    present = " AND ".join(f"p{i}.game_id IS NOT NULL" for i in range(n))
    if n == 1:
        same = "s.upstream_key IS NOT DISTINCT FROM p0.part"
    elif n == 2:
        # the expected key is NULL when a job id is: then only a NULL record matches
        same = (
            "IF(p0.part IS NULL OR p1.part IS NULL, s.upstream_key IS NULL, "
            "COALESCE(s.key_length = p0.length + p1.length "
            "AND STARTS_WITH(s.upstream_key, p0.part) "
            "AND ENDS_WITH(s.upstream_key, p1.part), FALSE))"
        )
    else:  # not used by any stage today: the plain (slower) comparison
        whole = "CONCAT(" + ", ".join(f"p{i}.part" for i in range(n)) + ")"
        same = f"s.upstream_key IS NOT DISTINCT FROM {whole}"
    return f"{present} AND NOT ({same})"


def detection_sql(stage: str, graph: StageGraph = GRAPH, carry: bool = False) -> str:
    """One canonical query per stage; every value is a parameter.

    The selection comes first, as a CTE of game ids. Each selected game then joins, on
    game_id alone, each upstream's state, the stage's own state and the feature hash,
    carrying fixed-width columns: the model comparison is a boolean computed in the
    state scan, each upstream's part of the expected key (``complexity:<job>``) is
    computed in its own scan (one value per job, so cheap), and the recorded key is
    compared with it as soon as both are joined. Every reason is exact at that point,
    except the text stage's: there a moved feature hash only makes a game a candidate
    (``confirm_input``), whose description's md5 is compared by whoever reads the text
    (``detection.confirm_inputs``, or the text stage as it embeds), so detection never
    reads the description. Every scan of the state table names the partitions of the
    stages it reads (``@stage_partition``, ``@up_partition_{i}``). Then the games with a
    reason (every game, with ``@every_row``, for --explain) are ordered and capped, and
    only those rows are joined back for names and old/new values. Carrying names,
    keys and job ids through the full-table joins, or one full pass per reason, made
    detection several times slower.

    A stage whose models read an input (``graph.inputs_of``) has one more part per input,
    ``<input>:<md5 of the vector>``, computed for the selected games only; a game
    lacking an input the stage needs (``graph.inputs_needed``: its own or an upstream
    stage's) has no reason at all: it is reported apart (``missing_inputs``), not a change.
    With ``carry`` (for the pass that scores the games picked, which reads their names
    with their features) the rows end with the CARRIED columns and have no names: name
    and year_published are NULL, and games_features is not joined back.
    """
    if stage not in graph.names:
        raise UsageError(f"unknown stage {stage!r}; choose from {', '.join(graph.names)}")
    upstream = graph.upstream(stage)
    inputs = graph.inputs_of(stage)
    others = [name for name in graph.inputs_needed(stage) if name not in inputs]
    keyed = _input_hash(stage, graph)
    text = keyed is not None
    new_hash, old_column = keyed or FEATURE_HASH

    # every fragment below is one of our constants; values are parameters
    key_parts = (*upstream, *inputs)  # what the upstream key holds, in this order
    count = len(key_parts)
    two = count == 2  # compared by prefix, suffix and length: see _upstream_moved_sql
    vector, present = embedding_hash("e"), embedding_present("e")  # an input's, in its scan
    parts = ""
    for i, up in enumerate(key_parts):
        if up in upstream:
            part = f"CONCAT('{up}:', job_id" + (", '|')" if i < count - 1 else ")")
            scan = (
                f"FROM scoring_state WHERE stage_partition = @up_partition_{i} AND stage = @up_{i}"
            )
        else:  # an input: the hash of each selected game's vector
            part = f"CONCAT('{up}:', {vector}" + (", '|')" if i < count - 1 else ")")
            table = graph.input(up).table
            scan = (
                f"FROM {table} AS e WHERE {present} AND e.game_id IN (SELECT game_id FROM selected)"
            )
        size = f", CHAR_LENGTH({part}) AS length" if two else ""
        parts += f",\np{i} AS (SELECT game_id, {part} AS part{size} {scan})"
    checks = [f"p{i}.game_id IS NOT NULL" for i in range(len(upstream), count)]
    for i, up in enumerate(others):  # needed through an upstream stage: presence only
        table = graph.input(up).table
        parts += (
            f",\nx{i} AS (SELECT game_id FROM {table} AS e "
            f"WHERE {present} AND e.game_id IN (SELECT game_id FROM selected))"
        )
        checks.append(f"x{i}.game_id IS NOT NULL")
    part_joins = "".join(f" LEFT JOIN p{i} ON p{i}.game_id = f.game_id" for i in range(count))
    part_joins += "".join(
        f" LEFT JOIN x{i} ON x{i}.game_id = f.game_id" for i in range(len(others))
    )
    # a game lacking an input has no reason (it is reported apart): every flag is gated
    has_inputs = f", {' AND '.join(checks)} AS has_inputs" if checks else ""
    gate = " AND s.has_inputs" if checks else ""
    moved = _upstream_moved_sql(key_parts)
    upstream_moved = f"COALESCE({moved}, FALSE)" if count else "FALSE"
    # rows without a recorded hash fall back to the seed's rule, last_updated > score_ts
    changed_hash = (
        "IF(s.feature_hash IS NULL, h.last_updated > s.score_ts, "
        "s.feature_hash IS DISTINCT FROM h.feature_hash)"
    )
    text_columns = ""
    confirm = "FALSE"
    if text:
        # the stage's input is one of the hashed fields: where the feature hash recorded
        # with the stage still matches, the input cannot have changed. Where it moved and
        # an input hash was recorded, the game is only a candidate (confirm_input): the
        # md5 of its text decides, computed by whoever reads the text (never here, so
        # detection never reads the column); without a recorded hash, last_updated >
        # score_ts decides
        changed_hash = (
            "(s.feature_hash IS NULL OR s.feature_hash IS DISTINCT FROM h.feature_hash) "
            "AND (s.has_input_hash OR h.last_updated > s.score_ts)"
        )
        text_columns = (
            f", NOT s.is_new AND s.has_input_hash AND COALESCE({changed_hash}, FALSE)"
            " AS confirm_input"
        )
        confirm = "c.confirm_input"
    state_columns = (
        "game_id, feature_hash, score_ts, model_key IS DISTINCT FROM @model_key AS model_moved"
        + (", upstream_key" if count else "")
        + (", CHAR_LENGTH(upstream_key) AS key_length" if two else "")
        + (", input_hash IS NOT NULL AS has_input_hash" if text else "")
    )
    joins = "".join(
        f" LEFT JOIN scoring_state AS u{i} ON u{i}.game_id = c.game_id"
        f" AND u{i}.stage_partition = @up_partition_{i} AND u{i}.stage = @up_{i}"
        for i in range(len(upstream))
    )
    for i, up in enumerate(inputs):  # each input's vector, for the games picked
        table, alias = graph.input(up).table, f"e{i}"
        joins += (
            f" LEFT JOIN {table} AS {alias} ON {alias}.game_id = c.game_id"
            f" AND {embedding_present(alias)}"
        )
    expected = _expected_upstream_sql(upstream, inputs)
    carried = ""
    if carry:  # the vectors of the games picked, for the pass that scores them (CARRIED)
        carried = ", " + ", ".join(CARRIED_NULLS)
        if EMBEDDINGS_TABLE in inputs:
            alias = f"e{inputs.index(EMBEDDINGS_TABLE)}"
            carried = (
                f", IF(COUNT(*) OVER () <= @carry_limit, {alias}.embedding, NULL) "
                f"AS {INPUT_VECTOR}, {embedding_hash(alias)} AS {INPUT_VECTOR_HASH}"
            )
    flags = (
        f"s.is_new{gate} AS is_new,\n"
        f"    COALESCE(NOT s.is_new{gate} AND ({changed_hash}), FALSE) AS features,\n"
        f"    s.model_moved{gate} AS model_moved, "
        f"s.upstream_moved AND NOT s.is_new{gate} AS upstream_moved"
        if checks
        else "s.is_new,\n"
        f"    COALESCE(NOT s.is_new AND ({changed_hash}), FALSE) AS features,\n"
        "    s.model_moved, s.upstream_moved AND NOT s.is_new AS upstream_moved"
    )
    names, named = "f.game_id, f.name, f.year_published", "f.game_id"
    join_names = "\nJOIN games_features AS f ON f.game_id = c.game_id"
    if carry:
        names = "c.game_id, CAST(NULL AS STRING) AS name, CAST(NULL AS FLOAT64) AS year_published"
        named, join_names = "c.game_id", ""
    return f"""
WITH selected AS (SELECT f.game_id FROM games_features AS f WHERE {SELECTION_WHERE}),
s AS (SELECT {state_columns} FROM scoring_state
  WHERE stage_partition = @stage_partition AND stage = @stage){parts},
scored AS (
  SELECT f.game_id, s.game_id IS NULL AS is_new, s.feature_hash, s.score_ts,
    {"s.has_input_hash, " if text else ""}COALESCE(s.model_moved, FALSE) AS model_moved,
    {upstream_moved} AS upstream_moved{has_inputs}
  FROM selected AS f{part_joins} LEFT JOIN s ON s.game_id = f.game_id
),
flagged AS (
  SELECT s.game_id, s.score_ts, {flags}{text_columns}
  FROM scored AS s LEFT JOIN game_features_hash AS h ON h.game_id = s.game_id
),
reasons AS (
  SELECT c.game_id, c.score_ts, c.is_new AS reason_new, c.features AS reason_features,
    c.model_moved AS reason_model, c.upstream_moved AS reason_upstream,
    {confirm} AS confirm_input
  FROM flagged AS c
  WHERE @every_row OR c.is_new OR c.features OR c.model_moved OR c.upstream_moved
),
picked AS (
  SELECT c.* FROM reasons AS c
  WHERE @every_row OR c.reason_new OR c.reason_features OR c.reason_model OR c.reason_upstream
  ORDER BY NOT c.reason_new, c.score_ts, c.game_id
  LIMIT @limit
)
SELECT {names},
  {new_hash} AS new_hash, st.{old_column} AS old_hash, h.last_updated,
  st.score_ts AS last_score_ts, st.job_id AS last_job_id, st.model_key AS old_model,
  st.upstream_key AS old_upstream,
  {expected} AS new_upstream,
  c.reason_new, c.reason_features, c.reason_model, c.reason_upstream, c.confirm_input{carried}
FROM picked AS c{join_names}
LEFT JOIN game_features_hash AS h ON h.game_id = c.game_id
LEFT JOIN scoring_state AS st ON st.game_id = c.game_id
  AND st.stage_partition = @stage_partition AND st.stage = @stage{joins}
ORDER BY st.game_id IS NOT NULL, st.score_ts, {named}
LIMIT @limit
"""


# what detection_sql returns, in order; the hashes are the feature hash (INT64) for most
# stages, the md5 of a column (STRING) for a keyed one: one UNION carries both as STRING
DETECTION_COLUMNS = (
    "game_id",
    "name",
    "year_published",
    "new_hash",
    "old_hash",
    "last_updated",
    "last_score_ts",
    "last_job_id",
    "old_model",
    "old_upstream",
    "new_upstream",
    "reason_new",
    "reason_features",
    "reason_model",
    "reason_upstream",
    "confirm_input",
)
HASH_COLUMNS = ("new_hash", "old_hash")

# the parameters one stage's detection has of its own (the selection, the cap and
# --explain are the same for every stage); longest first, so `stage` leaves
# `stage_partition` alone
STAGE_PARAMS = re.compile(r"@(stage_partition|stage|model_key|up_partition_\d+|up_\d+)\b")


def stage_param(name: str, index: int) -> str:
    """The name stage ``index`` of ``detection_union_sql`` gives its parameter ``name``."""
    return f"{name}_s{index}"


# what an input's rows of ``detection_union_sql`` carry besides a game lacking it: the
# table's vectors and their narrowest and widest width (queries.INPUT_EMBEDDING_WIDTHS)
INPUT_CHECK_COLUMNS = ("input_vectors", "input_narrowest", "input_widest")
# what a stage's rows carry with ``carry``: its embeddings table vector and hash, as the
# features read brings them, so the pass scoring the picked games need not read the
# table again; the vectors only while the stage picks at most @carry_limit games (a
# bounded detection result), the columns NULL for a stage that does not read the table
CARRIED = (INPUT_VECTOR, INPUT_VECTOR_HASH)
CARRIED_NULLS = (
    f"CAST(NULL AS ARRAY<FLOAT64>) AS {INPUT_VECTOR}",
    f"CAST(NULL AS STRING) AS {INPUT_VECTOR_HASH}",
)


def detection_union_sql(
    stages: list[str],
    graph: StageGraph = GRAPH,
    inputs: tuple[str, ...] = (),
    carry: bool = False,
) -> str:
    """Several stages' detection in one query (one job, each table's minimum billed once):
    each stage's own statement, its parameters renamed (``stage_param``), its rows tagged
    with the stage. The order within a stage is the caller's to restore (a UNION keeps
    none).

    Each of ``inputs`` (tables the warehouse fills: ``features.embeddings_table``) adds
    its check, tagged with its name: the table's widths on every row, one row per
    selected game without a vector (else one, game_id NULL). In the same statement as
    the stages' reads of its vectors, the table's column is billed once, not twice.
    With ``carry`` every row has the CARRIED columns (``detection_sql``)."""
    parts = []
    none = ", ".join(f"CAST(NULL AS INT64) AS {c}" for c in INPUT_CHECK_COLUMNS)
    carried = "".join(f", d.{c}" for c in CARRIED) if carry else ""
    for index, stage in enumerate(stages):
        suffix = stage_param("", index)
        own = STAGE_PARAMS.sub(rf"@\g<1>{suffix}", detection_sql(stage, graph, carry))
        columns = ", ".join(
            f"CAST(d.{c} AS STRING) AS {c}" if c in HASH_COLUMNS else f"d.{c}"
            for c in DETECTION_COLUMNS
        )
        parts.append(
            f"SELECT '{stage}' AS detected_stage, {columns}, {none}{carried} "
            f"FROM ({own.strip()}) AS d"
        )
    for name in inputs:
        if graph.input(name).table != "embeddings_input":  # the one check there is
            raise ValueError(f"input {name} has no check")
        blank = ", ".join("NULL" for _ in DETECTION_COLUMNS[1:])
        nulls = "".join(f", {c}" for c in CARRIED_NULLS) if carry else ""
        parts.append(
            f"SELECT '{name}' AS detected_stage, m.game_id, {blank}, "
            f"w.n, w.lo, w.hi{nulls} {INPUT_CHECK_FROM}"
        )
    return "\nUNION ALL\n".join(parts)
