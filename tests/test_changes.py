"""`bggscore.detection`: the canonical detection query per stage and the rules it encodes.

The SQL tests render the one canonical query for both engines and look inside it: every
value travels as a parameter. The rule tests run that query (rendered for DuckDB, as the
CLI does) over a small hand-written warehouse, one game per rule.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
import sqlglot
from google.cloud import bigquery
from polars.testing import assert_frame_equal
from sqlglot import exp
from tests.factories import T0, make_games
from tests.support.warehouses import engine_fixture

from bggscore.detection import (
    REASONS,
    StageChanges,
    detect_stage,
    detect_stages,
    input_hash,
    pending_upstream,
)
from bggscore.errors import UsageError
from bggscore.settings import Settings, WarehouseSettings
from bggscore.stages import GRAPH
from bggscore.warehouse.base import Warehouse, Write
from bggscore.warehouse.bigquery_engine import BigQueryWarehouse
from bggscore.warehouse.detection_sql import detection_sql
from bggscore.warehouse.queries import Selection
from bggscore.warehouse.schemas import SCORING_STATE
from bggscore.warehouse.sql import TableRef, render

pytestmark = [
    # bqemulator's own DuckDB calls (in its server thread) warn about an Arrow copy
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]

STAGES = GRAPH.names
SELECTION_PARAMS = {
    "all_years",
    "start_year",
    "end_year",
    "include_null_year",
    "all_ids",
    "any_users_rated",
    "min_users_rated",
}
BQ_TABLES = {
    "games_features": TableRef("games_features", "analytics", "bgg-data-warehouse"),
    "game_features_hash": TableRef("game_features_hash", "staging", "bgg-data-warehouse"),
    "scoring_state": TableRef("bggscore_scoring_state", "raw", "bgg-predictive-models"),
}
# values a user controls, chosen so that any of them pasted into SQL would be visible
HOSTILE_KEY = "rating=o'brien:7;geek_rating=x'); DROP TABLE t; --"
ODD_YEARS = (1987, 1993)
ODD_ID = 424_242
ODD_LIMIT = 31


def parameters(tree: exp.Expression) -> set[str]:
    return {node.name for node in tree.find_all(exp.Parameter, exp.Placeholder)}


def literals(tree: exp.Expression) -> tuple[set[str], set[str]]:
    found = list(tree.find_all(exp.Literal))
    return {lit.this for lit in found if lit.is_string}, {
        lit.this for lit in found if not lit.is_string
    }


def own_constants(stage: str) -> set[str]:
    """The only string constants a detection query may hold: its upstream-key prefixes,
    their separator, and the empty string (a NULL-safe default)."""
    return {f"{up}:" for up in GRAPH.upstream(stage)} | {"|", ""}


# -- the SQL ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["bigquery", "duckdb"])
@pytest.mark.parametrize("stage", STAGES)
def test_detection_sql_carries_every_value_as_a_parameter(stage: str, dialect: str) -> None:
    rendered = render(detection_sql(stage), BQ_TABLES, dialect)
    tree = sqlglot.parse_one(rendered, read=dialect)

    expected = {"stage", "model_key", "limit", "game_ids", *SELECTION_PARAMS}
    expected |= {f"up_{i}" for i in range(len(GRAPH.upstream(stage)))}
    assert expected <= parameters(tree)
    strings, numbers = literals(tree)
    assert strings <= own_constants(stage), strings - own_constants(stage)
    assert numbers == set()  # no years, ids or limits written into the text
    for stage_name in STAGES:
        assert f"'{stage_name}'" not in rendered  # the stage itself is @stage too
    marker = "@" if dialect == "bigquery" else "$"
    assert f"LIMIT {marker}limit" in rendered


def test_bigquery_rendering_names_the_physical_tables() -> None:
    rendered = render(detection_sql("main"), BQ_TABLES, "bigquery")
    assert "`bgg-data-warehouse`.`analytics`.`games_features` AS f" in rendered
    assert "`bgg-data-warehouse`.`staging`.`game_features_hash` AS h" in rendered
    # the stage's own state and its upstream's state: always the latest-state table
    assert rendered.count("`bgg-predictive-models`.`raw`.`bggscore_scoring_state`") >= 2
    assert "ml_predictions_landing" not in rendered  # never the landing history


def test_duckdb_rendering_keeps_bigquery_null_ordering() -> None:
    """BigQuery sorts NULLs first in ascending order; DuckDB must be told to, or capped runs
    would pick a different first slice on each engine."""
    rendered = render(detection_sql("complexity"), BQ_TABLES, "duckdb")
    assert (
        "ORDER BY NOT st.game_id IS NULL NULLS FIRST, st.score_ts NULLS FIRST, "
        "f.game_id NULLS FIRST" in rendered
    )


def test_unknown_stage_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown stage 'mian'"):
        detection_sql("mian")


@pytest.mark.parametrize("max_games", [0, -1])
def test_max_games_must_be_positive(max_games: int) -> None:
    with pytest.raises(UsageError, match="--max-games must be positive"):
        detect_stage(None, "main", "k", Selection(), max_games)  # type: ignore[arg-type]


def test_bigquery_receives_the_canonical_sql_and_typed_parameters(
    tmp_path: Path, mocker: Any
) -> None:
    settings = Settings(
        home=tmp_path,
        warehouse=WarehouseSettings(
            engine="bigquery",
            features_project="bgg-data-warehouse",
            ml_project="bgg-predictive-models",
        ),
    )
    client = mocker.MagicMock(spec=bigquery.Client)
    client.query.return_value.result.return_value.to_arrow.return_value = pa.table(
        {"game_id": pa.array([], pa.int64())}
    )
    wh = BigQueryWarehouse(settings, client_factory=lambda: client)
    selection = Selection(start_year=ODD_YEARS[0], end_year=ODD_YEARS[1], game_ids=(ODD_ID,))

    changes = detect_stage(wh, "main", HOSTILE_KEY, selection, ODD_LIMIT)

    assert changes.count == 0 and not changes.capped
    sql = client.query.call_args.args[0]
    assert sql == wh.render(detection_sql("main"))
    for value in (HOSTILE_KEY, "o'brien", str(ODD_ID), str(ODD_LIMIT), *map(str, ODD_YEARS)):
        assert value not in sql
    sent = {p.name: p for p in client.query.call_args.kwargs["job_config"].query_parameters}
    assert sent["model_key"] == bigquery.ScalarQueryParameter("model_key", "STRING", HOSTILE_KEY)
    assert sent["stage"] == bigquery.ScalarQueryParameter("stage", "STRING", "main")
    assert sent["up_0"] == bigquery.ScalarQueryParameter("up_0", "STRING", "complexity")
    # one more than allowed: that extra row is how detection knows the cap bit
    assert sent["limit"] == bigquery.ScalarQueryParameter("limit", "INT64", ODD_LIMIT + 1)
    assert sent["game_ids"] == bigquery.ArrayQueryParameter("game_ids", "INT64", [ODD_ID])
    assert sent["start_year"] == bigquery.ScalarQueryParameter("start_year", "FLOAT64", 1987.0)


# -- the rules, executed on DuckDB ------------------------------------------------------

MAIN_KEY = "hurdle=hurdle:1;rating=rating:1"
COMPLEXITY_KEY = "complexity=complexity:1"
TEXT_KEY = "text_embeddings=text_embeddings:1"
GAME_KEY = "game_embeddings=game_embeddings:1"
SCORED_AT = T0 + timedelta(days=10)


# the rules run on both engines: DuckDB, and BigQuery's engine against bqemulator (the same
# canonical SQL, rendered for each)
wh = engine_fixture(ensure_schema=True)


def load(wh: Warehouse, games: pl.DataFrame, hashes: dict[int, tuple[int, Any]]) -> None:
    rows = pl.DataFrame(
        {
            "game_id": list(hashes),
            "feature_hash": [h for h, _ in hashes.values()],
            "last_updated": [t for _, t in hashes.values()],
        },
        schema={
            "game_id": pl.Int64,
            "feature_hash": pl.Int64,
            "last_updated": games["last_updated"].dtype,
        },
    )
    wh.write(
        [
            Write("games_features", games, "upsert"),
            Write(
                "game_features_hash",
                rows.join(games.select("game_id", "name"), on="game_id"),
                "upsert",
            ),
        ]
    )


def state(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    wh.write([Write("scoring_state", SCORING_STATE.conform(pl.DataFrame(rows)), "upsert")])


def row(stage: str, game_id: int, **values: Any) -> dict[str, Any]:
    base = {
        "stage": stage,
        "game_id": game_id,
        "feature_hash": game_id * 10,
        "model_key": MAIN_KEY if stage == "main" else COMPLEXITY_KEY,
        "upstream_key": "complexity:c1" if stage == "main" else None,
        "job_id": "m1" if stage == "main" else "c1",
        "score_ts": SCORED_AT,
    }
    return {**base, **values}


def reasons_by_game(changes: StageChanges) -> dict[int, list[str]]:
    return dict(zip(changes.game_ids, changes.reasons().to_list(), strict=True))


@pytest.fixture
def rules(wh: Warehouse) -> Warehouse:
    """Games 1..12 (all 2025) plus 13 (no year) and 14 (2010); one rule per game for main."""
    games = make_games(14, null_year_every=0).with_columns(
        pl.when(pl.col("game_id") == 13)
        .then(None)
        .when(pl.col("game_id") == 14)
        .then(2010.0)
        .otherwise(2025.0)
        .alias("year_published")
    )
    before, after = SCORED_AT - timedelta(days=1), SCORED_AT + timedelta(days=1)
    hashes = {g: (g * 10, before) for g in range(1, 15)}
    hashes[3] = (999, after)  # a real change: the hash moved
    hashes[4] = (40, after)  # legacy row below: no recorded hash, updated since
    load(wh, games, hashes)
    complexity = [row("complexity", g) for g in range(2, 15) if g != 9]
    complexity[[r["game_id"] for r in complexity].index(8)]["job_id"] = "c2"  # rescored since
    main = [
        row("main", 2),  # up to date
        row("main", 3),  # features
        row("main", 4, feature_hash=None),  # legacy: last_updated > score_ts
        row("main", 5, feature_hash=None),  # legacy, not updated since: nothing
        row("main", 6, model_key="hurdle=hurdle:1;rating=rating:2"),  # a new version
        row("main", 7, model_key="hurdle=hurdle:1;rating=rating_b:1"),  # same version, new name
        row("main", 8),  # upstream: complexity now from job c2
        row("main", 9, upstream_key="complexity:gone"),  # no complexity state: not upstream
        row("main", 10, upstream_key=None),  # recorded no upstream, has one now
        row("main", 11),
        row("main", 12),
        row("main", 13, feature_hash=1),  # no year: excluded by the year filters
        row("main", 14, feature_hash=1),  # 2010: outside the range
    ]
    state(wh, complexity + main)
    return wh


def test_each_rule_flags_its_game_and_nothing_else(rules: Warehouse) -> None:
    changes = detect_stage(rules, "main", MAIN_KEY, Selection(start_year=2020, end_year=2030))
    assert reasons_by_game(changes) == {
        1: ["new"],
        3: ["features"],
        4: ["features"],
        6: ["model"],
        7: ["model"],
        8: ["upstream"],
        10: ["upstream"],
    }
    assert changes.by_reason() == {"new": 1, "features": 2, "model": 2, "upstream": 2}
    assert not changes.capped


def test_complexity_has_no_upstream_and_its_own_state(rules: Warehouse) -> None:
    changes = detect_stage(
        rules, "complexity", COMPLEXITY_KEY, Selection(start_year=2020, end_year=2030)
    )
    # 1 and 9 were never scored by complexity; 3 changed; 4 has a recorded hash equal to now
    assert reasons_by_game(changes) == {1: ["new"], 9: ["new"], 3: ["features"]}


def test_year_filters_and_explicit_ids(rules: Warehouse) -> None:
    everything = detect_stage(rules, "main", MAIN_KEY, Selection(all_years=True))
    assert 14 in everything.game_ids  # 2010, changed hash
    assert 13 not in everything.game_ids  # NULL year: excluded even with all years
    narrow = detect_stage(rules, "main", MAIN_KEY, Selection(start_year=2011, end_year=2025))
    assert narrow.game_ids == []  # 2025 is excluded (end is exclusive), 2010 is before
    by_id = detect_stage(rules, "main", MAIN_KEY, Selection(game_ids=(3, 13, 2, 99)))
    assert sorted(by_id.game_ids) == [3, 13]  # an explicit id is that game, whatever its year


def test_min_users_rated_limits_what_detection_finds(rules: Warehouse) -> None:
    # users_rated is 20 + 13 * (game_id - 1): games 5.. have 72 or more
    rated = Selection(start_year=2020, end_year=2030, min_users_rated=72)
    changes = detect_stage(rules, "main", MAIN_KEY, rated)
    assert reasons_by_game(changes) == {
        6: ["model"],
        7: ["model"],
        8: ["upstream"],
        10: ["upstream"],
    }
    every = detect_stage(rules, "main", MAIN_KEY, rated, every_row=True)
    assert sorted(every.game_ids) == list(range(5, 13))
    # ids bypass the minimum as they bypass the years (the CLI refuses both together)
    by_id = detect_stage(rules, "main", MAIN_KEY, Selection(game_ids=(1, 3), min_users_rated=72))
    assert sorted(by_id.game_ids) == [1, 3]


def test_a_whole_new_model_key_flags_every_scored_game(rules: Warehouse) -> None:
    changes = detect_stage(
        rules, "main", "hurdle=hurdle:2", Selection(start_year=2020, end_year=2030)
    )
    reasons = reasons_by_game(changes)
    assert set(reasons) == set(range(1, 13))
    assert all("model" in r for g, r in reasons.items() if g != 1)
    assert reasons[1] == ["new"]  # a never-scored game is new, not "model"
    assert reasons[3] == ["features", "model"]


def test_a_cap_past_any_catalogue_is_no_cap(rules: Warehouse) -> None:
    everything = detect_stage(rules, "main", MAIN_KEY, Selection(all_years=True))
    huge = detect_stage(rules, "main", MAIN_KEY, Selection(all_years=True), 2**63 - 1)
    assert huge.game_ids == everything.game_ids and not huge.capped


def test_priority_new_first_then_oldest_score_then_game_id(wh: Warehouse) -> None:
    games = make_games(8, null_year_every=0).with_columns(pl.lit(2025.0).alias("year_published"))
    load(wh, games, {g: (g * 10, T0) for g in range(1, 9)})
    # every scored game has an outdated model; scored at different times
    ts = {2: 5, 3: 1, 4: 5, 5: 3, 7: 1, 8: 9}
    state(
        wh,
        [
            row("complexity", g, model_key="old", score_ts=SCORED_AT + timedelta(hours=h))
            for g, h in ts.items()
        ],
    )
    everything = detect_stage(wh, "complexity", COMPLEXITY_KEY, Selection(all_years=True))
    order = [1, 6, 3, 7, 5, 2, 4, 8]  # new by id; then (score_ts, game_id)
    assert everything.game_ids == order
    capped = detect_stage(wh, "complexity", COMPLEXITY_KEY, Selection(all_years=True), 3)
    assert capped.game_ids == order[:3] and capped.capped and capped.max_games == 3
    exact = detect_stage(wh, "complexity", COMPLEXITY_KEY, Selection(all_years=True), 8)
    assert exact.game_ids == order and not exact.capped  # exactly at the cap: not capped


def test_text_stage_compares_the_description_only_where_the_feature_hash_moved(
    wh: Warehouse,
) -> None:
    games = make_games(14, null_year_every=0).with_columns(pl.lit(2025.0).alias("year_published"))
    before, after = SCORED_AT - timedelta(days=1), SCORED_AT + timedelta(days=1)
    hashes = {g: (g * 10, before) for g in range(1, 15)}
    for moved in (3, 4, 5):
        hashes[moved] = (moved * 100, before)
    hashes[6] = (600, after)
    for updated in (9, 10, 11):
        hashes[updated] = (updated * 10, after)
    hashes[14] = (None, after)  # a hash row without a hash
    load(wh, games, hashes)
    text = dict(zip(games["game_id"], games["description"], strict=True))

    def text_row(game_id: int, **values: Any) -> dict[str, Any]:
        base = {"input_hash": input_hash(text[game_id]), "model_key": TEXT_KEY, "job_id": "t1"}
        return row("text-embeddings", game_id, **{**base, **values})

    state(
        wh,
        [
            text_row(2, input_hash="stale"),  # hash unchanged: the description cannot have
            text_row(3),  # the hash moved, the description did not
            text_row(4, input_hash="stale"),  # the hash moved and the description differs
            text_row(5, input_hash=None),  # no recorded input: not updated since the score
            text_row(6, input_hash=None),  # no recorded input, updated since
            text_row(7, model_key="text_embeddings=text_embeddings:2"),
            text_row(8),
            # no recorded feature hash: whether it moved is unknown, so the recorded input
            # decides, and without one, last_updated > score_ts (as for every stage)
            text_row(9, feature_hash=None, input_hash="stale"),
            text_row(10, feature_hash=None, input_hash=None),
            text_row(11, feature_hash=None),
            text_row(12, feature_hash=None, input_hash="stale"),  # not updated since, but stale
            text_row(13, feature_hash=None, input_hash=None),  # not updated since
            text_row(14, feature_hash=None, input_hash="stale"),  # NULL on both sides
        ],
    )
    changes = detect_stage(wh, "text-embeddings", TEXT_KEY, Selection(all_years=True))
    assert reasons_by_game(changes) == {
        1: ["new"],
        4: ["features"],
        6: ["features"],
        7: ["model"],
        9: ["features"],
        10: ["features"],
        12: ["features"],
        14: ["features"],
    }
    explained = detect_stage(
        wh, "text-embeddings", TEXT_KEY, Selection(game_ids=(4,)), 1, every_row=True
    )
    values = explained.frame.row(0, named=True)
    assert (values["old_hash"], values["new_hash"]) == ("stale", input_hash(text[4]))


def test_game_embeddings_upstream_key_is_compared_exactly(wh: Warehouse) -> None:
    """Two upstream parts: only the exact ``complexity:<job>|text-embeddings:<job>`` of the
    current upstream rows counts as up to date."""
    games = make_games(12, null_year_every=0).with_columns(pl.lit(2025.0).alias("year_published"))
    load(wh, games, {g: (g * 10, T0) for g in range(1, 13)})
    exact = "complexity:c1|text-embeddings:t1"
    keys = {
        1: exact,
        2: exact,  # complexity rescored since (c2)
        3: exact,  # description re-embedded since (t2)
        4: None,  # recorded no upstream
        5: exact,  # no text-embeddings state: nothing to read yet, not flagged
        6: exact + "|x",
        7: "text-embeddings:t1|complexity:c1",
        8: "complexity:c1|text-embeddings:c1|text-embeddings:t1",  # right ends, too long
        9: "complexity:c1|text-embeddings:t",
        10: "complexity:c|text-embeddings:t1",
        11: "complexity:c1text-embeddings:t1",
    }
    complexity = [row("complexity", g, job_id="c2" if g == 2 else "c1") for g in range(1, 13)]
    texts = [
        row("text-embeddings", g, job_id="t2" if g == 3 else "t1", model_key=TEXT_KEY)
        for g in range(1, 13)
        if g != 5
    ]
    embeddings = [
        row("game-embeddings", g, upstream_key=key, model_key=GAME_KEY, job_id="e1")
        for g, key in keys.items()
    ]
    state(wh, complexity + texts + embeddings)
    changes = detect_stage(wh, "game-embeddings", GAME_KEY, Selection(all_years=True))
    flagged = {2, 3, 4, 6, 7, 8, 9, 10, 11}
    assert reasons_by_game(changes) == {12: ["new"]} | {g: ["upstream"] for g in flagged}
    new_upstream = dict(zip(changes.game_ids, changes.frame["new_upstream"], strict=True))
    assert new_upstream[2] == "complexity:c2|text-embeddings:t1"
    assert new_upstream[3] == "complexity:c1|text-embeddings:t2"


def test_explain_returns_the_game_whatever_its_state(rules: Warehouse) -> None:
    """``every_row``: the one game, with its recorded and current values, even unchanged."""
    for game_id, reasons in ((2, []), (8, ["upstream"])):
        changes = detect_stage(
            rules, "main", MAIN_KEY, Selection(game_ids=(game_id,)), 1, every_row=True
        )
        assert reasons_by_game(changes) == {game_id: reasons} and not changes.capped
        values = changes.frame.row(0, named=True)
        assert values["old_model"] == MAIN_KEY and values["last_job_id"] == "m1"
        assert values["old_upstream"] == "complexity:c1"
        assert values["new_upstream"] == ("complexity:c2" if game_id == 8 else "complexity:c1")
        assert (values["old_hash"], values["new_hash"]) == (game_id * 10, game_id * 10)


# -- the preview across stages ----------------------------------------------------------


def frame(ids: list[int], **reasons: bool) -> pl.DataFrame:
    flags = {f"reason_{r}": [reasons.get(r, False)] * len(ids) for r in REASONS}
    columns = {
        "game_id": ids,
        "name": [f"g{i}" for i in ids],
        "year_published": [2025.0] * len(ids),
    }
    schema = {"game_id": pl.Int64, "name": pl.String, "year_published": pl.Float64}
    return pl.DataFrame(columns | flags, schema=schema | dict.fromkeys(flags, pl.Boolean))


def test_pending_upstream_adds_what_the_earlier_stage_rescores() -> None:
    complexity = StageChanges("complexity", "c", frame([1, 2, 3], model=True), False, 10)
    main = StageChanges("main", "m", frame([3, 4], features=True), False, 10)
    merged = pending_upstream(main, complexity)
    assert merged.game_ids == [3, 4, 1, 2]
    assert reasons_by_game(merged) == {
        3: ["features"],  # already listed: not doubled
        4: ["features"],
        1: ["upstream"],
        2: ["upstream"],
    }
    assert merged.by_reason() == {"new": 0, "features": 2, "model": 0, "upstream": 2}
    assert sum(merged.by_reason().values()) == merged.count


def test_pending_upstream_respects_the_cap() -> None:
    complexity = StageChanges("complexity", "c", frame([1, 2, 3], new=True), False, 3)
    main = StageChanges("main", "m", frame([7], model=True), False, 3)
    merged = pending_upstream(main, complexity)
    assert merged.count == 3 and merged.capped
    assert pending_upstream(main, StageChanges("complexity", "c", frame([]), False, 3)) is main


def test_as_dict_is_the_json_contract() -> None:
    changes = StageChanges("main", "m", frame([5, 6], new=True), True, 2)
    assert changes.as_dict() == {
        "stage": "main",
        "count": 2,
        "by_reason": {"new": 2, "features": 0, "model": 0, "upstream": 0},
        "capped": True,
        "max_games": 2,
        "game_ids": [5, 6],
    }


def _same_as_alone(wh: Warehouse, keys: dict[str, str], selection: Selection, cap: int) -> None:
    together = detect_stages(wh, keys, selection, cap).stages
    assert list(together) == list(keys)
    for stage, key in keys.items():
        alone = detect_stage(wh, stage, key, selection, cap, confirm=False)
        assert_frame_equal(together[stage].frame, alone.frame)
        assert (together[stage].capped, together[stage].model_key) == (alone.capped, key)


def test_every_stage_detected_in_one_query_finds_what_each_finds_alone(rules: Warehouse) -> None:
    keys = {
        "complexity": COMPLEXITY_KEY,
        "main": MAIN_KEY,
        "text-embeddings": "text_embeddings=text:1",
        "game-embeddings": "game_embeddings=game:1",
    }
    for selection in (Selection(start_year=2020, end_year=2030), Selection(game_ids=(3, 8, 99))):
        _same_as_alone(rules, keys, selection, 1_000)
    _same_as_alone(rules, keys, Selection(all_years=True), 2)  # capped: new first, per stage
    assert detect_stages(rules, keys, Selection(all_years=True), 2).stages["main"].capped


def test_one_query_keeps_each_stages_order(wh: Warehouse) -> None:
    games = make_games(8, null_year_every=0).with_columns(pl.lit(2025.0).alias("year_published"))
    load(wh, games, {g: (g * 10, T0) for g in range(1, 9)})
    ts = {2: 5, 3: 1, 4: 5, 5: 3, 7: 1, 8: 9}
    state(
        wh,
        [
            row(stage, g, model_key="old", score_ts=SCORED_AT + timedelta(hours=h))
            for g, h in ts.items()
            for stage in ("complexity", "main")
        ],
    )
    keys = {"complexity": COMPLEXITY_KEY, "main": MAIN_KEY}
    found = detect_stages(wh, keys, Selection(all_years=True)).stages
    assert found["complexity"].game_ids == [1, 6, 3, 7, 5, 2, 4, 8]
    _same_as_alone(wh, keys, Selection(all_years=True), 3)
