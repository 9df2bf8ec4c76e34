"""One training step of a transformer: pipeline schedule, tensor / pipeline / data-parallel
communication, optimizer, memory. Combines :mod:`.layers` with the formulas.

:func:`transformer_terms` is the model: its numeric plan fields (tp, pp, dp, micro-batch,
global batch, virtual stages, sequence length) and the hardware numbers may be floats or numpy
arrays, so ``predict`` (floats) and ``sweep`` (arrays) run the same arithmetic. Categorical
choices (recompute, schedule, ZeRO stage, gradient sync, ...) are plain Python values.

Rank placement follows Megatron-LM (tensor-parallel ranks innermost, then data parallel, then
pipeline stages): a TP group fills consecutive devices of a node, data-parallel peers come
next, pipeline stages are outermost. Which level of the system each group's traffic crosses
follows from that (see :mod:`.placement`). The rules a transformer shares with other models
(gradient bytes, model-state memory, optimizer, gradient sync, bubble, bound) are in :mod:`.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import memory as mem
from perfmodel.formulas._backend import maximum, where
from perfmodel.errors import MissingSpecError
from perfmodel.frozen import FrozenDict
from perfmodel.plan import DTYPE_BYTES
from perfmodel.prediction import eager, moe, stages, tp_overlap
from perfmodel.prediction.stages import params_per_device, stage_layers
from perfmodel.prediction.activations import activation_details, gathered_weight_bytes, layer_activation_bytes
from perfmodel.prediction.context import context_comm_times, context_level, ring_buffer_bytes
from perfmodel.prediction.hardware import gemm_rates_source, hw_params
from perfmodel.prediction.layers import embedding_times, head_times, layer_times, logits_bytes
from perfmodel.prediction.p2p import p2p_transfer_time, pipeline_p2p_time
from perfmodel.prediction.offload import offload_details, offload_refusal, offload_terms
from perfmodel.prediction.rates import device_rates
from perfmodel.prediction.placement import (  # noqa: F401 - re-exported: the step's placement
    data_parallel_allreduce_time,
    data_parallel_levels,
    placement_levels,
    two_level_allreduce_time,
)
from perfmodel.prediction.result import BREAKDOWN_KEYS, Prediction
from perfmodel.prediction.zero3_tensorwise import tensorwise_zero3
from perfmodel.prediction.state_bytes import param_sync_bytes
from perfmodel.prediction.rules import (  # noqa: F401 - Choices and gradient_sync_times re-exported
    BOUNDS,
    Choices,
    ShardUnits,
    bound_index, effective_virtual_stages,
    grad_bytes_per_param,
    grad_buckets,
    gradient_sync_times,
    model_state_bytes,
    optimizer_time,
    pipeline_bubble_time,
    tp_exposed_time,
    waited_sync_time,
)
from perfmodel.specs.stack import check_capabilities, load_stack

__all__ = ["Choices", "StepTerms", "shard_units", "transformer_terms", "predict_transformer", "device_rates", "params_per_device", "stage_layers",
           "data_parallel_allreduce_time", "data_parallel_levels", "gradient_sync_times", "placement_levels",
           "two_level_allreduce_time"]


@dataclass(frozen=True)
class StepTerms:
    """Every number of one transformer step (each a float, a numpy array or a sympy expression).

    ``predict`` turns it into a :class:`Prediction`, ``sweep`` writes it as columns, and the
    crossover equations take their compute and communication terms from it.
    """

    breakdown: Mapping[str, object]  # BREAKDOWN_KEYS -> s per step; sums to step_time_s
    step_time_s: object
    comm_total_s: object  # all communication, exposed or hidden
    memory: Mapping[str, object]  # MEMORY_KEYS -> B per device
    fits_in_memory: object
    model_flops: object  # per step, all devices
    mfu: object
    tokens_per_s: object
    bound: object  # index into BOUNDS
    n_microbatches: object
    n_layers_per_stage: object
    stage_time_per_microbatch_s: object  # one micro-batch through one stage, exposed comm included
    forward_per_microbatch_s: object  # one stage's forward compute, one micro-batch
    backward_per_microbatch_s: object  # one stage's backward + recompute compute, one micro-batch
    layer_compute_s: object  # one layer, one micro-batch: forward + backward + recompute
    layer_gemm_forward_s: object  # one layer, one micro-batch: the forward's linear-layer GEMMs
    tp_exposed_per_layer_s: object  # one layer, one micro-batch: TP collectives left exposed
    ends_split_per_microbatch_s: object  # embedding | LM head + loss on separate stages: the slower
    ends_single_per_microbatch_s: object  # embedding + LM head + loss on one stage
    pp_comm_per_microbatch_s: object  # one stage's point-to-point transfers, one micro-batch
    embedding_sync_s: object  # tied embeddings' gradient all-reduce between the pipeline ends
    shard_units: ShardUnits  # the stage's layers as ZeRO-2/3 shards them
    params_per_device: object
    dp_sync_s: object  # the whole gradient synchronisation, hidden or not
    tp_bandwidth_per_device: object
    cp_kv_chunk_bytes: object = 0.0  # one ring-attention exchange's K, V chunk (0 without context parallelism)
    offload: object = None  # perfmodel.prediction.offload.OffloadTerms when the plan offloads, else None
    ep_comm_s: object = 0.0  # the expert-parallel all-to-alls of a step (exposed, in "other"; 0 for dense)
    # (layers, micro-batches in flight, holds the LM head) of the stage the memory counts
    # (prediction.stages.memory_candidates)
    memory_stage: object = None


def shard_units(model, stack, c: Choices, lt, tp, n_layers, params, memory_bandwidth) -> ShardUnits:
    """The layers of one stage as ZeRO-2/3 shards them (see :func:`.rules.sharded_sync_times`); a
    stack whose ZeRO-3 goes tensor by tensor adds its traffic (:mod:`.zero3_tensorwise`)."""
    per_layer = model.n_params_per_layer / tp
    rest = params - n_layers * per_layer  # embedding, LM head, final norm
    e_w, e_g = DTYPE_BYTES[c.dtype], grad_bytes_per_param(stack, c.dtype)
    tensorwise = (tensorwise_zero3(model, stack, c, tp, n_layers, e_w, e_g, memory_bandwidth)
                  if stack.zero3.gather == "tensor" and c.zero >= 3 else None)
    return ShardUnits(n_layers, per_layer * e_w, per_layer * e_g, lt.forward, lt.backward + lt.recompute,
                      rest * e_w, rest * e_g, tensorwise=tensorwise, per_unit=stack.flat_grad_copy)


def _saved_bytes_per_layer(model, c: Choices, stack, rates, b, s, t):
    """One layer's saved activations for one micro-batch, as :func:`_memory` counts them."""
    inventory = eager.inventory_of(stack, model)
    if inventory is not None and c.recompute != "full":
        return eager.saved_bytes_per_layer(model, stack, rates, inventory, b=b, s=s, t=t)
    return _layer_bytes(model, stack, c.recompute, dict(b=b, s=s, t=t, sp=c.sequence_parallel,
                                                         bytes_per_element=DTYPE_BYTES[c.dtype]))


