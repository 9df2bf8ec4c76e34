"""ZeRO-3 communicated tensor by tensor, as the DeepSpeed of 2021 (v0.3-v0.5) runs it (a stack's
``[zero3] gather = "tensor"``; :mod:`perfmodel.specs.zero3`).

Read from DeepSpeed v0.3.15 (``deepspeed/runtime/zero/stage3.py``, ``partition_parameters.py``):

- Each module (a Megatron layer has six with parameters: the two LayerNorms, ``query_key_value``,
  ``dense``, ``dense_h_to_4h``, ``dense_4h_to_h``) fetches its parameters before it runs, one
  all-gather per tensor (``_allgather_param``: a zero-filled full-size buffer, a device
  synchronize, a list all-gather whose output PyTorch 1.8 copies out of a flat buffer), and starts
  the next module's gathers before its own compute (``prefetch_next_sub_modules``): a layer's
  gathers run under the previous layer's compute, as :func:`~perfmodel.formulas.dataparallel.
  prefetched_exposed_time` counts them per layer.
- Tensors of fewer elements than ``stage3_param_persistence_threshold`` (1e5) are gathered once a
  step, after the optimizer, and kept: biases and norm scales cost no gather per layer.
- A module's parameters are released after use unless their next use comes within
  ``stage3_max_reuse_distance`` parameters (1e9): under full recomputation the recompute's forward
  and the backward of a module are separated by twice the parameters of the modules after it in the
  layer, so the first modules of a large layer are gathered a third time. A stage of no more
  parameters than the reuse distance keeps everything gathered (no per-layer gathers at all).
- Gradients (``contiguous_gradients`` false, the configuration default): collected in buckets of
  ``reduce_bucket_size`` elements (5e8), each flattened, divided, all-reduced and copied back
  (``buffered_reduce_fallback``), on the compute stream unless ``overlap_comm`` (false by default);
  with ``contiguous_gradients`` true each gradient is reduce-scattered on its own.
"""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import dataparallel as dpf
from perfmodel.formulas._backend import where

__all__ = ["TensorwiseZero3", "megatron_modules", "tensorwise_zero3", "tensorwise_sync_times"]


class TensorwiseZero3(NamedTuple):
    """One layer's tensor-by-tensor ZeRO-3 traffic (bytes per device; calls may be fractional:
    means over the layers of a mixture of experts, or buckets shared by several layers)."""

    gather_bytes: object  # the non-persistent tensors gathered before the forward (and the backward)
    gather_calls: object
    regather_bytes: object  # gathered again for the backward after a full recompute's forward
    regather_calls: object
    grad_calls: object  # gradient collectives per layer (per tensor, or buckets)
    rest_gather_bytes: object  # outside the layers: embeddings, final norm, untied head
    rest_gather_calls: object
    rest_grad_calls: object
    persistent_bytes: object  # gathered once a step after the optimizer step
    gather_copy_s_per_byte: object
    grad_copy_s_per_byte: object
    grad_allreduce: bool  # bucketed all-reduce (True) or one reduce-scatter per tensor
    grad_overlap: bool
    prefetch: bool
    kept: object  # 1 where the stage fits in the reuse distance: nothing gathered per layer


def megatron_modules(model, tp) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """(a block's modules in forward order, each the element counts of its tensors on one device;
    the tensors outside the blocks: token, position and token-type embeddings, the final norm, a
    pooler, an untied LM head), as Megatron-LM lays them out (megatron/model/transformer.py):
    q, k, v fused in ``query_key_value``, a gated MLP's gate and up in ``dense_h_to_4h``; weights
    and column-parallel biases split over ``tp``. A mixture-of-experts block's MLP is its router
    and each expert's two projections (counted for every block: the tensor-wise stack is a 2021
    profile, before MoE in Megatron-DeepSpeed's ZeRO-3)."""
    h = model.hidden
    shapes = {name: (i, o) for name, i, o in model.linear_shapes()}
    qkv = sum(shapes[n][1] for n in ("attn_q", "attn_k", "attn_v"))
    up = sum(shapes[n][1] for n in ("mlp_gate", "mlp_up") if n in shapes)

    def linear(i, o, column):
        return (i * o / tp,) + ((o / tp if column else o,) if model.bias else ())

    norm = (h, h) if model.norm == "layernorm" and model.bias else (h,)
    attn = (linear(h, qkv, True), linear(shapes["attn_o"][0], h, False))
    if model.is_moe:
        f = model.expert_ffn_hidden * (2 if model.mlp == "swiglu" else 1)
        expert = (linear(h, f, True), linear(model.expert_ffn_hidden, h, False))
        mlp = ((h * model.n_experts,),) + expert * (model.n_experts + model.n_shared_experts)
    else:
        mlp = (linear(h, up, True), linear(shapes["mlp_down"][0], h, False))
    norms = (norm,) * model.n_block_norms
    block = (norms[0],) + attn + norms[1:] + mlp
    outside = ((model.vocab * h / tp,) + ((model.max_positions * h,) if model.positions == "learned" else ())
               + ((model.type_vocab * h,) if model.type_vocab else ()) + norm  # the final (encoder: embedding) norm
               + (linear(h, h, False) if model.pooler else ()))
    if model.kind == "decoder" and not model.tied_embeddings:
        outside += (model.vocab * h / tp,)
    return block, outside


