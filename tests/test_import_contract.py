"""The import contract between the four packages, read from the source tree as it installs.

Layers (each may import only itself and the ones before it):
    edgepose (runtime)  <  models  <  converters  <  benchmarks
The folder-to-namespace mapping comes from setup.py (``converters/`` installs as
``edgepose.converters`` ...), so an import is judged by the package it lands in once installed,
whatever spelling it uses (absolute, relative, or a module path in a string handed to importlib).
Module-level imports between modules must also form no cycle: a cycle makes import order matter.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("edgepose", "edgepose.models", "edgepose.converters", "edgepose.benchmarks")


def _mapping() -> dict[str, str]:
    """setup.py's MAPPED dict (namespace -> folder), read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MAPPED" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no MAPPED dict: the folder mapping moved; update this test")


def _modules() -> dict[str, Path]:
    """Installed module name -> source file, for every .py of the four packages."""
    folders = {"edgepose": "edgepose", **_mapping()}
    found: dict[str, Path] = {}
    for namespace, folder in folders.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([namespace, *parts])] = path
    return found


def _layer(module: str) -> str | None:
    for layer in reversed(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _names(module: str, path: Path, tree: ast.AST, *, top_level_only: bool) -> set[str]:
    """Modules named by imports (and, unless top_level_only, by strings that look like module paths)."""
    names: set[str] = set()
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
        elif not top_level_only and isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.split(":")[0]  # entry-point style "pkg.mod:attr"
            if text.startswith("edgepose.") and " " not in text and "/" not in text:
                names.add(text)
    return names


def _resolve(name: str) -> str:
    """The name as installed: a top-level `converters.x` / `models.x` / `benchmarks.x` is the mapped package."""
    head = name.split(".")[0]
    mapped = {folder: namespace for namespace, folder in _mapping().items()}
    return mapped[head] + name[len(head):] if head in mapped else name


MODULES = _modules()


def wrong_way(module: str, path: Path, source: str) -> list[str]:
    """Installed names `source` (the text of `module`) imports from a later layer than its own."""
    own = LAYERS.index(_layer(module))
    tree = ast.parse(source, filename=str(path))
    return sorted(n for n in map(_resolve, _names(module, path, tree, top_level_only=False))
                  if _layer(n) is not None and LAYERS.index(_layer(n)) > own)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_points_to_a_later_layer(module):
    path = MODULES[module]
    wrong = wrong_way(module, path, path.read_text())
    assert not wrong, (f"{path.relative_to(ROOT)} ({_layer(module)}) imports {wrong}: the layers are "
                       f"{' < '.join(LAYERS)}; a package may use only itself and the ones before it "
                       "(register an entry point instead, as the CLI's convert/bench commands do)")


def _module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for name in map(_resolve, _names(module, path, tree, top_level_only=True)):
            while name and name not in MODULES:  # `from pkg import name` names an attribute, not a module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def test_module_level_imports_have_no_cycle():
    graph = _module_graph()
    # a package's __init__ importing its own submodules is how packages expose names; a submodule
    # importing its parent package then follows the __init__'s order, so arrows to a parent package
    # are not counted as the back half of a cycle
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_contract_test_sees_the_tree():
    """Guards the test itself: it must find all four packages and real arrows between them."""
    layers = {_layer(m) for m in MODULES}
    assert layers == set(LAYERS)
    graph = _module_graph()
    assert "edgepose.spec" in graph["edgepose.converters.pipeline"] or any(
        t.startswith("edgepose.") and _layer(t) == "edgepose" for t in graph["edgepose.converters.pipeline"])
    # every spelling of a wrong-way import is caught, the folder name included
    runtime = ("edgepose.predictor", MODULES["edgepose.predictor"])
    for text in ("import converters.pipeline", "from edgepose.benchmarks import harness",
                 "def f():\n    from models.registry import create_model",
                 "importlib.import_module('edgepose.converters.pinned')"):
        assert wrong_way(*runtime, text), text
    converters = ("edgepose.converters.stages", MODULES["edgepose.converters.stages"])
    assert "edgepose.benchmarks.table_a" in wrong_way(*converters, "from ..benchmarks import table_a")
    assert not wrong_way(*converters, "from ..models.registry import create_model\nfrom edgepose import spec")
