"""Security properties: no values formatted into SQL, identifiers that cannot smuggle SQL,
a GitHub token that never shows, and artifacts that are never unpickled unverified.

* SQL: an AST scan of ``src/bggscore`` finds every string built (f-string, ``%``, ``.format``,
  ``+``, ``.join``) in a function that builds SQL. What it inserts must be a constant, a module
  constant (``SELECTION_WHERE``, ``DUCKDB_TYPES[...]``) or an identifier source allow-listed
  below by (file, function) with the reason it is safe; anything new fails. The canonical
  queries carry no literal values: every value is an ``@param``.
* Settings: table, dataset and project names are identifiers, never parameters, so injection
  attempts (``;``, quotes, backticks, dots, spaces, look-alike letters) are a one-line
  ConfigError and exit 2.
* The token: a canary through ``run --dispatch`` (``tests/cli/test_dispatch_cli.py`` covers
  ``dispatch`` itself) never reaches stdout, stderr, logs or the GitHub output files.
* Artifacts: one flipped byte and ``models verify`` names the model, ``score`` / ``embed``
  refuse with a one-line sha256 message, and nothing is unpickled.
"""

from __future__ import annotations

import ast
import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from tests.support.github import FakeGitHub, closed_port_url
from tests.support.output import assert_one_line_error
from tests.support.state import sql

import bggscore
from bggscore.errors import ConfigError
from bggscore.stages import EMBEDDINGS_INPUT, GRAPH

SRC = Path(bggscore.__file__).resolve().parent
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|MERGE|UPDATE|DELETE|CREATE|ALTER|WHERE|FROM|JOIN|CONCAT|TRANSACTION)\b"
)
CONSTANT_NAME = re.compile(r"^_?[A-Z][A-Z0-9_]*$")
MESSAGE_SINKS = {"translated"}  # context managers whose f-string argument is a message

