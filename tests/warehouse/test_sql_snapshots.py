"""Snapshots of the SQL each engine runs: a change in the rendered text is a reviewed diff.

Every statement is rendered as its engine renders it (``Warehouse.render``: sqlglot, over the
table references of a default Warehouse of that engine) and compared with
``tests/snapshots/sql/<dialect>/<name>.sql``. A sqlglot upgrade, a new query or an edited one
fails here with a unified diff; once the diff is what you meant, rewrite the files with

    BGGSCORE_UPDATE_SNAPSHOTS=1 pytest tests/warehouse/test_sql_snapshots.py

and commit them. A snapshot file that no case produces any more fails too (the update deletes
it). Each file holds one case's statements in the order they run, each ending in ``;``.
"""

from __future__ import annotations

import ast
import difflib
import os
import uuid
from pathlib import Path

import duckdb
import pytest

import bggscore
from bggscore.settings import Settings, WarehouseSettings
from bggscore.stages import COMPLEXITY, EMBEDDINGS_INPUT, GAME_EMBEDDINGS, GRAPH, MAIN
from bggscore.warehouse import queries
from bggscore.warehouse.base import Warehouse
from bggscore.warehouse.detection_sql import detection_sql, detection_union_sql
from bggscore.warehouse.schemas import TABLES

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = REPO / "tests" / "snapshots" / "sql"
UPDATE = "BGGSCORE_UPDATE_SNAPSHOTS"
UPDATING = os.environ.get(UPDATE) == "1"  # read now: the home fixture clears BGGSCORE_*

DETECTION_STAGES = ("complexity", "main", "text-embeddings", "game-embeddings")
FEATURE_COLUMNS = ["game_id", "name", "year_published", "description_chars"]
# how bggscore writes each table (its Write(...) calls; test_writes_are_all_covered checks)
WRITES = {
    "games_features": "upsert",
    "game_features_hash": "upsert",
    "embeddings_input": "upsert",  # warehouse load --embeddings (embedded warehouse)
    "ml_predictions_landing": "append",
    "complexity_predictions": "append",
    "game_embeddings": "append",
    "description_embeddings": "append",
    "scoring_state": "upsert",
    "runs": "upsert",
}
STAGED = "bggscore_stage_0"  # the name Warehouse.write gives its first frame
STATEMENT = ("SELECT", "WITH", "INSERT", "MERGE", "DELETE", "UPDATE")


def snapshot_cases(wh: Warehouse) -> dict[str, list[str]]:
    """Every snapshot: file name -> the statements ``wh`` runs for it, as its engine renders
    them. The one place to add, rename or adapt a case."""
    cases: dict[str, list[str]] = {}

    def add(name: str, statements: list[str]) -> None:
        assert name not in cases, f"two snapshot cases named {name}"
        cases[name] = statements

    # every canonical statement constant of queries.py (SELECTION_WHERE is a fragment, in
    # features and count_selection)
    for name, value in vars(queries).items():
        if name.isupper() and isinstance(value, str) and value.startswith(STATEMENT):
            add(name.lower(), [wh.render(value)])
    add("features", [wh.render(queries.features_sql(FEATURE_COLUMNS))])
    add("features_with_hash", [wh.render(queries.features_sql(FEATURE_COLUMNS, with_hash=True))])
    # a full score with emb_* models: the vectors, and the embeddings table's check
    pseudo = [queries.INPUT_VECTOR, queries.INPUT_VECTOR_HASH, *queries.INPUT_WIDTHS]
    checked = queries.features_sql([*FEATURE_COLUMNS, *pseudo], with_hash=True)
    add("features_with_vectors_and_check", [wh.render(checked)])
    add("count_runs", [wh.render(queries.count_sql("runs"))])
    add("landing_rows", [wh.render(queries.landing_rows_sql())])
    add("landing_rows_bounded", [wh.render(queries.landing_rows_sql(bounded=True))])
    # `warehouse check`: state rows without their output row, games held twice
    for stage in DETECTION_STAGES:
        output = GRAPH.get(stage).writes[0]
        sql = queries.state_without_output_sql(output)
        add(f"state_without_output_{stage.replace('-', '_')}", [wh.render(sql)])
    for logical in ("games_features", "game_features_hash", "scoring_state"):
        add(f"repeated_keys_{logical}", [wh.render(queries.repeated_keys_sql(logical))])
    # `bggscore report`'s reads
    for logical in queries.LINEAGE:
        add(f"lineage_{logical}", [wh.render(queries.lineage_sql(logical))])
    for logical in queries.JOB_MODEL_COLUMNS:
        add(f"job_models_{logical}", [wh.render(queries.job_models_sql(logical))])
    add("moves", [wh.render(queries.moves_sql())])
    add("predictions_as_of", [wh.render(queries.predictions_as_of_sql())])
    for stage in DETECTION_STAGES:
        add(f"detection_{stage.replace('-', '_')}", [wh.render(detection_sql(stage))])
    # `run`: every stage's detection in one query
    add("detection_all_stages", [wh.render(detection_union_sql(list(DETECTION_STAGES)))])
    # with models reading emb_* from the embeddings table: complexity's key is the vector's
    # hash, main's complexity's job and the hash, game embeddings need the vector only
    graph = GRAPH.with_input(EMBEDDINGS_INPUT).with_model_inputs(
        {"complexity c:1": ["emb_0"], "rating r:1": ["emb_0", "predicted_complexity"]}
    )
    for stage in (COMPLEXITY, MAIN, GAME_EMBEDDINGS):
        name = f"detection_{stage.replace('-', '_')}_with_embeddings_table"
        add(name, [wh.render(detection_sql(stage, graph))])
    # `score --changed-only`: both stages, the table's check and the vectors picked, at once
    union = detection_union_sql([COMPLEXITY, MAIN], graph, (EMBEDDINGS_INPUT.name,), carry=True)
    add("detection_scored_stages_with_embeddings_table_check", [wh.render(union)])
    # what Warehouse.write runs for one staged frame
    for logical, mode in WRITES.items():
        schema = TABLES[logical]
        canonical = [sql for sql, _ in wh.write_statements(schema, mode, STAGED, 0)]
        staged = {STAGED: wh._stage_ref(STAGED)}
        add(f"{mode}_{logical}", [wh.render(sql, staged) for sql in canonical])
    return cases


