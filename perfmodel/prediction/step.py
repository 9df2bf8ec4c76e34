"""One training step of a transformer: pipeline schedule, tensor / pipeline / data-parallel
communication, optimizer, memory. Combines :mod:`.layers` with the formulas.

:func:`transformer_terms` is the model: its numeric plan fields (tp, pp, dp, micro-batch,
global batch, virtual stages, sequence length) and the hardware numbers may be floats or numpy
arrays, so ``predict`` (floats) and ``sweep`` (arrays) run the same arithmetic. Categorical
choices (recompute, schedule, ZeRO stage, gradient sync, ...) are plain Python values.

Rank placement follows Megatron-LM (tensor-parallel ranks innermost, then data parallel, then
pipeline stages): a TP group fills consecutive devices of a node, data-parallel peers come
next, pipeline stages are outermost. Which level of the system each group's traffic crosses
follows from that (see :mod:`.hardware`).
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import dataparallel as dpf
from perfmodel.formulas import memory as mem
from perfmodel.formulas import pipeline as pipe
from perfmodel.formulas._backend import floor, maximum, minimum, where
from perfmodel.frozen import FrozenDict
from perfmodel.plan import DTYPE_BYTES
from perfmodel.prediction.hardware import (
    allreduce_beta,
    hw_params,
    inter_node_level,
    intra_node_level,
)
from perfmodel.prediction.layers import (
    DeviceRates,
    embedding_times,
    head_times,
    layer_times,
)
from perfmodel.prediction.result import BREAKDOWN_KEYS, Prediction
from perfmodel.specs.stack import load_stack

__all__ = ["Choices", "transformer_terms", "predict_transformer", "device_rates", "data_parallel_allreduce_time",
           "data_parallel_levels", "gradient_sync_times", "placement_levels", "params_per_device",
           "two_level_allreduce_time"]

DDP_BUCKET_BYTES = 25 * 2**20  # PyTorch DDP bucket_cap_mb default (Li et al. VLDB 2020, Sec. 3.2.3)
# optimizer state per parameter: fp32 master copy (mixed precision only) + fp32 moments
# (Rajbhandari et al., ZeRO, SC'20, Section 3.1: K = 12 for mixed-precision Adam)
OPTIMIZER_STATE_BYTES = {("adamw", True): 12, ("adamw", False): 8, ("sgd", True): 8, ("sgd", False): 4}
BOUNDS = ("compute", "communication", "memory")


@dataclass(frozen=True)
class Choices:
    """The categorical part of a plan (everything that selects a formula rather than feeds one)."""

    dtype: str
    recompute: str
    sequence_parallel: bool
    schedule: str
    zero: int
    grad_sync: str
    overlap: bool
    optimizer: str

    @classmethod
    def of(cls, plan) -> Choices:
        return cls(plan.dtype, plan.recompute, plan.sequence_parallel, plan.schedule, plan.zero,
                   plan.grad_sync, plan.overlap, plan.optimizer)


def device_rates(hw, dtype: str, stack) -> DeviceRates:
    """Kernel rates of the device in ``hw`` running ``stack``."""
    return DeviceRates(hw.gemm, hw.gemm_misaligned, hw.attention, hw.gemm_scale, hw.memory_bandwidth,
                       stack.launch_overhead_time, DTYPE_BYTES[dtype])


def placement_levels(hw, tp, dp, pp, devices):
    """alpha/beta of the TP ring, the DP hierarchy and the pipeline p2p for this placement."""
    per_node = hw.devices_per_node
    tp_in_node = tp <= per_node
    intra_a, intra_b = intra_node_level(hw, tp, maximum(per_node / tp, 1))
    inter_a, inter_b = inter_node_level(hw, per_node)
    tp_alpha = where(tp_in_node, intra_a, inter_a)
    tp_beta = where(tp_in_node, allreduce_beta(hw, intra_b, tp), inter_b)
    # data-parallel ranks sharing a node (consecutive TP groups of the same stage)
    local = minimum(where(tp_in_node, maximum(floor(per_node / tp), 1), 1), dp)
    dpi_a, dpi_b = intra_node_level(hw, tp * local, maximum(per_node / local, 1), stride=tp)
    dpi_b = allreduce_beta(hw, dpi_b, local)
    # pipeline neighbours are tp * dp ranks apart: another node once a stage fills a node
    stage_span = tp * dp
    cross = (devices > per_node) & (stage_span >= per_node)
    ppi_a, ppi_b = intra_node_level(hw, minimum(2 * stage_span, per_node), maximum(per_node / (2 * stage_span), 1),
                                    stride=stage_span)
    pp_alpha = where(cross, inter_a, ppi_a)
    pp_beta = where(cross, inter_b, ppi_b)
    return (tp_alpha, tp_beta), (local, dpi_a, dpi_b, inter_a, inter_b), (pp_alpha, pp_beta)


def two_level_allreduce_time(size, dp, dp_level):
    local, ia, ib, ea, eb = dp_level
    # two-level, pipelined as NCCL runs it: reduce-scatter in the node, all-reduce across nodes,
    # all-gather, chunk by chunk; a plain ring on one level when the other has one member
    return coll.pipelined_hierarchical_allreduce_time(dp / local, local, size, ia, ib, ea, eb)


def data_parallel_allreduce_time(hw, size, dp, tp=1, pp=1):
    """Seconds of the gradient all-reduce of ``size`` bytes over ``dp`` ranks, placed as
    :func:`transformer_terms` places them (used by calibration to fit the same model)."""
    return two_level_allreduce_time(size, dp, data_parallel_levels(hw, dp, tp, pp))


def gradient_sync_times(c: Choices, dp_level, dp, m, grad_size, param_bytes, window):
    """(whole sync, exposed part) of one step's gradient synchronisation over ``dp`` ranks.

    allreduce: the pipelined two-level all-reduce, of which a bucketed overlap hides what the
    backward ``window`` covers (all but the last bucket); parameter-server / broadcast: fully
    exposed. ZeRO-3 adds an all-gather of the parameters before every micro-batch's forward and
    backward. ``dp_level`` comes from :func:`data_parallel_levels`.
    """
    if c.grad_sync == "allreduce":
        sync = two_level_allreduce_time(grad_size, dp, dp_level)
        bucket = two_level_allreduce_time(minimum(grad_size, DDP_BUCKET_BYTES), dp, dp_level)
        exposed = dpf.overlapped_sync_exposed_time(sync, window, bucket) if c.overlap else sync
    else:
        alpha, beta = _dp_level_for_flat(dp_level, dp)
        if c.grad_sync == "parameter-server":
            sync = dpf.parameter_server_time(dp, grad_size, alpha, beta)
        else:
            sync = dpf.delta_w_broadcast_time(dp, grad_size, alpha, beta)
        sync = where(dp > 1, sync, 0.0)
        exposed = sync
    if c.zero >= 3:
        alpha, beta = _dp_level_for_flat(dp_level, dp)
        gather = 2 * m * coll.ring_allgather_time(dp, param_bytes, alpha, beta)
        sync = sync + gather
        exposed = exposed + gather
    return sync, exposed


def data_parallel_levels(hw, dp, tp=1, pp=1):
    """The data-parallel part of :func:`placement_levels` for a plan of tp x dp x pp devices."""
    return placement_levels(hw, tp, dp, pp, tp * dp * pp)[1]


def _dp_level_for_flat(dp_level, dp):
    local, ia, ib, ea, eb = dp_level
    spans = local < dp
    return where(spans, ea, ia), where(spans, eb, ib)


def params_per_device(model, tp, pp):
    """Parameters held by the first and by the last pipeline stage's device."""
    layers = model.n_layers / pp * model.n_params_per_layer / tp
    emb = model.vocab * model.hidden / tp + (model.max_positions * model.hidden if model.positions == "learned" else 0)
    head = model.vocab * model.hidden / tp
    final_norm = model.params_breakdown()["final_norm"]
    single = layers + emb + final_norm + (0 if model.tied_embeddings else head)
    # with pp > 1 a tied output layer keeps its own copy of the embedding (Megatron-LM)
    first = where(pp > 1, layers + emb, single)
    last = where(pp > 1, layers + final_norm + head, single)
    return first, last