# (file under src/bggscore, function) -> {inserted expression: why it is not a value}
ALLOWED: dict[tuple[str, str], dict[str, str]] = {
    ("warehouse/sql.py", "append_new_sql"): {
        "column": "the schema's partitioning column (schema.partition_by_day), quoted",
        "since": "a parameter name from bound_params, checked as an identifier",
        "until": "a parameter name from bound_params, checked as an identifier",
        "schema.logical": "a TableSchema's logical table name, a constant of schemas.py",
        "column_list(schema.names)": "the schema's own column names, quoted",
        "column_list(schema.names, 'b')": "the schema's own column names, quoted",
        "staged": "the staging name Warehouse.write makes (bggscore_stage_N); render() maps "
        "it to a TableRef and rejects unknown names",
        "k": "a key column of the schema (schema.key), quoted",
    },
    ("warehouse/sql.py", "upsert_sql"): {
        "_partition_filter(schema, partitions, variables)": "the schema's partition column, "
        "quoted, IN UNNEST of a parameter or variable name checked as an identifier",
        "schema.logical": "a TableSchema's logical table name, a constant of schemas.py",
        "column_list(schema.names)": "the schema's own column names, quoted",
        "column_list(schema.names, 'b')": "the schema's own column names, quoted",
        "staged": "the staging name Warehouse.write makes; render() maps it to a TableRef",
        "k": "a key column of the schema (schema.key), quoted",
        "c": "a column of the schema (schema.names), quoted",
    },
    ("warehouse/sql.py", "delete_keys_sql"): {
        "where": "_partition_filter: the schema's partition column, quoted, IN UNNEST of a "
        "parameter name checked as an identifier",
        "schema.logical": "a TableSchema's logical table name, a constant of schemas.py",
        "staged": "the staging name Warehouse.write makes; render() maps it to a TableRef",
        "k": "a key column of the schema (schema.key), quoted",
    },
    ("warehouse/sql.py", "insert_all_sql"): {
        "schema.logical": "a TableSchema's logical table name, a constant of schemas.py",
        "column_list(schema.names)": "the schema's own column names, quoted",
        "column_list(schema.names, 'b')": "the schema's own column names, quoted",
        "staged": "the staging name Warehouse.write makes; render() maps it to a TableRef",
    },
    ("warehouse/sql.py", "declare_bounds_sql"): {
        "name": "a variable name from bound_params, checked as an identifier",
        "index": "an element's position in the array, an int from enumerate",
        "every": "subqueries built here of the quoted partitioning column and the staging name",
        "pairs": "the same subqueries, joined by commas",
        "column": "the schema's partitioning column (schema.partition_by_day), quoted",
        "staged": "the staging name Warehouse.write makes; render() maps it to a TableRef",
    },
    ("warehouse/sql.py", "declare_partitions_sql"): {
        "_value(name, True)": "a variable name from partition_param, checked as an identifier",
        "column": "the schema's partition column (schema.partition_by_range), quoted",
        "staged": "the staging name Warehouse.write makes; render() maps it to a TableRef",
    },
    ("warehouse/sql.py", "copy_with_partition_sql"): {
        "schema.logical": "a TableSchema's logical table name, a constant of schemas.py",
        "target": "the migration's logical name for the copy (migrate.COPY); render() maps "
        "it to a TableRef",
        "column_list([*older, column])": "the schema's own column names, quoted",
        "column_list(older, 's')": "the schema's own column names, quoted",
    },
    ("warehouse/sql.py", "set_partition_sql"): {
        "schema.logical": "a TableSchema's logical table name, a constant of schemas.py",
        "quoted(column)": "the schema's partition column, quoted",
    },
    ("warehouse/duckdb_engine.py", "add_column_sql"): {
        "_qualified(ref)": "a TableRef of validated names, each quoted",
        "_quote(name)": "a column name of our own TableSchema, quoted",
        "kind": "DUCKDB_TYPES of the schema's own column type",
    },
    ("warehouse/queries.py", "features_sql"): {
        "select": "_select_list: GAMES_FEATURES columns (checked), quoted, or the constant "
        "expressions of DERIVED_COLUMNS",
    },
    ("warehouse/queries.py", "landing_rows_sql"): {
        "where": "a constant bound on the partition column, its values @since and @until",
        "name": "game_id, name and schemas.LANDING_PREDICTIONS: the landing schema's own "
        "column names, quoted",
    },
    # `bggscore report`: identifiers from queries.py's own constants (LINEAGE, MOVE_COLUMNS,
    # REPORT_POINTS, REPORT_BOUNDS, ACTUAL_COLUMNS, JOB_MODEL_COLUMNS), each checked against
    # our TableSchema by queries._known before it is formatted in
    ("warehouse/queries.py", "lineage_sql"): {
        "m": "a model column of LINEAGE[logical], checked against the table's schema",
        "upstream": "the upstream column of LINEAGE[logical], checked against the schema",
        "ts": "the timestamp column of LINEAGE[logical], checked against the schema",
        "model": "the OR of the fragments above",
        "moved": "the fragment above, or FALSE",
        "logical": "a key of LINEAGE, checked; render() maps it to a TableRef",
    },
    ("warehouse/queries.py", "moves_sql"): {
        "c": "a column of MOVE_COLUMNS (landing's own), checked against the schema",
        "now": "the landing columns above, quoted",
        "own": "the landing columns above, quoted",
        "lags": "LAG() of the landing columns above, quoted",
        "before": "the aliases previous_<column> of the columns above",
    },
    ("warehouse/queries.py", "predictions_as_of_sql"): {
        "c": "a landing or games_features column (REPORT_POINTS, REPORT_BOUNDS, "
        "ACTUAL_COLUMNS), checked against the schemas",
        "predicted": "the landing columns above, quoted",
        "actual": "the games_features columns above, quoted",
    },
    ("warehouse/queries.py", "job_models_sql"): {
        "c": "a model column of JOB_MODEL_COLUMNS[logical], checked against the schema",
        "select": "the columns above, quoted",
        "logical": "a key of JOB_MODEL_COLUMNS, checked; render() maps it to a TableRef",
    },
    ("warehouse/queries.py", "count_sql"): {
        "logical": "checked against schemas.TABLES first; render() maps it to a TableRef",
    },
    ("warehouse/queries.py", "state_without_output_sql"): {
        "output": "checked against schemas.TABLES first; render() maps it to a TableRef",
    },
    ("warehouse/queries.py", "repeated_keys_sql"): {
        "logical": "checked against schemas.TABLES first; render() maps it to a TableRef",
        "name": "a key column of the schema (TableSchema.key), quoted",
    },
    ("warehouse/duckdb_engine.py", "_read_whole_sql"): {
        "_quote(schema)": "a schema name read from DuckDB's own catalogue (duckdb_tables()), "
        "quoted: `warehouse check` reads every table the file holds",
        "_quote(table)": "a table name read from DuckDB's own catalogue, quoted",
    },
    ("warehouse/duckdb_engine.py", "DuckDBWarehouse._create_table"): {
        "_quote(ref.dataset)": "a validated dataset name (settings.DATASET_RE), quoted",
        "_qualified(ref)": "a TableRef of validated names, each quoted",
        "_quote(n)": "a column name of our own TableSchema, quoted",
    },
    ("warehouse/bigquery_engine.py", "BigQueryWarehouse._stage_and_run"): {
        "sql": "statements already rendered by Warehouse.render from canonical SQL; their "
        "values travel as query parameters",
    },
    ("warehouse/bigquery_engine.py", "_rows_source"): {
        "name": "a column of the staged frame, conformed to our own TableSchema, quoted",
        "parameter": "the constant ROWS_PARAMETER: the rows travel as that parameter",
    },
    ("warehouse/bigquery_engine.py", "_frame_source"): {
        "name": "a column of the staged frame, conformed to our own TableSchema, quoted",
        "int(index)": "the frame's position in the write (an int we number), not a value",
        "staging": "_quoted(TableRef) of the staging table the engine names (validated "
        "project and dataset, a uuid), each part quoted",
    },
    ("warehouse/detection_sql.py", "_expected_upstream_sql"): {
        "up": "a stage or input name from the stage graph (bggscore.stages)",
        "i": "a loop index (an SQL alias suffix u0, u1)",
        "vector": "queries.embedding_hash over our own alias e0, e1 (a fixed expression)",
    },
    ("warehouse/detection_sql.py", "_upstream_moved_sql"): {
        "i": "a loop index (an SQL alias suffix p0, p1)",
    },
    ("warehouse/detection_sql.py", "detection_union_sql"): {
        "suffix": "stage_param's suffix of a loop index (_s0, _s1): parameter names",
        "c": "a column of DETECTION_COLUMNS, a module constant",
        "stage": "a stage name from the stage graph (bggscore.stages)",
        "own.strip()": "detection_sql of a graph stage (checked itself), parameters renamed",
        "columns": "DETECTION_COLUMNS, a module constant, some cast to STRING",
        "parts": "the statements built above",
        "name": "an input name from the stage graph (bggscore.stages), checked to be the "
        "embeddings table's",
        "none": "INPUT_CHECK_COLUMNS, a module constant, as typed NULLs",
        "blank": "NULLs, one per DETECTION_COLUMNS column",
    },
    ("warehouse/detection_sql.py", "detection_sql"): {
        "i": "a loop index (an SQL alias suffix p0, u0, and the parameter name @up_0)",
        "up": "a stage or input name from the stage graph (bggscore.stages)",
        "keyed or FEATURE_HASH": "SQL fragments from module constants and a column of "
        "HASHED_COLUMNS",
        "moved": "_upstream_moved_sql over the graph's stage and input names (checked itself)",
        "expected": "_expected_upstream_sql over the graph's names (checked itself)",
        "vector": "queries.embedding_hash over our own alias e (a fixed expression)",
        "present": "queries.embedding_present over our own alias e (a fixed expression)",
        "table": "an Input's logical table name (stages.py); render() maps it to a TableRef",
        "alias": "our own alias e0, e1 (a loop index)",
        "embedding_present(alias)": "queries.embedding_present over our own alias (fixed)",
        "inputs.index(EMBEDDINGS_TABLE)": "an index into the stage's inputs (alias e0, e1)",
        "embedding_hash(alias)": "queries.embedding_hash over our own alias (fixed)",
        "names": "the picked games' id with names, or with typed NULLs (constants)",
        "named": "the id column of f or c (constants)",
        "join_names": "the join back to games_features, or nothing (constants)",
    },
}


