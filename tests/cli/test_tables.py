"""Tables without a terminal (cron, `| cat`, CI logs) are printed whole, never cut with "…".

CliRunner's stdout is not a terminal, where rich would draw at 80 columns and cut the cells
people copy from (job ids for `bggscore compare`, model names). Every table goes through
one mechanism, `bggscore.console.print_whole`; an AST scan holds every module to that.
"""

from __future__ import annotations

import ast
import io
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console as RichConsole
from rich.table import Table
from tests.support.output import parse_json
from tests.support.state import QUALIFIED, sql

from bggscore.console import print_whole

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "bggscore"
LONG_NAME = "A Rather Long Game Name: The Expansion of the Expansion of the Expansion"


def human_and_json(cli, *args: str) -> tuple[str, Any]:
    human = cli(*args)
    assert human.exit_code == 0, human.stderr
    data = cli(*args, "--json")
    assert data.exit_code == 0, data.stderr
    return human.stdout, parse_json(data.stdout)


def assert_whole(out: str, *cells: str) -> None:
    assert "…" not in out
    for cell in cells:
        assert cell in out, (cell, out)


def test_warehouse_status_shows_whole_job_ids(cli, embedded_home: Path) -> None:
    out, data = human_and_json(cli, "warehouse", "status")

    runs = data["last_runs"]
    assert runs
    times = [str(run["finished_at"]).split("T")[1] for run in runs]  # to the microsecond
    assert_whole(out, *(run["job_id"] for run in runs), *times)


def test_models_list_shows_whole_names_sources_and_times(cli, embedded_home: Path) -> None:
    out, data = human_and_json(cli, "models", "list")

    models = data["models"] if isinstance(data, dict) else data
    assert models
    cells = [m["name"] for m in models] + [m["source"] for m in models]
    times = [str(m["created_at"])[:19] for m in models]  # shown to the second
    assert_whole(out, *cells, *times)
    assert max(len(line) for line in out.splitlines()) > 80  # not squeezed into 80


def test_detect_changes_tables_show_whole_names(cli, embedded_home: Path) -> None:
    rows = sql(embedded_home, f"SELECT * FROM {QUALIFIED['games_features']} ORDER BY game_id")
    game = rows.filter(pl.col("year_published").is_between(2024, 2028)).head(1)
    path = embedded_home.parent / "renamed.parquet"
    game.with_columns(
        pl.lit(LONG_NAME).alias("name"), pl.col("mechanics").list.concat(pl.lit(["Bribery"]))
    ).write_parquet(path)
    assert cli("warehouse", "load", str(path)).exit_code == 0

    out, data = human_and_json(cli, "detect-changes")

    assert data["changed"]
    assert_whole(out, LONG_NAME, str(game["game_id"][0]))


def test_similar_table_shows_whole_names(cli, embedded_home: Path) -> None:
    rows = sql(
        embedded_home,
        "SELECT game_id FROM raw.game_embeddings ORDER BY game_id LIMIT 1",
    )
    out, data = human_and_json(cli, "similar", str(rows["game_id"][0]), "--top", "5")

    assert_whole(out, *(n["name"] for n in data["neighbours"]))


def test_on_a_terminal_long_cells_fold_rather_than_cut() -> None:
    buffer = io.StringIO()
    terminal = RichConsole(file=buffer, force_terminal=True, width=40, color_system=None)
    table = Table()
    table.add_column("job_id")
    job = "20261202T023323Z-" + "0123456789abcdef" * 3
    table.add_row(job)

    print_whole(terminal, table)

    text = buffer.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 40
    cells = [line.strip("│┃ ") for line in text.splitlines() if line.startswith("│")]
    assert "".join(cells) == job  # folded onto lines, every character kept


def _tables_printed_directly(tree: ast.AST) -> list[str]:
    """Names bound to `Table(...)` in a function and passed anywhere but print_whole."""
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        tables = {
            target.id
            for node in ast.walk(func)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "Table"
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        whole: set[str] = set()
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            names = {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
            if isinstance(node.func, ast.Name) and node.func.id == "print_whole":
                whole |= names & tables
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "print":
                found += [f"{func.name}: print({n})" for n in sorted(names & tables)]
        found += [f"{func.name}: {n} never printed whole" for n in sorted(tables - whole)]
    return found


def test_every_table_goes_through_print_whole() -> None:
    offenders = []
    modules = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        problems = _tables_printed_directly(tree)
        modules += "Table(" in path.read_text()
        offenders += [f"{path.relative_to(PACKAGE)}: {p}" for p in problems]
    assert modules >= 6  # the scan sees the table commands
    assert offenders == []


def test_the_scan_catches_a_table_printed_directly() -> None:
    bad = "def render(out):\n    t = Table()\n    out.print(t if t else 'none')\n"
    assert _tables_printed_directly(ast.parse(bad)) == [
        "render: print(t)",
        "render: t never printed whole",
    ]


def test_score_table_shows_whole_model_labels(cli, embedded_home: Path) -> None:
    rows = sql(embedded_home, f"SELECT game_id FROM {QUALIFIED['games_features']} LIMIT 1")
    out, data = human_and_json(cli, "score", "--game-id", str(rows["game_id"][0]))

    assert data["models"]
    assert_whole(out, *data["models"].values())  # (the --json run is another job)
