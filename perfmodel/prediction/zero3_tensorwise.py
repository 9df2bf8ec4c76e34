"""ZeRO-3 communicated tensor by tensor, as the DeepSpeed of 2021 (v0.3 to v0.4.2) runs it with its
configuration defaults (a stack's ``[zero3] gather = "tensor"``; :mod:`perfmodel.specs.zero3`).

Read from DeepSpeed v0.3.15 (``deepspeed/runtime/zero/stage3.py``, ``partition_parameters.py``):

- Each module (a Megatron layer has six with parameters: the two LayerNorms, ``query_key_value``,
  ``dense``, ``dense_h_to_4h``, ``dense_4h_to_h``) fetches its parameters before it runs, one
  all-gather per tensor (``_allgather_param``: a zero-filled full-size buffer, a device
  synchronize, a list all-gather whose output PyTorch 1.8 copies out of a flat buffer), and starts
  the next module's gathers before its own compute (``prefetch_next_sub_modules``): a layer's
  gathers run under the previous layer's compute, counted per layer by :func:`~perfmodel.formulas.
  dataparallel.prefetched_exposed_time` (per module the large h->4h gather has only the attention
  output's compute to hide under: this understates the exposure by a few percent). As v0.3.15 runs
  it, though, nothing is prefetched (``[zero3] prefetch = false`` in ``deepspeed-2021``): the step
  counter that indexes the module trace is one behind from the second module of every forward
  (``setup_zero_stage3_hooks`` registers the root module's own hook before the hook that resets
  the counter), so ``get_params_to_prefetch`` finds ``"Tracing failed"`` and returns nothing
  (DeepSpeed issue #1069, May 2021).
- With ``[zero3] synchronize`` (``torch.cuda.synchronize()`` in ``_allgather_param`` and in
  ``fetch_sub_module``), no gather hides under compute, and a gradient bucket's all-reduce, started
  on the reduction stream when a gradient hook finds the bucket full (``reduce_ipg_grads``, which
  first waits on the host for the bucket before), is waited for at the next module's gather: it
  hides only under the compute of the window between the two gathers it was flushed in
  (:mod:`perfmodel.prediction.zero3_buckets`; a module that gathers nothing, a norm whose
  tensors all stay gathered, opens no window). A weight larger than the bucket is flushed by the
  next tensor's hook, ``dense_h_to_4h``'s by the norm's after it, in the same window, behind the
  bucket flushed before it: flushes in one window run one after the other. A layout other than
  Megatron's sequential block (a parallel block, a mixture of experts) falls back to hiding a
  layer's reductions under its whole backward.
- Every parameter is released after each backward (``_partition_all_parameters``): each
  micro-batch's forward gathers every tensor again. Tensors of fewer elements than
  ``stage3_param_persistence_threshold`` (1e5) then stay gathered through the backward, and after
  the optimizer step one combined gather (``_post_step``) makes them available to the next step's
  first micro-batch. That gather (``_allgather_params``) rebuilds each tensor from the flat buffer
  in a Python loop over the ranks, a device ``copy_`` of each rank's slice (``ceil(n / dp)``
  elements, from every rank whose slice starts inside the tensor): with ``[zero3] per_rank_ops``
  one eager op per tensor and rank at the stack's per-op overhead, the GPU idle between the
  optimizer step and the next forward (:func:`post_step_copies`; the slice's two views and the
  buffer's are not charged, as the gather's narrow loop is not). 770 tensors over 1536 ranks: 1.18
  million copies.
- A module's parameters are released after use unless their next use comes within
  ``stage3_max_reuse_distance`` parameters (1e9; in v0.3.15 the reuse lookup fails on the same
  trace check as the prefetch, so nothing is kept: ``reuse_distance = 0``): layer i of L is used again for its backward (or
  a full recompute's forward) after 2 (L-1-i) layers' parameters (3 (L-1-i) with full recompute:
  the later layers' recompute too), so the last layers keep theirs; within a recomputed layer a
  module's recompute forward and its backward are twice the parameters of the modules after it
  apart, so the first modules of a large layer are gathered a third time.
- Work per rank of the group, each gather (``[zero3] per_rank_ops``): ``_allgather_param`` builds its
  list of partitions with one ``flat_tensor.narrow`` per rank in Python, after its device
  synchronize (the GPU idle), and PyTorch 1.8's list all-gather (``ProcessGroupNCCL::allgather``)
  copies each rank's block out of its own flat buffer with a small device copy each: dp eager ops a
  gather at the stack's per-op launch overhead, a cost that grows with the ranks while the bytes do
  not (the copies' launch on the CPU runs under the NCCL kernel; their GPU time and the narrow loop
  do not).
- Gradients (``contiguous_gradients`` false, the stage-3 default until v0.4.3): each tensor joins a
  bucket of ``reduce_bucket_size`` elements (5e8), flushed before it would overflow; a bucket is
  flattened, divided, all-reduced and copied back (``buffered_reduce_fallback``; a tensor alone in
  its bucket is only divided), on the reduction stream beside the backward (``overlap_comm``,
  true by default for stage 3).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import dataparallel as dpf
from perfmodel.formulas._backend import ceil, floor, maximum, minimum, where
from perfmodel.prediction.zero3_buckets import (backward_windows, bucket_counts, flush_windows, flushes_waited_time,
                                                hook_order_windows, window_flushes)

__all__ = ["TensorwiseZero3", "megatron_modules", "held_gathered_elements", "tensorwise_zero3", "post_step_copies",
           "tensorwise_sync_times"]


class TensorwiseZero3(NamedTuple):
    """One layer's tensor-by-tensor ZeRO-3 traffic per micro-batch (bytes per device; calls may be
    fractional: means over the layers, or buckets shared by several layers)."""

    gather_bytes: object  # the large tensors, gathered before each forward
    gather_calls: object
    small_bytes: object  # the persistent tensors: gathered again in micro-batches 2..m
    small_calls: object
    backward_share: object  # of the layers, those released before their backward gather again
    regather_bytes: object  # gathered a third time after a full recompute's forward released them
    regather_calls: object
    grad_calls: object  # gradient collectives per layer (buckets, or tensors)
    rest_gather_bytes: object  # outside the layers: embeddings, final norm, untied head
    rest_gather_calls: object
    rest_grad_calls: object
    persistent_bytes: object  # every persistent tensor of the stage, gathered once a step
    gather_copy_s_per_byte: object
    grad_copy_s: object  # copies of one layer's gradient buckets (s)
    rest_grad_copy_s: object
    grad_allreduce: bool  # bucketed all-reduce (True) or one reduce-scatter per tensor
    grad_overlap: bool
    prefetch: bool
    # device synchronizes around the gathers ([zero3] synchronize): a gradient reduction runs beside the
    # backward GEMMs of its layer and is waited for at the next gather
    synchronize: bool = False
    recompute_full: bool = False
    # seconds a gather spends per rank of its group ([zero3] per_rank_ops: the stack's per-op launch
    # overhead), 0 otherwise
    per_rank_op_s: float = 0.0
    # (share of the layers, element counts of such a layer's tensors) pairs, the counts of the tensors
    # outside the layers, and the persistence threshold: the post-step rebuild (post_step_copies)
    layer_tensors: tuple = ()
    rest_tensors: tuple = ()
    persistence_threshold: float = 0.0
    # (share of the layers, windows) pairs, each window (its share of the layer's backward compute,
    # ((bytes, copy seconds) of each bucket flushed in it), ...) in backward order
    # (:mod:`perfmodel.prediction.zero3_buckets`); empty: a layer's reductions hide under its whole backward
    flush_windows: tuple = ()


def megatron_modules(model, tp, moe_block=False) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """(a block's modules in forward order, each the element counts of its tensors on one device;
    the tensors outside the blocks: token, position and token-type embeddings, the final norm, a
    pooler, an untied LM head), as Megatron-LM lays them out (megatron/model/transformer.py):
    q, k, v fused in ``query_key_value``, a gated MLP's gate and up in ``dense_h_to_4h``; weights
    and column-parallel biases split over ``tp`` (a number or an array). ``moe_block``: a
    mixture-of-experts block, whose MLP is its router, each routed expert's and each shared
    expert's two projections."""
    h = model.hidden
    shapes = {name: (i, o) for name, i, o in model.linear_shapes()}
    qkv = sum(shapes[n][1] for n in ("attn_q", "attn_k", "attn_v"))
    gated = 2 if model.mlp == "swiglu" else 1

    def linear(i, o, column):
        return (i * o / tp,) + ((o / tp if column else o,) if model.bias else ())

    def mlp(f):
        return linear(h, gated * f, True), linear(f, h, False)

    norm = (h, h) if model.norm == "layernorm" and model.bias else (h,)
    attn = (linear(h, qkv, True), linear(shapes["attn_o"][0], h, False))
    if moe_block:
        experts = (mlp(model.expert_ffn_hidden) * model.n_experts
                   + mlp(model.shared_ffn_hidden) * model.n_shared_experts)
        ffn = ((h * model.n_experts,),) + experts
    else:
        ffn = mlp(model.ffn_hidden)
    norms = (norm,) * model.n_block_norms
    block = (norms[0],) + attn + norms[1:] + ffn
    outside = ((model.vocab * h / tp,) + ((model.max_positions * h,) if model.positions == "learned" else ())
               + ((model.type_vocab * h,) if model.type_vocab else ()) + norm  # the final (encoder: embedding) norm
               + (linear(h, h, False) if model.pooler else ()))
    if model.kind == "decoder" and not model.tied_embeddings:
        outside += (model.vocab * h / tp,)
    return block, outside


