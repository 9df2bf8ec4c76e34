"""Every formula keeps the conventions (docs/conventions.md 1-4): checked, not hoped for."""

import ast
import inspect
import pathlib

import pytest
import sympy

from perfmodel.catalog import formulas
from perfmodel.formulas import MODULES
from perfmodel.formulas.notation import NOTATION

FORMULA_DIR = pathlib.Path(__file__).resolve().parents[2] / "perfmodel" / "formulas"
ALL = formulas()
IDS = [f.name for f in ALL]


def test_every_module_exists():
    assert {f.module for f in ALL} == set(MODULES)


@pytest.mark.parametrize("path", sorted(FORMULA_DIR.glob("*.py")), ids=lambda p: p.name)
def test_formula_modules_avoid_backend_traps(path):
    """No builtin max/min/round/abs, no math.*, no //, no numpy/sympy import, no `if` on inputs."""
    if path.name in ("_backend.py", "notation.py", "__init__.py"):
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"max", "min", "round", "abs", "int", "float"}, (path.name, node.lineno)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert node.value.id not in {"math", "np", "numpy", "sympy", "sp"}, (path.name, node.lineno)
        if isinstance(node, ast.BinOp):
            assert not isinstance(node.op, ast.FloorDiv), (path.name, node.lineno)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for mod in mods:
                assert mod.startswith("perfmodel.formulas") or mod in ("__future__",), (path.name, mod)
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            params = {a.arg for a in node.args.args + node.args.kwonlyargs}
            for sub in ast.walk(node):
                if isinstance(sub, (ast.If, ast.IfExp, ast.BoolOp)):
                    names = {n.id for n in ast.walk(sub.test if hasattr(sub, "test") else sub) if isinstance(n, ast.Name)}
                    assert not names & params, (path.name, node.name, sub.lineno, "branch on an input: use where()")


@pytest.mark.parametrize("formula", ALL, ids=IDS)
def test_every_parameter_is_in_the_notation_table(formula):
    missing = [p for p in formula.parameters if p not in NOTATION]
    assert not missing, f"{formula.name}: add {missing} to formulas/notation.py"


@pytest.mark.parametrize("formula", ALL, ids=IDS)
def test_docstring_holds_math_source_and_doctest(formula):
    doc = formula.func.__doc__ or ""
    assert doc.strip(), formula.name
    assert "math::" in doc or "$" in doc, f"{formula.name}: no LaTeX equation"
    assert ">>>" in doc, f"{formula.name}: no doctest"
    assert any(w in doc.lower() for w in ("source", "ref", "see ")), f"{formula.name}: no source"
    raw = inspect.getsource(formula.func)
    assert 'r"""' in raw, f"{formula.name}: docstring is not a raw string"


@pytest.mark.parametrize("formula", ALL, ids=IDS)
def test_runs_on_sympy_symbols(formula):
    syms = {p: sympy.Symbol(p, positive=True) for p in formula.parameters}
    result = formula.func(**syms)
    assert isinstance(result, (sympy.Basic, int, float)), (formula.name, type(result))


def test_a_formula_with_symbols_can_be_solved():
    from perfmodel.formulas.collectives import ring_allreduce_time

    n, S, a, b, T = sympy.symbols("n S alpha beta T", positive=True)
    (solution,) = sympy.solve(sympy.Eq(ring_allreduce_time(n, S, a, b), T), b)
    assert sympy.simplify(ring_allreduce_time(n, S, a, solution) - T) == 0


@pytest.mark.parametrize("path", sorted(FORMULA_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_control_characters_in_formula_sources(path):
    """A LaTeX backslash written through a non-raw string becomes a control character (\\a, \\b,
    \\f, \\r): the docstring then shows 'lpha' and 'rac'."""
    bad = [(i + 1, line) for i, line in enumerate(path.read_text().splitlines())
           if any(ord(ch) < 32 and ch != "\t" for ch in line)]
    assert not bad, bad[:3]
