"""Context parallelism in a transformer step: where the ring-attention exchanges run and what of
them the attention compute does not hide.

Rank order follows Megatron-Core (``initialize_model_parallel(order="tp-cp-ep-dp-pp")`` in
megatron/core/parallel_state.py): tensor-parallel ranks innermost, then context-parallel, then
data-parallel, then pipeline stages. A CP ring's neighbours are therefore tp ranks apart: the ring
stays on the node's fabric while tp x cp devices fit in a node and crosses the network beyond.
The gradients are reduced over the data- and context-parallel ranks together (Megatron-Core's
``DATA_PARALLEL_GROUP_WITH_CP``), a group of dp x cp ranks tp apart, as a data-parallel group of
dp x cp ranks would be (:func:`perfmodel.prediction.placement.placement_levels`).

Numbers may be floats or numpy arrays (sweeps); cp = 1 gives zeros.
"""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import context as ctx
from perfmodel.formulas._backend import where
from perfmodel.prediction.placement import Level, strided_group_level
from perfmodel.prediction.shapes import kv_heads_per_device

__all__ = ["CpTimes", "context_level", "context_comm_times", "ring_buffer_bytes"]


class CpTimes(NamedTuple):
    """One layer, one micro-batch: ring-attention communication left exposed in the forward, the
    backward and a recompute, all of it (exposed or hidden), and the bytes of one K, V chunk."""

    forward: object
    backward: object
    recompute: object
    total: object
    kv_chunk_bytes: object


def context_level(hw, tp, cp) -> Level:
    """alpha/beta of one CP ring exchange: the cp ranks of a ring sit tp apart
    (:func:`~perfmodel.prediction.placement.strided_group_level`)."""
    return strided_group_level(hw, tp, cp)


def context_comm_times(model, rates, level: Level, attention_forward, attention_backward, *, b, s, t, cp,
                       recompute: str) -> CpTimes:
    """Ring-attention exchanges of one layer and micro-batch on a rank (``s``: the whole sequence).

    Forward: cp - 1 exchanges of the K, V chunk, each under one of the cp equal attention steps
    (``attention_forward / cp``); backward: cp - 1 exchanges of K, V plus dK, dV (twice the bytes)
    under a backward step (:func:`perfmodel.formulas.context.ring_attention_exposed_time`). A
    recompute (selective: the attention core; full: the layer) runs the forward ring again."""
    # the K,V heads a rank holds: a_kv / t, or one replicated head when t exceeds a_kv (Megatron-LM)
    chunk = ctx.kv_chunk_bytes(b, s, cp, kv_heads_per_device(model.n_kv_heads, t), 1, model.head_dim,
                               rates.bytes_per_element)
    several = cp > 1
    kv_f = where(several, coll.point_to_point_time(chunk, level.alpha, level.beta), 0.0)
    kv_b = where(several, coll.point_to_point_time(2 * chunk, level.alpha, level.beta), 0.0)
    fwd = ctx.ring_attention_exposed_time(cp, kv_f, attention_forward / cp)
    bwd = ctx.ring_attention_exposed_time(cp, kv_b, attention_backward / cp)
    rec = fwd if recompute != "none" else 0.0
    total = (cp - 1) * (kv_f * (2 if recompute != "none" else 1) + kv_b)
    return CpTimes(fwd, bwd, rec, total, where(several, chunk, 0.0))


def ring_buffer_bytes(cp_times: CpTimes):
    """Activation bytes the ring adds on a rank: the two K, V receive buffers of the exchange in
    flight (TransformerEngine ``AttnFuncWithCPAndKVP2P``: ``p2p_comm_buffers`` double-buffered),
    alive during one layer's attention."""
    return 2 * cp_times.kv_chunk_bytes
