"""The operating point of a crossover: the plan resolved and the step model evaluated there
(:class:`Point`), the layer's compute at another (t, b), and the exposed tensor-parallel time of a
layer by the step model's own rule. :mod:`.equations` builds each scheme's equation on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from perfmodel.formulas import collectives as coll
from perfmodel.frozen import FrozenDict

__all__ = ["Point", "point", "default_global_batch", "DEFAULT_GLOBAL_BATCH", "tp_layer_comm", "layer_compute"]

# When the plan gives no global batch, strong scaling needs one: the batch the model family was
# published with -- 512 sequences for GPT-2 (Radford et al. 2019, Section 2.3: "a batchsize of
# 512"), 256 images for ResNet (He et al., CVPR 2016, Section 3.4: "a mini-batch size of 256").
DEFAULT_GLOBAL_BATCH = {"tokens": 512, "samples": 256}


@dataclass(frozen=True)
class Point:
    """Everything the equations take from the step model at the operating point."""

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
    # slot -> (alone, as run) seconds of the GEMMs under the stack's [tp_overlap] slots at the
    # operating point (prediction.tp_overlap.slot_gemm_times); empty without slots
    slot_gemms: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    terms: object = None  # the StepTerms of a transformer at the operating point
    shard_units: object = None  # the layers as ZeRO-2/3 shards them (rules.ShardUnits)


def default_global_batch(model, micro_batch: int, dp: int) -> int:
    """The global batch of a strong-scaling study when the plan gives none: the published batch
    of the model family (DEFAULT_GLOBAL_BATCH), rounded up to a multiple of micro-batch x dp."""
    from perfmodel.workloads.transformer import TransformerModel

    base = DEFAULT_GLOBAL_BATCH["tokens" if isinstance(model, TransformerModel) else "samples"]
    unit = micro_batch * dp
    return -(-base // unit) * unit


def point(model, system, plan) -> Point:
    """The operating point: the plan resolved, and the step model evaluated there."""
    from perfmodel.plan import DTYPE_BYTES, resolve
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.rules import Choices, grad_bytes_per_param
    from perfmodel.prediction.state_bytes import param_sync_bytes
    from perfmodel.specs.stack import check_capabilities, load_stack
    from perfmodel.workloads.transformer import TransformerModel

    _check_in_the_equations(model, None)
    if plan.global_batch is None:
        probe = resolve(plan, model, system)
        plan = plan.replace(global_batch=default_global_batch(model, probe.micro_batch, probe.dp))
    plan = resolve(plan, model, system)
    _check_in_the_equations(model, plan)
    stack = load_stack(plan.stack)
    check_capabilities(stack, plan)
    hw = hw_params(system, plan.dtype, stack.gemm_rate_scale)
    grad_per_param = grad_bytes_per_param(stack, plan.dtype)
    if not isinstance(model, TransformerModel):
        from perfmodel.prediction.dense import predict_dense

        from perfmodel.prediction.dense import dense_shard_units

        d = predict_dense(model, system, plan).details
        params = d["params_per_device"]
        fwd, bwd = d["forward_per_microbatch_s"], d["backward_per_microbatch_s"]
        return Point(model=model, system=system, plan=plan, stack=stack, hw=hw, transformer=False,
                     fwd_mb=fwd, bwd_mb=bwd, grad_bytes=params * grad_per_param,
                     weight_bytes=params * DTYPE_BYTES[plan.dtype],
                     shard_units=dense_shard_units(model, stack, Choices.of(plan), fwd, bwd))
    from perfmodel.prediction.step import transformer_terms

    st = transformer_terms(model, stack, hw, Choices.of(plan), tp=plan.tp, pp=plan.pp, dp=plan.dp,
                           micro_batch=plan.micro_batch, global_batch=plan.global_batch,
                           virtual_stages=plan.virtual_stages, seq=plan.seq, devices=plan.devices)
    params = float(st.params_per_device)
    layer = {"compute": float(st.layer_compute_s), "gemm_fwd": float(st.layer_gemm_forward_s),
             "S_e": (model.vocab * model.hidden / plan.tp * grad_per_param if model.tied_embeddings else 0.0),
             "ends_split": float(st.ends_split_per_microbatch_s), "ends_one": float(st.ends_single_per_microbatch_s),
             "u": plan.seq * model.hidden * DTYPE_BYTES[plan.dtype],
             **_tp_counts(model, plan.recompute)}
    return Point(model=model, system=system, plan=plan, stack=stack, hw=hw, transformer=True,
                 fwd_mb=float(st.forward_per_microbatch_s), bwd_mb=float(st.backward_per_microbatch_s),
                 grad_bytes=params * grad_per_param, weight_bytes=params * param_sync_bytes(stack, plan.dtype),
                 layer=FrozenDict(layer), terms=st, shard_units=st.shard_units,
                 slot_gemms=_slot_gemms(model, stack, hw, plan))


def _slot_gemms(model, stack, hw, plan) -> FrozenDict:
    """The GEMMs under the stack's TP-overlap slots at the operating point (empty without slots)."""
    from perfmodel.prediction import moe, tp_overlap
    from perfmodel.prediction.step import device_rates

    if tp_overlap.mode(stack, model, plan.sequence_parallel) != "slots":
        return FrozenDict()
    rates = device_rates(hw, plan.dtype, stack)
    times = tp_overlap.slot_gemm_times(stack.tp_overlap, model, rates, plan.micro_batch * plan.seq / plan.cp, plan.tp,
                                       moe=moe.moe_fraction(model) == 1)
    return FrozenDict({k: (float(a), float(r)) for k, (a, r) in times.items()})