def _layer_bytes(model, stack, recompute, kw):
    """One layer's saved tensors under ``recompute``: the dense items plus a MoE layer's routed tokens
    and expert tensors (0 for a dense model)."""
    extra = moe.activation_extra_bytes_per_layer(model, b=kw["b"], s=kw["s"], t=kw["t"], bytes_per_element=kw["bytes_per_element"],
                                                 recompute=stack.recompute_policy(recompute))
    return layer_activation_bytes(model, stack, recompute=recompute, **kw) + extra


def _memory(model, c: Choices, stack, b, s, t, dp, m, params, rates, ep, stage):
    """One device's bytes; ``stage``: (layers, micro-batches in flight, holds the LM head) of the
    stage counted (:func:`perfmodel.prediction.stages.memory_candidates`)."""
    layers, inflight, last = stage
    inventory = eager.inventory_of(stack, model)
    if inventory is not None and c.recompute != "full":
        return _inventory_memory(model, c, stack, inventory, rates, b, s, t, (layers, inflight, last), dp, m, params, ep)
    weights, grads, optimizer = _state_bytes(model, params, c, stack, t, layers, dp, ep)
    weights = weights + gathered_weight_bytes(model, stack, c, t, dp)
    kw = dict(b=b, s=s, t=t, sp=c.sequence_parallel, bytes_per_element=DTYPE_BYTES[c.dtype])
    per_layer = _layer_bytes(model, stack, c.recompute, kw)  # what each layer keeps, item by item (.activations)
    activations = per_layer * layers * inflight
    if c.recompute == "full":  # the layer being recomputed holds its full activations
        activations = activations + _layer_bytes(model, stack, "none", kw)
    elif stack.recompute_policy(c.recompute) == "dots":  # and what the dots policy reran
        activations = activations + _layer_bytes(model, stack, "none", kw) - per_layer
    logits = mem.output_layer_activation_bytes(s, b, model.hidden, model.vocab, t) * logits_bytes(stack, DTYPE_BYTES[c.dtype]) / 4
    activations = activations + where(last, logits, 0.0)  # only the last stage holds logits
    total = weights + grads + optimizer + activations
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "activations": activations, "total": total}


