"""The bounds of the system numbers a spec file states and a sweep grid may vary (one table, two readers).

``perfmodel.specs.loader`` reads a system file with these bounds and ``perfmodel.sweeps.grid``
checks each hardware grid value against them, so ``network.efficiency = 2`` is refused in a grid
as it is in a file (it would make the network 2x faster than its links).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Bound", "BOUNDS", "PLAUSIBLE", "violation", "implausible"]


@dataclass(frozen=True)
class Bound:
    """``low < value <= high`` (``low <= value`` when ``closed_low``); ``integer`` values only if set."""

    what: str
    low: float
    high: float
    closed_low: bool = True
    integer: bool = False

    def describe(self) -> str:
        left = "[" if self.closed_low else "("
        return f"{self.what} in {left}{self.low:g}, {self.high:g}]"


_FRACTION = Bound("a fraction", 0.0, 1.0, closed_low=False)
# key (as a sweep grid names it) -> its bound; links and NICs are counts per device and per node
BOUNDS = {
    "fabric.efficiency": _FRACTION,
    "fabric.in_network_reduction": _FRACTION,
    "network.efficiency": _FRACTION,
    "network.oversubscription": Bound("a number", 1.0, 1000.0),
    "network.nics_per_node": Bound("an integer", 1, 64, integer=True),
    "network.full_bisection_nodes": Bound("an integer", 1, 1_000_000, integer=True),
    "fabric.links": Bound("an integer", 1, 64, integer=True),
}


def violation(key: str, value: float) -> str | None:
    """``"expected a fraction in (0, 1], got 2"`` when ``value`` breaks ``key``'s bound, else None."""
    bound = BOUNDS.get(key)
    if bound is None:
        return None
    ok = math.isfinite(value) and (value >= bound.low if bound.closed_low else value > bound.low) \
        and value <= bound.high and (not bound.integer or float(value).is_integer())
    return None if ok else f"expected {bound.describe()}, got {value:g}"


# The range a stated quantity of each dimension must fall in, whatever its key: wide enough for any
# real device or link (a 1 Mb/s serial line to a wafer-scale chip's ~20 PB/s of on-chip memory, a
# 1 MFLOP/s core to an exaflop package, latencies up to 10 s), narrow enough that a typo
# ("1e-30 Gb/s") is refused instead of predicting a step of 1e13 s
PLAUSIBLE = {
    "bandwidth": Bound("a bandwidth", 1e5, 1e17),
    "flop_rate": Bound("a FLOP rate", 1e6, 1e19),
    "time": Bound("a time", 0.0, 10.0),
}


def implausible(dimension: str, value: float, text: str) -> str | None:
    """``"... is not a plausible value: expected a bandwidth in [100000, 1e+17] B/s"`` when a stated
    ``value`` of ``dimension`` (SI units) is outside :data:`PLAUSIBLE`, else None."""
    bound = PLAUSIBLE.get(dimension)
    if bound is None or (math.isfinite(value) and bound.low <= value <= bound.high):
        return None
    unit = {"bandwidth": "B/s", "flop_rate": "FLOP/s", "time": "s"}[dimension]
    return f"{text!r} is not a plausible value: expected {bound.describe()} {unit}"
