r"""The crossover equations of :mod:`perfmodel.crossover.find`, one per scheme, at an operating point.

Each :class:`Equation` gives (t_comm, t_compute) as a function of named parameters through the
formulas, so the same ``terms`` runs on floats (the numeric root, hardware levels re-evaluated at
every x by :mod:`perfmodel.prediction.hardware`) and on sympy symbols (the closed form). The numbers
at the operating point (per-layer and per-micro-batch compute, gradient bytes) come from the
predictor's own functions (:mod:`perfmodel.prediction.layers`, :mod:`perfmodel.prediction.dense`), and the
alpha / beta of each level from the placement of :mod:`perfmodel.prediction.step`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import dataparallel as dpf
from perfmodel.frozen import FrozenDict

__all__ = ["PARAMS", "Equation", "Point", "point", "equation", "default_global_batch", "DEFAULT_GLOBAL_BATCH"]

# When the plan gives no global batch, strong scaling needs one: the batch the model family was
# published with -- 512 sequences for GPT-2 (Radford et al. 2019, Section 2.3: "a batchsize of
# 512"), 256 images for ResNet (He et al., CVPR 2016, Section 3.4: "a mini-batch size of 256").
DEFAULT_GLOBAL_BATCH = {"tokens": 512, "samples": 256}

# symbol, unit, meaning of each parameter of the equations
PARAMS: dict[str, tuple[str, str, str]] = {
    "N": ("N", "1", "devices"),
    "q": ("q", "1", "tp x pp (devices per data-parallel rank)"),
    "d": ("d", "1", "data-parallel ranks per node"),
    "S": ("S_g", "B", "gradient bytes per device synchronised each step"),
    "S_w": ("S_w", "B", "parameter bytes per device gathered by ZeRO-3"),
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
    "p": ("p", "1", "pipeline stages"),
    "L": ("L", "1", "transformer layers"),
    "l": (r"\ell", "s", "one layer's compute per sequence on one device (fwd + bwd + recompute)"),
    "x": ("x", "s", "first / last stage's extra compute per sequence (embedding, LM head, loss)"),
    "alpha_t": (r"\alpha_{tp}", "s", "latency of the tensor-parallel level"),
    "beta_t": (r"\beta_{tp}", "B/s", "per-device bandwidth of the tensor-parallel level"),
    "g": ("g", "1", "pipeline message split (tp with scatter-gather, else 1)"),
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


@dataclass(frozen=True)
class Point:
    """Everything the equations take from the predictor at the operating point."""

    model: object
    system: object
    plan: object
    stack: object
    hw: object
    transformer: bool
    fwd_mb: float  # forward compute of one micro-batch on one device (s)
    bwd_mb: float  # backward + recompute of one micro-batch (s)
    grad_bytes: float  # gradient bytes per device
    weight_bytes: float
    layer: Mapping[str, float] = field(default_factory=dict)  # transformer per-layer numbers


def default_global_batch(model, micro_batch: int, dp: int) -> int:
    """The global batch of a strong-scaling study when the plan gives none: the published batch
    of the model family (DEFAULT_GLOBAL_BATCH), rounded up to a multiple of micro-batch x dp."""
    from perfmodel.workloads.transformer import TransformerModel

    base = DEFAULT_GLOBAL_BATCH["tokens" if isinstance(model, TransformerModel) else "samples"]
    unit = micro_batch * dp
    return -(-base // unit) * unit


def point(model, system, plan) -> Point:
    from perfmodel.plan import DTYPE_BYTES, resolve
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.step import placement_levels, params_per_device, device_rates
    from perfmodel.specs.stack import load_stack
    from perfmodel.workloads.transformer import TransformerModel

    if plan.global_batch is None:
        probe = resolve(plan, model, system)
        plan = plan.replace(global_batch=default_global_batch(model, probe.micro_batch, probe.dp))
    plan = resolve(plan, model, system)
    stack = load_stack(plan.stack)
    hw = hw_params(system, plan.dtype, stack.gemm_rate_scale)
    rates = device_rates(hw, plan.dtype, stack)
    grad_per_param = stack.grad_reduce_bytes if DTYPE_BYTES[plan.dtype] < 4 else 4
    if not isinstance(model, TransformerModel):
        from perfmodel.prediction.dense import dense_layer_times

        rows = dense_layer_times(model, stack, rates, plan.micro_batch)
        return Point(model, system, plan, stack, hw, False, sum(r.forward_s for r in rows),
                      sum(r.backward_s for r in rows), model.n_params * grad_per_param,
                      model.n_params * DTYPE_BYTES[plan.dtype])
    from perfmodel.prediction.layers import embedding_times, head_times, layer_times

    b, s, t, pp = plan.micro_batch, plan.seq, plan.tp, plan.pp
    (tp_a, tp_b), _, _ = placement_levels(hw, t, plan.dp, pp, plan.devices)
    lt = layer_times(model, stack, rates, tp_a, tp_b, b=b, s=s, t=t, sp=plan.sequence_parallel,
                     recompute=plan.recompute, causal=model.kind == "decoder")
    head_f, head_b, _, _ = head_times(model, stack, rates, b=b, s=s, t=t)
    emb_f, emb_b = embedding_times(model, rates, b=b, s=s)
    n_layers = model.n_layers / pp
    extra_f = max(head_f, emb_f) if pp > 1 else head_f + emb_f
    extra_b = max(head_b, emb_b) if pp > 1 else head_b + emb_b
    first, last = params_per_device(model, t, pp)
    params = max(first, last)
    layer = {"fwd": lt.forward, "bwd": lt.backward, "rec": lt.recompute,
             "extra_split": max(head_f, emb_f) + max(head_b, emb_b), "extra_one": head_f + emb_f + head_b + emb_b,
             "u": s * model.hidden * rates.bytes_per_element,
             "n_ar": 6 if plan.recompute == "full" else 4}
    return Point(model, system, plan, stack, hw, True, n_layers * lt.forward + extra_f,
                  n_layers * (lt.backward + lt.recompute) + extra_b, params * grad_per_param,
                  params * DTYPE_BYTES[plan.dtype], FrozenDict(layer))


def _max_devices(system) -> float:
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


def _dp_equation(pt: Point, solve_for: str) -> Equation:
    from perfmodel.prediction.step import two_level_allreduce_time, placement_levels

    plan, hw = pt.plan, pt.hw
    q, tp, pp = plan.tp * plan.pp, plan.tp, plan.pp
    n0, b0, m0 = plan.devices, plan.micro_batch, plan.n_microbatches
    work = m0 * pt.bwd_mb * n0  # device-seconds of backward per step
    per_seq = pt.bwd_mb / b0

    def levels(n, hw_):
        local, ia, ib, ea, eb = placement_levels(hw_, tp, n / q, pp, n)[1]
        return float(local), ia, ib, ea, eb

    def spans(n):
        return levels(n, hw)[0] < n / q - 1e-12

    level = "network" if (spans(n0) and hw.has_network) else "fabric"
    if hw.fabric_kind == "none" and hw.has_network:
        level = "network"

    def params_at(x):
        n, hw_ = n0, hw
        if solve_for == "devices":
            n = x
        elif solve_for == "bandwidth":
            hw_ = _hw_with_bandwidth(hw, level, x)
        local, ia, ib, ea, eb = levels(n, hw_)
        out = {"N": n, "d": local, "S": pt.grad_bytes, "S_w": pt.weight_bytes, "alpha_i": ia, "beta_i": ib,
               "alpha_e": ea, "beta_e": eb, "W": work, "M": plan.global_batch / b0, "m": m0, "w": per_seq, "b": b0}
        if solve_for == "bandwidth":
            out["B"] = x
            out["eta"] = (eb if level == "network" else ib) / x
        return out

    def segment_at(x):
        n = x if solve_for == "devices" else n0
        return (spans(n), n / q > 1 + 1e-12)

    def terms(P, seg):
        span, several = seg
        n = P["N"]
        dp = n / q
        ai, bi, ae, be = P["alpha_i"], P["beta_i"], P["alpha_e"], P["beta_e"]
        flat_a, flat_b = (ae, be) if span else (ai, bi)
        if not several:
            sync = 0 * n
        elif plan.grad_sync == "allreduce":
            # the predictor's own all-reduce (a ring when the group fits a node)
            local = P["d"] if span else dp
            sync = two_level_allreduce_time(P["S"], dp, (local, ai, bi, ae, be))
        elif plan.grad_sync == "parameter-server":
            sync = dpf.parameter_server_time(dp, P["S"], flat_a, flat_b)
        else:
            sync = dpf.delta_w_broadcast_time(dp, P["S"], flat_a, flat_b)
        if solve_for == "micro-batch":
            m, compute = P["m"], P["m"] * P["w"] * P["b"]
        else:  # strong scaling: the step's backward work spread over N devices
            m, compute = P["M"] * q / n, P["W"] / n
        if plan.zero >= 3 and several:
            sync = sync + 2 * m * coll.ring_allgather_time(dp, P["S_w"], flat_a, flat_b)
        return sync, compute

    derived = {}
    if solve_for == "bandwidth":
        key = "beta_e" if level == "network" else "beta_i"
        derived = {key: lambda S: S["eta"] * S["B"]}
    bounds = {"devices": (float(q), _max_devices(pt.system), 1, n0, "devices"),
              "bandwidth": (1e3, 1e16, -1, _link_bandwidth(hw, level), "B/s"),
              "micro-batch": (1.0, 1e7, -1, float(b0), "sequences" if pt.transformer else "samples")}[solve_for]
    lo, hi, direction, x0, unit = bounds
    return Equation({"devices": "N", "bandwidth": "B", "micro-batch": "b"}[solve_for], float(x0), lo, hi,
                     direction, params_at, segment_at, terms,
                     "one step on one device: gradient sync vs backward compute", unit, level, derived)


def _tp_equation(pt: Point, solve_for: str) -> Equation:
    from perfmodel.prediction.step import placement_levels

    plan, hw, lay = pt.plan, pt.hw, pt.layer
    t0, b0, dp, pp = plan.tp, plan.micro_batch, plan.dp, plan.pp
    per_node = hw.devices_per_node
    k = (lay["fwd"] + lay["bwd"] + lay["rec"]) * t0 / b0
    level = "fabric" if (t0 <= per_node and hw.fabric_kind != "none") else "network"

    def params_at(x):
        t, hw_ = t0, hw
        if solve_for == "devices":
            t = x
        elif solve_for == "bandwidth":
            hw_ = _hw_with_bandwidth(hw, level, x)
        alpha, beta = placement_levels(hw_, t, dp, pp, t * dp * pp)[0]
        out = {"t": t, "b": b0 if solve_for != "micro-batch" else x, "u": lay["u"], "alpha": float(alpha),
               "beta": float(beta), "k": k, "n_ar": lay["n_ar"]}
        if solve_for == "bandwidth":
            out["B"], out["eta"] = x, float(beta) / x
        return out

    def segment_at(x):
        t = x if solve_for == "devices" else t0
        return (t <= per_node, t > 1 + 1e-12)

    def terms(P, seg):
        t = P["t"]
        comm = P["n_ar"] * coll.ring_allreduce_time(t, P["b"] * P["u"], P["alpha"], P["beta"])
        return comm, P["k"] * P["b"] / t

    derived = {"beta": lambda S: S["eta"] * S["B"]} if solve_for == "bandwidth" else {}
    bounds = {"devices": (1.0, float(min(pt.model.n_heads, _max_devices(pt.system))), 1, t0, "devices"),
              "bandwidth": (1e3, 1e16, -1, _link_bandwidth(hw, level), "B/s"),
              "micro-batch": (1.0, 1e7, -1, b0, "sequences")}[solve_for]
    lo, hi, direction, x0, unit = bounds
    return Equation({"devices": "t", "bandwidth": "B", "micro-batch": "b"}[solve_for], float(x0), lo, hi,
                     direction, params_at, segment_at, terms,
                     "one layer, one micro-batch, one device: tensor-parallel all-reduces vs layer compute",
                     unit, level, derived)


def _pp_equation(pt: Point, solve_for: str) -> Equation:
    from perfmodel.prediction.step import placement_levels

    plan, hw, lay = pt.plan, pt.hw, pt.layer
    p0, b0, t, dp = plan.pp, plan.micro_batch, plan.tp, plan.dp
    v = plan.virtual_stages
    v_eff = v if plan.schedule == "interleaved" else 1
    n_layers = pt.model.n_layers
    ell = (lay["fwd"] + lay["bwd"] + lay["rec"]) / b0
    (tp_a, tp_b), _, _ = placement_levels(hw, t, dp, p0, t * dp * p0)
    g = t if pt.stack.p2p_scatter_gather else 1

    # pipeline neighbours are tp x dp ranks apart: across the network once a stage fills a node
    # (perfmodel.prediction.step.placement_levels)
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
        alpha, beta = placement_levels(hw_, t, dp, p, t * dp * p)[2]
        out = {"p": p, "b": b, "M": plan.global_batch / dp, "L": n_layers, "l": ell,
               "x": (lay["extra_split"] if p > 1 else lay["extra_one"]) / b0,
               "t": t, "n_ar": lay["n_ar"], "alpha_t": float(tp_a), "beta_t": float(tp_b), "u": lay["u"], "g": g,
               "v": v, "alpha": float(alpha), "beta": float(beta)}
        if solve_for == "bandwidth":
            out["B"], out["eta"] = x, float(beta) / x
        return out

    def segment_at(x):
        p = x if solve_for == "devices" else p0
        return (p > 1 + 1e-12,)

    def terms(P, seg):
        p, b = P["p"], P["b"]
        m = P["M"] / b
        p2p = 2 * P["v"] * coll.point_to_point_time(b * P["u"] / P["g"], P["alpha"], P["beta"]) if seg[0] else 0 * p
        compute_mb = P["L"] / p * P["l"] * b + P["x"] * b
        tp_layer = P["n_ar"] * coll.ring_allreduce_time(P["t"], b * P["u"], P["alpha_t"], P["beta_t"])
        stage_mb = compute_mb + P["L"] / p * tp_layer + p2p
        bubble = (p - 1) / v_eff * stage_mb
        return m * p2p + bubble, m * compute_mb

    derived = {"beta": lambda S: S["eta"] * S["B"]} if solve_for == "bandwidth" else {}
    bounds = {"devices": (1.0, float(n_layers), 1, p0, "devices"),
              "bandwidth": (1e3, 1e16, -1, _link_bandwidth(hw, level), "B/s"),
              "micro-batch": (1.0, float(plan.global_batch // dp), 1, b0, "sequences")}[solve_for]
    lo, hi, direction, x0, unit = bounds
    return Equation({"devices": "p", "bandwidth": "B", "micro-batch": "b"}[solve_for], float(x0), lo, hi,
                     direction, params_at, segment_at, terms,
                     "one step of one stage: point-to-point transfers + pipeline bubble vs stage compute",
                     unit, level, derived)


def equation(pt: Point, scheme: str, solve_for: str) -> Equation:
    """The crossover equation of ``scheme`` with ``solve_for`` unknown, at the operating point ``pt``."""
    return {"dp": _dp_equation, "tp": _tp_equation, "pp": _pp_equation}[scheme](pt, solve_for)
