r"""Activation memory of one transformer layer, tensor by tensor: what the backward pass keeps.

Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models" (MLSys 2023,
arXiv:2205.05198), Section 4.1, count per layer, no parallelism, 16-bit activations and 1-byte
dropout masks: attention 11sbh + 5as^2b (QKV input 2sbh, Q and K 4sbh, softmax output 2as^2b,
its dropout mask as^2b, dropout output 2as^2b, V 2sbh, projection input 2sbh, dropout mask sbh),
MLP 19sbh (input 2sbh, GeLU input 8sbh, GeLU output 8sbh, dropout mask sbh), two LayerNorm
inputs 4sbh: :math:`34sbh + 5as^2b`. With tensor parallelism the column/row-parallel tensors are
split over t (Section 4.2.1: 10sbh stays replicated), with sequence parallelism the rest too
(Section 4.2.2). Each function below is one of those tensors, generalised to the shapes the paper
fixes: the query width a d and key/value width a_kv d (GQA, a head width other than h / a),
the MLP width f (a gated MLP keeps the gate and up outputs, 2f, and the down projection's input,
f), FlashAttention (keeps Q, K, V, its output and the fp32 log-sum-exp of each row instead of
the s x s matrices; Dao et al. 2022, Algorithm 2 / FlashAttention-2 Algorithm 1 "save L").

Letters: T = s b tokens of a micro-batch, w bytes of a 16-bit (or the run's) activation element,
r the divisor of a replicated region (t with sequence parallelism, else 1).
"""

from __future__ import annotations

__all__ = ["norm_input_bytes", "norm_stat_bytes", "linear_input_bytes", "qkv_bytes", "score_bytes",
           "softmax_stat_bytes", "dropout_mask_bytes", "mlp_hidden_bytes", "mlp_up_output_bytes", "checkpoint_bytes"]


def norm_input_bytes(n_tokens, hidden_size, bytes_per_element, region_split):
    r"""Bytes of a norm's saved input (its backward recomputes the normalised value from it).

    .. math:: M = T\,h\,w / r

    n_tokens T (1), hidden_size h (1), bytes_per_element w (B), region_split r (1: t with
    sequence parallelism, else 1). Source: Korthikanti et al. 2022, Section 4.1 ("LayerNorm:
    each stores its input with size 2sbh"), Section 4.2.2 (/t with sequence parallelism);
    Transformer Engine LayerNormLinear saves its input ``inputmat`` for the norm's backward.

    >>> norm_input_bytes(n_tokens=4096, hidden_size=4096, bytes_per_element=2, region_split=2)
    16777216.0
    """
    return n_tokens * hidden_size * bytes_per_element / region_split


def norm_stat_bytes(n_tokens, n_stats, region_split):
    r"""Bytes of a norm's fp32 row statistics: mean and 1/sigma (LayerNorm, 2) or 1/rms (RMSNorm, 1).

    .. math:: M = 4\,n_{stat}\,T / r

    n_tokens T (1), n_stats n_stat (1), region_split r (1). Korthikanti et al. neglect them
    (Section 4.1: "we ignore ... LayerNorm statistics"); Transformer Engine saves ``mu`` and
    ``rsigma`` (fp32) in LayerNormLinear. Source: Ba et al. 2016 (LayerNorm), Zhang & Sennrich 2019
    (RMSNorm) for what the backward needs.

    >>> norm_stat_bytes(n_tokens=4096, n_stats=1, region_split=1)
    16384.0
    """
    return 4.0 * n_stats * n_tokens / region_split


def linear_input_bytes(n_tokens, width, bytes_per_element):
    r"""Bytes of a linear layer's saved input (its weight gradient is X^T dY).

    .. math:: M = T\,k\,w

    n_tokens T (1), width k (1, the input features held by this device: h / r for the QKV and
    MLP-up input, a d / t for the attention projection), bytes_per_element w (B).
    Source: Korthikanti et al. 2022, Section 4.1 (QKV input 2sbh, projection input 2sbh, MLP
    input 2sbh); a norm's output that feeds two linears (q, k, v or a parallel block's two
    branches) is one tensor, saved once.

    >>> linear_input_bytes(n_tokens=4096, width=2048, bytes_per_element=2)
    16777216
    """
    return n_tokens * width * bytes_per_element


def qkv_bytes(n_tokens, q_width, kv_width, bytes_per_element):
    r"""Bytes of the queries, keys and values the attention core keeps.

    .. math:: M = T\,(q + 2\,k_v)\,w

    n_tokens T (1), q_width q (1, a d / t), kv_width k_v (1, max(a_kv / t, 1) d), bytes_per_element
    w (B). Multi-head attention (q = k_v = h / t): 6sbh / t. Source: Korthikanti et al. 2022,
    Section 4.1 ("Q and K: 4sbh", "V: 2sbh"); grouped-query attention keeps K and V of a_kv heads
    (Ainslie et al. 2023, Section 2).

    >>> qkv_bytes(n_tokens=4096, q_width=2048, kv_width=512, bytes_per_element=2)
    25165824
    """
    return n_tokens * (q_width + 2 * kv_width) * bytes_per_element


