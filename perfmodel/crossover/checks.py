r"""The full prediction around a crossover: the integer values of the unknown a plan can take,
the first at which ``predict`` is communication-bound, and the step time's sensitivity to the
bandwidth and latency of a level's links.
"""

from __future__ import annotations

import math
from dataclasses import replace

from perfmodel.crossover.equations import Equation, Point, max_devices
from perfmodel.errors import NoCrossoverError, PlanError

__all__ = ["plan_at", "valid_values", "communication_bound", "first_bound_integer", "scaled_system", "sensitivity",
           "something_to_communicate"]


def plan_at(pt: Point, scheme: str, solve_for: str, x: int):
    """The operating plan with the unknown set to the integer ``x`` (None when x is not valid)."""
    from perfmodel.plan import resolve

    plan = pt.plan
    if solve_for == "devices":
        if scheme == "dp":  # strong scaling: the plan's micro-batch while a rank's share allows it
            dp = x // (plan.tp * plan.pp)
            if dp * plan.tp * plan.pp != x or plan.global_batch % dp:
                return None
            new = plan.replace(devices=x, dp=dp, micro_batch=min(plan.micro_batch, plan.global_batch // dp))
        elif scheme == "tp":
            new = plan.replace(tp=x, devices=x * plan.dp * plan.pp)
        else:
            new = plan.replace(pp=x, devices=plan.tp * plan.dp * x)
    else:  # micro-batch: dp and tp keep the micro-batches per step, pp keeps the global batch
        gb = plan.global_batch if scheme == "pp" else x * plan.dp * plan.n_microbatches
        new = plan.replace(micro_batch=x, global_batch=gb)
    try:
        return resolve(new, pt.model, pt.system)
    except PlanError:
        return None


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def valid_values(pt: Point, scheme: str, solve_for: str, hi: float) -> list[int]:
    """Integer values of the unknown to try with the full prediction (each still checked by
    ``plan.resolve``)."""
    plan = pt.plan
    if solve_for == "devices":
        if scheme == "dp":
            q = plan.tp * plan.pp
            return [q * d for d in _divisors(plan.global_batch) if q * d <= hi]
        if scheme == "tp":
            return [d for d in _divisors(pt.model.n_heads) if d <= hi]
        return _divisors(pt.model.n_layers)
    if scheme == "pp":
        return _divisors(plan.global_batch // plan.dp)
    return list(range(1, 129)) + [2**i for i in range(8, 21)]


def communication_bound(prediction, scheme: str) -> bool:
    """The full prediction's verdict for ``scheme``: its bound, or for pp whether the
    point-to-point time and the bubble exceed the compute (the bubble is idle time, not
    communication, so ``bound`` never names it)."""
    if scheme != "pp":
        return prediction.bound == "communication"
    b = prediction.breakdown_s
    return b["pp_comm"] + b["pipeline_bubble"] > b["compute"] + b["recompute"]


def first_bound_integer(pt: Point, scheme: str, solve_for: str, eq: Equation) -> int | None:
    """The smallest (communication-bound above) or largest (below) valid integer of the unknown at
    which the full prediction is communication-bound; None for bandwidth, or when there is none."""
    from perfmodel.prediction import predict

    if solve_for == "bandwidth":
        return None
    hits = []
    for x in valid_values(pt, scheme, solve_for, eq.hi):
        plan = plan_at(pt, scheme, solve_for, x)
        if plan is not None and communication_bound(predict(pt.model, pt.system, plan), scheme):
            hits.append(x)
    if not hits:
        return None
    return hits[0] if eq.direction > 0 else hits[-1]


# --- sensitivity ------------------------------------------------------------------------------------


def scaled_system(system, level: str, bandwidth: float = 1.0, latency: float = 1.0):
    """``system`` with the links of ``level`` (``"fabric"`` or ``"network"``) ``bandwidth`` times
    as fast and ``latency`` times as slow (a PCIe tree's uplinks and root complex too)."""
    def link(lk):
        return replace(lk, bandwidth=lk.bandwidth * bandwidth, latency=lk.latency * latency)

    if level == "network":
        if system.network is None:
            return system
        return replace(system, network=replace(system.network, link=link(system.network.link)))
    fab = system.fabric
    if fab.link is None:
        return system
    changes = {"link": link(fab.link)}
    if fab.kind == "pcie-tree":
        changes.update(switch_uplink=link(fab.switch_uplink), root_bandwidth=fab.root_bandwidth * bandwidth)
    return replace(system, fabric=replace(fab, **changes))


def sensitivity(model, system, plan, level: str, h: float = 1e-3) -> dict:
    """Elasticities of the predicted step time T to the bandwidth and to the latency of
    ``level``'s links at ``plan``: d ln T / d ln beta (<= 0) and d ln T / d ln alpha (>= 0), by
    central differences of ``predict``."""
    from perfmodel.prediction import predict

    base = predict(model, system, plan).step_time_s

    def elasticity(name):
        up = predict(model, scaled_system(system, level, **{name: 1 + h}), plan).step_time_s
        down = predict(model, scaled_system(system, level, **{name: 1 - h}), plan).step_time_s
        return (up - down) / (2 * h * base)

    return {"level": level, "bandwidth": elasticity("bandwidth"), "latency": elasticity("latency")}


def something_to_communicate(pt, scheme: str, solve_for: str) -> None:
    """One line instead of a search when the scheme has nothing to communicate: its degree is 1 at
    the operating point and the unknown is not the device count, or the system is one device."""
    what = f"no crossover for {scheme} in {solve_for} for {pt.model.name} on {pt.system.name}"
    if solve_for == "devices" and max_devices(pt.system) < 2:
        raise NoCrossoverError(f"{what}: the system is one device, with nothing to communicate (name a system of "
                               f"several devices: `perfmodel hardware list --kind system`)")
    degree = {"dp": pt.plan.dp, "tp": pt.plan.tp, "pp": pt.plan.pp}[scheme]
    if solve_for != "devices" and degree == 1:
        flag = {"dp": "--devices (or --dp)", "tp": "--tp", "pp": "--pp"}[scheme]
        raise NoCrossoverError(f"{what}: {scheme} = 1 at this operating point, so the scheme has "
                               f"nothing to communicate; give {flag} above 1")
