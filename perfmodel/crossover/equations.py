r"""The crossover equations of :mod:`perfmodel.crossover.find`, one per scheme, at an operating point.

Each :class:`Equation` gives (t_comm, t_compute) as a function of named parameters through the
formulas, so the same ``terms`` runs on floats (the numeric root, hardware levels re-evaluated at
every x by :mod:`perfmodel.prediction.hardware`) and on sympy symbols (the closed form). The numbers
at the operating point (per-layer and per-micro-batch compute, exposed tensor-parallel time,
gradient bytes) are read from the step model itself (:class:`perfmodel.prediction.step.StepTerms`,
or the dense step's details), the alpha / beta of each level from
:mod:`perfmodel.prediction.placement`, and the rules that turn them into communication time
(exposed TP time under the stack's overlap, gradient sync, ZeRO-3 gathers, the bubble) from
:mod:`perfmodel.prediction.rules` -- the functions ``predict`` runs, so the two cannot drift
(tests/test_crossover_consistency.py checks every scheme x stack at the operating point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from perfmodel.crossover.point import (  # noqa: F401 - re-exported (the operating point's names of before)
    DEFAULT_GLOBAL_BATCH,
    Point,
    default_global_batch,
    layer_compute,
    point,
    tp_layer_comm,
)
from perfmodel.formulas import collectives as coll
from perfmodel.formulas import dataparallel as dpf

__all__ = ["PARAMS", "Equation", "Point", "point", "equation", "default_global_batch", "DEFAULT_GLOBAL_BATCH",
           "max_devices"]


# symbol, unit, meaning of each parameter of the equations
PARAMS: dict[str, tuple[str, str, str]] = {
    "N": ("N", "1", "devices"),
    "q": ("q", "1", "tp x pp (devices per data-parallel rank)"),
    "d": ("d", "1", "data-parallel ranks per node"),
    "S": ("S_g", "B", "gradient bytes per device synchronised each step"),
    "S_w": ("S_w", "B", "parameter bytes per device gathered by ZeRO-3"),
    "n_b": ("n_b", "1", "gradient buckets, one all-reduce call each (ceil(S_g / the stack's bucket); 1 without "
            "overlap)"),
    "alpha_i": (r"\alpha_{intra}", "s", "latency of the intra-node level"),
    "beta_i": (r"\beta_{intra}", "B/s", "per-device bandwidth of the intra-node level"),
    "alpha_e": (r"\alpha_{inter}", "s", "latency of the inter-node level"),
    "beta_e": (r"\beta_{inter}", "B/s", "per-device bandwidth of the inter-node level"),
    "W": ("W", "s", "backward compute of one step on one device (device-seconds, strong scaling)"),
    "M": ("M", "1", "micro-batches x data-parallel ranks (global batch / micro-batch)"),
    "m": ("m", "1", "micro-batches per step"),
    "w": ("w", "s", "backward compute per sequence (sample) of one micro-batch"),
    "t": ("t", "1", "tensor-parallel degree"),
    "b": ("b", "1", "micro-batch (sequences or samples)"),
    "u": ("u", "B", "bytes of one sequence's activation (s h e)"),
    "alpha": (r"\alpha", "s", "latency of the level the scheme's messages cross"),
    "beta": (r"\beta", "B/s", "per-device bandwidth of that level"),
    "k": ("k", "s", "one layer's compute per sequence, all of it on one device (fwd + bwd + recompute; "
          "t x its time at the operating point)"),
    "n_ar": ("n_{ar}", "1", "tensor-parallel all-reduces per layer per micro-batch"),
    "n_f": ("n_{f}", "1", "tensor-parallel all-reduces per layer in the forward (1 for a parallel block, else 2)"),
    "G": ("G", "s", "one layer's forward linear-layer GEMMs per sequence, all on one device (with the "
          "stack's TP overlap the collectives hide under them)"),
    "p": ("p", "1", "pipeline stages"),
    "L": ("L", "1", "transformer layers"),
    "l": (r"\ell", "s", "one layer's compute per sequence on one device (fwd + bwd + recompute)"),
    "x": ("x", "s", "first / last stage's extra compute per sequence (embedding, LM head, loss)"),
    "x_lo": ("x_{lo}", "s", "the faster end's extra compute per sequence (it fills or drains a 1F1B pipeline once)"),
    "alpha_t": (r"\alpha_{tp}", "s", "latency of the tensor-parallel level"),
    "beta_t": (r"\beta_{tp}", "B/s", "per-device bandwidth of the tensor-parallel level"),
    "S_e": ("S_e", "B", "tied embeddings' gradient bytes all-reduced between the first and last stage"),
    "v": ("v", "1", "model chunks per device (interleaved schedule)"),
    "B": ("B", "B/s", "bandwidth per direction of one link of the level (the unknown of --solve-for bandwidth)"),
    "eta": (r"\eta", "1", "per-device bandwidth / B: links per device x efficiency x NIC share / oversubscription"),
}


@dataclass(frozen=True)
class Equation:
    """One scheme's crossover equation at one operating point."""

    unknown: str
    x0: float  # the operating point's value of the unknown
    lo: float
    hi: float
    direction: int  # +1: communication-bound above the crossover; -1: below
    params_at: Callable[[float], dict]  # numbers at x (hardware levels re-evaluated at x)
    segment_at: Callable[[float], tuple]  # which piece of a piecewise level holds x
    terms: Callable[[dict, tuple], tuple]  # (t_comm, t_compute) from the formulas
    scope: str
    unit: str
    level: str  # "fabric" or "network": where the scheme's messages go at the operating point
    derived: Mapping[str, Callable] = field(default_factory=dict)  # symbolic overrides

    def evaluate(self, x: float) -> tuple[float, float]:
        comm, comp = self.terms(self.params_at(x), self.segment_at(x))
        return float(comm), float(comp)

    def gap(self, x: float) -> float:
        comm, comp = self.evaluate(x)
        return comm - comp