def score_bytes(batch_size, seq_len, heads_per_device, bytes_per_element, dropout):
    r"""Bytes of the materialised s x s attention matrices: softmax output, and with attention
    dropout its 1-byte mask and its output.

    .. math:: M = b\,a_t\,s^2\,(w + [\text{dropout}](1 + w))

    batch_size b (1), seq_len s (1), heads_per_device a_t (1, a / t), bytes_per_element w (B),
    dropout (0 or 1). With dropout and w = 2: 5 a s^2 b / t. Source: Korthikanti et al. 2022,
    Section 4.1 (softmax 2as^2b, mask as^2b, dropout output 2as^2b); 0 for FlashAttention and
    under selective recomputation (Section 5).

    >>> score_bytes(batch_size=1, seq_len=2048, heads_per_device=12, bytes_per_element=2, dropout=1)
    251658240
    """
    return batch_size * heads_per_device * seq_len * seq_len * (bytes_per_element + dropout * (1 + bytes_per_element))


def softmax_stat_bytes(n_tokens, heads_per_device):
    r"""Bytes of FlashAttention's saved fp32 log-sum-exp: one per query row and head.

    .. math:: M = 4\,T\,a_t

    n_tokens T (1), heads_per_device a_t (1). Source: Dao 2023, FlashAttention-2, Algorithm 1
    (line 13: "write L_i"), the only s-sized statistic its backward needs besides Q, K, V, O, dO.

    >>> softmax_stat_bytes(n_tokens=4096, heads_per_device=16)
    262144.0
    """
    return 4.0 * n_tokens * heads_per_device


def dropout_mask_bytes(n_tokens, hidden_size, region_split):
    r"""Bytes of a hidden-state dropout's 1-byte mask (after attention, after the MLP).

    .. math:: M = T\,h / r

    n_tokens T, hidden_size h, region_split r (all 1). Source: Korthikanti et al. 2022, Section
    4.1 ("dropout mask sbh"); a run with dropout 0 keeps none (PyTorch returns the input).

    >>> dropout_mask_bytes(n_tokens=4096, hidden_size=4096, region_split=2)
    8388608.0
    """
    return n_tokens * hidden_size / region_split


def mlp_hidden_bytes(n_tokens, ffn_per_device, bytes_per_element, gated):
    r"""Bytes the MLP keeps at its inner width: the activation's input(s) and the down projection's input.

    .. math:: M = T\,f_t\,w\,(2 + [\text{gated}])

    n_tokens T (1), ffn_per_device f_t (1, f / t), bytes_per_element w (B), gated (0 or 1).
    GeLU: its input and output; gated (SwiGLU): the gate and up outputs, which a fused
    SiLU-multiply saves to recompute SiLU in its backward, and the product, the down projection's
    input. Source: Korthikanti et al. 2022 Section 4.1 (GeLU input and output, 8sbh each at
    f = 4h); NVIDIA/Megatron-LM @d98e8a64 megatron/core/fusions/fused_bias_swiglu.py
    (SwiGLUFunction / BiasSwiGLUFunction save their input only).

    >>> mlp_hidden_bytes(n_tokens=4096, ffn_per_device=5504, bytes_per_element=2, gated=1)
    135266304
    """
    return n_tokens * ffn_per_device * bytes_per_element * (2 + gated)


def mlp_up_output_bytes(n_tokens, ffn_per_device, bytes_per_element, gated):
    r"""Bytes of the MLP's up-projection outputs alone: the activation's input (gate and up of a
    gated MLP), what a policy that keeps only weight-matmul outputs saves of the MLP.

    .. math:: M = T\,f_t\,w\,(1 + [\text{gated}])

    n_tokens T (1), ffn_per_device f_t (1, f / t), bytes_per_element w (B), gated (0 or 1). The
    activation's output (the down projection's input) is recomputed from them. Source: JAX
    ``jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims`` (saves dot_general outputs with
    no batch dimensions), as MaxText's ``remat_policy=minimal`` applies it (MaxText/layers/models.py
    @76bd53b0); the MLP's wi projections are such dots (MaxText/layers/linears.py DenseGeneral).

    >>> mlp_up_output_bytes(n_tokens=4096, ffn_per_device=5504, bytes_per_element=2, gated=1)
    90177536
    """
    return n_tokens * ffn_per_device * bytes_per_element * (1 + gated)


def checkpoint_bytes(n_tokens, hidden_size, bytes_per_element, region_split):
    r"""Bytes of a fully recomputed layer's checkpoint: its input.

    .. math:: M = T\,h\,w / r

    Parameters as :func:`norm_input_bytes`. Source: Korthikanti et al. 2022, Section 5 and Table 2
    ("full activation recomputation": 2sbh L; 2sbhL / t when the checkpoint is sequence-split).

    >>> checkpoint_bytes(n_tokens=2048, hidden_size=12288, bytes_per_element=2, region_split=8)
    6291456.0
    """
    return n_tokens * hidden_size * bytes_per_element / region_split
