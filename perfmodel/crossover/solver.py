r"""Solving a crossover equation: the numeric root and the closed form.

The numeric root: a log-spaced scan of the real function (hardware levels re-evaluated at every
point) brackets the crossover, and bisection narrows the bracket. The closed form: sympy solves
the same equation with every number a symbol and the hardware levels of the segment that holds the
root, when the equation there is a polynomial of degree 1 or 2 in the unknown.
"""

from __future__ import annotations

import math

from perfmodel.crossover.equations import PARAMS, Equation
from perfmodel.errors import NoCrossoverError

__all__ = ["scan_bracket", "bisect_bracket", "closed_form_root", "geomspace", "unknown_formatter"]

_GRID = 481  # points of the bracketing scan (log-spaced)


# --- solving --------------------------------------------------------------------------------------


def geomspace(lo: float, hi: float, n: int) -> list[float]:
    """``n`` log-spaced points from ``lo`` to ``hi`` (floats, no numpy)."""
    r = math.log(hi / lo)
    return [lo * math.exp(r * i / (n - 1)) for i in range(n)]


def unknown_formatter(eq: Equation):
    """A function that writes a value of the unknown for a message (``B = 25 GB/s``, ``N = 512``)."""
    from perfmodel.units import format_quantity

    symbol = PARAMS[eq.unknown][0].replace("\\", "")
    if eq.unit == "B/s":
        return lambda x: f"{symbol} = {format_quantity(x, 'bandwidth')}"
    return lambda x: f"{symbol} = {x:.6g}"


def scan_bracket(eq: Equation, what: str) -> tuple[float, float]:
    """The scan's bracket of the crossover; the first one from below (comm-bound above it) or
    the last one (comm-bound below it)."""
    xs = geomspace(eq.lo, eq.hi, _GRID) if eq.hi > eq.lo else [eq.lo]
    gs = [eq.gap(x) for x in xs]
    pairs = list(zip(xs, xs[1:], gs, gs[1:]))
    if eq.direction > 0:
        found = [(a, b) for a, b, ga, gb in pairs if ga <= 0 < gb]
        if found:
            return found[0]
    else:
        found = [(a, b) for a, b, ga, gb in pairs if ga > 0 >= gb]
        if found:
            return found[-1]
    fmt = unknown_formatter(eq)
    if all(g > 0 for g in gs):
        comm, comp = eq.evaluate(xs[0] if eq.direction > 0 else xs[-1])
        end = fmt(xs[0] if eq.direction > 0 else xs[-1])
        why = (f"communication exceeds compute everywhere from {fmt(xs[0])} to {fmt(xs[-1])} "
               f"(at {end}: {comm:.3g} s vs {comp:.3g} s): communication-bound throughout")
    else:
        side = xs[-1] if eq.direction > 0 else xs[0]
        comm, comp = eq.evaluate(side)
        why = (f"communication stays below compute everywhere from {fmt(xs[0])} to {fmt(xs[-1])} "
               f"(at {fmt(side)}: {comm:.3g} s vs {comp:.3g} s): compute-bound throughout")
    raise NoCrossoverError(f"no crossover for {what}: {why}")


def bisect_bracket(eq: Equation, a: float, b: float) -> tuple[float, float]:
    """The bracket ``(a, b)`` of a sign change of the gap, narrowed by geometric bisection."""
    ga = eq.gap(a)
    for _ in range(200):
        mid = math.sqrt(a * b)
        if b / a - 1 < 1e-15 or mid in (a, b):
            break
        gm = eq.gap(mid)
        if (gm > 0) == (ga > 0):
            a, ga = mid, gm
        else:
            b = mid
    return a, b


# --- the closed form ------------------------------------------------------------------------------


def _symbols(eq: Equation, numbers: dict):
    """One positive Symbol per finite, non-zero number (0 and infinity stay numbers; so do the
    derived keys, rebuilt from symbols), with symbol -> number and symbol -> LaTeX maps."""
    import sympy

    syms, subs, names = {}, {}, {}
    for key, value in numbers.items():
        v = float(value)
        if key in eq.derived:
            continue
        if v == 0 or not math.isfinite(v):
            syms[key] = sympy.oo if v == math.inf else sympy.Integer(0)
            continue
        sym = sympy.Symbol(key, positive=True)
        syms[key], subs[sym], names[sym] = sym, v, PARAMS.get(key, (key,))[0]
    for key, build in eq.derived.items():
        syms[key] = build(syms)
    return syms, subs, names