def held_gathered_elements(model, tp):
    """Elements a stack that holds one module gathered (:attr:`perfmodel.specs.zero3.Zero3.
    holds_one_module`) has unsharded at once: the largest module, and during its gathers PyTorch
    1.8's flat output buffer of one tensor (``ProcessGroupNCCL::allgather``), the largest."""
    block, _ = megatron_modules(model, tp)
    return (functools.reduce(maximum, [sum(m) for m in block])
            + functools.reduce(maximum, [n for m in block for n in m]))


def post_step_copies(tensors, threshold, dp):
    """Device copies of the post-step rebuild of the persistent ``tensors`` (fewer elements than
    ``threshold``) over ``dp`` ranks: each tensor of n elements is partitioned into slices of
    ceil(n / dp), and every rank whose slice starts inside it copies one (DeepSpeed v0.3.15
    partition_parameters.py ``_allgather_params``: ``if param_start < param_size``), ceil(n / slice)
    copies."""
    total = 0.0
    for n in tensors:
        total = total + where(n < threshold, ceil(n / ceil(n / dp)), 0.0)
    return total


def _split(tensors, threshold):
    """(large elements, large count, small elements, small count) of ``tensors`` (arrays allowed)."""
    large = sum(where(n >= threshold, n, 0.0) for n in tensors)
    count = sum(where(n >= threshold, 1.0, 0.0) for n in tensors)
    total = sum(tensors)
    return large, count, total - large, len(tensors) - count