# -- the AST scan ------------------------------------------------------------------------------
def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _static(node: ast.AST) -> str:
    """The literal text a string-building expression contributes."""
    if _is_str(node):
        return node.value  # type: ignore[attr-defined]
    if isinstance(node, ast.JoinedStr):
        return "".join(_static(part) for part in node.values if _is_str(part))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _static(node.left) + _static(node.right)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _is_str(node.func.value)
        and node.func.attr in ("format", "join")
    ):
        text = node.func.value.value  # type: ignore[attr-defined]
        for arg in node.args:
            if isinstance(arg, (ast.List, ast.Tuple)):
                text += "".join(_static(elt) for elt in arg.elts)
        return text
    return ""


def _strish(node: ast.AST) -> bool:
    return _is_str(node) or isinstance(node, ast.JoinedStr) or _is_building(node)


def _is_building(node: ast.AST) -> bool:
    """f-strings with fields, str + x, "..." % x, "...".format(x), "sep".join(x)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            return _strish(node.left) or _strish(node.right)
        if isinstance(node.op, ast.Mod):
            return _is_str(node.left)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _is_str(node.func.value) and node.func.attr in ("format", "join")
    return False


def _operands(node: ast.BinOp) -> list[ast.expr]:
    out: list[ast.expr] = []
    for side in (node.left, node.right):
        if isinstance(side, ast.BinOp) and isinstance(side.op, ast.Add):
            out += _operands(side)
        else:
            out.append(side)
    return out


def _inserted(node: ast.AST) -> list[ast.expr]:
    """What a building site puts into its string."""
    if isinstance(node, ast.JoinedStr):
        return [part.value for part in node.values if isinstance(part, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _operands(node)
    if isinstance(node, ast.BinOp):  # %
        right = node.right
        if isinstance(right, ast.Tuple):
            return list(right.elts)
        if isinstance(right, ast.Dict):
            return [value for value in right.values if value is not None]
        return [right]
    assert isinstance(node, ast.Call)
    if node.func.attr == "format":  # type: ignore[attr-defined]
        return [*node.args, *(keyword.value for keyword in node.keywords)]
    out: list[ast.expr] = []
    for arg in node.args:  # .join(...)
        if isinstance(arg, (ast.List, ast.Tuple, ast.Set)):
            out += [elt.value if isinstance(elt, ast.Starred) else elt for elt in arg.elts]
        else:
            out.append(arg)
    return out


@dataclass
class Site:
    file: str
    function: str
    line: int
    node: ast.AST
    message: bool  # inside a raise or a message sink: text for people, not SQL


class _Collector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.stack: list[str] = []
        self.message = 0
        self.sites: list[tuple[str, int, ast.AST, bool]] = []
        self.assigns: dict[str, dict[str, list[ast.expr]]] = {}

    @property
    def where(self) -> str:
        return ".".join(self.stack) or "<module>"

    def _scope(self, node: ast.AST) -> None:
        self.stack.append(node.name)  # type: ignore[attr-defined]
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_Raise(self, node: ast.Raise) -> None:
        self.message += 1
        self.generic_visit(node)
        self.message -= 1

    def visit_Call(self, node: ast.Call) -> None:
        sink = isinstance(node.func, ast.Name) and node.func.id in MESSAGE_SINKS
        self.message += sink
        self._site(node)
        self.generic_visit(node)
        self.message -= sink

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            for name in names:
                if isinstance(name, ast.Name):
                    scope = self.assigns.setdefault(self.where, {})
                    scope.setdefault(name.id, []).append(node.value)
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._site(node)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._site(node)
        self.generic_visit(node)

    def _site(self, node: ast.AST) -> None:
        if _is_building(node):
            self.sites.append((self.where, node.lineno, node, self.message > 0))  # type: ignore[attr-defined]


def scan() -> tuple[list[Site], dict[tuple[str, str], dict[str, list[ast.expr]]]]:
    sites, assigns = [], {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        collector = _Collector()
        collector.visit(ast.parse(path.read_text(encoding="utf-8")))
        sites += [Site(relative, *found) for found in collector.sites]
        assigns.update({(relative, where): names for where, names in collector.assigns.items()})
    return sites, assigns


def _safe(
    node: ast.expr,
    allowed: dict[str, str],
    local: dict[str, list[ast.expr]],
    used: set[str],
    seen: frozenset[str] = frozenset(),
) -> bool:
    source = ast.unparse(node)
    if source in allowed:
        used.add(source)
        return True
    if isinstance(node, ast.Constant) or _is_building(node):
        return True  # a building site is checked on its own
    if isinstance(node, ast.Name):
        if CONSTANT_NAME.match(node.id):
            return True  # a module constant
        if node.id in local and node.id not in seen:  # a local: what was assigned to it
            return all(
                _safe(value, allowed, local, used, seen | {node.id}) for value in local[node.id]
            )
        return False
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return bool(CONSTANT_NAME.match(node.value.id))  # a lookup in a constant table
    if isinstance(node, ast.IfExp):
        return all(_safe(side, allowed, local, used, seen) for side in (node.body, node.orelse))
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        return _safe(node.elt, allowed, local, used, seen)
    return False


def test_sql_is_built_only_from_identifiers_and_constants() -> None:
    sites, assigns = scan()
    sql_functions = {
        (site.file, site.function)
        for site in sites
        if not site.message and SQL_WORDS.search(_static(site.node))
    }
    assert ("warehouse/sql.py", "upsert_sql") in sql_functions  # the scan sees real code
    problems, used = [], {key: set() for key in ALLOWED}
    for site in sites:
        key = (site.file, site.function)
        if key not in sql_functions or site.message:
            continue
        allowed = ALLOWED.get(key, {})
        for node in _inserted(site.node):
            if not _safe(node, allowed, assigns.get(key, {}), used.setdefault(key, set())):
                problems.append(f"{site.file}:{site.line} {site.function}: {ast.unparse(node)}")
    assert problems == [], (
        "values formatted into SQL (use @params, or allow-list a validated identifier "
        "source in tests/test_security.py ALLOWED with the reason):\n" + "\n".join(problems)
    )
    stale = {key: sorted(set(allowed) - used[key]) for key, allowed in ALLOWED.items()}
    assert {key: names for key, names in stale.items() if names} == {}, "stale allow-list"


@pytest.mark.parametrize(
    "source",
    [
        'def f(game_id):\n    return f"SELECT * FROM t WHERE game_id = {game_id}"\n',
        "def f(name):\n    return \"DELETE FROM t WHERE name = '%s'\" % name\n",
        'def f(year):\n    return "SELECT 1 FROM t WHERE y = {}".format(year)\n',
        'def f(model):\n    return "UPDATE t SET m = \'" + model + "\'"\n',
        'def f(ids):\n    where = ", ".join(ids)\n'
        '    return f"SELECT 1 FROM t WHERE id IN ({where})"\n',
        'def f(limit):\n    n = limit\n    return f"SELECT 1 FROM t LIMIT {n}"\n',
    ],
)
def test_the_scan_catches_values_in_sql(source: str) -> None:
    collector = _Collector()
    collector.visit(ast.parse(source))
    local = collector.assigns.get("f", {})
    flagged = [
        ast.unparse(node)
        for _, _, site, message in collector.sites
        if not message
        for node in _inserted(site)
        if not _safe(node, {}, local, set())
    ]
    assert flagged, source


# -- the canonical queries carry no values -----------------------------------------------------
def canonical_queries() -> dict[str, str]:
    from bggscore.warehouse import queries
    from bggscore.warehouse.detection_sql import detection_sql, detection_union_sql
    from bggscore.warehouse.schemas import GAMES_FEATURES, TABLES

    found = {}
    for name in dir(queries):
        value = getattr(queries, name)
        if CONSTANT_NAME.match(name) and isinstance(value, str) and SQL_WORDS.search(value):
            found[f"queries.{name}"] = value
    # a WHERE fragment: give it a statement
    where = queries.SELECTION_WHERE
    found["queries.SELECTION_WHERE"] = f"SELECT f.game_id FROM games_features AS f WHERE {where}"
    for with_hash in (False, True):
        found[f"features_sql({with_hash})"] = queries.features_sql(GAMES_FEATURES.names, with_hash)
    pseudo = [queries.INPUT_VECTOR, queries.INPUT_VECTOR_HASH, *queries.INPUT_WIDTHS]
    found["features_sql(vectors, check)"] = queries.features_sql(
        [*GAMES_FEATURES.names, *pseudo], True
    )
    for logical in TABLES:
        found[f"count_sql({logical})"] = queries.count_sql(logical)
    found["landing_rows_sql()"] = queries.landing_rows_sql()
    found["landing_rows_sql(bounded)"] = queries.landing_rows_sql(bounded=True)
    for logical in queries.LINEAGE:
        found[f"lineage_sql({logical})"] = queries.lineage_sql(logical)
    for logical in queries.JOB_MODEL_COLUMNS:
        found[f"job_models_sql({logical})"] = queries.job_models_sql(logical)
    found["moves_sql()"] = queries.moves_sql()
    found["predictions_as_of_sql()"] = queries.predictions_as_of_sql()
    for stage in GRAPH.names:
        found[f"detection_sql({stage})"] = detection_sql(stage)
    found["detection_union_sql(all)"] = detection_union_sql(list(GRAPH.names))
    # with models reading emb_* from the embeddings table (an input of the graph)
    graph = GRAPH.with_input(EMBEDDINGS_INPUT).with_model_inputs(
        {"complexity c:1": ["emb_0"], "rating r:1": ["emb_0"]}
    )
    for stage in graph.names:
        found[f"detection_sql({stage}, embeddings table)"] = detection_sql(stage, graph)
    found["detection_union_sql(all, embeddings table)"] = detection_union_sql(
        list(graph.names), graph, (EMBEDDINGS_INPUT.name,), carry=True
    )
    return found


# literal text the detection SQL may hold: a COALESCE default, the upstream key separator and
# the upstream key prefixes (``complexity:<job>``): constants, never values
# and the embeddings table's (``embeddings-table:<md5>``, a vector present: ARRAY_LENGTH > 0)
ALLOWED_LITERALS = {"''", "'|'", "'complexity:'", "'text-embeddings:'", "'embeddings-table:'", "0"}
# queries whose WHERE is a fixed condition with no value in it, and the literals they hold
FIXED_FILTERS = {
    "queries.MOST_RATED_GAME": {"1"},  # year_published IS NOT NULL ... LIMIT 1
    "queries.INPUT_EMBEDDING_WIDTHS": set(),  # every vector present in the table
    # its first WHERE is the widths' (every vector); the selection's, after it, takes @params
    "queries.INPUT_EMBEDDING_CHECK": set(),
    "queries.INPUT_CHECK_FROM": set(),  # the same check's FROM (detection carries it)
    # each stage's rows tagged with its name, from the stage graph
    "detection_union_sql(all)": {f"'{stage}'" for stage in GRAPH.names},
    # and the input's check rows tagged with the input's name
    "detection_union_sql(all, embeddings table)": {
        *(f"'{stage}'" for stage in GRAPH.names),
        f"'{EMBEDDINGS_INPUT.name}'",
    },
}


@pytest.mark.parametrize(("name", "query"), sorted(canonical_queries().items()))
def test_canonical_queries_take_values_as_parameters(name: str, query: str) -> None:
    from bggscore.warehouse.schemas import TABLES
    from bggscore.warehouse.sql import TableRef, render

    tree = sqlglot.parse_one(query, read="bigquery")
    literals = {node.sql(dialect="bigquery") for node in tree.find_all(exp.Literal)}
    allowed = ALLOWED_LITERALS | FIXED_FILTERS.get(name, set())
    assert literals <= allowed, (name, literals - allowed)
    where = tree.find(exp.Where)
    if where is not None and name not in FIXED_FILTERS:
        assert any(where.find_all(exp.Parameter)), f"{name} filters on no parameter"
    refs = {logical: TableRef(f"t_{logical}", "ds", "my-project") for logical in TABLES}
    for dialect in ("bigquery", "duckdb"):
        assert len(sqlglot.parse(render(query, refs, dialect), read=dialect)) == 1


@pytest.mark.parametrize(
    "stacked",
    [
        "SELECT COUNT(*) AS n FROM runs; DROP TABLE runs",
        "SELECT COUNT(*) AS n FROM runs; SELECT * FROM games_features",
    ],
)
def test_render_refuses_stacked_statements(stacked: str) -> None:
    from bggscore.warehouse.sql import TableRef, render

    refs = {"runs": TableRef("r", "raw"), "games_features": TableRef("g", "a")}
    with pytest.raises(ValueError, match="exactly one statement"):
        render(stacked, refs, "duckdb")


@pytest.mark.parametrize("logical", ["runs; DROP TABLE runs", "runs --", "x", "runs WHERE 1=1"])
def test_count_sql_takes_only_our_table_names(logical: str) -> None:
    from bggscore.warehouse.queries import count_sql

    with pytest.raises(ValueError, match="unknown logical table"):
        count_sql(logical)


# -- identifiers in settings -------------------------------------------------------------------
INJECTIONS = [
    "x; DROP TABLE y",
    "games`; DROP TABLE y; --",
    "`games`",
    'games"',
    "games'",
    "raw.games",
    "games features",
    "games--",
    "games/*",
    "g\u0430mes",  # a Cyrillic a
    "\uff47ames",  # a full-width g
    "games\u200b",  # a zero-width space
    "games\n",
    "9games",
    "",
]
PROJECT_INJECTIONS = [
    "my-project; DROP TABLE y",
    "my-project`",
    "my.project",
    "my project",
    "my-pr\u043eject",  # a Cyrillic o
    "my-project\n",
    "My-Project",
    "my-project'--",
    "",
]


def _identifier_settings() -> list[tuple[str, str]]:
    from bggscore.settings import TableNames

    tables = [
        (f"BGGSCORE_WAREHOUSE__TABLES__{name.upper()}", f"warehouse.tables.{name}")
        for name in TableNames.model_fields
    ]
    datasets = [
        (f"BGGSCORE_WAREHOUSE__{name.upper()}", f"warehouse.{name}")
        for name in ("features_dataset", "hash_dataset", "ml_dataset")
    ]
    return tables + datasets


PROJECTS = [
    ("BGGSCORE_WAREHOUSE__FEATURES_PROJECT", "warehouse.features_project"),
    ("BGGSCORE_WAREHOUSE__ML_PROJECT", "warehouse.ml_project"),
]


@pytest.mark.parametrize(("variable", "where"), _identifier_settings() + PROJECTS)
def test_identifier_settings_reject_injection(
    variable: str, where: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bggscore.settings import load_settings

    values = PROJECT_INJECTIONS if "PROJECT" in variable else INJECTIONS
    for value in values:
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        message = " ".join(str(caught.value).split())  # what the CLI prints
        assert f"invalid setting {where}" in message, (value, message)
        assert caught.value.exit_code == 2
    monkeypatch.delenv(variable)
    load_settings()  # and nothing else was wrong


def test_the_embeddings_table_setting_rejects_injection(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole table name (dataset.table or project.dataset.table), each part an identifier."""
    from bggscore.settings import load_settings

    dotted = [f"raw.{value}" for value in INJECTIONS if value != "raw.games"]
    attempts = [
        *dotted,
        "games",
        "raw..games",
        ".games",
        "raw.games.",
        "p.raw.games",  # not a project id
        "my-project; DROP TABLE y.raw.games",
        "my-project.raw.games.extra",
    ]
    for value in attempts:
        monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", value)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        message = " ".join(str(caught.value).split())
        assert "invalid setting features.embeddings_table" in message, (value, message)
    for value in ("raw.games", "my-project.raw.games", "bggscore"):
        monkeypatch.setenv("BGGSCORE_FEATURES__EMBEDDINGS_TABLE", value)
        assert load_settings().features.embeddings_table == value


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BGGSCORE_WAREHOUSE__TABLES__GAMES_FEATURES", "games_features; DROP TABLE runs"),
        ("BGGSCORE_WAREHOUSE__TABLES__RUNS", "`runs`"),
        ("BGGSCORE_WAREHOUSE__TABLES__SCORING_STATE", "state\nDROP TABLE runs"),
        ("BGGSCORE_WAREHOUSE__ML_DATASET", "raw.games"),
        ("BGGSCORE_WAREHOUSE__FEATURES_DATASET", "an\u0430lytics"),
        ("BGGSCORE_WAREHOUSE__HASH_DATASET", "staging'--"),
        ("BGGSCORE_WAREHOUSE__ML_PROJECT", "my-project; DROP TABLE y"),
        ("BGGSCORE_WAREHOUSE__FEATURES_PROJECT", "my.project"),
    ],
)
def test_injected_identifiers_exit_2_with_one_line(
    variable: str, value: str, cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    for args in (("warehouse", "init"), ("score", "--all-years")):
        result = cli(*args)
        assert result.exit_code == 2, result.stderr
        assert_one_line_error(result.stderr, "is not a valid identifier")
    assert not (home / "warehouse.duckdb").exists()  # refused before opening anything


def test_injected_identifier_in_the_config_file(cli, home: Path) -> None:
    Path("bggscore.toml").write_text(
        '[warehouse]\nml_dataset = "raw"\n[warehouse.tables]\nruns = "runs; DROP TABLE x"\n'
    )
    result = cli("warehouse", "init")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "warehouse.tables.runs", "is not a valid identifier")


