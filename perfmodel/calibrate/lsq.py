"""Least squares of a latency and an efficiency: the fit behind ``perfmodel calibrate nccl``.

``model(alpha, eta)`` predicts the times of a run for latency ``alpha`` (s) and efficiency ``eta``
(fraction of link bandwidth, in (0, 1]). The prediction is affine in ``alpha`` (latencies add) but
not in ``eta`` (the slower of two levels sets the rate), so the fit profiles ``alpha`` out in
closed form for each ``eta`` and searches ``eta`` on a geometric grid refined by golden section,
minimising the sum of squared relative errors. Deterministic: no random starts.
"""

from __future__ import annotations

import math

__all__ = ["MIN_LATENCY", "MIN_EFFICIENCY", "profile_latency", "search_efficiency", "equivalent_efficiency_range"]

MIN_LATENCY = 1e-9  # a link file's latency must be positive (hardware/README.md)
MIN_EFFICIENCY = 1e-3  # lower end of the efficiency search (a spec's efficiency is in (0, 1])
_GRID_POINTS = 400  # efficiencies tried, geometric over [MIN_EFFICIENCY, 1]
_SAME = 1e-12  # relative change of a predicted time below which two efficiencies predict "the same"


def profile_latency(model, t, eta):
    """(sum of squared relative errors, best latency) at efficiency ``eta``: the latency is solved in
    closed form, since the predicted time is affine in it (T = T0 + k alpha, latencies add)."""
    import numpy as np

    t0 = model(0.0, eta)
    k = (model(1e-6, eta) - t0) / 1e-6
    w = k / t
    ww = float(w @ w)
    alpha = float(w @ (1 - t0 / t)) / ww if ww > 0 else MIN_LATENCY
    alpha = max(alpha, MIN_LATENCY)  # the one-variable quadratic is convex: clipping is the bounded optimum
    r = (t0 + k * alpha) / t - 1
    return float(np.sum(r * r)), alpha


def search_efficiency(model, t):
    """The efficiency in [MIN_EFFICIENCY, 1] minimising the profiled error: grid, then golden section in 1/eta."""
    import numpy as np

    grid = np.geomspace(MIN_EFFICIENCY, 1.0, _GRID_POINTS)
    grid[-1] = 1.0
    sse = [profile_latency(model, t, float(e))[0] for e in grid]
    i = int(np.argmin(sse))  # ties: the first (smallest) efficiency, deterministic
    lo_x, hi_x = 1.0 / float(grid[min(i + 1, len(grid) - 1)]), 1.0 / float(grid[max(i - 1, 0)])
    best_x, best_sse = 1.0 / float(grid[i]), sse[i]
    inv_phi = (math.sqrt(5) - 1) / 2
    a, b = lo_x, hi_x
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = profile_latency(model, t, 1 / c)[0], profile_latency(model, t, 1 / d)[0]
    for _ in range(200):
        if b - a <= 1e-12 * b:
            break
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = profile_latency(model, t, 1 / c)[0]
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = profile_latency(model, t, 1 / d)[0]
    for x, f in ((c, fc), (d, fd)):
        if f < best_sse:
            best_x, best_sse = x, f
    return min(1.0, 1.0 / best_x)


def equivalent_efficiency_range(model, alpha, eta):
    """The interval of efficiencies around ``eta`` that predict the same times (at latency ``alpha``)."""
    import numpy as np

    ref = model(alpha, eta)

    def same(e):
        return bool(np.max(np.abs(model(alpha, e) / ref - 1)) <= _SAME)

    def edge(bound):
        if same(bound):
            return bound
        inside, outside = eta, bound
        for _ in range(80):
            mid = math.sqrt(inside * outside)
            inside, outside = (mid, outside) if same(mid) else (inside, mid)
        return inside

    return edge(MIN_EFFICIENCY), edge(1.0)
