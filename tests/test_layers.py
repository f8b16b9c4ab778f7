"""The package layers stay acyclic: no import cycle between inparsx's packages, and no lower layer imports the
runner or the runner a stage package (issue 17; the graph as ``/work/tools/imports.py`` builds it: package =
``inparsx.<sub>`` or a top-level module, imports at module level and inside functions, ``TYPE_CHECKING`` blocks
skipped)."""

from __future__ import annotations

import ast
from pathlib import Path

from inparsx.stages import STAGE_SPECS

PACKAGE = Path(__file__).resolve().parent.parent / "inparsx"


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute ``inparsx`` import outside ``if TYPE_CHECKING:`` bodies."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name.startswith("inparsx"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("inparsx"):
            found.append((node.lineno, node.module or ""))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def package_edges() -> dict[tuple[str, str], list[str]]:
    """``(importing package, imported package) -> ["file:line", ...]``, self-edges left out."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        source = _package_of(".".join(rel.parts).removesuffix(".__init__"))
        for line, module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = _package_of(module)
            if target != source:
                edges.setdefault((source, target), []).append(f"{rel}.py:{line}")
    return edges


def strongly_connected(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The groups of more than one package that import each other, directly or not (each sorted)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    groups = {frozenset(b for b in graph if b == a or (b in reach[a] and a in reach.get(b, ()))) for a in graph}
    return sorted(sorted(group) for group in groups if len(group) > 1)


def test_the_packages_import_each_other_in_no_cycle():
    edges = package_edges()
    groups = strongly_connected(edges)
    where = [
        f"{a} -> {b}: {', '.join(edges[a, b])}" for group in groups for a in group for b in group if (a, b) in edges
    ]
    assert groups == [], "import cycle between packages:\n" + "\n".join(where)


LOWER = ("inparsx.store", "inparsx.models", "inparsx.preflight", "inparsx.report", "inparsx.cachekey")
LOWER += ("inparsx.artifacts", "inparsx.stages", "inparsx.datasets", "inparsx.context", "inparsx.recipe")


def test_no_lower_layer_imports_the_runner():
    """Markers (:mod:`inparsx.cachekey`), ``cache_home`` (:mod:`inparsx.artifacts`) and the held-out documents
    (:mod:`inparsx.datasets.holdout`) live below the runner; what reads them does not import it."""
    edges = package_edges()
    wrong = {f"{a}: {', '.join(edges[a, b])}" for a, b in edges if b == "inparsx.pipeline" and a in LOWER}
    assert not wrong, f"import inparsx.pipeline from a lower layer: {sorted(wrong)}"


def test_the_runner_imports_no_stage_package():
    """The runner reaches stage code through :attr:`inparsx.stages.StageSpec.runner` strings only."""
    stages = {f"inparsx.{spec.name}" for spec in STAGE_SPECS}
    edges = package_edges()
    wrong = {f"{b}: {', '.join(edges[a, b])}" for a, b in edges if a == "inparsx.pipeline" and b in stages}
    assert not wrong, f"inparsx.pipeline imports stage packages: {sorted(wrong)}"


def test_the_moved_names_stay_importable_from_their_old_homes():
    from inparsx import cachekey, datasets, pipeline
    from inparsx.artifacts import EXCLUDED_QIDS, cache_home
    from inparsx.datasets.holdout import Holdout
    from inparsx.estimate.holdout import Holdout as OldHoldout

    assert pipeline.read_marker is cachekey.read_marker
    assert pipeline.DONE_MARKER == cachekey.DONE_MARKER and pipeline.STARTED_MARKER == cachekey.STARTED_MARKER
    assert pipeline.cache_home is cache_home and pipeline.EXCLUDED_QIDS == EXCLUDED_QIDS
    assert OldHoldout is Holdout and datasets.holdout.Holdout is Holdout
