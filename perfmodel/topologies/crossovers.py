"""Where two collective algorithms on one topology trade places: the crossover message size.

For each pair of the algorithms :mod:`perfmodel.topologies.compare` costs on a topology, the size S* at
which their times are equal. The times are the formulas themselves: with the network numbers
left as sympy symbols (alpha, beta, hop latency) and S unknown, ``sympy.solve`` gives S* in closed
form (its LaTeX is kept), then the numbers are substituted; if that fails, the equation with the
numbers in is solved; pipelined algorithms choose their chunk count per size, so their crossovers
are found numerically (sign changes of the time difference on a log grid of sizes, refined by
bisection). Below S* the algorithm with the smaller latency term wins, above it the one with the
smaller bandwidth term.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from perfmodel.units import format_quantity

__all__ = ["AlgorithmCrossover", "algorithm_crossovers", "render_comparison"]

MIN_SIZE, MAX_SIZE = 1.0, float(2**50)  # bytes: the range searched numerically (1 B .. 1 PiB)
GRID_POINTS = 161


@dataclass(frozen=True)
class AlgorithmCrossover:
    """Sizes at which ``algorithm_a`` and ``algorithm_b`` on ``topology`` take the same time."""

    topology: str
    algorithm_a: str
    algorithm_b: str
    size_bytes: float | None  # the first crossover, None when one is faster at every size
    sizes_bytes: tuple[float, ...]
    faster_below: str  # the faster one below the (first) crossover, or everywhere
    faster_above: str
    method: str  # "sympy" (closed form), "numeric", or "identical" (same time at every size)
    closed_form_latex: str | None = None

    def to_dict(self) -> dict:
        return {"topology": self.topology, "algorithm_a": self.algorithm_a, "algorithm_b": self.algorithm_b,
                "size_bytes": self.size_bytes, "sizes_bytes": list(self.sizes_bytes),
                "faster_below": self.faster_below, "faster_above": self.faster_above, "method": self.method,
                "closed_form_latex": self.closed_form_latex}


def _symbolic(a, b, nodes_net):
    """S* from sympy with alpha, beta, delta as symbols: (sizes, latex) or None."""
    import sympy as sp

    from perfmodel.topologies.layouts import Network

    net = nodes_net
    S = sp.Symbol("S", positive=True)
    al, be, de = sp.symbols("alpha beta delta", positive=True)
    ai, bi = sp.symbols("alpha_intra beta_intra", positive=True)
    sym = Network(al, be, de, ai, bi)
    try:
        diff = sp.expand(a.time(S, sym, None) - b.time(S, sym, None))
        if diff == 0:
            return (), None, True
        if diff.is_polynomial(S) and sp.degree(diff, S) <= 1:
            # every unpipelined form is affine in S: S* = -(latency difference) / (bandwidth-term slope)
            slope, rest = diff.coeff(S, 1), diff.coeff(S, 0)
            roots = [] if slope == 0 else [sp.cancel(-rest / slope)]
        else:
            roots = sp.solve(sp.Eq(diff, 0), S)
    except (NotImplementedError, TypeError, ValueError):
        return None
    values = {al: net.alpha, be: net.beta, de: net.hop_latency, ai: net.alpha_intra, bi: net.beta_intra}
    sizes, latex = [], None
    for root in roots:
        value = complex(sp.N(root.subs(values)))
        if abs(value.imag) > 1e-9 * max(1.0, abs(value.real)) or not value.real > 0:
            continue
        sizes.append(value.real)
        # the formulas compute (n-1)/n and the like in floats: show them as the small fractions they are
        tidy = sp.factor(root.xreplace({f: sp.Rational(f).limit_denominator(10**6) for f in root.atoms(sp.Float)}))
        latex = latex or sp.latex(tidy, symbol_names={al: r"\alpha", be: r"\beta", de: r"\delta",
                                                       ai: r"\alpha_{intra}", bi: r"\beta_{intra}"})
    return tuple(sorted(sizes)), latex, False


def _numeric(f):
    """Sign changes of f on a log grid of sizes, refined by bisection (relative 1e-10)."""
    logs = [math.log(MIN_SIZE) + i * (math.log(MAX_SIZE) - math.log(MIN_SIZE)) / (GRID_POINTS - 1)
            for i in range(GRID_POINTS)]
    values = [f(math.exp(x)) for x in logs]
    roots = []
    for (x0, v0), (x1, v1) in zip(zip(logs, values), zip(logs[1:], values[1:])):
        if v0 == 0:
            roots.append(math.exp(x0))
        elif v0 * v1 < 0:
            lo, hi = x0, x1
            while hi - lo > 1e-10:
                mid = 0.5 * (lo + hi)
                if (f(math.exp(mid)) < 0) == (v0 < 0):
                    lo = mid
                else:
                    hi = mid
            roots.append(math.exp(0.5 * (lo + hi)))
    return tuple(roots)


def _pair(topology, a, b, net) -> AlgorithmCrossover:
    def gap(size):
        ca, cb = a.best_chunks(size, net), b.best_chunks(size, net)
        return float(a.time(size, net, ca)) - float(b.time(size, net, cb))

    latex, method, sizes = None, "numeric", None
    if not (a.chunked or b.chunked):
        solved = _symbolic(a, b, net)
        if solved is not None:
            sizes, latex, identical = solved
            method = "identical" if identical else "sympy"
    if sizes is None:
        sizes = _numeric(gap)
    if method == "identical":
        return AlgorithmCrossover(topology, a.name, b.name, None, (), "tie", "tie", method)
    probe_low = (sizes[0] / 2) if sizes else MIN_SIZE
    probe_high = (sizes[0] * 2) if sizes else MAX_SIZE
    below = a.name if gap(probe_low) < 0 else b.name
    above = a.name if gap(probe_high) < 0 else b.name
    return AlgorithmCrossover(topology, a.name, b.name, sizes[0] if sizes else None, tuple(sizes), below,
                              above, method, latex)


def algorithm_crossovers(comparison) -> list[AlgorithmCrossover]:
    """Every pair of algorithms of every topology of a :class:`~perfmodel.topologies.compare.TopologyComparison`."""
    net = comparison.networks["net"]
    out = []
    for topology, (_nodes, algorithms) in comparison.algorithms.items():
        for a, b in itertools.combinations(algorithms, 2):
            out.append(_pair(topology, a, b, net))
    return out


# --- rendering -----------------------------------------------------------------------------------


def _t(x):
    return format_quantity(x, "time")


def table_rows(comparison) -> list[dict]:
    """Formatted rows for the terminal table (notes become numbered footnotes)."""
    rows, k = [], 0
    for r in comparison.rows:
        mark = ""
        if r.note:
            k += 1
            mark = f" [{k}]"
        rows.append({"topology": r.topology + mark, "algorithm": r.algorithm, "nodes": r.shape,
                     "latency": _t(r.latency_s), "bandwidth": _t(r.bandwidth_s), "time": _t(r.time_s),
                     "hops diam/avg": f"{r.diameter_hops:g}/{r.average_hops:.2f}",
                     "bisection": format_quantity(r.bisection_bandwidth, "bandwidth"),
                     "links/node": f"{r.links_per_node:g}"})
    return rows


def crossover_rows(comparison) -> list[dict]:
    rows = []
    for c in comparison.crossovers:
        if c.method == "identical":
            where = "same time at every size"
        elif c.size_bytes is None:
            where = f"none: {c.faster_below} faster at every size"
        else:
            where = (f"{format_quantity(c.size_bytes, 'bytes', binary=True)}: {c.faster_below} below, "
                     f"{c.faster_above} above")
        rows.append({"topology": c.topology, "pair": f"{c.algorithm_a} vs {c.algorithm_b}", "crossover": where,
                     "method": c.method})
    return rows


def render_comparison(comparison, width: int = 100):
    """The comparison's tables for a terminal ``width`` characters wide."""
    from rich.console import Group
    from rich.text import Text

    from perfmodel.tables import from_rows, packed

    title = (f"{comparison.collective} of {format_quantity(comparison.size_bytes, 'bytes', binary=True)} per rank "
             f"on {comparison.nodes} nodes, {comparison.link} links (alpha {_t(comparison.alpha_s)}, "
             f"beta {format_quantity(comparison.beta, 'bandwidth')}, hop {_t(comparison.hop_latency_s)})")
    parts = []
    for rows, name in ((table_rows(comparison), title), (crossover_rows(comparison), "algorithm crossovers")):
        if not rows:
            continue
        parts.append(packed(from_rows(rows, text=("algorithm", "pair", "crossover"), left=("topology", "nodes",
                                                                                         "method")),
                            width, title=name))
        if name == title:
            notes = [r for r in comparison.rows if r.note]
            parts += [Text(f"[{i}] {r.topology}: {r.note}") for i, r in enumerate(notes, 1)]
            parts.append(Text("latency = the time with beta = inf; bandwidth = the time with alpha = 0 and hop "
                              "latency 0; reduction compute not included"))
    return Group(*parts)
