"""Shapes of one transformer block on one tensor-parallel rank that are not plain ``x / t``: key /
value heads when the tensor-parallel group is larger than their number, and the tensor-parallel
collectives of a sequential or a parallel (attention + MLP side by side) block.

Inputs are plain numbers (t may be a float, a numpy array or a sympy symbol); the model's
structure (heads, parallel block) is a plain Python value.
"""

from __future__ import annotations

import functools

from perfmodel.formulas._backend import ceil, maximum, where
from perfmodel.formulas.collectives import ring_allgather_time, ring_reduce_scatter_time

__all__ = ["padded_vocab", "kv_heads_per_device", "qkv_gather_bytes", "qkv_gather_times", "tp_allreduces_per_layer", "mlp_shapes",
           "role_kernels"]


def padded_vocab(model, stack, t):
    """The LM head's vocabulary as the stack pads it (Megatron-LM: --make-vocab-size-divisible-by
    128, x t; Inductor's pad_mm: multiples of 8): the next multiple of ``pad_vocab_multiple x t``."""
    multiple = stack.pad_vocab_multiple * t
    return ceil(model.vocab / multiple) * multiple


def kv_heads_per_device(n_kv_heads, tp):
    r"""Key/value heads one tensor-parallel rank attends with: :math:`\max(a_{kv}/t, 1)`.

    With t <= a_kv each rank holds a_kv / t of the heads; with t > a_kv (t a multiple of a_kv)
    every rank works on one key/value head, shared by the t / a_kv ranks of its query group.
    Source: NVIDIA/Megatron-LM @d98e8a64 megatron/core/transformer/attention.py
    (``num_query_groups_per_partition = 1`` when ``num_query_groups < world_size``; added by
    f7dfb997 "Support TP greater than num_kv_heads by supporting QKV activation sub-sharding");
    megatron/core/transformer/transformer_config.py accepts tp a multiple or a divisor of the
    query groups.

    >>> kv_heads_per_device(8, 16), kv_heads_per_device(8, 4)
    (1.0, 2.0)
    """
    return maximum(n_kv_heads / tp, 1.0)


def qkv_gather_bytes(model, tokens, bytes_per_element, tp):
    r"""Bytes of the fused QKV output all-gathered over the tensor-parallel group when t > a_kv.

    .. math:: S = T\,(a + 2 a_{kv})\,d\,w \quad (t > a_{kv}), \quad 0 \text{ otherwise}

    Megatron-Core keeps the fused QKV weight evenly split ((a + 2 a_kv) d / t output columns per
    rank: no replicated weights) and, when t > a_kv, all-gathers the QKV activations along the last
    dimension, then keeps its query group's slice (``all_gather_last_dim_from_tensor_parallel_region``;
    its backward is the matching reduce-scatter). Source: NVIDIA/Megatron-LM @d98e8a64
    megatron/core/transformer/attention.py ``get_query_key_value_tensors``.
    """
    size = tokens * (model.n_heads + 2 * model.n_kv_heads) * model.head_dim * bytes_per_element
    return where(tp > model.n_kv_heads, size, 0.0)


def qkv_gather_times(model, tokens, bytes_per_element, tp, alpha, beta):
    """(forward all-gather, backward reduce-scatter) seconds of :func:`qkv_gather_bytes`."""
    size = qkv_gather_bytes(model, tokens, bytes_per_element, tp)
    on = tp > model.n_kv_heads
    return (where(on, ring_allgather_time(tp, size, alpha, beta), 0.0),
            where(on, ring_reduce_scatter_time(tp, size, alpha, beta), 0.0))


def tp_allreduces_per_layer(model) -> tuple[int, int]:
    """(forward, backward) tensor-parallel all-reduces (or all-gather + reduce-scatter pairs with
    sequence parallelism) of one block.

    Sequential block: 2 and 2 (Megatron-LM, Shoeybi et al. 2019 Figure 4: g after attention and
    after the MLP forward, f before each in the backward). Parallel block: the attention and MLP
    row-parallel outputs are added before one all-reduce (EleutherAI/gpt-neox
    megatron/model/transformer.py ParallelTransformerLayer.forward, ``gpt_j_residual``: "we can do
    a single allreduce after we add mlp / attn outputs"): 1 forward. Backward: with one shared norm
    both branches read one tensor, whose gradients are summed before one all-reduce (PaLM,
    Chowdhery et al. 2022 Section 2 "Parallel Layers": the two input matmuls fuse); with two norms
    (GPT-NeoX-20B) each norm's output gradient is all-reduced: 2.
    """
    if not model.parallel_block:
        return 2, 2
    return 1, (1 if model.shared_norm else 2)


def mlp_shapes(model, tokens, width, t):
    """(m, k, n) of the forward GEMMs of an MLP of ``width`` on ``tokens`` (TP-sharded: column-parallel
    up and, when gated, gate; row-parallel down): the dense MLP at ffn_hidden, an expert or the shared
    experts of a mixture of experts at theirs."""
    h = model.hidden
    up = [(tokens, h, width / t), (tokens, width / t, h)]
    return up + [(tokens, h, width / t)] if model.mlp == "swiglu" else up


def role_kernels(kernels, model) -> tuple:
    """A stack's role-based kernel list (``[layer] kernels``, ``score_kernels``) as ``model`` runs
    it: a model trained without dropout (``model.dropout`` false: Llama-family configs, p = 0)
    drops the dropout role from every kernel, and a kernel left empty disappears; a fused
    bias-dropout-add keeps its add. PyTorch's dropout returns its input at p = 0 (ATen
    native/Dropout.cpp: ``if (p == 0 || !train || input.numel() == 0) return input``): no kernel
    and no mask saved for the backward. Likewise a model without rotary position embeddings
    (``model.positions`` other than ``"rotary"``) drops the rope role."""
    absent = _ABSENT_ROLES[bool(model.dropout), getattr(model, "positions", "") == "rotary"]
    return _without_roles(kernels, absent) if absent else kernels


# the roles a model does not run, by (trains with dropout, has rotary positions)
_ABSENT_ROLES = {(True, True): (), (False, True): ("dropout",), (True, False): ("rope",),
                 (False, False): ("dropout", "rope")}


@functools.lru_cache(maxsize=256)
def _without_roles(kernels: tuple, absent: tuple) -> tuple:
    kept = (tuple(role for role in kernel if role not in absent) for kernel in kernels)
    return tuple(kernel for kernel in kept if kernel)
