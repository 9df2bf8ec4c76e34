"""Shared checks that a formula gives the same numbers on floats, numpy arrays and sympy."""

from __future__ import annotations

import inspect

import numpy as np
import sympy as sp


def float_value(func, **kwargs) -> float:
    return float(func(**kwargs))


def assert_numpy_matches_loop(func, rel=1e-12, **arrays):
    """Call ``func`` once with numpy arrays (broadcasting) and once per element with floats."""
    names = list(arrays)
    cols = np.broadcast_arrays(*[np.asarray(arrays[k], dtype=float) for k in names])
    vectorized = np.broadcast_to(np.asarray(func(**dict(zip(names, cols)))), cols[0].shape)
    for idx in np.ndindex(cols[0].shape):
        scalar = float(func(**{k: float(c[idx]) for k, c in zip(names, cols)}))
        assert np.isclose(vectorized[idx], scalar, rtol=rel, atol=0), (idx, vectorized[idx], scalar)


def parameters(func) -> list[str]:
    """The parameter names of ``func``, in order."""
    return list(inspect.signature(func).parameters)


def symbols_for(func):
    """One positive sympy Symbol per parameter of ``func``, named after the parameter."""
    return {p: sp.Symbol(p, positive=True) for p in parameters(func)}


def assert_sympy_matches_float(func, rel=1e-12, **kwargs):
    """The sympy expression, with the float values substituted, equals the float call."""
    syms = symbols_for(func)
    expr = func(**syms)
    value = float(sp.N(expr.subs({syms[k]: v for k, v in kwargs.items()}), 30))
    assert np.isclose(value, float(func(**kwargs)), rtol=rel, atol=0), (value, func(**kwargs))
    return expr


def assert_sympy_equals(func, expected_from_symbols):
    """``func`` on Symbols equals the expression typed from the paper (simplify(a - b) == 0)."""
    syms = symbols_for(func)
    got = func(**syms)
    want = expected_from_symbols(**syms)
    assert sp.simplify(got - want) == 0, (got, want)


def check_numpy_broadcasting(func, values, *, rest):
    """:func:`assert_numpy_matches_loop` over a table ``values`` (parameter name -> list of values):
    the first parameter varies along axis 0, the second along axis 1, and the rest are held at
    their ``"first"`` or ``"last"`` value."""
    held = {"first": 0, "last": -1}[rest]
    arrays = {}
    for i, name in enumerate(parameters(func)):
        column = np.asarray(values[name])
        arrays[name] = column.reshape(-1, 1) if i == 0 else (column.reshape(1, -1) if i == 1 else column[held])
    assert_numpy_matches_loop(func, **arrays)


def check_sympy_matches_float(func, values):
    """:func:`assert_sympy_matches_float` at the first and at the last value of every parameter in
    ``values``; the symbolic call gives a sympy expression."""
    for pick in (0, -1):
        expr = assert_sympy_matches_float(func, **{name: values[name][pick] for name in parameters(func)})
        assert isinstance(expr, sp.Basic)


def check_each_parameter_on_its_own_axis(func, values):
    """numpy with every parameter broadcast along its own axis (a full grid) equals a loop."""
    names = parameters(func)
    arrays = {}
    for k, name in enumerate(names):
        shape = [1] * len(names)
        shape[k] = len(values[name])
        arrays[name] = np.reshape(values[name], shape)
    assert_numpy_matches_loop(func, **arrays)