# --- the operating point ------------------------------------------------------------------------


def max_devices(system) -> float:
    """The most devices ``system`` can have (one node without a network; the network's nodes)."""
    from perfmodel.plan import MAX_DEVICES

    if system.network is None:
        return float(system.devices_per_node)
    nodes = system.network.max_nodes
    return float(system.devices_per_node * nodes) if nodes is not None else float(MAX_DEVICES)


def _hw_with_bandwidth(hw, level: str, bandwidth: float):
    """``hw`` with the link bandwidth of ``level`` set (a PCIe tree's uplinks and root scale with it)."""
    if level == "network":
        return replace(hw, network_bandwidth=bandwidth)
    changes = {"fabric_bandwidth": bandwidth}
    if hw.fabric_kind == "pcie-tree":
        factor = bandwidth / hw.fabric_bandwidth
        changes.update(uplink_bandwidth=hw.uplink_bandwidth * factor, root_bandwidth=hw.root_bandwidth * factor)
    return replace(hw, **changes)


def _link_bandwidth(hw, level: str) -> float:
    return hw.network_bandwidth if level == "network" else hw.fabric_bandwidth


# --- the equations ------------------------------------------------------------------------------


def _bounds(pt: Point, solve_for: str, level: str, devices: tuple, micro_hi: float, b0, unit_b: str):
    """(lo, hi, direction, x0, unit) of the unknown: devices scale up, bandwidth and micro-batch down."""
    return {"devices": devices,
            "bandwidth": (1e3, 1e16, -1, _link_bandwidth(pt.hw, level), "B/s"),
            "micro-batch": (1.0, micro_hi, -1, float(b0), unit_b)}[solve_for]


def _make(unknowns: dict, solve_for: str, bounds: tuple, **parts) -> Equation:
    lo, hi, direction, x0, unit = bounds
    return Equation(unknown=unknowns[solve_for], x0=float(x0), lo=lo, hi=hi, direction=direction, unit=unit, **parts)


