"""Mixture-of-experts layers and expert parallelism in the transformer step, as Megatron-Core
(r0.8) runs them.

* Placement (``megatron/core/parallel_state.py`` initialize_model_parallel): the expert-parallel
  group of ``ep`` ranks is carved out of the data-parallel ranks (ep divides dp; no devices are
  added). Rank order tp-cp-ep-dp-pp: its ranks sit ``tp x cp`` apart (tensor- and
  context-parallel ranks inside), so the group spans ``tp x cp x ep`` consecutive devices, those
  of a node exchanging over its fabric and the others over the network (Megatron-Core 0.10 and
  later fold cp into the expert-data dimension instead, ranks ``tp`` apart: not modelled). Each
  rank holds ``n_experts / ep`` whole experts; expert weights are also split over the
  tensor-parallel ranks (r0.8 has no separate expert-tensor-parallel size: experts use the tp
  group). Expert gradients are reduced over the ``dp x cp / ep`` ranks holding the same experts
  (the expert-data-parallel group with cp, ``_DATA_MODULO_EXPERT_PARALLEL_GROUP_WITH_CP``; placed
  as ``tp x ep`` apart, an approximation with cp > 1); dense gradients over all ``dp x cp``.
* Compute (``megatron/core/transformer/moe/``): a router GEMM ``tokens x h x E`` (on the
  sequence-parallel shard), the ``E / ep`` local experts as a grouped GEMM timed as that many
  GEMMs of one expert's shape (``m_e`` tokens each, :mod:`perfmodel.formulas.moe`), so small
  token counts lose efficiency as the GEMM shape model says; shared experts as one MLP over every
  token; permute and unpermute as memory-bound copies of the routed tokens.
* Communication (``token_dispatcher.py`` MoEAlltoAllTokenDispatcher): an all-to-all dispatch and
  combine per MoE layer in the forward, two more in the backward (and two in a full recompute),
  each of :func:`perfmodel.formulas.moe.moe_dispatch_bytes` per rank over the ep group
  (:func:`perfmodel.formulas.logtree.hierarchical_alltoall_time`, as NCCL runs it: n - 1 concurrent
  send/recv pairs, those to the ranks of the same node over its fabric, the others over the
  network). r0.8 does not overlap them with compute:
  they are exposed and go into the ``other`` part of the breakdown.

Layers of a model with dense and MoE layers are costed as their mean (a stage of ``n`` layers
holds ``n x n_moe_layers / n_layers`` MoE layers). The experts' activations are the dense
MLP's inner-width items per routed copy (:func:`activation_extra_bytes_per_layer`; a stack with a
kernel inventory keeps its dense count). Under FP8 the expert GEMMs' inputs and output gradients
are cast as Transformer Engine's GroupedLinear casts them (:func:`_fp8_cast_delta`). Not modelled:
the load imbalance of a real router (the balanced average is used), router logits and
probabilities, the FP8 padding copies of Megatron-Core r0.10 and later (Fp8Padding).
"""

from __future__ import annotations

from perfmodel.formulas import activations as act
from perfmodel.formulas import compute as cf
from perfmodel.formulas import moe as mf
from perfmodel.formulas._backend import maximum
from perfmodel.formulas.logtree import hierarchical_alltoall_time
from perfmodel.prediction.placement import SpanLevels, strided_group_span
from perfmodel.prediction.shapes import mlp_shapes

__all__ = ["is_moe", "moe_fraction", "ep_level", "moe_layer_delta", "ep_comm_times", "tp_mlp_pairs",
           "tp_collectives_extra", "expert_params_per_layer",
           "tokens_per_local_expert", "expert_sync_and_optimizer", "activation_extra_bytes_per_layer"]


def is_moe(model) -> bool:
    return bool(getattr(model, "is_moe", False))


def moe_fraction(model) -> float:
    """Share of the layers that are MoE layers (0 for a dense model)."""
    return model.n_moe_layers / model.n_layers if is_moe(model) else 0.0


def expert_params_per_layer(model):
    """Routed-expert parameters of a mean layer (all experts; a device holds 1 / (tp x ep))."""
    return model.params_breakdown()["experts"] / model.n_layers if is_moe(model) else 0.0


def ep_level(hw, stride, ep) -> SpanLevels:
    """Where the expert-parallel all-to-all's peers are: ep ranks ``stride`` apart (tp x cp), those
    of a node on its fabric, the others over the network
    (:func:`~perfmodel.prediction.placement.strided_group_span`)."""
    return strided_group_span(hw, stride, ep)