def inventory_memory_parts(model, c: Choices, stack, inventory, rates, b, s, t, stage) -> dict:
    """Where the bytes of a stack with a kernel inventory are at the loss backward (the peak of
    an eager step): the saved tensors of every layer in flight (``saved_per_layer`` x layers x
    micro-batches in flight), the head's and the loss backward's gradients of the logits (last
    stage only: eager.head_saved_bytes, eager.loss_backward_transient_bytes), and the 16-bit weight
    copies autocast caches for the backward. ``stage``: (layers, micro-batches in flight, holds the
    LM head) of the stage counted."""
    layers, inflight, last = stage
    per_layer = eager.saved_bytes_per_layer(model, stack, rates, inventory, b=b, s=s, t=t)
    head = eager.head_saved_bytes(model, stack, b=b, s=s, t=t, half=rates.bytes_per_element)
    loss = eager.loss_backward_transient_bytes(model, stack, b=b, s=s, t=t, half=rates.bytes_per_element)
    copies = 0.0
    if eager.autocast_on(stack, rates):  # 2 B per cast parameter, alive while autograd saves it
        per = eager.weight_copy_params_per_layer(model, t)
        copies = rates.bytes_per_element * (per * layers + where(last, model.vocab * model.hidden / t, 0.0))
    return {"saved_per_layer": per_layer, "layers": per_layer * layers * inflight,
            "head": where(last, head, 0.0), "loss_backward": where(last, loss, 0.0), "weight_copies": copies}


def _state_bytes(model, params, c: Choices, stack, t, layers, dp, ep):
    """Model states of the device (a stage of ``layers`` layers): a MoE model's local experts
    sharded (ZeRO) over dp / ep."""
    if not moe.is_moe(model):
        return model_state_bytes(params, c, stack, dp)
    experts = layers * moe.expert_params_per_layer(model) / (t * ep)
    dense = model_state_bytes(params - experts, c, stack, dp)
    local = model_state_bytes(experts, c, stack, dp / ep)
    return tuple(a + e for a, e in zip(dense, local))


