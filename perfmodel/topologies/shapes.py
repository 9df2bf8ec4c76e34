"""The nearest node count (and shape) each topology can take, for :mod:`perfmodel.topologies.layouts`.

A hypercube or a complete k-ary tree needs a power of its base, a 2D or 3D torus a factorisation
into sides of at least 2, a fat tree or a two-level system a divisor for its nodes per leaf or
devices per node. Integers only; no formulas.
"""

from __future__ import annotations

import math

from perfmodel.errors import PlanError

__all__ = ["is_power", "nearest_power", "grid_dims", "nearest_grid", "largest_divisor"]


def is_power(n: int, base: int) -> bool:
    """Whether n is base**k for some k >= 0."""
    while n > 1 and n % base == 0:
        n //= base
    return n == 1


def nearest_power(n: int, base: int) -> int:
    """The power of ``base`` nearest to n (the larger one on a tie)."""
    lower = base ** max(0, math.floor(math.log(n, base) + 1e-12))
    upper = lower * base
    return lower if n - lower < upper - n else upper


def grid_dims(n: int, n_dims: int) -> tuple[int, ...] | None:
    """Most nearly cubic factorisation of n into n_dims factors >= 2 (largest first), or None."""
    best = None

    def rec(rest, k, start, dims):
        nonlocal best
        if k == 1:
            if rest >= start:
                cand = tuple(sorted(dims + [rest], reverse=True))
                if best is None or cand[0] < best[0] or (cand[0] == best[0] and cand > best):
                    best = cand
            return
        f = start
        while f ** k <= rest:
            if rest % f == 0:
                rec(rest // f, k - 1, f, dims + [f])
            f += 1

    rec(n, n_dims, 2, [])
    return best


def nearest_grid(n: int, n_dims: int) -> tuple[int, tuple[int, ...]]:
    """(count, sides): the count nearest to n (the smaller on a tie) that factors into n_dims sides >= 2."""
    for delta in range(0, 4 * n + 8):
        for cand in (n - delta, n + delta) if delta else (n,):
            if cand >= 2**n_dims:
                dims = grid_dims(cand, n_dims)
                if dims:
                    return cand, dims
    raise PlanError(f"no {n_dims}D grid near {n} nodes")  # unreachable: powers of two factor


def largest_divisor(n: int, cap: float) -> int:
    """The largest divisor of n that is at most ``cap`` (1 when cap < 2)."""
    return max(d for d in range(1, max(1, int(cap)) + 1) if n % d == 0)