def _released_after_recompute(block, reuse_distance):
    """The tensors of a recomputed layer's modules that its recompute forward releases before their
    backward (the others as 0): a module's next use is its backward, after the recompute forward
    and the backward of every module after it, twice their elements; past the reuse distance its
    parameters are released (DeepSpeed ``_keep_for_later``)."""
    out = []
    for i, module in enumerate(block):
        after = sum(sum(m) for m in block[i + 1:])
        out.extend(where(2 * after >= reuse_distance, n, 0.0) for n in module)
    return out


def _layer(block, z, c, bytes_per_param, grad_bytes, memory_bandwidth, flushes=None):
    """One block's traffic (:class:`TensorwiseZero3` fields, per layer) from its modules (``flushes``:
    its buckets' :func:`~perfmodel.prediction.zero3_buckets.window_flushes`, when already simulated)."""
    large, count, small, small_count = _split([n for m in block for n in m], z.persistence_threshold)
    released = _released_after_recompute(block, z.reuse_distance_params) if c.recompute == "full" else []
    # a threshold above 0 keeps the zeros standing for kept modules out of the count
    re_large, re_count, _, _ = _split(released, max(z.persistence_threshold, 1e-30))
    total = sum(n for m in block for n in m)
    if z.grad_reduce == "all-reduce":
        calls, shared = bucket_counts(block, z.grad_bucket, z.persistence_threshold, flushes)
        copy = (z.grad_copy_passes * shared + 2 * (total - shared)) * grad_bytes / memory_bandwidth
    else:
        calls, copy = sum(len(m) for m in block), z.grad_copy_passes * total * grad_bytes / memory_bandwidth
    e = bytes_per_param
    return dict(gather_bytes=large * e, gather_calls=count, small_bytes=small * e, small_calls=small_count,
                regather_bytes=re_large * e, regather_calls=re_count, grad_calls=calls, grad_copy_s=copy,
                elements=total)