# -- the token canary through `run --dispatch` ------------------------------------------------
CANARY = "ghp_CANARYrun0cafe1234dead5678beef9012fa"
REPO = "phenrickson/bgg-predictive-models"


@pytest.mark.parametrize("debug", [False, True])
def test_the_token_never_appears_through_run_dispatch(
    cli,
    embedded_home: Path,
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    debug: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps: list[float] = []
    monkeypatch.setattr("bggscore.dispatch.default_sleep", sleeps.append)
    outputs = embedded_home.parent / "github_output"
    summary = embedded_home.parent / "step_summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    game = sql(embedded_home, "SELECT MIN(game_id) AS g FROM analytics.games_features")["g"][0]
    one_game = ("run", "--full", "--game-id", str(game), "--dispatch", "e", "--dispatch-repo", REPO)
    scenarios = [
        # (name, args, GitHub's answers, environment, exit code)
        ("sent", one_game, [], {}, 0),
        ("sent-json", (*one_game, "--json"), [], {}, 0),
        ("401", one_game, [(401, {"message": "Bad credentials"})], {}, 1),
        ("403", one_game, [(403, {"message": "Resource not accessible"})], {}, 1),
        ("422-echo", one_game, [(422, {"message": f"Bearer {CANARY} is wrong"})], {}, 1),
        ("500", one_game, [(500, {"message": f"{CANARY}"})] * 6, {}, 1),
        ("network", one_game, [], {"BGGSCORE_GITHUB_API_URL": closed_port_url()}, 1),
        ("nothing-changed", ("run", "--dispatch", "e", "--dispatch-repo", REPO), [], {}, 0),
        (
            "token-in-api-url",
            one_game,
            [],
            {"BGGSCORE_GITHUB_API_URL": f"https://x:{CANARY}@api.github.invalid"},
            2,
        ),
        ("unusable-token", one_game, [], {"BGGSCORE_GITHUB_TOKEN": f'{CANARY} "x"'}, 1),
    ]
    seen = []
    for name, args, answers, env, _ in scenarios:
        monkeypatch.setenv("BGGSCORE_GITHUB_TOKEN", CANARY)
        monkeypatch.setenv("BGGSCORE_GITHUB_API_URL", github.url)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        github.answers.clear()
        for status, body in answers:
            github.answer(status, body)
        result = cli(*(["--debug"] if debug else []), *args)
        seen.append((name, result.exit_code))
        for stream in (result.stdout, result.stderr):
            assert CANARY not in stream, (name, stream)
        if result.exit_code and not debug:
            assert "Traceback" not in result.stderr, name
            assert result.stderr.strip().splitlines()[-1].startswith("error: "), name
        if debug and result.exit_code == 1:
            assert "Traceback" in result.stderr, name  # --debug really printed a traceback
    assert seen == [(name, code) for name, _, _, _, code in scenarios]
    assert "HTTP Request: POST" in caplog.text  # httpx's own logging was captured
    assert CANARY not in caplog.text
    for path in (outputs, summary):
        assert CANARY not in (path.read_text() if path.exists() else "")
    assert "games_scored=" in outputs.read_text()
    authorised = [r.headers.get("authorization") for r in github.requests]
    assert f"Bearer {CANARY}" in authorised  # the canary really was the token sent
    assert sleeps  # the 5xx answers were retried (without really sleeping)


# -- artifact tampering ------------------------------------------------------------------------
@pytest.fixture
def unpickles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every joblib.load / pickle.load / pickle.loads call made from now on."""
    import joblib

    calls: list[str] = []
    for module, name in ((joblib, "load"), (pickle, "load"), (pickle, "loads")):
        original = getattr(module, name)

        def counted(*args, _original=original, _name=f"{module.__name__}.{name}", **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_tampered_artifacts_are_refused_unpickled(
    cli, embedded_home: Path, unpickles: list[str]
) -> None:
    from tests.support.state import written_counts

    from bggscore.registry.registry import clear_cache

    clear_cache()
    artifacts = sorted((embedded_home / "registry").rglob("artifact.joblib"))
    labels = []
    for path in artifacts:
        registration = json.loads((path.parent / "registration.json").read_text())
        labels.append(f"{registration['name']}:{registration['version']}")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit of one byte
        path.write_bytes(bytes(data))
    assert len(labels) >= 6
    before = written_counts(embedded_home)

    result = cli("models", "verify")
    assert result.exit_code == 1
    line = assert_one_line_error(result.stderr, f"{len(labels)} problem(s) found")
    for label in labels:
        assert label in line
        assert re.search(rf"{re.escape(label)}\s+FAILED", result.stdout), (label, result.stdout)

    result = cli("models", "verify", "rating")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "1 problem(s) found: rating:1")

    for args, label in (
        (("score", "--all-years"), "complexity:1"),
        (("score", "--all-years", "--stage", "main"), ""),
        (("embed", "--all-years", "--kind", "text"), "text_embeddings:1"),
        (("embed", "--all-years"), ""),
    ):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.stderr)
        assert_one_line_error(result.stderr, "failed its sha256 check", label)
    assert written_counts(embedded_home) == before
    assert unpickles == []