def _dp_equation(pt: Point, solve_for: str) -> Equation:
    """Gradient sync of one step vs the backward it can hide behind. Long on purpose: its closures
    (numbers at x, the level segment at x, the terms) share the operating point; split, each
    would need the same eight locals passed in."""
    from perfmodel.prediction.placement import DpLevels, placement_levels, ring_level, two_level_allreduce_time
    from perfmodel.prediction.rules import Choices, grad_bytes_per_param, sharded_sync_times, zero3_gather_time

    plan, hw = pt.plan, pt.hw
    q, tp, pp = plan.tp * plan.pp, plan.tp, plan.pp
    n0, b0, m0 = plan.devices, plan.micro_batch, plan.n_microbatches
    work = m0 * pt.bwd_mb * n0  # device-seconds of backward per step
    per_seq = pt.bwd_mb / b0

    def levels(n, hw_):
        local, ia, ib, ea, eb = placement_levels(hw_, tp, n / q, pp, n).dp
        return float(local), ia, ib, ea, eb

    def spans(n):
        return levels(n, hw)[0] < n / q - 1e-12

    level = "network" if (spans(n0) and hw.has_network) else "fabric"
    if hw.fabric_kind == "none" and hw.has_network:
        level = "network"

    grad_bpp = grad_bytes_per_param(pt.stack, plan.dtype)

    def buckets_at(n):
        if not (plan.overlap and pt.stack.grad_sync_overlap):
            return 1
        return max(math.ceil(pt.grad_bytes / pt.stack.grad_bucket_size(n / q, grad_bpp)), 1)

    def params_at(x):
        n, hw_ = n0, hw
        if solve_for == "devices":
            n = x
        elif solve_for == "bandwidth":
            hw_ = _hw_with_bandwidth(hw, level, x)
        local, ia, ib, ea, eb = levels(n, hw_)
        out = {"N": n, "d": local, "S": pt.grad_bytes, "S_w": pt.weight_bytes, "alpha_i": ia, "beta_i": ib,
               "alpha_e": ea, "beta_e": eb, "W": work, "M": plan.global_batch / b0, "m": m0, "w": per_seq, "b": b0,
               "n_b": buckets_at(n)}
        if solve_for == "bandwidth":
            out["B"] = x
            out["eta"] = (eb if level == "network" else ib) / x
        return out

    def segment_at(x):
        n = x if solve_for == "devices" else n0
        return (spans(n), n / q > 1 + 1e-12, buckets_at(n))

    def terms(P, seg):
        span, several = seg[:2]
        n = P["N"]
        dp = n / q
        ai, bi, ae, be = P["alpha_i"], P["beta_i"], P["alpha_e"], P["beta_e"]
        flat_a, flat_b = (ae, be) if span else (ai, bi)
        if solve_for == "micro-batch":
            m, compute = P["m"], P["m"] * P["w"] * P["b"]
        else:  # strong scaling: the step's backward work spread over N devices
            m, compute = P["M"] * q / n, P["W"] / n
        if several and plan.zero >= 2 and plan.grad_sync == "allreduce":
            # ZeRO-2/3 (FSDP): the step's own sharded model, collectives on the level the group spans
            ring = ring_level(DpLevels(P["d"] if span else dp, ai, bi, ae, be), dp)
            sync, _ = sharded_sync_times(Choices.of(plan), ring, dp, m, pt.shard_units,
                                         pt.stack.param_gather_overlap)
            return sync, compute
        if not several:
            sync = 0 * n
        elif plan.grad_sync == "allreduce":
            # the step's own all-reduce (a ring when the group fits a node), one call per bucket; ZeRO 1:
            # half of it for the gradients (reduce-scatter), half for the 16-bit parameters (all-gather)
            lv = (P["d"] if span else dp, ai, bi, ae, be)
            sync = P["n_b"] * two_level_allreduce_time(P["S"] / P["n_b"], dp, lv)
            if plan.zero == 1:
                sync = (sync + P["n_b"] * two_level_allreduce_time(P["S_w"] / P["n_b"], dp, lv)) / 2
        elif plan.grad_sync == "parameter-server":
            sync = dpf.parameter_server_time(dp, P["S"], flat_a, flat_b)
        else:
            sync = dpf.delta_w_broadcast_time(dp, P["S"], flat_a, flat_b)
        if plan.zero >= 3 and several:
            sync = sync + zero3_gather_time(m, dp, P["S_w"], flat_a, flat_b)
        return sync, compute

    derived = {}
    if solve_for == "bandwidth":
        key = "beta_e" if level == "network" else "beta_i"
        derived = {key: lambda S: S["eta"] * S["B"]}
    bounds = _bounds(pt, solve_for, level, (float(q), max_devices(pt.system), 1, n0, "devices"), 1e7, b0,
                     "sequences" if pt.transformer else "samples")
    return _make({"devices": "N", "bandwidth": "B", "micro-batch": "b"}, solve_for, bounds, params_at=params_at,
                 segment_at=segment_at, terms=terms, scope="one step on one device: gradient sync vs backward compute",
                 level=level, derived=derived)