def _inventory_memory(model, c: Choices, stack, inventory, rates, b, s, t, stage, dp, m, params, ep=1):
    """Peak memory of an inventory stack: the larger of (A) the loss backward, with every saved
    tensor, the weight copies and the loss's transients alive and no gradients yet (zero_grad
    sets them to None; they exist there only when earlier micro-batches accumulated them or DDP
    holds its buckets) and (B) the end of the backward (all gradients, activations freed). The
    fused AdamW step allocates no temporaries (a multi-tensor kernel updating in place). No
    allocator slack is added: the peak is the bytes of live tensors (what
    torch.cuda.max_memory_allocated reports), not the caching allocator's reserved memory."""
    weights, grads, optimizer = _state_bytes(model, params, c, stack, t, stage[0], dp, ep)
    weights = weights + gathered_weight_bytes(model, stack, c, t, dp)
    parts = inventory_memory_parts(model, c, stack, inventory, rates, b, s, t, stage)
    activations = parts["layers"] + parts["head"] + parts["loss_backward"]
    grads_at_a = where(m > 1, grads, where(dp > 1, grads, 0.0))
    at_a = activations + parts["weight_copies"] + grads_at_a
    a_is_peak = at_a >= grads
    weights = weights + where(a_is_peak, parts["weight_copies"], 0.0)
    grads = where(a_is_peak, grads_at_a, grads)
    activations = where(a_is_peak, activations, 0.0)
    total = weights + grads + optimizer + activations
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "activations": activations,
            "total": total}