def _activation_bytes_per_layer(model, c: Choices, stack, b, s, t, recompute=None):
    h, a = model.hidden, model.n_heads
    recompute = c.recompute if recompute is None else recompute
    sp = c.sequence_parallel
    if recompute == "full":
        return (mem.activation_bytes_per_layer_full_recompute_sp(s, b, h, t) if sp
                else mem.activation_bytes_per_layer_full_recompute(s, b, h))
    if recompute == "selective" or stack.attention == "flash":  # flash never stores the s^2 scores
        return (mem.activation_bytes_per_layer_tp_sp_selective(s, b, h, t) if sp
                else mem.activation_bytes_per_layer_tp_selective(s, b, h, t))
    return (mem.activation_bytes_per_layer_tp_sp(s, b, h, a, t) if sp
            else mem.activation_bytes_per_layer_tp(s, b, h, a, t))


def _memory(model, c: Choices, stack, b, s, t, pp, dp, m, v, params):
    e_w = DTYPE_BYTES[c.dtype]
    mixed = e_w < 4
    grad_bytes = stack.grad_reduce_bytes if mixed else 4
    weights = params * e_w / (dp if c.zero >= 3 else 1)
    grads = params * grad_bytes / (dp if c.zero >= 2 else 1)
    optimizer = params * OPTIMIZER_STATE_BYTES[(c.optimizer, mixed)] / (dp if c.zero >= 1 else 1)
    scale = e_w / 2  # Korthikanti's counts assume 16-bit activations
    per_layer = _activation_bytes_per_layer(model, c, stack, b, s, t) * scale
    inflight = m if c.schedule == "gpipe" else pipe.pipeline_inflight_microbatches(pp, m, v)
    activations = per_layer * (model.n_layers / pp) * inflight
    if c.recompute == "full":  # the layer being recomputed holds its full activations
        activations = activations + _activation_bytes_per_layer(model, c, stack, b, s, t, "none") * scale
    logits = mem.output_layer_activation_bytes(s, b, model.hidden, model.vocab, t) * stack.logits_bytes / 4
    activations = activations + where(pp > 1, 0.0, logits)  # the first stage holds no logits
    total = weights + grads + optimizer + activations
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "activations": activations,
            "total": total}