def _tp_equation(pt: Point, solve_for: str) -> Equation:
    from perfmodel.prediction.placement import placement_levels

    plan, hw, lay = pt.plan, pt.hw, pt.layer
    t0, b0, dp, pp = plan.tp, plan.micro_batch, plan.dp, plan.pp
    per_node = hw.devices_per_node
    level = "fabric" if (t0 <= per_node and hw.fabric_kind != "none") else "network"
    layer_at = layer_compute(pt)

    def params_at(x):
        t, b, hw_ = t0, b0, hw
        if solve_for == "devices":
            t = x
        elif solve_for == "bandwidth":
            hw_ = _hw_with_bandwidth(hw, level, x)
        else:
            b = x
        alpha, beta = placement_levels(hw_, t, dp, pp, t * dp * pp).tp
        # the layer's compute at (t, b) from the step model: GEMM efficiency changes with the
        # slice (tile and wave quantization), so it is not k b / t with one k
        compute, gemm = layer_at(t, b)
        out = {"t": t, "b": b, "u": lay["u"], "alpha": float(alpha), "beta": float(beta), "k": compute * t / b,
               "G": gemm * t / b, "n_ar": lay["n_ar"], "n_f": lay["n_f"]}
        if solve_for == "bandwidth":
            out["B"], out["eta"] = x, float(beta) / x
        return out

    def segment_at(x):
        t = x if solve_for == "devices" else t0
        return (t <= per_node, t > 1 + 1e-12)

    def terms(P, seg):
        comm = tp_layer_comm(P, pt, level=("alpha", "beta"))
        return comm, P["k"] * P["b"] / P["t"]

    derived = {"beta": lambda S: S["eta"] * S["B"]} if solve_for == "bandwidth" else {}
    bounds = _bounds(pt, solve_for, level, (1.0, float(min(pt.model.n_heads, max_devices(pt.system))), 1, t0,
                                            "devices"), 1e7, b0, "sequences")
    return _make({"devices": "t", "bandwidth": "B", "micro-batch": "b"}, solve_for, bounds, params_at=params_at,
                 segment_at=segment_at, terms=terms,
                 scope="one layer, one micro-batch, one device: exposed tensor-parallel collectives vs layer compute",
                 level=level, derived=derived)


