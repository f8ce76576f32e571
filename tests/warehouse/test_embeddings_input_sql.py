"""The embeddings table on every engine: the vector hash scoring reads is the one detection
compares, games without a vector are found, and detection leaves them out.

``warehouse`` is parametrized over DuckDB and BigQuery (bqemulator), as in test_behaviour.py.
Scoring is simulated: state rows are written with the key a stage reading the table records
(``embeddings-table:<hash>``, the hash as ``input_embeddings`` returns it).
"""

from __future__ import annotations

import polars as pl
import pytest
from tests.factories import T0, make_games
from tests.support.warehouses import engine_fixture

from bggscore.detection import detect_stage, detect_stages
from bggscore.stages import COMPLEXITY, EMBEDDINGS_INPUT, EMBEDDINGS_TABLE, GAME_EMBEDDINGS, GRAPH
from bggscore.warehouse.base import EmbeddingWidths, Warehouse, Write
from bggscore.warehouse.load import load_games
from bggscore.warehouse.queries import INPUT_VECTOR, INPUT_VECTOR_HASH, Selection
from bggscore.warehouse.schemas import TABLES

pytestmark = [
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning"),
]
EVERYTHING = Selection(all_years=True, include_null_year=True)
KEY = "complexity=complexity-emb:1"
GRAPH_WITH_INPUT = GRAPH.with_input(EMBEDDINGS_INPUT).with_model_inputs(
    {"complexity complexity-emb:1": ["emb_0", "emb_1"]}
)

warehouse = engine_fixture(ensure_schema=True)


def put_vectors(wh: Warehouse, vectors: dict[int, list[float]]) -> None:
    frame = pl.DataFrame({"game_id": list(vectors), "embedding": list(vectors.values())})
    wh.write([Write("embeddings_input", frame, "upsert")])


def score(wh: Warehouse, ids: list[int]) -> None:
    """What complexity records after reading the table for these games."""
    read = wh.input_embeddings(ids).join(wh.read_hashes(ids), on="game_id")
    state = read.select(
        pl.lit(COMPLEXITY).alias("stage"),
        "game_id",
        "feature_hash",
        pl.lit(KEY).alias("model_key"),
        pl.concat_str(pl.lit(f"{EMBEDDINGS_TABLE}:"), "input_hash").alias("upstream_key"),
        pl.lit("job-1").alias("job_id"),
        pl.lit(T0, dtype=pl.Datetime("us", "UTC")).alias("score_ts"),
    )
    wh.write([Write("scoring_state", state, "upsert")])


def test_the_table_is_the_warehouse_s_on_bigquery(warehouse: Warehouse) -> None:
    owned = warehouse.engine == "duckdb"  # the embedded warehouse creates it on init
    assert (EMBEDDINGS_INPUT.table in [t.logical for t in warehouse.managed_tables()]) == owned
    assert TABLES[EMBEDDINGS_INPUT.table].owned is False


def test_hashes_are_stable_and_detection_compares_them(warehouse: Warehouse) -> None:
    games = make_games(5)
    load_games(warehouse, games)
    ids = sorted(games["game_id"].to_list())
    put_vectors(warehouse, {i: [float(i), 0.5, -1.25] for i in ids[:4]})
    put_vectors(warehouse, {ids[4]: []})  # an empty vector is no vector

    assert warehouse.input_embedding_check(EVERYTHING) == EmbeddingWidths(4, 3, 3, [ids[4]])
    assert warehouse.input_embedding_widths() == EmbeddingWidths(4, 3, 3)
    first = dict(warehouse.input_embeddings(ids).select("game_id", "input_hash").iter_rows())
    assert sorted(first) == ids[:4] and len(set(first.values())) == 4

    found = detect_stage(warehouse, COMPLEXITY, KEY, EVERYTHING, graph=GRAPH_WITH_INPUT)
    assert sorted(found.game_ids) == ids[:4]  # the game without a vector is no change
    # the same check in detection's one statement, beside the same changes, carrying the
    # vectors and hashes scoring reads (input_embeddings) of the games picked
    together = detect_stages(
        warehouse,
        {COMPLEXITY: KEY},
        EVERYTHING,
        graph=GRAPH_WITH_INPUT,
        inputs=(EMBEDDINGS_TABLE,),
        carry=True,
    )
    assert together.inputs == {EMBEDDINGS_TABLE: EmbeddingWidths(4, 3, 3, [ids[4]])}
    assert together.stages[COMPLEXITY].game_ids == found.game_ids
    assert together.vectors is not None
    expected = warehouse.input_embeddings(ids).sort("game_id")
    assert together.vectors["game_id"].to_list() == ids[:4]
    assert together.vectors[INPUT_VECTOR].to_list() == expected["embedding"].to_list()
    assert together.vectors[INPUT_VECTOR_HASH].to_list() == expected["input_hash"].to_list()
    score(warehouse, ids[:4])
    assert detect_stage(warehouse, COMPLEXITY, KEY, EVERYTHING, graph=GRAPH_WITH_INPUT).count == 0

    # the same numbers written again: the same hash, nothing to do
    put_vectors(warehouse, {i: [float(i), 0.5, -1.25] for i in ids[:4]})
    again = dict(warehouse.input_embeddings(ids).select("game_id", "input_hash").iter_rows())
    assert again == first
    assert detect_stage(warehouse, COMPLEXITY, KEY, EVERYTHING, graph=GRAPH_WITH_INPUT).count == 0

    # one vector changes: that game, reason upstream, and the key detection expects is the
    # one scoring would record
    put_vectors(warehouse, {ids[1]: [float(ids[1]), 0.5, -1.0]})
    found = detect_stage(warehouse, COMPLEXITY, KEY, EVERYTHING, graph=GRAPH_WITH_INPUT)
    assert found.game_ids == [ids[1]] and found.by_reason()["upstream"] == 1
    [row] = found.frame.select("new_upstream").to_series().to_list()
    [current] = warehouse.input_embeddings([ids[1]])["input_hash"].to_list()
    assert row == f"{EMBEDDINGS_TABLE}:{current}"

    # a stage reading complexity needs the vector too, without a key part of its own
    state = detect_stage(
        warehouse, GAME_EMBEDDINGS, "g", EVERYTHING, graph=GRAPH_WITH_INPUT, every_row=True
    )
    flagged = state.frame.filter(pl.col("reason_new"))["game_id"].to_list()
    assert sorted(flagged) == ids[:4]