def tensorwise_zero3(model, stack, c, tp, n_layers, bytes_per_param, grad_bytes_per_param,
                     memory_bandwidth) -> TensorwiseZero3:
    """One layer's traffic under the stack's ``[zero3]`` (see the module docstring); a mixture of
    experts averages its dense and MoE blocks."""
    z = stack.zero3
    block, outside = megatron_modules(model, tp)
    allreduce = z.grad_reduce == "all-reduce"
    # the dense block's bucket flushes, simulated once for its counts and its waits
    flushes = window_flushes(hook_order_windows(block, z.persistence_threshold), z.grad_bucket) if allreduce else None
    layer = _layer(block, z, c, bytes_per_param, grad_bytes_per_param, memory_bandwidth, flushes)
    kinds = ((1.0, tuple(n for m in block for n in m)),)
    if model.is_moe:
        share = model.n_moe_layers / model.n_layers
        moe_block = megatron_modules(model, tp, moe_block=True)[0]
        moe = _layer(moe_block, z, c, bytes_per_param, grad_bytes_per_param, memory_bandwidth)
        layer = {k: (1 - share) * layer[k] + share * moe[k] for k in layer}
        kinds = ((1 - share, kinds[0][1]), (share, tuple(n for m in moe_block for n in m)))
    o_large, o_count, o_small, _ = _split(list(outside), z.persistence_threshold)
    # layer i gathers again for its backward when 2 (L-1-i) layers (3 with full recompute) exceed the reuse distance
    k = 3 if c.recompute == "full" else 2
    kept = minimum(z.reuse_distance_params / (k * layer["elements"]), n_layers)  # layers from the end that keep theirs
    released = maximum(floor(n_layers - kept), 0)
    rest_elements = sum(outside)
    waits = (flush_windows(flushes, grad_bytes_per_param, z.grad_copy_passes / memory_bandwidth, 2.0 / memory_bandwidth)
             if allreduce and z.synchronize and not model.is_moe and backward_windows(block, z.persistence_threshold)
             else ())
    return TensorwiseZero3(
        gather_bytes=layer["gather_bytes"], gather_calls=layer["gather_calls"],
        small_bytes=layer["small_bytes"], small_calls=layer["small_calls"],
        backward_share=released / n_layers,
        regather_bytes=layer["regather_bytes"], regather_calls=layer["regather_calls"],
        grad_calls=layer["grad_calls"],
        rest_gather_bytes=o_large * bytes_per_param, rest_gather_calls=o_count,
        rest_grad_calls=rest_elements / z.grad_bucket if allreduce else len(outside),
        persistent_bytes=(layer["small_bytes"] * n_layers + o_small * bytes_per_param),
        gather_copy_s_per_byte=z.gather_copy_passes / memory_bandwidth,
        grad_copy_s=layer["grad_copy_s"],
        rest_grad_copy_s=z.grad_copy_passes * rest_elements * grad_bytes_per_param / memory_bandwidth,
        grad_allreduce=allreduce, grad_overlap=z.grad_overlap, prefetch=z.prefetch, synchronize=z.synchronize,
        recompute_full=c.recompute == "full",
        per_rank_op_s=stack.launch_overhead_time if z.per_rank_ops else 0.0,
        layer_tensors=kinds, rest_tensors=tuple(outside),
        persistence_threshold=z.persistence_threshold, flush_windows=waits)