def transformer_terms(model, stack, hw, c: Choices, *, tp, pp, dp, micro_batch, global_batch,
                      virtual_stages, seq, devices) -> dict:
    """Every number of one prediction (floats or arrays): breakdown, memory, FLOPs, comm."""
    rates = device_rates(hw, c.dtype, stack)
    b, s, t, v = micro_batch, seq, tp, virtual_stages
    m = global_batch / (micro_batch * dp)
    (tp_a, tp_b), dp_level, (pp_a, pp_b) = placement_levels(hw, tp, dp, pp, devices)

    lt = layer_times(model, stack, rates, tp_a, tp_b, b=b, s=s, t=t, sp=c.sequence_parallel,
                     recompute=c.recompute, causal=model.kind == "decoder")
    n_layers = model.n_layers / pp
    head_f, head_b, head_mem, head_flops = head_times(model, stack, rates, b=b, s=s, t=t)
    emb_f, emb_b = embedding_times(model, rates, b=b, s=s)
    # one stage holds everything, or the slowest of first (embedding) and last (LM head, loss)
    extra_f = where(pp > 1, maximum(head_f, emb_f), head_f + emb_f)
    extra_b = where(pp > 1, maximum(head_b, emb_b), head_b + emb_b)

    comp_f = n_layers * lt.forward + extra_f
    comp_b = n_layers * lt.backward + extra_b
    recompute = n_layers * lt.recompute
    tp_all = n_layers * (lt.tp_comm_forward + lt.tp_comm_backward + lt.tp_comm_recompute)
    if stack.tp_comm_overlap:
        # collectives split into chunks and run under the GEMMs that consume or produce them
        # (Transformer Engine userbuffers; Wang et al., ASPLOS'23, "Overlap communication with
        # dependent computation via decomposition"): only what the GEMMs cannot cover is exposed
        rec_gemm = lt.gemm_forward if c.recompute == "full" else 0.0
        tp_mb = n_layers * (maximum(lt.tp_comm_forward - lt.gemm_forward, 0.0)
                            + maximum(lt.tp_comm_backward - 2 * lt.gemm_forward, 0.0)
                            + maximum(lt.tp_comm_recompute - rec_gemm, 0.0))
    else:
        tp_mb = tp_all
    p2p_bytes = b * s * model.hidden * rates.bytes_per_element / (t if stack.p2p_scatter_gather else 1)
    # each of the v chunks receives its input and sends its output forward, and gradients back
    pp_mb = where(pp > 1, 2 * v * coll.point_to_point_time(p2p_bytes, pp_a, pp_b), 0.0)
    stage_mb = comp_f + comp_b + recompute + tp_mb + pp_mb
    v_eff = v if c.schedule == "interleaved" else 1
    bubble = pipe.pipeline_bubble_time(stage_mb, pp, v_eff)

    # data-parallel gradient synchronisation, once per step after the last micro-batch
    params_first, params_last = params_per_device(model, tp, pp)
    params = maximum(params_first, params_last)
    grad_size = params * (stack.grad_reduce_bytes if DTYPE_BYTES[c.dtype] < 4 else 4)
    window = n_layers * (lt.backward + lt.tp_comm_backward)
    if c.zero >= 1 and stack.param_gather_overlap:
        # distributed optimizer: gradients reduce-scattered under the last backward, updated
        # parameters all-gathered under the next step's first forward (Megatron-Core
        # --overlap-grad-reduce / --overlap-param-gather)
        window = window + n_layers * lt.forward
    sync, exposed = gradient_sync_times(c, dp_level, dp, m, grad_size, params * DTYPE_BYTES[c.dtype], window)

    opt_params = params / (dp if c.zero >= 1 else 1)
    optimizer = maximum(opt_params * stack.optimizer_bytes_per_param / rates.memory_bandwidth, rates.launch_time)

    breakdown = {
        "compute": m * (comp_f + comp_b),
        "recompute": m * recompute,
        "optimizer": optimizer,
        "tp_comm": m * tp_mb,
        "pp_comm": m * pp_mb,
        "dp_comm": exposed,
        "pipeline_bubble": bubble,
        "other": 0.0 * bubble,
    }
    step = 0.0
    for key in BREAKDOWN_KEYS:
        step = step + breakdown[key]
    comm_total = (m + (pp - 1) / v_eff) * (tp_all + pp_mb) + sync
    memory = _memory(model, c, stack, b, s, t, pp, dp, m, v, params)
    model_flops = m * dp * t * (model.n_layers * lt.model_flops + head_flops)
    exposed_comm = breakdown["tp_comm"] + breakdown["pp_comm"] + breakdown["dp_comm"]
    busy = breakdown["compute"] + breakdown["recompute"] + breakdown["optimizer"]
    memory_bound = m * (n_layers * lt.memory_bound + head_mem) + optimizer
    # 0 compute, 1 communication, 2 memory (indices into BOUNDS)
    bound = where(exposed_comm > busy, 1, where(memory_bound > busy / 2, 2, 0))
    return {
        "breakdown": breakdown,
        "step_time_s": step,
        "comm_total_s": comm_total,
        "memory": memory,
        "fits_in_memory": memory["total"] <= hw.memory_capacity,
        "model_flops": model_flops,
        "mfu": model_flops / (step * devices * hw.peak_flops_per_s),
        "tokens_per_s": global_batch * s / step,
        "bound": bound,
        "n_microbatches": m,
        "stage_time_per_microbatch_s": stage_mb,
        "params_per_device": params,
        "dp_sync_s": sync,
        "tp_bandwidth_per_device": tp_b,
    }