def tp_layer_comm(P, pt: Point, level=("alpha_t", "beta_t")):
    """Exposed tensor-parallel time of one layer for one micro-batch, from the equation's
    parameters (t, b, u, alpha/beta of the TP level, G, n_ar), by the step model's own rules
    (:mod:`perfmodel.prediction.tp_overlap`, :func:`perfmodel.prediction.rules.tp_exposed_time`).
    Under the stack's ``[tp_overlap]`` slots each slot's GEMM is the operating point's, scaled as
    b / t (G carries the GEMM efficiency at each (t, b); the slots' split between GEMMs does not)."""
    from perfmodel.plan import DTYPE_BYTES
    from perfmodel.prediction import tp_overlap
    from perfmodel.prediction.rules import tp_exposed_time
    from perfmodel.prediction.shapes import qkv_gather_times

    alpha, beta = P[level[0]], P[level[1]]
    one = coll.ring_allreduce_time(P["t"], P["b"] * P["u"], alpha, beta)
    recompute = pt.plan.recompute
    n_rec = P["n_f"] if recompute == "full" else 0
    # more TP ranks than key/value heads: the QKV all-gather and its reduce-scatter, as the step counts them
    qkv = qkv_gather_times(pt.model, P["b"] * pt.plan.seq, DTYPE_BYTES[pt.plan.dtype], P["t"], alpha, beta)
    forward, backward = P["n_f"] * one + qkv[0], (P["n_ar"] - P["n_f"] - n_rec) * one + qkv[1]
    how = tp_overlap.mode(pt.stack, pt.model, pt.plan.sequence_parallel)
    over = None
    if how == "pass":
        over = tp_overlap.pass_level_exposed(forward, backward, P["G"] * P["b"] / P["t"])
    elif how == "slots":
        scale = P["b"] / P["t"] * (pt.plan.tp / pt.plan.micro_batch)
        gemms = {k: (a * scale, r * scale) for k, (a, r) in pt.slot_gemms.items()}
        collective = coll.ring_allgather_time(P["t"], P["b"] * P["u"], alpha, beta)
        # FP8 linear layers: 1-byte all-gathers (tp_overlap.exposed_times)
        gather = (coll.ring_allgather_time(P["t"], P["b"] * P["u"] / DTYPE_BYTES[pt.plan.dtype], alpha, beta)
                  if pt.hw.gemm_linear is not None else collective)
        over = tp_overlap.slots_exposed(pt.stack, pt.model, gemms, collective, gather, qkv, P["t"], pt.hw.compute_units)
    return tp_exposed_time(forward, backward, n_rec * one + (qkv[0] if n_rec else 0 * one), recompute, over)


def _tp_counts(model, recompute: str) -> dict:
    """TP all-reduces of one layer per micro-batch: forward n_f, all n_ar (a full recompute
    repeats the forward's), by :func:`perfmodel.prediction.shapes.tp_allreduces_per_layer`."""
    from perfmodel.prediction.shapes import tp_allreduces_per_layer

    n_f, n_b = tp_allreduces_per_layer(model)
    return {"n_f": n_f, "n_ar": n_f + n_b + (n_f if recompute == "full" else 0)}


def layer_compute(pt: Point):
    """(compute, forward GEMMs) of one layer for one micro-batch at tp = t and micro-batch b, by
    the step model's own layer timing (:func:`perfmodel.prediction.layers.layer_times`)."""
    import functools

    from perfmodel.prediction.layers import layer_times
    from perfmodel.prediction.step import device_rates

    plan = pt.plan
    rates = device_rates(pt.hw, plan.dtype, pt.stack)

    @functools.lru_cache(maxsize=4096)
    def at(t: float, b: float) -> tuple[float, float]:
        if t == plan.tp and b == plan.micro_batch:  # the operating point: exactly what predict ran
            return pt.layer["compute"], pt.layer["gemm_fwd"]
        lt = layer_times(pt.model, pt.stack, rates, 0.0, float("inf"), b=b, s=plan.seq, t=t,
                         sp=plan.sequence_parallel, recompute=plan.recompute, causal=pt.model.kind == "decoder")
        return float(lt.forward + lt.backward + lt.recompute), float(lt.gemm_forward)

    return at


def _check_in_the_equations(model, plan) -> None:
    """A one-line PlanError for what the crossover equations (tp, pp, dp of dense layers, ZeRO over
    the whole dp group) do not model: a mixture of experts, context parallelism, hybrid sharding."""
    from perfmodel.errors import PlanError

    if getattr(model, "is_moe", False):
        why = f"{model.name} is a mixture of experts; the crossover equations model dense layers only"
    elif plan is not None and plan.cp != 1:
        why = f"context parallelism (cp = {plan.cp}) is not in the crossover equations"
    elif plan is not None and getattr(plan, "shard_group", None) is not None:
        why = f"hybrid sharding (shard group {plan.shard_group}) is not in the crossover equations"
    elif plan is not None and (plan.first_stage_layers is not None or plan.last_stage_layers is not None):
        why = "uneven pipeline stages (--first/--last-stage-layers) are not in the crossover equations"
    else:
        return
    raise PlanError(f"crossover: {why}; predict or sweep the plan instead")