def _released_tail(block, reuse_distance):
    """(elements, tensors) of the modules a full recompute's forward releases before their backward:
    those whose reuse distance, twice the elements of the modules after them, exceeds the limit."""
    sizes = [sum(m) for m in block]
    after = [sum(sizes[i + 1:]) for i in range(len(block))]
    gone = [m for m, a in zip(block, after) if 2 * a > reuse_distance]
    return gone


def tensorwise_zero3(model, stack, c, tp, stage_params, bytes_per_param, grad_bytes_per_param,
                     memory_bandwidth) -> TensorwiseZero3:
    """One layer's traffic under the stack's ``[zero3]`` (see the module docstring)."""
    z = stack.zero3
    block, outside = megatron_modules(model, tp)

    def big(tensors):
        return [n for n in tensors if n >= z.persistence_threshold]

    gathered = [n for m in block for n in big(m)]
    regathered = ([n for m in _released_tail(block, z.reuse_distance_params) for n in big(m)]
                  if c.recompute == "full" else [])
    layer_elements = sum(n for m in block for n in m)
    small = sum(n for m in block for n in m if n < z.persistence_threshold) * model.n_layers
    small += sum(n for n in outside if n < z.persistence_threshold)
    if z.grad_reduce == "all-reduce":
        grad_calls, rest_grad_calls = layer_elements / z.grad_bucket, sum(outside) / z.grad_bucket
    else:
        grad_calls, rest_grad_calls = sum(len(m) for m in block), len(outside)
    return TensorwiseZero3(
        gather_bytes=sum(gathered) * bytes_per_param, gather_calls=len(gathered),
        regather_bytes=sum(regathered) * bytes_per_param, regather_calls=len(regathered),
        grad_calls=grad_calls,
        rest_gather_bytes=sum(big(outside)) * bytes_per_param, rest_gather_calls=len(big(outside)),
        rest_grad_calls=rest_grad_calls,
        persistent_bytes=small * bytes_per_param,
        gather_copy_s_per_byte=z.gather_copy_passes / memory_bandwidth,
        grad_copy_s_per_byte=z.grad_copy_passes / memory_bandwidth,
        grad_allreduce=z.grad_reduce == "all-reduce", grad_overlap=z.grad_overlap, prefetch=z.prefetch,
        kept=where(stage_params <= z.reuse_distance_params, 1, 0))


def tensorwise_sync_times(level, dp, m, units, tw: TensorwiseZero3):
    """(whole sync, exposed part) of one step's tensor-by-tensor ZeRO-3 over ``dp`` ranks on
    ``level``, ``m`` micro-batches: per micro-batch each layer's gathers before its forward and its
    backward (plus the regathered modules), its gradients reduced after its backward; the tensors
    outside the layers gathered twice and reduced, waited for; the persistent tensors gathered once
    a step. ``units`` (:class:`~perfmodel.prediction.rules.ShardUnits`) gives the layers, their
    compute and gradient bytes."""
    alpha, beta = level
    several = dp > 1

    def gather(size, calls):
        t = calls * alpha * (dp - 1) + (dp - 1) / dp * size / beta + size * tw.gather_copy_s_per_byte
        return where(several & (calls > 0), t, 0.0)

    def reduce(size, calls):
        if tw.grad_allreduce:  # bucketed ring all-reduce: 2(n-1) steps a bucket
            t = calls * 2 * (dp - 1) * alpha + 2 * (dp - 1) / dp * size / beta
        else:
            t = calls * coll.ring_reduce_scatter_time(dp, size / calls, alpha, beta)
        return where(several, t + size * tw.grad_copy_s_per_byte, 0.0)

    n, live = units.n_units, 1 - tw.kept
    ag = live * gather(tw.gather_bytes, tw.gather_calls)
    reg = live * gather(tw.regather_bytes, tw.regather_calls)
    red = reduce(units.unit_grad_bytes, tw.grad_calls)
    rest = live * 2 * gather(tw.rest_gather_bytes, tw.rest_gather_calls) + reduce(units.rest_grad_bytes,
                                                                                  tw.rest_grad_calls)
    step_once = gather(tw.persistent_bytes, 1.0)
    sync = m * (n * (2 * ag + reg + red) + rest) + step_once
    backward_comm = ag + reg + (red if tw.grad_overlap else 0.0)
    waited = 0.0 if tw.grad_overlap else n * red
    if tw.prefetch:
        hidden = (dpf.prefetched_exposed_time(ag, units.unit_forward_s, n)
                  + dpf.prefetched_exposed_time(backward_comm, units.unit_backward_s, n))
    else:
        hidden = n * (ag + backward_comm)
    return sync, m * (hidden + waited + rest) + step_once
