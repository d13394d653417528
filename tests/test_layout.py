"""The package's layers: no import cycle inside ``conflict_ie`` and no module over 500 lines.

Imports are read from the source with ``ast``, those inside functions included: an import
deferred into a function still ties the two modules together, it only hides the circle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "conflict_ie"
MAX_LINES = 500


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the package modules it imports anywhere in its source."""
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name in modules:
        targets = set()
        for node in ast.walk(ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))):
            found = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 0 and node.module and node.module.startswith("conflict_ie."):
                    found.append(node.module.split(".")[1])
                elif node.level == 0 and node.module == "conflict_ie":
                    found += [a.name for a in node.names]
                elif node.level == 1:
                    found += [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                found += [a.name.split(".")[1] for a in node.names if a.name.startswith("conflict_ie.")]
            targets |= {m for m in found if m in modules and m != name}
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_imports_inside_functions(tmp_path):
    (tmp_path / "low.py").write_text("def f():\n    from conflict_ie.high import g\n")
    (tmp_path / "high.py").write_text("from conflict_ie import low\nfrom .low import f\n")
    assert import_graph(tmp_path) == {"low": {"high"}, "high": {"low"}}


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_over_500_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines; split it by responsibility"