def transformer_terms(model, stack, hw, c: Choices, *, tp, pp, dp, micro_batch, global_batch,
                      virtual_stages, seq, devices, cp=1, ep=1) -> StepTerms:
    """Every number of one prediction (floats or arrays): breakdown, memory, FLOPs, comm.

    One micro-batch through one stage (its layers, plus the embedding on the first and the LM
    head and loss on the last stage), times the micro-batches, plus the pipeline bubble, the
    exposed part of the gradient synchronisation and the optimizer step (:mod:`.rules`).
    Context parallelism (``cp``): every kernel on the rank's s/cp tokens, the ring attention's
    exposed exchanges (:mod:`.context`), gradients and ZeRO shards over dp x cp ranks.
    Longer than most functions on purpose: every term of the step reads next to the others.
    """
    rates = device_rates(hw, c.dtype, stack)
    b, s, t, v = micro_batch, seq, tp, virtual_stages
    m = global_batch / (micro_batch * dp)
    s_rank, dp_cp = s / cp, dp * cp  # a context-parallel rank's tokens; gradients reduce over dp x cp
    place = placement_levels(hw, tp, dp_cp, pp, devices)

    ep_levels = moe.ep_level(hw, tp * cp, ep) if moe.is_moe(model) else None  # ep ranks tp x cp apart
    lt = layer_times(model, stack, rates, place.tp.alpha, place.tp.beta, b=b, s=s_rank, t=t,
                     sp=c.sequence_parallel, recompute=c.recompute, causal=model.kind == "decoder", cp=cp,
                     ep=ep, ep_levels=ep_levels)
    cpt = context_comm_times(model, rates, context_level(hw, tp, cp), lt.attention_forward, lt.attention_backward,
                             b=b, s=s, t=t, cp=cp, recompute=c.recompute)
    head_f, head_b, head_mem, head_flops = head_times(model, stack, rates, b=b, s=s_rank, t=t)
    emb_f, emb_b = embedding_times(model, rates, b=b, s=s_rank)
    over = tp_overlap.exposed_times(stack, model, rates, lt, tokens=b * s_rank, t=t, alpha=place.tp.alpha,
                                    beta=place.tp.beta, units=hw.compute_units, sp=c.sequence_parallel)
    tp_layer = tp_exposed_time(lt.tp_comm_forward, lt.tp_comm_backward, lt.tp_comm_recompute, c.recompute, over)
    # one stage holds everything, or the slowest of first (embedding) and last (LM head, loss)
    ends_split = maximum(head_f, emb_f) + maximum(head_b, emb_b)
    ends_single = head_f + emb_f + head_b + emb_b
    lay = stages.layout(model.n_layers, pp, c.first_stage_layers, c.last_stage_layers)
    layer_mb = (lt.forward + lt.backward + lt.recompute + tp_layer + cpt.forward + cpt.backward + cpt.recompute
                + lt.ep_comm_forward + lt.ep_comm_backward + lt.ep_comm_recompute)  # one layer, all of it
    n_layers, end_f, end_b = stages.pacing_stage(lay, pp, layer_mb, (emb_f, emb_b), (head_f, head_b))
    cp_mb = n_layers * (cpt.forward + cpt.backward + cpt.recompute)
    comp_f = n_layers * lt.forward + end_f
    comp_b = n_layers * lt.backward + end_b
    recompute = n_layers * lt.recompute
    tp_mb = n_layers * tp_layer
    # each of the v chunks receives its input and sends its output forward, and gradients back;
    # pp_mb is what the stage waits for (under the stack's p2p overlap: what the chunks' compute
    # does not cover), pp_all the whole traffic
    p2p_one = p2p_transfer_time(b * s_rank * model.hidden * rates.bytes_per_element, t, c.sequence_parallel,
                                stack.p2p_scatter_gather, place.pp.alpha, place.pp.beta, place.tp.alpha, place.tp.beta)
    pp_all = where(pp > 1, 2 * v * p2p_one, 0.0)
    pp_mb = where(pp > 1, pipeline_p2p_time(p2p_one, c.schedule, v, comp_f + comp_b + recompute, stack.p2p_overlap), 0.0)
    # tied input/output embeddings on different stages: their gradients are all-reduced between
    # the first and the last stage once per step, after the backward (Megatron-LM
    # _allreduce_embedding_grads / finalize_model_grads; Narayanan et al. SC'21 Section 2.2)
    emb_grad_bytes = model.vocab * model.hidden / t * grad_bytes_per_param(stack, c.dtype)
    ends_sync = where((pp > 1) & model.tied_embeddings,
                      coll.ring_allreduce_time(2, emb_grad_bytes, place.pp.alpha, place.pp.beta), 0.0)
    ep_mb = n_layers * (lt.ep_comm_forward + lt.ep_comm_backward + lt.ep_comm_recompute)  # exposed (r0.8)
    stage_mb = comp_f + comp_b + recompute + tp_mb + pp_mb + cp_mb + ep_mb
    bubble = pipeline_bubble_time(stage_mb, pp, c.schedule, v, end_f + end_b, ends_single - end_f - end_b)
    if not lay.even:  # unequal stages fill and drain once through each: the other stages' times
        bubble = stages.uneven_bubble(lay, pp, layer_mb, (emb_f, emb_b), (head_f, head_b), pp_mb)

    # data-parallel gradient synchronisation, once per step after the last micro-batch
    params_first, params_mid, params_last = stages.params_per_stage(model, tp, pp, ep, lay)
    params = maximum(maximum(params_first, params_mid), params_last)
    # the backward the gradient reduce runs under: its compute plus the TP collectives it waits for
    # (under the stack's TP overlap only what the dgrad/wgrad GEMMs do not cover)
    tp_backward = lt.tp_comm_backward if over is None else over[1]
    window = n_layers * (lt.backward + tp_backward)
    if c.zero >= 1 and stack.param_gather_overlap:
        # distributed optimizer: gradients reduce-scattered under the last backward, updated
        # parameters all-gathered under the next step's first forward (Megatron-Core
        # --overlap-grad-reduce / --overlap-param-gather)
        window = window + n_layers * lt.forward
    units = shard_units(model, stack, c, lt, tp, n_layers, params, rates.memory_bandwidth)
    grad_bpp = grad_bytes_per_param(stack, c.dtype)
    # buckets sized by the data-parallel group without CP (Megatron-Core DistributedDataParallel:
    # max(40M, 1M x dp_group.size())); the reduce runs over the dp x cp ranks
    if moe.is_moe(model) and c.zero < 2:  # dense gradients over dp x cp, expert gradients over dp x cp / ep
        sync, exposed, optimizer = moe.expert_sync_and_optimizer(model, hw, stack, rates, c, place.dp, tp=tp, pp=pp,
                                                                 dp=dp_cp, ep=ep, m=m, devices=devices, params=params,
                                                                 n_layers=n_layers, window=window, bucket_dp=dp)
    else:
        sync, exposed = gradient_sync_times(c, place.dp, dp_cp, m, params * grad_bpp, params * param_sync_bytes(stack, c.dtype),
                                            window, units, stack.param_gather_overlap, grad_buckets(stack, dp, grad_bpp))
        optimizer = optimizer_time(params, c, dp_cp, stack, rates)
    # the fullest device: the first of even stages, else the fullest of first, second and last
    mem_stage, memory = max(((st, _memory(model, c, stack, b, s_rank, t, dp_cp, m, p_, rates, ep, st))
                             for st, p_ in stages.memory_candidates(lay, pp, c.schedule, m, v,
                                                                    (params_first, params_mid, params_last))),
                            key=lambda pair: pair[1]["total"])
    memory["activations"] = memory["activations"] + ring_buffer_bytes(cpt)
    memory["total"] = memory["total"] + ring_buffer_bytes(cpt)
    off = None
    if c.offload != "none":  # CPU offload (prediction.offload): host optimizer step, copies, host memory
        off = offload_terms(c, hw, params=params, dp=dp_cp, m=m, devices=devices, memory=memory, optimizer_s=optimizer,
                            backward_s=comp_b + recompute, layer_bytes=_saved_bytes_per_layer(model, c, stack, rates,
                                                                                               b, s_rank, t),
                            n_layers=n_layers, inflight=mem_stage[1],
                            layer_forward_s=lt.forward,
                            layer_backward_s=lt.backward + lt.recompute)
        optimizer, memory = off.optimizer_s, off.memory

    breakdown = {"compute": m * (comp_f + comp_b), "recompute": m * recompute, "optimizer": optimizer,
                 "tp_comm": m * tp_mb, "pp_comm": m * pp_mb + ends_sync, "dp_comm": waited_sync_time(sync, exposed, hw),
                 "cp_comm": m * cp_mb,
                 "pipeline_bubble": bubble,
                 # the expert-parallel all-to-alls (prediction.moe; 0 for dense models) and offload copies
                 "other": m * ep_mb + (0.0 * bubble if off is None else off.other_s)}
    step = 0.0
    for key in BREAKDOWN_KEYS:
        step = step + breakdown[key]
    tp_all = n_layers * (lt.tp_comm_forward + lt.tp_comm_backward + lt.tp_comm_recompute)
    fits = memory["total"] <= hw.memory_capacity
    model_flops = m * dp_cp * t * (model.n_layers * lt.model_flops + head_flops)
    busy = breakdown["compute"] + breakdown["recompute"] + breakdown["optimizer"]
    return StepTerms(
        breakdown=breakdown, step_time_s=step,
        comm_total_s=((m + (pp - 1) / effective_virtual_stages(c.schedule, v)) * (tp_all + pp_all + n_layers * cpt.total
                                                                                  + ep_mb)
                      + sync + ends_sync),
        memory=memory, fits_in_memory=fits if off is None else fits & off.fits_host, model_flops=model_flops,
        mfu=model_flops / (step * devices * hw.peak_flops_per_s), tokens_per_s=global_batch * s / step,
        bound=bound_index(breakdown["tp_comm"] + breakdown["pp_comm"] + breakdown["dp_comm"] + breakdown["cp_comm"]
                          + m * ep_mb, busy,
                          m * (n_layers * lt.memory_bound + head_mem) + optimizer),
        n_microbatches=m, n_layers_per_stage=n_layers, stage_time_per_microbatch_s=stage_mb,
        forward_per_microbatch_s=comp_f, backward_per_microbatch_s=comp_b + recompute,
        layer_compute_s=lt.forward + lt.backward + lt.recompute, layer_gemm_forward_s=lt.gemm_forward,
        tp_exposed_per_layer_s=tp_layer, ends_split_per_microbatch_s=ends_split,
        ends_single_per_microbatch_s=ends_single,
        pp_comm_per_microbatch_s=pp_mb, embedding_sync_s=ends_sync, shard_units=units, params_per_device=params, dp_sync_s=sync,
        tp_bandwidth_per_device=place.tp.beta, cp_kv_chunk_bytes=cpt.kv_chunk_bytes, offload=off, ep_comm_s=m * ep_mb,
        memory_stage=mem_stage)