def tensorwise_sync_times(level, dp, m, units, tw: TensorwiseZero3):
    """(whole sync, exposed part) of one step's tensor-by-tensor ZeRO-3 over ``dp`` ranks on
    ``level``, ``m`` micro-batches. Per micro-batch each layer gathers its large tensors before its
    forward (its small ones too after the first micro-batch), again before its backward where it was
    released, a third time the modules a full recompute released, and reduces its gradients; the
    tensors outside the layers are gathered twice and reduced, waited for; the persistent tensors
    are gathered once a step in one call. ``units`` (:class:`~perfmodel.prediction.rules.ShardUnits`)
    gives the layers, their compute and gradient bytes."""
    alpha, beta = level
    several = dp > 1

    def calls_of(ring, size, calls):  # ``calls`` collectives of size / calls bytes each (calls may be 0)
        return where(calls > 0, calls * ring(dp, size / where(calls > 0, calls, 1.0), alpha, beta), 0.0)

    def gather(size, calls):  # the collectives, the copies' bytes, and the work per rank (per_rank_ops)
        return where(several, calls_of(coll.ring_allgather_time, size, calls) + size * tw.gather_copy_s_per_byte
                     + calls * dp * tw.per_rank_op_s, 0.0)

    def reduce(size, calls, copy_s):
        ring = coll.ring_allreduce_time if tw.grad_allreduce else coll.ring_reduce_scatter_time
        return where(several, calls_of(ring, size, calls) + copy_s, 0.0)

    n = units.n_units
    later = (m - 1) / m  # micro-batches after the first gather the persistent tensors one by one
    large = gather(tw.gather_bytes, tw.gather_calls)
    ag = large + later * gather(tw.small_bytes, tw.small_calls)
    back = tw.backward_share * large + gather(tw.regather_bytes, tw.regather_calls)
    red = reduce(units.unit_grad_bytes, tw.grad_calls, tw.grad_copy_s)
    rest = 2 * gather(tw.rest_gather_bytes, tw.rest_gather_calls) + reduce(units.rest_grad_bytes, tw.rest_grad_calls,
                                                                          tw.rest_grad_copy_s)
    rebuilt = post_step_copies(tw.rest_tensors, tw.persistence_threshold, dp)
    for share, tensors in tw.layer_tensors:
        rebuilt = rebuilt + n * share * post_step_copies(tensors, tw.persistence_threshold, dp)
    step_once = gather(tw.persistent_bytes, 1.0) + where(several, rebuilt * tw.per_rank_op_s, 0.0)
    sync = m * (n * (ag + back + red) + rest) + step_once
    if tw.synchronize:  # every gather waits: reductions hide only under the compute of their window
        backward = units.unit_backward_s - (units.unit_forward_s if tw.recompute_full else 0.0)
        if not tw.grad_overlap:
            waits = red
        elif tw.flush_windows:
            waits = where(several, flushes_waited_time(tw.flush_windows, backward, dp, alpha, beta), 0.0)
        else:  # a layer's reductions hide under its whole backward at most
            waits = red - minimum(red, backward)
        return sync, m * (n * (ag + back + waits) + rest) + step_once
    backward_comm = back + (red if tw.grad_overlap else 0.0)
    waited = 0.0 if tw.grad_overlap else n * red
    if tw.prefetch:
        layers_exposed = (dpf.prefetched_exposed_time(ag, units.unit_forward_s, n)
                          + dpf.prefetched_exposed_time(backward_comm, units.unit_backward_s, n))
    else:
        layers_exposed = n * (ag + backward_comm)
    return sync, m * (layers_exposed + waited + rest) + step_once
