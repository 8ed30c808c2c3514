"""The import graph of lsmrl/, app/ and tools/: no loops, every edge down the layers, files of a readable size.

Edges are read from the source (``ast``), function-level imports included and
``if TYPE_CHECKING:`` blocks left out (they run only in type checkers).
docs/design.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Lowest first: a unit may import only units of its own or a lower layer.
LAYERS = (
    ("lsmrl.errors", "lsmrl.allocator", "lsmrl.device"),
    ("lsmrl.data",),
    ("lsmrl.evaluation", "lsmrl.model"),
    ("lsmrl.losses",),
    ("lsmrl.config",),
    ("lsmrl.synth",),
    ("lsmrl.engine",),
    ("lsmrl.analysis",),
    ("lsmrl.viz",),
    ("lsmrl.cli", "lsmrl.__main__", "lsmrl"),
    ("app",),
    ("tools",),
)
MAX_LINES = 500


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _sources() -> dict[str, Path]:
    files = [*ROOT.glob("lsmrl/**/*.py"), *ROOT.glob("app/**/*.py"), *ROOT.glob("tools/*.py")]
    return {_module_name(p): p for p in files}


def _imports(path: Path, module: str, package: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(node) for block in ast.walk(tree)
                 if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                 for node in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if package else 0)]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    graph = {}
    for module, path in sources.items():
        edges = set()
        for name in _imports(path, module, path.name == "__init__.py"):
            while name and name not in sources:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "lsmrl":
        return "lsmrl" if len(parts) == 1 else f"lsmrl.{parts[1]}"
    return parts[0]


def _layer(unit: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit in units)


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _sources()}
    missing = sorted(u for u in units if not any(u in layer for layer in LAYERS))
    assert not missing, f"add these to LAYERS (and to docs/design.md's picture): {missing}"


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {other}" for module, edges in graph.items() for other in edges
                  if _unit(module) != "lsmrl" and _layer(_unit(other)) > _layer(_unit(module)))


def test_no_import_loops():
    assert _loops(_graph()) == []


def test_no_edge_runs_up_the_layers():
    assert _upward(_graph()) == []


def test_the_app_and_the_library_never_import_the_tools():
    offenders = sorted(m for m, edges in _graph().items() if not m.startswith("tools")
                       and any(e.startswith("tools") for e in edges))
    assert offenders == []


def test_files_in_lsmrl_and_app_stay_readable():
    long = {m: n for m, p in _sources().items() if not m.startswith("tools")
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checker_sees_a_loop_and_an_upward_edge():
    """The checks above can fail: a model module importing the engine is both an upward edge and a loop."""
    graph = _graph()
    graph["lsmrl.model.lsmrl"] = graph["lsmrl.model.lsmrl"] | {"lsmrl.engine.extract"}
    assert _upward(graph) == ["lsmrl.model.lsmrl -> lsmrl.engine.extract"]
    assert any("lsmrl.model.lsmrl" in loop and "lsmrl.engine.extract" in loop for loop in _loops(graph))