def _pp_equation(pt: Point, solve_for: str) -> Equation:
    """One stage's point-to-point transfers and pipeline bubble vs its compute, per step.

    Long on purpose: the parameters at a value of the unknown and the terms built from them are
    closures over one operating point, as in the dp and tp equations."""
    from perfmodel.prediction.placement import placement_levels
    from perfmodel.prediction.p2p import p2p_transfer_time, pipeline_p2p_time
    from perfmodel.prediction.rules import pipeline_bubble_time

    plan, hw, lay = pt.plan, pt.hw, pt.layer
    p0, b0, t, dp = plan.pp, plan.micro_batch, plan.tp, plan.dp
    n_layers = pt.model.n_layers
    tp_a, tp_b = placement_levels(hw, t, dp, p0, t * dp * p0).tp

    # pipeline neighbours are tp x dp ranks apart: the network once a stage fills a node (placement_levels)
    crosses = p0 > 1 and hw.has_network and t * dp >= hw.devices_per_node
    level = "network" if crosses else "fabric"

    def params_at(x):
        p, b, hw_ = p0, b0, hw
        if solve_for == "devices":
            p = x
        elif solve_for == "micro-batch":
            b = x
        else:
            hw_ = _hw_with_bandwidth(hw, level, x)
        alpha, beta = placement_levels(hw_, t, dp, p, t * dp * p).pp
        out = {"p": p, "b": b, "M": plan.global_batch / dp, "L": n_layers, "l": lay["compute"] / b0,
               "x": (lay["ends_split"] if p > 1 else lay["ends_one"]) / b0,
               "x_lo": (lay["ends_one"] - lay["ends_split"] if p > 1 else 0.0) / b0, "G": lay["gemm_fwd"] * t / b0,
               "t": t, "n_ar": lay["n_ar"], "n_f": lay["n_f"], "alpha_t": float(tp_a), "beta_t": float(tp_b), "u": lay["u"],
               "v": plan.virtual_stages, "alpha": float(alpha), "beta": float(beta), "S_e": lay["S_e"]}
        if solve_for == "bandwidth":
            out["B"], out["eta"] = x, float(beta) / x
        return out

    def segment_at(x):
        p = x if solve_for == "devices" else p0
        return (p > 1 + 1e-12,)

    def terms(P, seg):
        p, b = P["p"], P["b"]
        m = P["M"] / b
        compute_mb = P["L"] / p * P["l"] * b + P["x"] * b
        # the stack's message between stages (sequence-parallel slice, scatter/gather, or whole)
        p2p_one = p2p_transfer_time(b * P["u"], P["t"], plan.sequence_parallel, pt.stack.p2p_scatter_gather,
                                    P["alpha"], P["beta"], P["alpha_t"], P["beta_t"])
        p2p = (pipeline_p2p_time(p2p_one, plan.schedule, P["v"], compute_mb, pt.stack.p2p_overlap) if seg[0]
               else 0 * p)
        tp_layer = tp_layer_comm(P, pt)
        stage_mb = compute_mb + P["L"] / p * tp_layer + p2p
        # the tied embeddings' gradient all-reduce between the pipeline ends, on the same level
        tied = pt.model.tied_embeddings
        ends = coll.ring_allreduce_time(2, P["S_e"], P["alpha"], P["beta"]) if seg[0] and tied else 0 * p
        bubble = pipeline_bubble_time(stage_mb, p, plan.schedule, P["v"], P["x"] * b, P["x_lo"] * b)
        return m * p2p + ends + bubble, m * compute_mb

    derived = {"beta": lambda S: S["eta"] * S["B"]} if solve_for == "bandwidth" else {}
    bounds = _bounds(pt, solve_for, level, (1.0, float(n_layers), 1, p0, "devices"), float(plan.global_batch // dp),
                     b0, "sequences")
    bounds = bounds if solve_for != "micro-batch" else (bounds[0], bounds[1], 1, bounds[3], bounds[4])
    return _make({"devices": "p", "bandwidth": "B", "micro-batch": "b"}, solve_for, bounds, params_at=params_at,
                 segment_at=segment_at, terms=terms,
                 scope="one step of one stage: point-to-point transfers + pipeline bubble vs stage compute",
                 level=level, derived=derived)


def equation(pt: Point, scheme: str, solve_for: str) -> Equation:
    """The crossover equation of ``scheme`` with ``solve_for`` unknown, at the operating point ``pt``."""
    return {"dp": _dp_equation, "tp": _tp_equation, "pp": _pp_equation}[scheme](pt, solve_for)
