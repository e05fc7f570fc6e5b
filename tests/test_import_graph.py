"""No import cycles inside the gateway package, counting imports behind `TYPE_CHECKING` too (a cycle hidden there
is still a cycle: app <-> deps/middleware/routes through AppState, tracing -> request_record -> sql_service ->
tracing through SqlAnswer were two)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gateway"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "gateway.pipeline.pipeline" in graph["gateway.app"] or "gateway.pipeline" in graph["gateway.app"]


def test_no_import_cycles_in_the_gateway() -> None:
    # A package's __init__ importing its own modules is not a cycle of concerns; everything else counts.
    graph = {name: {t for t in targets if not (name.startswith(t + ".") and t in graph_packages())}
             for name, targets in import_graph().items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def graph_packages() -> set[str]:
    return {module_name(path) for path in PACKAGE.rglob("__init__.py")}


def test_leaf_modules_import_nothing_of_the_gateway() -> None:
    graph = import_graph()
    for leaf in ("gateway.answer", "gateway.sql_check.result", "gateway.errors"):
        assert graph[leaf] == set(), (leaf, graph[leaf])


def test_the_schema_model_is_a_leaf_package() -> None:
    # The one schema reader: every step of the gateway reads it, so it may read nothing of theirs.
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("gateway.schema_model"):
            assert all(target.startswith("gateway.schema_model") for target in targets), (name, targets)