def tokens_per_local_expert(model, b, s, ep):
    """m_e: tokens one local expert computes per micro-batch: each of the ep ranks of its group
    routes its b x s tokens (the tensor-parallel group's, gathered after the dispatch)."""
    if model.capacity_factor is None:
        return ep * mf.moe_dropless_tokens_per_expert(b * s, model.top_k, model.n_experts)
    return ep * mf.moe_capacity_tokens_per_expert(b * s, model.top_k, model.n_experts, model.capacity_factor)


def _fp8_cast_delta(model, fp8_cast, *, tokens, routed, shared_w, t):
    """(forward, backward) seconds of the FP8 casts of the MoE MLPs less the dense MLP's. Transformer
    Engine's GroupedLinear casts (and transposes) each expert's input chunk for its FP8 GEMM: the
    permuted tokens (not fused with the LayerNorm, as the dense LayerNormMLP's is) and the activation
    output; its backward casts each output gradient (TE module/grouped_linear.py,
    fp8_cast_transpose_fused per expert, fp8_multi_cast_transpose_fused from v1.10); shared experts as a plain MLP on every token; the dense MLP's
    activation-output and gradient casts (in the dense layer's count) taken out."""
    h = model.hidden

    def output_grads(n_tokens, width):  # each GEMM's output gradient dY[m, n] of an MLP
        return sum(fp8_cast(m_ * n_) for m_, _k, n_ in mlp_shapes(model, n_tokens, width, t))

    fwd = (fp8_cast(routed * h) + fp8_cast(routed * model.expert_ffn_hidden / t)
           - fp8_cast(tokens * model.ffn_hidden / t))
    bwd = output_grads(routed, model.expert_ffn_hidden) - output_grads(tokens, model.ffn_hidden)
    if model.n_shared_experts:
        fwd = fwd + fp8_cast(tokens * h) + fp8_cast(tokens * shared_w / t)
        bwd = bwd + output_grads(tokens, shared_w)
    return fwd, bwd


def moe_layer_delta(model, stack, rates, pointwise, *, b, s, t, sp, ep, fp8_cast=None):
    """What a mean layer of a MoE model adds to the dense layer's numbers, per micro-batch:
    (forward, backward, memory-bound, forward linear GEMMs, model FLOPs fwd + bwd). The dense MLP
    of width ffn_hidden is taken out of the MoE layers and the router, local experts, shared
    experts, permute / unpermute and the experts' activation put in. ``pointwise(n, direction)``
    times the activation kernel on n elements (the stack's rates); ``fp8_cast(n)`` an FP8
    cast-transpose of n elements when the linear layers run in FP8 (:func:`_fp8_cast_delta`)."""
    frac = moe_fraction(model)
    h, e, k = model.hidden, rates.bytes_per_element, model.top_k
    tokens = b * s
    dense_f, dense_b, dense_flops = rates.linear_gemms(mlp_shapes(model, tokens, model.ffn_hidden, t))
    m_e = tokens_per_local_expert(model, b, s, ep)
    n_local = model.n_experts / ep
    exp_f, exp_b, _ = rates.linear_gemms(mlp_shapes(model, m_e, model.expert_ffn_hidden, t), n_local)
    # model FLOPs count the top_k experts each token runs (no capacity padding), on 1/t of the width
    active_flops = sum(cf.linear_forward_flops(*shape) for shape in mlp_shapes(model, tokens * k,
                                                                               model.expert_ffn_hidden, t))
    shared_w = model.n_shared_experts * model.shared_ffn_hidden
    sh_f = sh_b = sh_flops = 0.0
    if model.n_shared_experts:
        sh_f, sh_b, sh_flops = rates.linear_gemms(mlp_shapes(model, tokens, shared_w, t))
    router_tokens = tokens / t if sp else tokens  # the router runs on the sequence-parallel shard
    # the router is a plain F.linear in the 16-bit dtype, not a Transformer Engine (FP8) layer
    # (megatron/core/transformer/moe/router.py): forward, dgrad, wgrad at the 16-bit rate
    rt_f = rates.gemm(router_tokens, model.n_experts, h)
    rt_b = rates.gemm(router_tokens, h, model.n_experts) + rates.gemm(h, model.n_experts, router_tokens)
    rt_flops = cf.linear_forward_flops(tokens / t, h, model.n_experts)  # counted once over the tp ranks
    routed = m_e * n_local  # token copies on this device after the dispatch
    permute = 2 * rates.memory(2 * routed * h * e)  # permute + unpermute: read and write each copy
    act_moe = routed * model.expert_ffn_hidden / t + tokens * shared_w / t
    act_f = pointwise(act_moe, "fwd") - pointwise(tokens * model.ffn_hidden / t, "fwd")
    act_b = pointwise(act_moe, "bwd") - pointwise(tokens * model.ffn_hidden / t, "bwd")
    cast_f = cast_b = 0.0
    if fp8_cast is not None:
        cast_f, cast_b = _fp8_cast_delta(model, fp8_cast, tokens=tokens, routed=routed, shared_w=shared_w, t=t)
    gemm_f = exp_f + sh_f + rt_f - dense_f
    forward = frac * (gemm_f + permute + act_f + cast_f)
    backward = frac * (exp_b + sh_b + rt_b - dense_b + permute + act_b + cast_b)
    memory_bound = frac * (2 * permute + act_f + act_b + cast_f + cast_b)
    flops = frac * 3 * (active_flops + sh_flops + rt_flops - dense_flops)
    return forward, backward, memory_bound, frac * gemm_f, flops


