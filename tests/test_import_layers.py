"""Imports only go down the package's layers, and no two subpackages import each other.

The layers, lowest first: errors and the package root; io, parallel and specs;
stats, datasets and preprocess; transcriptomics; report and config; workflows; commands; cli;
__main__. A module may import from a lower layer only: subpackages in one layer are independent.
Every import counts, including those inside functions and ``if TYPE_CHECKING:`` blocks, because
each one ties the lower layer to the higher one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "graymatter"

#: Rank of each top-level part of the package ("" is the package's own ``__init__``).
LAYERS = {
    "": 0, "errors": 0,
    "io": 1, "parallel": 1, "specs": 1,
    "stats": 2, "datasets": 2, "preprocess": 2,
    "transcriptomics": 3,
    "report": 4, "config": 4,
    "workflows": 5,
    "commands": 6,
    "cli": 7,
    "__main__": 8,
}


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name (``graymatter.io.images``) -> file, for every ``.py`` under root."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(module: str, path: Path):
    """Yield ``(imported module, line)`` for every import statement anywhere in the file."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno


def _part(module: str, package: str) -> str | None:
    """Top-level part of the package a dotted name belongs to (None: outside the package)."""
    parts = module.split(".")
    if parts[0] != package:
        return None
    return parts[1] if len(parts) > 1 else ""


def check_layers(root: Path, layers: dict[str, int]) -> list[str]:
    """Every layering problem of the package at ``root``, one readable line each.

    Reports modules in a part that has no layer, imports of a higher or same-layer part, and
    cycles between parts (each with the imports that close it).
    """
    package = root.name
    problems, edges = [], defaultdict(list)
    for module, path in _modules(root).items():
        here = _part(module, package)
        if here not in layers:
            problems.append(f"{module} ({path}) is in {here!r}, which has no layer: add it to "
                            "LAYERS in tests/test_import_layers.py")
            continue
        for target, line in _imports(module, path):
            there = _part(target, package)
            if there is None or there == here:
                continue
            edges[here, there].append(f"{path.relative_to(root.parent)}:{line} imports {target}")
            if there not in layers:
                problems.append(f"{path.relative_to(root.parent)}:{line}: {module} imports "
                                f"{target}, which is in no layer")
            elif layers[there] >= layers[here]:
                way = "upward" if layers[there] > layers[here] else "same-layer"
                problems.append(f"{path.relative_to(root.parent)}:{line}: {way} import "
                                f"{module} -> {target} ({here or package} is layer "
                                f"{layers[here]}, {there or package} is layer {layers[there]})")
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    for cycle in _cycles(graph):
        links = [f"{a or package} -> {b or package} ({edges[a, b][0]})"
                 for a, b in zip(cycle, cycle[1:] + cycle[:1])]
        problems.append("import cycle between subpackages: " + "; ".join(links))
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One simple cycle per strongly connected group of parts (Tarjan), as a list of nodes."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # shortest way round from the group's first part back to it
        start = min(group)
        previous, queue = {start: None}, [start]
        while queue:
            node = queue.pop(0)
            if node != start and start in graph[node]:
                break
            for w in sorted(graph[node] & group):
                if w not in previous:
                    previous[w] = node
                    queue.append(w)
        path = []
        while node is not None:
            path.append(node)
            node = previous[node]
        cycles.append(path[::-1])
    return cycles


def test_imports_only_go_down_and_subpackages_form_no_cycle():
    problems = check_layers(PACKAGE, LAYERS)
    assert not problems, "\n".join(problems)


def _toy_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "toy"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


TOY_LAYERS = {"": 0, "io": 1, "stats": 2, "report": 3, "workflows": 4}


def test_the_check_names_an_upward_import_inside_a_function(tmp_path):
    root = _toy_package(tmp_path, {
        "io/__init__.py": "",
        "io/images.py": "import os\n\n\ndef load():\n    from ..workflows.glm import run\n",
        "workflows/__init__.py": "",
        "workflows/glm.py": "from toy.io import images\n\n\ndef run():\n    pass\n",
    })
    problems = check_layers(root, TOY_LAYERS)
    upward = [p for p in problems if "upward import" in p]
    assert upward == ["toy/io/images.py:5: upward import toy.io.images -> toy.workflows.glm "
                      "(io is layer 1, workflows is layer 4)"]
    cycles = [p for p in problems if "cycle" in p]
    assert len(cycles) == 1 and "io -> workflows" in cycles[0] and "workflows -> io" in cycles[0]
    assert "toy/io/images.py:5" in cycles[0] and "toy/workflows/glm.py:1" in cycles[0]


def test_the_check_refuses_same_layer_imports_and_unmapped_parts(tmp_path):
    root = _toy_package(tmp_path, {
        "report/__init__.py": "from toy.stats import peaks\n",
        "stats/__init__.py": "",
        "stats/peaks.py": "import toy.report\n",
        "plugins.py": "from . import io\n",
    })
    problems = check_layers(root, TOY_LAYERS)
    assert any(p.startswith("toy/stats/peaks.py:1: upward import toy.stats.peaks -> toy.report")
               for p in problems), problems
    assert any("toy.plugins" in p and "no layer" in p for p in problems), problems
    assert not [p for p in problems if "toy/report/__init__.py" in p and "upward" in p]


@pytest.mark.parametrize("part", sorted(p for p in LAYERS if p))
def test_every_layer_names_a_real_part_of_the_package(part):
    assert (PACKAGE / part).is_dir() or (PACKAGE / f"{part}.py").is_file(), part
