"""Symbolic forms of the formulas, built from their parameter names and the notation table.

``to_expr(ring_allreduce_time)`` calls the formula with one positive sympy Symbol per parameter
and returns the expression; ``to_latex`` prints it with the symbols of the notation table, so no
formula needs hand-written LaTeX. sympy is imported only when these functions run.
"""

from __future__ import annotations

import inspect

from perfmodel.formulas.notation import NOTATION

__all__ = ["symbols_for", "to_expr", "to_latex", "lambdify"]


def symbols_for(func) -> dict:
    """One positive real Symbol per parameter of ``func``, named after the parameter."""
    import sympy

    return {name: sympy.Symbol(name, positive=True) for name in inspect.signature(func).parameters}


def to_expr(func):
    """The sympy expression of ``func`` over its parameters."""
    return func(**symbols_for(func))


def latex_names(func) -> dict:
    """Symbol -> LaTeX for the parameters of ``func`` (names missing from the table print as-is)."""
    syms = symbols_for(func)
    out = {}
    for name, sym in syms.items():
        note = NOTATION.get(name)
        out[sym] = note.latex if note else name.replace("_", r"\_")
    return out


def to_latex(func, *, lhs: bool = True) -> str:
    """``T = 2 (n - 1) \\alpha + ...`` for a formula, with the notation table's symbols."""
    import sympy

    expr = to_expr(func)
    body = sympy.latex(expr, symbol_names=latex_names(func))
    if not lhs:
        return body
    name = func.__name__.replace("_", r"\_")
    return rf"\mathrm{{{name}}} = {body}"


def lambdify(func, modules: str = "numpy"):
    """A numeric function compiled from the symbolic form (used to cross-check backends)."""
    import sympy

    syms = symbols_for(func)
    return sympy.lambdify(list(syms.values()), to_expr(func), modules=modules)
