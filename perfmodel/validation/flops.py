"""FLOP counts the publications used to turn achieved TFLOP/s into seconds per iteration."""

from __future__ import annotations

__all__ = ["narayanan_flops", "megatron_core_flops"]


def narayanan_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    r"""FLOPs of one iteration of a GPT model with full activation recomputation.

    .. math:: F = 96 B s l h^2 \left(1 + \frac{s}{6h} + \frac{V}{16 l h}\right)

    ``batch`` :math:`B` sequences of ``seq`` :math:`s` tokens, ``layers`` :math:`l`, ``hidden``
    :math:`h`, ``vocab`` :math:`V`. Source: Narayanan et al., "Efficient Large-Scale Language
    Model Training on GPU Clusters Using Megatron-LM", SC'21, Section 5.1, eq. (3).

    >>> round(narayanan_flops(512, 2048, 24, 2304, 51200) / 1e15, 2)  # 1.7B row of Table 1
    15.47
    """
    B, s, l, h, V = batch, seq, layers, hidden, vocab
    return 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h))


def megatron_core_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int, heads: int,
                        query_groups: int | None = None, ffn_hidden: int | None = None,
                        swiglu: bool = False) -> float:
    r"""FLOPs of one iteration as Megatron-Core r0.8.0 counts them (no recomputation term).

    .. math:: F = 12 B s L h^2 \left(\left(1 + \frac{g}{a} + \frac{s}{h}\right)
              + \frac{f}{h}\,\gamma + \frac{V}{2 L h}\right)

    with :math:`g` query groups, :math:`a` attention heads, :math:`f` the MLP width and
    :math:`\gamma = 3/2` for a gated (SwiGLU) MLP, else 1; the query projection is assumed as wide
    as the hidden size (``kv_channels * heads == hidden``, true for these models). Source:
    ``num_floating_point_operations(args, batch_size)`` in megatron/training/training.py of
    Megatron-LM r0.8.0 (read as vendored with megatron_core 0.8.0 in PKU-YuanGroup/Open-Sora-Plan,
    megatron/training/training.py @1a7697ba; package_info.py @850df260 says version 0.8.0).
    ``vocab`` stands for ``padded_vocab_size`` (131072 needs no padding).

    >>> round(megatron_core_flops(192, 4096, 24, 2048, 131072, 16) / 1e15, 2)  # the 1.7B run
    8.87
    """
    B, s, L, h, V = batch, seq, layers, hidden, vocab
    g = heads if query_groups is None else query_groups
    f = 4 * h if ffn_hidden is None else ffn_hidden
    gated = 1.5 if swiglu else 1.0
    return 12 * B * s * L * h**2 * ((1 + g / heads + s / h) + f / h * gated + V / (2 * L * h))


