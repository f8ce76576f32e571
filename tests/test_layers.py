"""Imports run one way: cli -> tasks -> training -> scoring / embeddings / detection ->
registry / features / warehouse -> settings / errors.

An AST scan of every module under src/bggscore collects every import of a bggscore
module: module level, inside functions and methods (lazy imports are still imports: they
run the first time the function does), under ``if TYPE_CHECKING:``, ``from bggscore
import x`` forms, relative imports, and ``importlib.import_module("bggscore...")`` with
a constant name.

``if TYPE_CHECKING:`` imports count like any other, for the layers and for cycles. They
run no code, so they cannot make a runtime cycle, but a lower layer naming a higher
layer's types still depends on it (mypy, readers and any later runtime use follow), so
upward ones are forbidden too; no module needs one today. Implicit imports of a parent
package (``import a.b`` runs ``a/__init__``) are not edges: every submodule would
otherwise "import" its package.
"""

from __future__ import annotations

import ast
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "bggscore"

# Top to bottom. A module may import its own layer or any lower one, never a higher one.
# Groups listed together on one level are independent: none may import another (a
# module may still import its own group). Every module must be listed (longest prefix
# wins), so a new module has to be placed here.
LAYERS: list[tuple[str, dict[str, tuple[str, ...]]]] = [
    ("cli", {"cli": ("bggscore.cli", "bggscore.__main__")}),
    ("tasks", {"tasks": ("bggscore.tasks",)}),
    # the report's numbers, charts and page (only `report` and the demo's tour use it)
    ("report", {"report": ("bggscore.report",)}),
    # training may import scoring and embeddings (the serving code it evaluates with and
    # the embedders it fits); scoring and embeddings never import training
    ("training", {"training": ("bggscore.training",)}),
    (
        "scoring / embeddings / detection",
        {
            "scoring": ("bggscore.scoring",),
            "embeddings": ("bggscore.embeddings",),
            "detection": ("bggscore.detection",),
        },
    ),
    (
        "models and storage",
        {
            "models and storage": (
                "bggscore.modelset",
                "bggscore.registry",
                "bggscore.features",
                "bggscore.feature_builder",
                "bggscore.linear",
                "bggscore.warehouse",
                "bggscore.dispatch",
                "bggscore.locking",
                "bggscore.runstatus",  # a run's progress, beside its lock
                "bggscore.hashing",
                "bggscore.demo",  # the synthetic catalogue (the demo command is tasks.demo)
            ),
        },
    ),
    (
        "foundation",
        {
            "foundation": (
                "bggscore.settings",
                "bggscore.console",
                "bggscore.errors",
                "bggscore.stages",
                "bggscore.wording",
                "bggscore.results",  # may not exist yet
                # the package itself: only __version__ (stdlib importlib.metadata), which
                # dispatch and registry.integrity read
                "bggscore",
            ),
        },
    ),
]

