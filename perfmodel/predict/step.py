"""One training step of a transformer: pipeline schedule, tensor / pipeline / data-parallel
communication, optimizer, memory. Combines :mod:`.layers` with the formulas.

Rank placement (Megatron-LM order: tensor-parallel ranks innermost, then data parallel, then
pipeline stages) decides which level of the system each group's traffic crosses; see
:mod:`.hardware`.
"""

from __future__ import annotations

from types import MappingProxyType

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import dataparallel as dpf
from perfmodel.formulas import memory as mem
from perfmodel.formulas import pipeline as pipe
from perfmodel.plan import DTYPE_BYTES
from perfmodel.predict.hardware import attention_curves, gemm_curve, inter_node_level, intra_node_level
from perfmodel.predict.layers import DeviceRates, embedding_times, head_times, layer_times
from perfmodel.predict.result import BREAKDOWN_KEYS, Prediction
from perfmodel.stack import load_stack

__all__ = ["predict_transformer", "device_rates"]

DDP_BUCKET_BYTES = 25 * 2**20  # PyTorch DDP bucket_cap_mb default (Li et al. VLDB 2020, Sec. 3.2.3)
# mixed-precision optimizer state per parameter (fp32 master copy + moments); fp32 training has
# no master copy (ZeRO paper Section 3.1: K = 12 for mixed-precision Adam)
OPTIMIZER_STATE_BYTES = {("adamw", True): 12, ("adamw", False): 8, ("sgd", True): 8, ("sgd", False): 4}


def device_rates(device, dtype: str, stack) -> DeviceRates:
    """Rates of ``device`` running ``stack``: measured curves scaled by the stack's GEMM factor."""
    scale = stack.gemm_rate_scale
    gemm = gemm_curve(device, dtype).scaled(scale)
    att = attention_curves(device, dtype)
    if att is not None:
        att = (att[0].scaled(scale), att[1].scaled(scale))
    bw = device.measured_memory_bandwidth or device.memory_bandwidth
    return DeviceRates(gemm, att, bw, stack.launch_overhead_time, DTYPE_BYTES[dtype])