def predict_transformer(model, system, plan) -> Prediction:
    """Predict one optimizer step; ``plan`` must already be resolved (see :func:`plan.resolve`)."""
    stack = load_stack(plan.stack)
    hw = hw_params(system, plan.dtype, stack.gemm_rate_scale)
    r = transformer_terms(model, stack, hw, Choices.of(plan), tp=plan.tp, pp=plan.pp, dp=plan.dp,
                          micro_batch=plan.micro_batch, global_batch=plan.global_batch,
                          virtual_stages=plan.virtual_stages, seq=plan.seq, devices=plan.devices)
    capacity = system.device.memory_bytes
    details = FrozenDict({
        "n_microbatches": int(r["n_microbatches"]),
        "stage_time_per_microbatch_s": float(r["stage_time_per_microbatch_s"]),
        "tp_bandwidth_per_device": float(r["tp_bandwidth_per_device"]),
        "dp_sync_s": float(r["dp_sync_s"]),
        "params_per_device": float(r["params_per_device"]),
        "model_flops_per_step": float(r["model_flops"]),
        "gemm_curve": hw.gemm.source,
        "stack": stack.name,
    })
    return Prediction(
        model=model.name, system=system.name, plan=plan, step_time_s=float(r["step_time_s"]),
        breakdown_s=FrozenDict({k: float(x) for k, x in r["breakdown"].items()}),
        comm_total_s=float(r["comm_total_s"]), bound=BOUNDS[int(r["bound"])],
        memory_bytes_per_device=FrozenDict({k: float(x) for k, x in r["memory"].items()}),
        memory_capacity_bytes=capacity, fits_in_memory=bool(capacity is None or r["fits_in_memory"]),
        mfu=float(r["mfu"]), throughput=float(r["tokens_per_s"]), throughput_unit="tokens_per_s",
        details=details)
