r"""Context parallelism: the sequence of every sample split over cp ranks, attention as a ring.

Megatron-Core runs context parallelism through Transformer Engine's ``AttnFuncWithCPAndKVP2P``:
each rank holds s/cp tokens of every sequence (Megatron-Core splits the sequence into 2 cp chunks
and gives rank i chunks i and 2cp - 1 - i, so that every rank does the same share of the causal
attention); everything but attention runs on those tokens unchanged. Attention runs in cp steps:
in each step the rank computes its queries against one chunk of keys and values while it sends
the chunk it holds to its ring neighbour and receives the next one (cp - 1 exchanges in the
forward). The backward passes the K, V chunk on and, with it, the accumulated dK, dV chunk
(twice the forward's bytes per exchange).

Sources: NVIDIA/TransformerEngine transformer_engine/pytorch/attention/dot_product_attention/
context_parallel.py at d0067d0 (``AttnFuncWithCPAndKVP2P``; ``transformer_engine/pytorch/attention.py``
in releases before 2.0): forward loop ``for i in range(cp_size + 1)`` with
``flash_attn_p2p_communicate`` of ``p2p_comm_buffers[i]`` while ``i < cp_size - 1``; backward sends
``[kv, dkv]`` pairs. NVIDIA/Megatron-LM docs/user-guide/features/context_parallel.md at d98e8a6
("Context Parallel Overview": KV exchanged in a ring of point-to-point transfers, load-balanced
causal masking, total GPUs TP x CP x PP x DP) and megatron/core/utils.py
``get_batch_on_this_cp_rank`` (the 2 cp chunks).
"""

from __future__ import annotations

from perfmodel.formulas._backend import maximum

__all__ = ["kv_chunk_bytes", "ring_attention_flops", "ring_attention_exposed_time"]


def kv_chunk_bytes(batch_size, seq_len, cp, n_kv_heads, tp, head_dim, bytes_per_element):
    r"""Bytes of the K and V chunk one context-parallel rank sends its ring neighbour per step.

    .. math:: S_{kv} = 2\,b\,\frac{s}{c}\,\frac{a_{kv}}{t}\,d_{head}\,w

    batch_size b (1, sequences per micro-batch), seq_len s (1, tokens of the whole sequence),
    cp c (1, context-parallel size), n_kv_heads a_kv (1), tp t (1, the rank holds a_kv / t heads),
    head_dim d_head (1), bytes_per_element w (B). Assumes s divisible by 2 c and a_kv by t.
    Source: NVIDIA/TransformerEngine context_parallel.py at d0067d0, ``AttnFuncWithCPAndKVP2P``
    (``p2p_comm_buffers`` hold k and v of the local chunk, concatenated).

    >>> kv_chunk_bytes(batch_size=1, seq_len=8192, cp=2, n_kv_heads=32, tp=1, head_dim=128, bytes_per_element=2)
    67108864.0
    """
    return 2 * batch_size * (seq_len / cp) * (n_kv_heads / tp) * head_dim * bytes_per_element


def ring_attention_flops(batch_size, seq_len, n_heads, head_dim, cp):
    r"""Forward FLOPs of causal attention on one context-parallel rank (load-balanced).

    .. math:: F = \frac{1}{c}\cdot\frac{1}{2}\,4\,b\,s^2\,a\,d = \frac{2\,b\,s^2\,a\,d}{c}

    batch_size b (1), seq_len s (1, the whole sequence), n_heads a (1, query heads on the rank),
    head_dim d (1), cp c (1). With rank i holding chunks i and 2c - 1 - i of 2c, every rank
    computes the same share of the causal half of the score matrix: its diagonal step is causal
    attention on s/c tokens, each of the c - 1 other steps half of an (s/c) x (s/c) block, so
    c times the causal attention of s/c tokens. Source: NVIDIA/Megatron-LM
    docs/user-guide/features/context_parallel.md at d98e8a6 (load-balanced causal masking);
    FLOPs as :func:`perfmodel.formulas.compute.attention_core_flops` with c = 0.5.

    >>> ring_attention_flops(batch_size=1, seq_len=8192, n_heads=32, head_dim=128, cp=2)
    274877906944.0
    """
    return 2.0 * batch_size * seq_len**2 * n_heads * head_dim / cp


def ring_attention_exposed_time(cp, kv_transfer_time, step_attention_time):
    r"""Seconds of ring-attention communication one rank waits for in one layer's pass.

    .. math:: T = (c - 1)\,\max(0,\ t_{kv} - t_{att})

    cp c (1, ranks of the ring), kv_transfer_time t_kv (s, one exchange with the ring neighbour:
    the K, V chunk forward; K, V plus dK, dV backward), step_attention_time t_att (s, the attention
    of one of the c steps, which the exchange runs under). c - 1 exchanges per pass: the last
    step computes on the chunk already received. Source: NVIDIA/TransformerEngine
    context_parallel.py at d0067d0, ``AttnFuncWithCPAndKVP2P.forward`` (send/receive of step
    i + 1 issued before the attention of step i, while ``i < cp_size - 1``) and ``.backward``.

    >>> ring_attention_exposed_time(cp=4, kv_transfer_time=3e-4, step_attention_time=1e-4)
    0.0006
    """
    return (cp - 1) * maximum(kv_transfer_time - step_attention_time, 0.0)