def _levels(system, plan):
    """(tp level, dp levels, pp level) as seen by this plan's groups."""
    per_node = system.devices_per_node
    tp, dp, pp = plan.tp, plan.dp, plan.pp
    multi_node = plan.devices > per_node
    if tp <= per_node:
        tp_level = intra_node_level(system, tp, max(1, per_node // tp))
    else:
        tp_level = inter_node_level(system, per_node)
    local = min(dp, max(1, per_node // tp)) if tp <= per_node else 1  # dp ranks sharing a node
    dp_intra = intra_node_level(system, tp * local, max(1, per_node // local)) if local > 1 else None
    dp_inter = inter_node_level(system, per_node) if local < dp else None
    stage_span = tp * dp
    if pp > 1 and (multi_node and stage_span >= per_node):
        pp_level = inter_node_level(system, per_node)
    elif pp > 1:
        pp_level = intra_node_level(system, min(per_node, 2 * stage_span), max(1, per_node // (2 * stage_span)))
    else:
        pp_level = None
    return tp_level, (local, dp_intra, dp_inter), pp_level


def _allreduce(size, dp, local, intra, inter):
    if dp == 1:
        return 0.0
    if inter is None:
        return coll.ring_allreduce_time(dp, size, intra.alpha, intra.beta)
    if intra is None:
        return coll.ring_allreduce_time(dp, size, inter.alpha, inter.beta)
    return coll.hierarchical_allreduce_time(dp / local, local, size, intra.alpha, intra.beta, inter.alpha, inter.beta)


def _allgather(size, dp, intra, inter):
    level = inter if inter is not None else intra
    return 0.0 if dp == 1 else coll.ring_allgather_time(dp, size, level.alpha, level.beta)


def _params_per_device(model, plan) -> tuple[float, float]:
    """Parameters held by the first and by the last pipeline stage's device."""
    tp, pp = plan.tp, plan.pp
    layers = model.n_layers / pp * model.n_params_per_layer / tp
    emb = model.vocab * model.hidden / tp + (model.max_positions * model.hidden if model.positions == "learned" else 0)
    head = model.vocab * model.hidden / tp
    final_norm = model.params_breakdown()["final_norm"]
    if pp == 1:
        return (layers + emb + final_norm + (0 if model.tied_embeddings else head),) * 2
    # a tied output layer keeps its own copy of the embedding on the last stage (Megatron-LM)
    return layers + emb, layers + final_norm + head


def _activation_bytes_per_layer(model, plan, stack, b, s):
    h, a, t = model.hidden, model.n_heads, plan.tp
    flash = stack.attention == "flash"
    if plan.recompute == "full":
        return (mem.activation_bytes_per_layer_full_recompute_sp(s, b, h, t) if plan.sequence_parallel
                else mem.activation_bytes_per_layer_full_recompute(s, b, h))
    if plan.recompute == "selective" or flash:  # flash attention never stores the s^2 scores
        return (mem.activation_bytes_per_layer_tp_sp_selective(s, b, h, t) if plan.sequence_parallel
                else mem.activation_bytes_per_layer_tp_selective(s, b, h, t))
    return (mem.activation_bytes_per_layer_tp_sp(s, b, h, a, t) if plan.sequence_parallel
            else mem.activation_bytes_per_layer_tp(s, b, h, a, t))


def _memory(model, plan, stack, b, s, m, params):
    e_w = DTYPE_BYTES[plan.dtype]
    mixed = e_w < 4
    dp, zero = plan.dp, plan.zero
    opt_bytes = OPTIMIZER_STATE_BYTES[(plan.optimizer, mixed)]
    grad_bytes = stack.grad_reduce_bytes if mixed else 4
    weights = params * e_w / (dp if zero >= 3 else 1)
    grads = params * grad_bytes / (dp if zero >= 2 else 1)
    optimizer = params * opt_bytes / (dp if zero >= 1 else 1)
    scale = e_w / 2  # Korthikanti's counts assume 16-bit activations
    per_layer = _activation_bytes_per_layer(model, plan, stack, b, s) * scale
    layers_per_stage = model.n_layers / plan.pp
    if plan.schedule == "gpipe":
        inflight = m
    else:
        inflight = pipe.pipeline_inflight_microbatches(plan.pp, m, plan.virtual_stages)
    activations = per_layer * layers_per_stage * inflight
    if plan.recompute == "full":  # the layer being recomputed holds its full activations
        full_plan = plan.replace(recompute="none")
        activations += _activation_bytes_per_layer(model, full_plan, stack, b, s) * scale
    output = mem.output_layer_activation_bytes(s, b, model.hidden, model.vocab, plan.tp) * stack.logits_bytes / 4
    activations += output if plan.pp == 1 else 0.0  # first stage (pp > 1) holds no logits
    total = weights + grads + optimizer + activations
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "activations": activations, "total": total}


def predict_transformer(model, system, plan) -> Prediction:
    """Predict one optimizer step; ``plan`` must already be resolved (see :func:`plan.resolve`)."""
    stack = load_stack(plan.stack)
    device = system.device
    rates = device_rates(device, plan.dtype, stack)
    tp_level, (local, dp_intra, dp_inter), pp_level = _levels(system, plan)
    b, s, t, pp, v = plan.micro_batch, plan.seq, plan.tp, plan.pp, plan.virtual_stages
    m = plan.n_microbatches
    causal = model.kind == "decoder"

    lt = layer_times(model, stack, rates, tp_level.alpha, tp_level.beta, b=b, s=s, t=t,
                     sp=plan.sequence_parallel, recompute=plan.recompute, causal=causal)
    n_layers = model.n_layers / pp
    head_f, head_b, head_mem, head_flops = head_times(model, stack, rates, b=b, s=s, t=t)
    emb_f, emb_b = embedding_times(model, rates, b=b, s=s)
    if pp == 1:
        extra_f, extra_b = head_f + emb_f, head_b + emb_b
    else:  # the slowest stage is the last one, with the LM head and loss
        extra_f, extra_b = max(head_f, emb_f), max(head_b, emb_b)

    comp_f = n_layers * lt.forward + extra_f
    comp_b = n_layers * lt.backward + extra_b
    recompute = n_layers * lt.recompute
    tp_mb = n_layers * (lt.tp_comm_forward + lt.tp_comm_backward + lt.tp_comm_recompute)
    pp_mb = 0.0
    if pp_level is not None:
        p2p_bytes = b * s * model.hidden * rates.bytes_per_element / (t if stack.p2p_scatter_gather else 1)
        # each chunk receives its input and sends its output forward, and the gradients back
        pp_mb = 2 * v * coll.point_to_point_time(p2p_bytes, pp_level.alpha, pp_level.beta)
    stage_mb = comp_f + comp_b + recompute + tp_mb + pp_mb
    v_eff = v if plan.schedule == "interleaved" else 1
    bubble = pipe.pipeline_bubble_time(stage_mb, pp, v_eff)

    # data-parallel gradient synchronisation, once per step after the last micro-batch
    params_first, params_last = _params_per_device(model, plan)
    params = max(params_first, params_last)
    grad_size = params * (stack.grad_reduce_bytes if DTYPE_BYTES[plan.dtype] < 4 else 4)
    dp = plan.dp
    if plan.grad_sync == "allreduce":
        sync = _allreduce(grad_size, dp, local, dp_intra, dp_inter)
        bucket = _allreduce(min(grad_size, DDP_BUCKET_BYTES), dp, local, dp_intra, dp_inter)
        window = n_layers * (lt.backward + lt.tp_comm_backward)
        exposed = dpf.overlapped_sync_exposed_time(sync, window, bucket) if plan.overlap else sync
    else:
        level = dp_inter if dp_inter is not None else dp_intra
        if dp == 1:
            sync = 0.0
        elif plan.grad_sync == "parameter-server":
            sync = dpf.parameter_server_time(dp, grad_size, level.alpha, level.beta)
        else:
            sync = dpf.delta_w_broadcast_time(dp, grad_size, level.alpha, level.beta)
        exposed = sync
    if plan.zero >= 3:  # parameters all-gathered before every micro-batch's forward and backward
        gather = _allgather(params * DTYPE_BYTES[plan.dtype], dp, dp_intra, dp_inter)
        sync += 2 * m * gather
        exposed += 2 * m * gather

    opt_params = params / (dp if plan.zero >= 1 else 1)
    optimizer = max(opt_params * stack.optimizer_bytes_per_param / rates.memory_bandwidth, rates.launch_time)

    breakdown = {
        "compute": m * (comp_f + comp_b),
        "recompute": m * recompute,
        "optimizer": optimizer,
        "tp_comm": m * tp_mb,
        "pp_comm": m * pp_mb,
        "dp_comm": exposed,
        "pipeline_bubble": bubble,
        "other": 0.0,
    }
    step = sum(breakdown[k] for k in BREAKDOWN_KEYS)
    comm_total = m * (tp_mb + pp_mb) + (pp - 1) / v_eff * (tp_mb + pp_mb) + sync

    memory = _memory(model, plan, stack, b, s, m, max(params_first, params_last))
    capacity = device.memory_bytes
    fits = capacity is None or memory["total"] <= capacity

    microbatches_total = m * dp
    model_flops = microbatches_total * t * (model.n_layers * lt.model_flops + head_flops)
    peak = device.peak(plan.dtype)
    mfu = model_flops / (step * plan.devices * peak)
    tokens = plan.global_batch * s / step

    exposed_comm = breakdown["tp_comm"] + breakdown["pp_comm"] + breakdown["dp_comm"]
    busy = breakdown["compute"] + breakdown["recompute"] + breakdown["optimizer"]
    memory_bound = m * (n_layers * lt.memory_bound + head_mem) + optimizer
    if exposed_comm > busy:
        bound = "communication"
    elif memory_bound > busy / 2:
        bound = "memory"
    else:
        bound = "compute"
    details = MappingProxyType({
        "n_microbatches": m,
        "stage_time_per_microbatch_s": stage_mb,
        "tp_level": tp_level.name, "tp_bandwidth_per_device": tp_level.beta,
        "dp_ranks_per_node": local,
        "dp_sync_s": sync,
        "params_per_device": params,
        "model_flops_per_step": model_flops,
        "gemm_curve": rates.gemm_curve.source,
        "stack": stack.name,
    })
    return Prediction(model=model.name, system=system.name, plan=plan, step_time_s=step,
                      breakdown_s=MappingProxyType(breakdown), comm_total_s=comm_total, bound=bound,
                      memory_bytes_per_device=MappingProxyType(memory), memory_capacity_bytes=capacity,
                      fits_in_memory=fits, mfu=mfu, throughput=tokens, throughput_unit="tokens_per_s",
                      details=details)