# Edges allowed to close a cycle, each with its reason. Keep this list short.
CYCLE_EXEMPT: dict[tuple[str, str], str] = {
    # features.__getattr__ hands out feature_builder.FeatureBuilder lazily: pickled
    # pipelines name bggscore.features.FeatureBuilder (tests/test_artifact_contract.py),
    # and importing it at module level would make `import bggscore.features` import
    # scikit-learn. feature_builder subclasses features.Features, so it imports features
    # at module level; the lazy edge back runs only after both are loaded.
    ("bggscore.features", "bggscore.feature_builder"): "lazy re-export for unpickling",
}


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    path: Path
    line: int
    imported: str  # module name (a submodule when `from pkg import submodule`)
    type_checking: bool
    function_level: bool

    def where(self) -> str:
        kind = []
        if self.function_level:
            kind.append("function-level")
        if self.type_checking:
            kind.append("TYPE_CHECKING")
        how = f" ({', '.join(kind)})" if kind else ""
        rel = self.path.relative_to(SRC.parent)
        return f"{rel}:{self.line}: {self.importer} imports {self.imported}{how}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".")
    if not is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def scan(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def add(line: int, target: str, tc: bool, fn: bool) -> None:
        if target == "bggscore" or target.startswith("bggscore."):
            found.append(Import(name, path, line, target, tc, fn))

    def visit(node: ast.AST, tc: bool, fn: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node.lineno, alias.name, tc, fn)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(name, path.name == "__init__.py", node.level, base)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from bggscore.cli import demo` imports the module bggscore.cli.demo
                add(node.lineno, sub if sub in MODULES else base, tc, fn)
        elif isinstance(node, ast.Call) and _called_name(node.func) == "import_module":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                add(node.lineno, first.value, tc, fn)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True, fn)
            for child in node.orelse:
                visit(child, tc, fn)
            return
        inner = fn or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, tc, inner)

    visit(tree, False, False)
    return found


IMPORTS = [imp for name, path in MODULES.items() for imp in scan(name, path)]


def layer_of(module: str) -> tuple[int, str]:
    """(level, group) of a module: 0 is the top layer."""
    best: tuple[int, int, str] | None = None
    for level, (_, groups) in enumerate(LAYERS):
        for group, prefixes in groups.items():
            for prefix in prefixes:
                matches = module == prefix or module.startswith(prefix + ".")
                if matches and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), level, group)
    if best is None:
        raise LookupError(module)
    return best[1], best[2]


def test_the_scan_sees_every_kind_of_import() -> None:
    kinds = {(i.function_level, i.type_checking) for i in IMPORTS}
    assert kinds >= {(False, False), (True, False), (False, True)}
    # `from bggscore import __version__` is an import of the package itself
    assert any(i.imported == "bggscore" for i in IMPORTS)
    # `from bggscore.cli import demo` is an import of the submodule
    assert any(
        i.importer == "bggscore.cli.main" and i.imported == "bggscore.cli.demo" for i in IMPORTS
    )


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in sorted(MODULES):
        try:
            layer_of(module)
        except LookupError:
            unplaced.append(module)
    assert not unplaced, f"modules in no layer (add them to LAYERS in {__file__}): {unplaced}"


def test_every_layer_entry_names_a_module() -> None:
    optional = {"bggscore.results"}
    listed = {p for _, groups in LAYERS for prefixes in groups.values() for p in prefixes}
    stale = sorted(p for p in listed - optional if p not in MODULES)
    assert not stale, f"LAYERS lists modules that do not exist (renamed?): {stale}"


def test_every_import_names_an_existing_module() -> None:
    missing = [i.where() for i in IMPORTS if i.imported not in MODULES]
    assert not missing, "imports of no module under src/bggscore:\n" + "\n".join(missing)


def test_imports_run_down_the_layers() -> None:
    broken = []
    for imp in IMPORTS:
        level_a, group_a = layer_of(imp.importer)
        level_b, group_b = layer_of(imp.imported)
        if level_b < level_a:
            broken.append(
                f"{imp.where()}: layer {LAYERS[level_a][0]!r} may not import the higher "
                f"layer {LAYERS[level_b][0]!r}"
            )
        elif level_b == level_a and group_a != group_b:
            broken.append(
                f"{imp.where()}: {group_a!r} and {group_b!r} are independent "
                f"(layer {LAYERS[level_a][0]!r}) and may not import each other"
            )
    assert not broken, "imports against the layering:\n" + "\n".join(broken)


def test_scoring_never_imports_training() -> None:
    broken = [
        f"{i.where()}: scoring is serving code and may not import training"
        for i in IMPORTS
        if layer_of(i.importer)[1] == "scoring" and layer_of(i.imported)[1] == "training"
    ]
    assert not broken, "\n".join(broken)


def test_stages_imports_only_the_standard_library_and_errors() -> None:
    path = MODULES["bggscore.stages"]
    broken = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." if node.level else node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name == "bggscore.errors" or top in sys.stdlib_module_names:
                continue
            broken.append(
                f"src/bggscore/stages.py:{node.lineno}: bggscore.stages imports {name}: "
                "stages may import only the standard library and bggscore.errors"
            )
    assert not broken, "\n".join(broken)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative DFS, sorted for stable output)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in sorted(graph):
        if state.get(root):
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop(0)
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph.get(nxt, ()))))
    return None


def test_find_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"a"}}) == ["a", "a"]


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    where: dict[tuple[str, str], Import] = {}
    for imp in IMPORTS:
        edge = (imp.importer, imp.imported)
        if imp.importer == imp.imported or edge in CYCLE_EXEMPT:
            continue
        graph[imp.importer].add(imp.imported)
        where.setdefault(edge, imp)
    cycle = _find_cycle(graph)
    if cycle is not None:
        edges = "\n".join(where[(a, b)].where() for a, b in itertools.pairwise(cycle))
        pytest.fail("import cycle " + " -> ".join(cycle) + ":\n" + edges)


def test_cycle_exemptions_are_still_needed() -> None:
    edges = {(i.importer, i.imported) for i in IMPORTS}
    stale = [edge for edge in CYCLE_EXEMPT if edge not in edges]
    assert not stale, f"CYCLE_EXEMPT names imports that no longer exist: {stale}"
