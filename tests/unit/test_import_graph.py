"""No import cycles among the modules of ``coldrec``, ``training`` and ``serving``.

Why: a cycle makes import order matter (a half-initialised module, an ImportError that depends on
which entry point ran first) and hides which module owns what; a function-level import only
postpones the cycle to the first call, so it counts too. The graph is read from the source
(``ast``): every ``import`` / ``from ... import`` anywhere in a module, ``if TYPE_CHECKING:``
bodies included; ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``. Only edges between modules of these packages count.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("coldrec", "training", "serving")

def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        base = ROOT / pkg
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, ``if TYPE_CHECKING:`` bodies included: a circle that
    only type hints close is still two modules that each need the other."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    if node.level:  # relative: from the module's package, up level - 1
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    out = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
            out.add(sub)
        elif base in modules:
            out.add(base)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(name, path, node, modules)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.add(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _path_through(graph: dict[str, set[str]], component: frozenset[str]) -> str:
    """One cycle inside the component, for the failure message (a -> b -> a)."""
    start = min(component)
    seen: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                path = [node]
                while (parent := seen[path[-1]]) is not None:
                    path.append(parent)
                return " -> ".join(reversed(path)) + f" -> {start}"
            if nxt not in seen:
                seen[nxt] = node
                queue.append(nxt)
    return ", ".join(sorted(component))


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "coldrec.quality.validation" in graph and "coldrec.data.contract" in graph
    assert "coldrec.data.coercion" in graph["coldrec.data.contract"]  # from coldrec import coercion -> the module
    assert "coldrec.data.prepare" in graph["coldrec.quality.validation"]  # imported inside validate_source
    assert "coldrec.quality.results" in graph["coldrec.quality.report"]


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert _path_through(graph, frozenset({"a", "b", "c"})) == "a -> b -> c -> a"


def test_no_import_cycles():
    graph = import_graph()
    new = cycles(graph)
    assert not new, "import cycle(s): " + "; ".join(_path_through(graph, c) for c in new)


def test_the_quality_package_has_no_cycle():
    graph = import_graph()
    quality = {m: {t for t in ts if t.startswith("coldrec.quality")} for m, ts in graph.items()
               if m.startswith("coldrec.quality")}
    assert cycles(quality) == []


# The layers, lowest first (docs/architecture.md): a module may import its own layer and those below,
# never one above. Within a layer, packages side by side (quality and feature_store; orchestration and
# serving) do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("coldrec.core",),
    ("coldrec.data",),
    ("coldrec.quality", "coldrec.feature_store"),
    ("coldrec.runtime",),
    ("training",),
    ("coldrec.release",),
    ("coldrec.orchestration", "serving"),
    ("coldrec.cli",),
)


def layer_of(module: str) -> tuple[int, str] | None:
    """(layer index, package) of a module; None for the bare ``coldrec`` package."""
    for i, packages in enumerate(LAYERS):
        for p in packages:
            if module == p or module.startswith(p + "."):
                return i, p
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module)
        for t in sorted(targets):
            there = layer_of(t)
            if here is None or there is None:
                continue
            if there[0] > here[0] or (there[0] == here[0] and there[1] != here[1]):
                bad.append(f"{module} ({here[1]}) imports {t} ({there[1]})")
    return bad


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer_of(m) is None] == ["coldrec"]


def test_no_module_imports_from_a_higher_layer_or_a_sibling():
    assert upward_imports(import_graph()) == []


def test_the_layer_check_finds_an_upward_import():
    graph = {"coldrec.core.paths": {"coldrec.runtime.version"}, "coldrec.quality.validation": {"coldrec.feature_store.store"},
             "serving.engine": {"coldrec.runtime.version"}}
    assert upward_imports(graph) == [
        "coldrec.core.paths (coldrec.core) imports coldrec.runtime.version (coldrec.runtime)",
        "coldrec.quality.validation (coldrec.quality) imports coldrec.feature_store.store (coldrec.feature_store)"]
