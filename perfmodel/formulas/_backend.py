"""The few operations whose spelling differs between Python floats, numpy and sympy.

Formulas are written once with ``+ - * / **`` and these helpers, and then run unchanged on
plain floats, numpy arrays (and pandas Series) and sympy expressions. Nothing heavy is imported
at module import time: numpy and sympy are imported only when an argument of theirs arrives.

Dispatch rule: if any argument is a sympy object the sympy form is used; else if any argument
is not a plain ``int``/``float``/``bool`` the numpy form is used (arrays, Series, numpy scalars);
else the ``math`` form.
"""

from __future__ import annotations

import math

__all__ = ["maximum", "minimum", "ceil", "floor", "log2", "log", "sqrt", "where", "const", "is_symbolic"]

_PLAIN = (int, float, bool)


def is_symbolic(*xs) -> bool:
    """True when any argument is a sympy object."""
    return any(type(x).__module__.startswith("sympy") for x in xs)


_PLAIN_TYPES = frozenset(_PLAIN)


def _backend(*xs) -> str:
    # fast path: plain Python numbers (what one predict passes, tens of thousands of calls a second)
    for x in xs:
        if type(x) not in _PLAIN_TYPES:
            break
    else:
        return "float"
    if is_symbolic(*xs):
        return "sympy"
    for x in xs:
        if not isinstance(x, _PLAIN):
            return "numpy"
    return "float"


def _np():
    import numpy

    return numpy


def _sp():
    import sympy

    return sympy


def maximum(a, b):
    """Elementwise maximum of ``a`` and ``b``."""
    if type(a) in _PLAIN_TYPES and type(b) in _PLAIN_TYPES:  # inlined fast path (one predict)
        return a if a >= b else b
    kind = _backend(a, b)
    if kind == "float":
        return a if a >= b else b
    if kind == "sympy":
        return _sp().Max(a, b)
    return _np().maximum(a, b)


def minimum(a, b):
    """Elementwise minimum of ``a`` and ``b``."""
    if type(a) in _PLAIN_TYPES and type(b) in _PLAIN_TYPES:  # inlined fast path (one predict)
        return a if a <= b else b
    kind = _backend(a, b)
    if kind == "float":
        return a if a <= b else b
    if kind == "sympy":
        return _sp().Min(a, b)
    return _np().minimum(a, b)


def ceil(x):
    """Smallest integer not less than ``x`` (as a float for numpy, an integer for floats)."""
    kind = _backend(x)
    if kind == "float":
        return math.ceil(x)
    if kind == "sympy":
        return _sp().ceiling(x)
    return _np().ceil(x)


def floor(x):
    """Largest integer not greater than ``x``."""
    kind = _backend(x)
    if kind == "float":
        return math.floor(x)
    if kind == "sympy":
        return _sp().floor(x)
    return _np().floor(x)


def log2(x):
    """Base-2 logarithm."""
    kind = _backend(x)
    if kind == "float":
        return math.log2(x)
    if kind == "sympy":
        return _sp().log(x, 2)
    return _np().log2(x)


def log(x):
    """Natural logarithm."""
    kind = _backend(x)
    if kind == "float":
        return math.log(x)
    if kind == "sympy":
        return _sp().log(x)
    return _np().log(x)


def sqrt(x):
    """Square root."""
    kind = _backend(x)
    if kind == "float":
        return math.sqrt(x)
    if kind == "sympy":
        return _sp().sqrt(x)
    return _np().sqrt(x)


def where(cond, a, b):
    """``a`` where ``cond`` holds, else ``b`` (a Piecewise for sympy).

    Use this instead of ``if`` on an input: ``if n == 1`` silently takes the False branch for a
    sympy Symbol and fails on a numpy array.
    """
    if type(cond) in _PLAIN_TYPES and type(a) in _PLAIN_TYPES and type(b) in _PLAIN_TYPES:  # inlined fast path
        return a if cond else b
    kind = _backend(cond, a, b)
    if kind == "float":
        return a if cond else b
    if kind == "sympy":
        sp = _sp()
        return sp.Piecewise((a, cond), (b, True))
    return _np().where(cond, a, b)


def const(value, like):
    """``value`` with the shape of a numpy ``like`` and the type of a sympy ``like`` (0*Symbol is the sympy
    Integer 0), so every formula returns an array or an expression, never a bare int."""
    return 0 * like + value