# -- the engines, with default settings and no connection used ---------------------------------
def default_warehouse(dialect: str, tmp_path: Path) -> Warehouse:
    """A Warehouse of the engine with default table names; it never reaches a database."""
    if dialect == "duckdb":
        from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

        settings = Settings(warehouse=WarehouseSettings(path=tmp_path / "unused.duckdb"))
        return DuckDBWarehouse(settings, connect=lambda _: duckdb.connect(":memory:"), create=True)
    from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

    # the projects README.md shows; BigQuery needs them, the rest is default
    warehouse = WarehouseSettings(
        engine="bigquery", features_project="bgg-data-warehouse", ml_project="bgg-predictive-models"
    )
    return BigQueryWarehouse(Settings(warehouse=warehouse), client_factory=lambda: None)


def snapshot_text(statements: list[str]) -> str:
    return "\n".join(f"{sql};\n" for sql in statements)


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def compare(folder: Path, expected: dict[str, str], update: bool) -> list[str]:
    """What differs between the files in ``folder`` and ``expected`` (name -> text), as
    unified diffs; with ``update``, the files are rewritten (or deleted) to match instead."""
    problems = []
    for name, text in sorted(expected.items()):
        path = folder / f"{name}.sql"
        found = path.read_text(encoding="utf-8") if path.is_file() else None
        if found == text:
            continue
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            continue
        before = "/dev/null" if found is None else shown(path)
        diff = difflib.unified_diff(
            (found or "").splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=before,
            tofile=f"{shown(path)} (rendered now)",
        )
        problems.append("".join(diff))
    stale = sorted(set(folder.glob("*.sql")) - {folder / f"{name}.sql" for name in expected})
    for path in stale:
        if update:
            path.unlink()
        else:
            problems.append(f"{shown(path)}: a snapshot no case renders (renamed or removed?)\n")
    return problems


@pytest.mark.parametrize("dialect", ["duckdb", "bigquery"])
def test_rendered_sql_matches_the_snapshots(
    dialect: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BigQuery stages each write in a table named by a fresh uuid4: the same one every time
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=0))
    wh = default_warehouse(dialect, tmp_path)
    try:
        assert wh.dialect == dialect
        expected = {name: snapshot_text(sqls) for name, sqls in snapshot_cases(wh).items()}
    finally:
        if dialect == "duckdb":
            wh.close()
    problems = compare(SNAPSHOTS / dialect, expected, update=UPDATING)
    assert not problems, (
        f"the {dialect} SQL differs from its snapshots in {shown(SNAPSHOTS / dialect)}; if the "
        f"change is intended, rerun with {UPDATE}=1 to rewrite them, and commit them:\n"
        + "\n".join(problems)
    )


def test_compare_reports_and_updates(tmp_path: Path) -> None:
    (tmp_path / "kept.sql").write_text("SELECT 1;\n")
    (tmp_path / "changed.sql").write_text("SELECT 1;\n")
    (tmp_path / "stale.sql").write_text("SELECT 1;\n")
    expected = {"kept": "SELECT 1;\n", "changed": "SELECT 2;\n", "new": "SELECT 3;\n"}
    problems = compare(tmp_path, expected, update=False)
    assert len(problems) == 3
    assert "-SELECT 1;\n+SELECT 2;" in problems[0] and "/dev/null" in problems[1]
    assert "stale.sql: a snapshot no case renders" in problems[2]
    assert not (tmp_path / "new.sql").exists()  # reporting changes nothing
    assert compare(tmp_path, expected, update=True) == []
    assert compare(tmp_path, expected, update=False) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changed.sql", "kept.sql", "new.sql"]


def test_writes_are_all_covered() -> None:
    """WRITES names each table bggscore writes, with the mode it writes it in."""
    src = Path(bggscore.__file__).resolve().parent
    found: dict[str, set[str]] = {}
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Write"):
                continue
            positions = {"logical": 0, "frame": 1, "mode": 2}
            args = dict(enumerate(node.args))
            args.update({positions[k.arg]: k.value for k in node.keywords if k.arg})
            logical, mode = args[0], args.get(2, ast.Constant("append"))
            assert isinstance(logical, ast.Constant) and isinstance(mode, ast.Constant), (
                f"{path}:{node.lineno}: a Write whose table or mode is not a literal"
            )
            found.setdefault(logical.value, set()).add(mode.value)
    assert found == {logical: {mode} for logical, mode in WRITES.items()}