def tp_mlp_pairs(model, t):
    """Tensor-parallel all-gather + reduce-scatter pairs of the dense layer's size (b s h) on the
    MLP side of a MoE layer each way, with sequence parallelism (which Megatron-Core's MoE layer
    requires with tensor parallelism: :mod:`perfmodel.plan.rules`). Megatron-Core r0.8's MoEAlltoAllTokenDispatcher
    with tp > 1 turns the rank's b s / t tokens into b s tokens of h / t (an all-to-all over the
    tp ranks, 1/t of an all-gather's volume), dispatches them, and all-gathers the received copies
    over the hidden dimension before the experts (``all_gather_last_dim_from_tensor_parallel_region``:
    top_k x capacity of the b s tokens), reduce-scatters the experts' output and turns it back
    (``reduce_scatter_last_dim_to_tensor_parallel_region``, ``all_to_all_hp2sp``,
    megatron/core/transformer/moe/token_dispatcher.py); shared experts (Megatron-Core 0.10 and
    later, moe/shared_experts.py) are a tensor-parallel MLP of their own with the dense MLP's pair.
    A capacity factor counts as padded to capacity (``moe_pad_expert_input_to_capacity``), as
    :func:`perfmodel.formulas.moe.moe_dispatch_bytes` counts it; dropping without padding moves at
    most top_k. perfmodel prices a MoE layer as Megatron-Core runs it, whatever the stack."""
    c = 1.0 if model.capacity_factor is None else model.capacity_factor
    shared = 1.0 if model.n_shared_experts else 0.0
    return model.top_k * c + shared + 1.0 / t


def tp_collectives_extra(model, t):
    """The pairs of :func:`tp_mlp_pairs` a mean layer of a MoE model adds to the dense layer's one
    MLP pair each way; 0 for a dense model (and with t = 1 the pairs take no time)."""
    return moe_fraction(model) * (tp_mlp_pairs(model, t) - 1.0) if is_moe(model) else 0.0


def ep_comm_times(model, rates, levels: SpanLevels | None, *, b, s, t, sp, ep, recompute):
    """(forward, backward, recompute) seconds of a mean layer's all-to-alls for one micro-batch:
    dispatch + combine each way (Megatron-Core r0.8 MoEAlltoAllTokenDispatcher), 0 for ep = 1;
    the share of each rank's buffer bound for its own node's ranks goes over the fabric while the
    rest crosses the network (:func:`perfmodel.formulas.logtree.hierarchical_alltoall_time`).
    ``recompute``: "full" runs both again before the backward; "dots" (a stack's dots policy under
    selective recomputation) the dispatch, whose permuted tokens the expert GEMMs' backward needs."""
    if levels is None:  # no expert-parallel group placed (ep = 1)
        return 0.0, 0.0, 0.0
    frac = moe_fraction(model)
    tokens = b * s / t if sp else b * s  # a tp rank dispatches its sequence-parallel shard
    c = 1.0 if model.capacity_factor is None else model.capacity_factor
    size = mf.moe_dispatch_bytes(tokens, model.top_k, model.hidden, rates.bytes_per_element, c)
    one = hierarchical_alltoall_time(levels.nodes, levels.local, size, levels.intra.alpha, levels.intra.beta,
                                     levels.inter.alpha, levels.inter.beta)
    two = frac * 2 * one
    return two, two, {"full": two, "dots": two / 2}.get(recompute, 0.0)