def _memory_details(model, stack, hw, plan, stage) -> dict:
    """Where an inventory stack's activation bytes are (flat keys for the JSON and CSV views), on the
    stage the memory counts (``stage``: StepTerms.memory_stage)."""
    inventory = eager.inventory_of(stack, model)
    if inventory is None or plan.recompute == "full":
        return activation_details(model, stack, plan, stage[0], stage[1])
    rates = device_rates(hw, plan.dtype, stack)
    parts = inventory_memory_parts(model, Choices.of(plan), stack, inventory, rates, plan.micro_batch, plan.seq / plan.cp,
                                   plan.tp, stage)
    return {f"memory_{k}_bytes": float(v) for k, v in parts.items()}


def predict_transformer(model, system, plan) -> Prediction:
    """Predict one optimizer step; ``plan`` must already be resolved (see :func:`plan.resolve`)."""
    stack = load_stack(plan.stack)
    check_capabilities(stack, plan)
    if plan.overlap and not stack.grad_sync_overlap:  # the stack reduces after the backward (its [grad_sync])
        plan = plan.replace(overlap=False)
    hw = hw_params(system, plan.dtype, stack.gemm_rate_scale)
    refusal = offload_refusal(plan.offload, system)
    if refusal:
        raise MissingSpecError(refusal)
    r = transformer_terms(model, stack, hw, Choices.of(plan), tp=plan.tp, pp=plan.pp, dp=plan.dp,
                          micro_batch=plan.micro_batch, global_batch=plan.global_batch,
                          virtual_stages=plan.virtual_stages, seq=plan.seq, devices=plan.devices, cp=plan.cp, ep=plan.ep)
    capacity = system.device.memory_bytes
    details = FrozenDict({
        **offload_details(r.offload, hw, plan, system),
        "n_microbatches": int(r.n_microbatches),
        "stage_time_per_microbatch_s": float(r.stage_time_per_microbatch_s),
        "tp_bandwidth_per_device": float(r.tp_bandwidth_per_device),
        "cp_kv_chunk_bytes": float(r.cp_kv_chunk_bytes),
        "dp_sync_s": float(r.dp_sync_s),
        "embedding_sync_s": float(r.embedding_sync_s),
        **({"ep_comm_s": float(r.ep_comm_s)} if moe.is_moe(model) else {}),
        "params_per_device": float(r.params_per_device),
        "model_flops_per_step": float(r.model_flops),
        "gemm_curve": gemm_rates_source(hw),
        "stack": stack.name,
        **_memory_details(model, stack, hw, plan, r.memory_stage),
    })
    return Prediction(
        model=model.name, system=system.name, plan=plan, step_time_s=float(r.step_time_s),
        breakdown_s=FrozenDict({k: float(x) for k, x in r.breakdown.items()}),
        comm_total_s=float(r.comm_total_s), bound=BOUNDS[int(r.bound)],
        memory_bytes_per_device=FrozenDict({k: float(x) for k, x in r.memory.items()}),
        memory_capacity_bytes=capacity, fits_in_memory=bool(capacity is None or r.fits_in_memory),
        mfu=float(r.mfu), throughput=float(r.tokens_per_s), throughput_unit="tokens_per_s",
        details=details)
