"""The shape docs/architecture.md promises, read from the source (AST, nothing imported): imports go
``orchestrator -> search_spaces -> trainables`` with no cycle (module level or inside functions),
no method package imports another, ``trainables/`` imports neither Ray nor MLflow at module level,
and no module passes 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestrator", "search_spaces", "trainables")
LAYER = {"orchestrator": 0, "search_spaces": 1, "trainables": 2}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    out: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
            out |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
    return out


GRAPH = {m: {d for d in _imports(p) if d in MODULES and d != m} for m, p in MODULES.items()}


def test_no_import_cycle():
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                cycle.extend(path[path.index(d):] + [m, d] if d in path else [m, d])
                return True
            if d not in state and visit(d, [*path, m]):
                return True
        state[m] = 2
        return False

    for m in sorted(GRAPH):
        if m not in state and visit(m, []):
            break
    assert not cycle, f"import cycle: {' -> '.join(cycle)}"


def test_imports_go_one_way_and_methods_do_not_import_each_other():
    wrong = [(m, d) for m, ds in GRAPH.items() for d in ds
             if LAYER[d.split(".")[0]] < LAYER[m.split(".")[0]]]
    assert not wrong, f"imports against orchestrator -> search_spaces -> trainables: {wrong}"
    cross = [(m, d) for m, ds in GRAPH.items() for d in ds
             if m.startswith("trainables.methods.") and d.startswith("trainables.methods.")
             and m.split(".")[2] != d.split(".")[2]]
    assert not cross, f"a method package imports another (move what they share to the task): {cross}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("trainables")))
def test_trainables_import_no_ray_or_mlflow_at_module_level(name):
    heavy = {d for d in _imports(MODULES[name], top_level_only=True) if d.split(".")[0] in ("ray", "mlflow")}
    assert not heavy, f"{name} imports {sorted(heavy)} at module level"


def test_no_module_over_500_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"