def expert_sync_and_optimizer(model, hw, stack, rates, c, dp_levels, *, tp, pp, dp, ep, m, devices, params,
                              n_layers, window, bucket_dp=None):
    """(whole sync, exposed part, optimizer seconds) of a MoE model with ZeRO 0/1: the dense
    gradients all-reduced over the dp ranks, the local experts' over the dp / ep ranks holding the
    same experts (Megatron-Core DistributedDataParallel keeps expert parameters in their own
    buffers, reduced over the expert-data-parallel group; the distributed optimizer shards their
    states over it). The dense sync hides under the backward ``window`` as the dense model's does;
    the expert sync under what the dense sync leaves of that window (exposed without overlap).
    ``dp``: the ranks the dense gradients reduce over (dp x cp); ``bucket_dp`` sizes the buckets."""
    from perfmodel.prediction.placement import placement_levels
    from perfmodel.prediction.rules import grad_buckets, grad_bytes_per_param, gradient_sync_times, optimizer_time
    from perfmodel.prediction.state_bytes import param_sync_bytes

    experts = n_layers * expert_params_per_layer(model) / (tp * ep)
    dense = params - experts
    g, w = grad_bytes_per_param(stack, c.dtype), param_sync_bytes(stack, c.dtype)
    sync_d, exposed_d = gradient_sync_times(c, dp_levels, dp, m, dense * g, dense * w, window,
                                            buckets=grad_buckets(stack, dp if bucket_dp is None else bucket_dp, g))
    # the expert-data-parallel group: dp / ep ranks, tp x ep apart (the ep group's ranks innermost)
    edp = dp / ep
    levels = placement_levels(hw, tp * ep, edp, pp, devices).dp
    sync_e, exposed_e = gradient_sync_times(c, levels, edp, m, experts * g, experts * w, 0.0,
                                            buckets=grad_buckets(stack, edp, g))
    if c.overlap and c.grad_sync == "allreduce" and stack.grad_sync_overlap:
        exposed_e = maximum(sync_e - maximum(window - sync_d, 0.0), 0.0)
    optimizer = optimizer_time(dense, c, dp, stack, rates) + optimizer_time(experts, c, edp, stack, rates)
    return sync_d + sync_e, exposed_d + exposed_e, optimizer


def activation_extra_bytes_per_layer(model, *, b, s, t, recompute, bytes_per_element):
    """Bytes a mean layer of a MoE model keeps for its backward beyond the dense MLP's items
    (:mod:`.activations`: the MLP's inner-width tensors, :func:`perfmodel.formulas.activations.
    mlp_hidden_bytes`, at ffn_hidden): every routed copy (top_k x capacity factor per token) keeps
    its permuted input (h wide, on every tp rank after the gather; Megatron-Core
    MoEAlltoAllTokenDispatcher) and the expert's inner-width tensors, every token those of the
    shared experts; the dense MLP's are taken out. None under full recompute (only the layer
    input is kept). ``recompute`` "dots" (a stack's dots policy, :meth:`~perfmodel.specs.stack.Stack.
    recompute_policy`): only weight matmul outputs are kept, so each routed copy and each token keeps the experts' up-projection
    outputs and the router's logits, the permuted inputs run again."""
    if not is_moe(model) or recompute == "full":
        return 0.0
    h, e, tokens = model.hidden, bytes_per_element, b * s
    gated = 1 if model.mlp == "swiglu" else 0
    c = 1.0 if model.capacity_factor is None else model.capacity_factor
    copies = tokens * model.top_k * c
    if recompute == "dots":
        up = act.mlp_up_output_bytes
        kept = (up(copies, model.expert_ffn_hidden / t, e, gated) + tokens * model.n_experts * e
                + up(tokens, model.n_shared_experts * model.shared_ffn_hidden / t, e, gated))
        return moe_fraction(model) * (kept - up(tokens, model.ffn_hidden / t, e, gated))
    routed = copies * h * e + act.mlp_hidden_bytes(copies, model.expert_ffn_hidden / t, e, gated)
    shared = act.mlp_hidden_bytes(tokens, model.n_shared_experts * model.shared_ffn_hidden / t, e, gated)
    dense = act.mlp_hidden_bytes(tokens, model.ffn_hidden / t, e, gated)
    return moe_fraction(model) * (routed + shared - dense)
