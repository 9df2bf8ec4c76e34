"""The package's layers, as docs/architecture.md draws them: no import cycle between components
and no import from a lower layer up to a higher one (issue 12).

A component is a top-level module or folder of ``perfmodel/``. Every import counts, at module
level or inside a function (a lazy import is still a dependency), except the package facade
``perfmodel/__init__.py``, which only names things lazily for users.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "perfmodel"

# rank of each component: a component may import only components of a strictly lower rank
# (docs/architecture.md, "Layers"). Keep the two in step.
LAYERS = {
    "errors": 0, "frozen": 0,
    "_io": 1, "units": 1, "formulas": 1, "tables": 1,
    "symbolic": 2, "catalog": 2, "plan": 2, "plots": 2,
    "specs": 3, "workloads": 3,
    "prediction": 4,
    "sweeps": 5, "crossover": 5, "topologies": 5, "tasks": 5, "validation": 5, "calibrate": 5,
    "compare": 6,
    "cli": 7,
    "__main__": 8,
}
# what formulas/ may import besides itself: nothing of ours (the backend helper is inside it)
FORMULAS_MAY_IMPORT: set[str] = set()


def _component(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "perfmodel":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = _module_name(path).split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                yield ".".join(base + ([node.module] if node.module else [])), node.lineno
            elif node.module:
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def component_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) component pairs -> where they occur (file:line)."""
    edges: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _component(_module_name(path))
        if src == "__init__":
            continue
        for module, line in _imports(path):
            dst = _component(module)
            if dst is not None and dst != src:
                edges[(src, dst)].append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return edges


def test_every_component_has_a_layer():
    found = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    found.discard("__init__")
    missing = sorted(found - set(LAYERS))
    assert not missing, f"components without a layer in tests/test_architecture.py and docs/architecture.md: {missing}"


def test_no_upward_import():
    upward = [f"{a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]}) at {where[0]}"
              for (a, b), where in component_edges().items() if b != "__init__" and LAYERS[b] >= LAYERS[a]]
    assert not upward, "\n".join(upward)


def test_no_import_of_the_facade_from_inside():
    # perfmodel/__init__ resolves names lazily from the components; a component importing it
    # would depend on everything
    inside = [w for (a, b), where in component_edges().items() if b == "__init__" for w in where]
    assert not inside, inside


def test_no_cycle():
    graph = collections.defaultdict(set)
    for a, b in component_edges():
        graph[a].add(b)
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [node])


def test_formulas_import_nothing_of_ours():
    bad = [f"{where[0]} imports {b}" for (a, b), where in component_edges().items()
           if a == "formulas" and b not in FORMULAS_MAY_IMPORT]
    assert not bad, bad


def test_root_stays_small():
    # issue 12: the package root holds the cross-cutting basics only (~12 modules)
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 12, modules


def test_nothing_cites_files_outside_the_repository():
    # the design contract and conventions live in docs/ now
    offenders = []
    hardware = PACKAGE.parent / "hardware"
    for path in (list(PACKAGE.rglob("*.py")) + list(PACKAGE.rglob("*.toml")) + list(PACKAGE.rglob("*.md"))
                 + list(hardware.rglob("*.toml")) + list(hardware.rglob("*.md"))):
        text = path.read_text(encoding="utf-8")
        for name in ("DESIGN.md", "CONVENTIONS.md", "../shared", "shared/DESIGN"):
            if name in text:
                offenders.append(f"{path.relative_to(PACKAGE.parent)} cites {name}")
    assert not offenders, "\n".join(offenders[:20])


MAX_MODULE_LINES = 400  # issue 12
MAX_FUNCTION_LINES = 60  # issue 12: longer only with the reason in its docstring ("... on purpose ...")


def test_modules_and_functions_stay_small():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        where = path.relative_to(PACKAGE.parent)
        if src.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{where}: {src.count(chr(10))} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and "on purpose" not in (ast.get_docstring(node) or ""):
                    too_long.append(f"{where}:{node.lineno} {node.name}: {n} lines, no reason in its docstring")
    assert not too_long, "\n".join(too_long)
