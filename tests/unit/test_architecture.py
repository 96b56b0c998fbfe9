"""The package's layering (docs/architecture.md): dependencies point one way, and no module imports itself
back through others. Every import counts, also those inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import semsearch

PACKAGE_ROOT = Path(semsearch.__file__).parent

# Lower numbers are lower layers. A module may import its own package and lower layers, never a layer
# of the same rank beside it, nor a higher one.
LAYERS = {
    "errors": 0, "settings": 0, "version": 0,
    "engines": 1, "encoding": 1,
    "index": 2,
    "writing": 3, "query": 3,
    "distributed": 4,
    "lifecycle": 5,
    "service": 6,
    "cli": 7,
}
PUBLIC_API = "semsearch"  # the package's __init__: re-exports, above every layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The semsearch modules ``path`` imports, resolved to module names (a name imported from a package
    counts as that submodule when one exists)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == "semsearch" or t.startswith("semsearch."))
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE_ROOT.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): {m for m in imported_modules(p, known) if m in known} for p in paths}


def layer_of(module: str) -> tuple[str, int]:
    if module == PUBLIC_API:
        return PUBLIC_API, len(LAYERS) + 1
    top = module.split(".")[1]
    if module.endswith("__main__"):
        return top, LAYERS[top]
    return top, LAYERS[top]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
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


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in import_graph() if m != PUBLIC_API and m.split(".")[1] not in LAYERS]
    assert not unplaced, f"modules outside every layer (add them to LAYERS and docs/architecture.md): {unplaced}"


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_dependencies_point_down_only():
    wrong = []
    for module, imports in import_graph().items():
        package, rank = layer_of(module)
        for target in imports:
            target_package, target_rank = layer_of(target)
            if target_package != package and target_rank >= rank:
                wrong.append(f"{module} ({package}, layer {rank}) imports {target} ({target_package}, layer {target_rank})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_the_library_never_imports_the_worker_service():
    # ingest/ (the Celery app and its tasks) sits on top of the library; Celery loads ingest.tasks by name.
    service = [str(path.relative_to(PACKAGE_ROOT.parent)) for path in PACKAGE_ROOT.rglob("*.py")
               if any(isinstance(node, (ast.Import, ast.ImportFrom))
                      and any(name == "ingest" or name.startswith("ingest.")
                              for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                                           else [node.module or ""]))
                      for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert not service, f"library modules importing ingest/: {service}"


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("semsearch.cli.commands")[1] > layer_of("semsearch.query.search")[1]