def _freeze(expr, point: dict):
    """``expr`` on the segment that holds ``point``: every Max / Min / Piecewise replaced by its
    branch there, every ceiling / floor by its integer (so the rest is a rational function)."""
    import sympy

    if expr.is_Atom:
        return expr
    if isinstance(expr, (sympy.Max, sympy.Min)):
        values = [float(a.subs(point)) for a in expr.args]
        pick = max if isinstance(expr, sympy.Max) else min
        return _freeze(expr.args[values.index(pick(values))], point)
    if isinstance(expr, sympy.Piecewise):
        for branch, cond in expr.args:
            if bool(cond.subs(point)):
                return _freeze(branch, point)
    if isinstance(expr, (sympy.ceiling, sympy.floor)):
        return sympy.Integer(int(expr.subs(point)))
    return expr.func(*[_freeze(a, point) for a in expr.args])


def _collected(coeff, order):
    import sympy

    return sympy.collect(sympy.expand(coeff), order, func=sympy.factor)


def closed_form_root(eq: Equation, x_star: float):
    """(root, root LaTeX, equation LaTeX, root value, why there is none) on the root's segment."""
    import sympy

    numbers = eq.params_at(x_star)
    near = eq.params_at(x_star * (1 + 1e-7))
    for key, value in numbers.items():
        if key != eq.unknown and key not in eq.derived and not math.isclose(
                float(value), float(near[key]), rel_tol=1e-10, abs_tol=0.0):
            return None, None, None, None, (f"{key} varies with the unknown at the "
                                            f"crossover (links shared by the group): numeric root only")
    syms, subs, names = _symbols(eq, numbers)
    x = syms[eq.unknown]
    comm, comp = (_freeze(e if isinstance(e, sympy.Basic) else sympy.Float(e), subs)
                  for e in eq.terms(syms, eq.segment_at(x_star)))
    equation_latex = sympy.latex(sympy.Eq(comm, comp), symbol_names=names)
    gap = comm - comp
    poly = None
    for power in range(4):  # clear the unknown from the denominators
        expanded = sympy.expand(gap * x**power)
        if expanded.is_polynomial(x):
            poly = sympy.Poly(expanded, x)
            break
    if poly is None or not 1 <= poly.degree() <= 2:
        return None, None, equation_latex, None, "the equation is not a polynomial of degree 1 or 2 in the unknown"
    coeffs = poly.all_coeffs()  # highest power first
    order = sorted((s for s in subs if s != x), key=lambda s: (PARAMS.get(str(s), ("", "1"))[1] != "B", str(s)))
    xl = names[x]
    if poly.degree() == 1:
        a1, a0 = coeffs
        roots = [(-a0 / a1, None)]
    else:
        a2, a1, a0 = coeffs
        disc = sympy.sqrt(a1**2 - 4 * a2 * a0)
        roots = [((-a1 + disc) / (2 * a2), "+"), ((-a1 - disc) / (2 * a2), "-")]
    best = None
    for root, sign in roots:
        value = complex(sympy.N(root.subs(subs), 30))
        if abs(value.imag) > 1e-9 * abs(value) or value.real <= 0:
            continue
        if best is None or abs(value.real - x_star) < abs(best[2] - x_star):
            best = (root, sign, value.real)
    if best is None:
        return None, None, equation_latex, None, "the closed form has no positive real root"
    root, sign, value = best
    if sign is None:
        latex = f"{xl}^{{*}} = {sympy.latex(sympy.factor(root), symbol_names=names)}"
    else:
        parts = ", \\quad ".join(f"a_{2 - i} = {sympy.latex(_collected(c, order), symbol_names=names)}"
                                 for i, c in enumerate(coeffs))
        latex = (f"{xl}^{{*}} = \\frac{{-a_1 {sign} \\sqrt{{a_1^2 - 4 a_2 a_0}}}}{{2 a_2}}, \\quad {parts}")
    return root, latex, equation_latex, value, None
