r"""Compute: FLOP counts and memory traffic of training operations, and the roofline that times them.

Covers the roofline bound (Williams, Waterman & Patterson 2009), forward/backward FLOPs of linear,
conv2d and attention layers, FLOPs and bytes of the memory-bound pointwise ops (norms, activations,
dropout, residual add), embedding and LM head, and the optimizer step. Whole-model totals and MFU
are in :mod:`perfmodel.formulas.training`.

Counting convention: one multiply-add is 2 FLOP (Narayanan et al. 2021, Appendix), whatever the
dtype. A matmul's backward is an activation-gradient (dgrad) plus a weight-gradient (wgrad) GEMM,
each with the forward's FLOP count, so backward = 2 x forward for linear and conv layers.

Sources: S. Williams, A. Waterman, D. Patterson, "Roofline", CACM 52(4), 2009; D. Narayanan et al.,
"Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC'21
(Appendix); V. Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models",
MLSys 2023 (Appendix A); J. Hoffmann et al., "Training Compute-Optimal LLMs", 2022 (Appendix F);
T. Dao, Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py; I. Loshchilov &
F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (Algorithm 2).
"""

from __future__ import annotations

from perfmodel.formulas._backend import floor, maximum

# Per-element counts of the memory-bound pointwise ops, for pointwise_flops / pointwise_bytes.
# FLOPs are counted from each op's definition, one FLOP per arithmetic op or transcendental (exp,
# tanh, sqrt, reciprocal); per-row reductions (mean, rstd) are amortised over the hidden size and
# left out. Accesses are tensor-element reads + writes of one fused kernel; small parameter vectors
# (gamma, beta) are left out. Mask bytes are the 1-byte dropout mask (written forward, read
# backward). An unfused (eager) stack runs e.g. silu_mul as "silu" then "mul": sum their rows.
# softmax's forward count is Hoffmann et al. 2022 (App. F); the others are ours, from:
#   layernorm y = (x - mean) * rstd * gamma + beta (Ba et al. 2016); rmsnorm y = x * rstd * gamma
#   (Zhang & Sennrich 2019); gelu = tanh approximation (Hendrycks & Gimpel 2016);
#   silu(a) = a * sigmoid(a); silu_mul = silu(a) * b (SwiGLU, Shazeer 2020).
POINTWISE_OPS: dict[str, dict[str, float]] = {
    "layernorm":    dict(fwd_flops=7, fwd_accesses=2, fwd_mask_bytes=0, bwd_flops=13, bwd_accesses=3, bwd_mask_bytes=0),
    "rmsnorm":      dict(fwd_flops=4, fwd_accesses=2, fwd_mask_bytes=0, bwd_flops=9, bwd_accesses=3, bwd_mask_bytes=0),
    "gelu":         dict(fwd_flops=9, fwd_accesses=2, fwd_mask_bytes=0, bwd_flops=18, bwd_accesses=3, bwd_mask_bytes=0),
    "silu":         dict(fwd_flops=4, fwd_accesses=2, fwd_mask_bytes=0, bwd_flops=8, bwd_accesses=3, bwd_mask_bytes=0),
    "mul":          dict(fwd_flops=1, fwd_accesses=3, fwd_mask_bytes=0, bwd_flops=2, bwd_accesses=5, bwd_mask_bytes=0),
    "silu_mul":     dict(fwd_flops=5, fwd_accesses=3, fwd_mask_bytes=0, bwd_flops=11, bwd_accesses=5, bwd_mask_bytes=0),
    "dropout":      dict(fwd_flops=2, fwd_accesses=2, fwd_mask_bytes=1, bwd_flops=2, bwd_accesses=2, bwd_mask_bytes=1),
    "residual_add": dict(fwd_flops=1, fwd_accesses=3, fwd_mask_bytes=0, bwd_flops=0, bwd_accesses=0, bwd_mask_bytes=0),
    "softmax":      dict(fwd_flops=3, fwd_accesses=2, fwd_mask_bytes=0, bwd_flops=4, bwd_accesses=3, bwd_mask_bytes=0),
    "relu2":        dict(fwd_flops=2, fwd_accesses=4, fwd_mask_bytes=0, bwd_flops=4, bwd_accesses=10, bwd_mask_bytes=0),
    "rope":         dict(fwd_flops=3, fwd_accesses=2, fwd_mask_bytes=0, bwd_flops=3, bwd_accesses=2, bwd_mask_bytes=0),
}  # fmt: skip
# relu2 is squared ReLU as NeMo writes it, torch.pow(F.relu(x), 2), which Megatron-Core runs unfused
# (bias_activation_fusion off): forward relu (read, write) then pow (read, write); backward
# PyTorch's pow_backward, grad * (2 * y.pow(1)) (a copy, a scale, a multiply: 2 + 2 + 3 accesses),
# then relu's threshold_backward (read the gradient and the output, write: 3); summed as one row.
# rope is rotary position embedding as one fused kernel on the queries and keys (Su et al. 2021,
# RoFormer, Eq. 34: x cos + rotate_half(x) sin, 2 multiplies and an add an element): read x, write
# the result; its backward the transpose rotation on the gradient, the same traffic (apex
# fused_apply_rotary_pos_emb, csrc/megatron/fused_rotary_positional_embedding.h, as Megatron-Core
# runs it; the fp32 frequency table of s x d it also reads, shared by the batch and the heads, is
# not counted)

# FLOPs per parameter of one optimizer step and the number of fp32 moments it keeps (for
# optimizer_update_flops / optimizer_update_bytes). AdamW (Loshchilov & Hutter 2019, Alg. 2), per
# element: m update 3, v update 4, two bias corrections 2, sqrt + eps 2, divide 1, decoupled
# weight decay and step 3 = 15. SGD with momentum (PyTorch torch.optim.SGD, dampening 0): weight
# decay 2, momentum 2, step 2 = 6; plain SGD with weight decay: 4.
OPTIMIZERS: dict[str, dict[str, float]] = {
    "adamw": dict(flops_per_param=15, n_moments=2),
    "sgd_momentum": dict(flops_per_param=6, n_moments=1),
    "sgd": dict(flops_per_param=4, n_moments=0),
}

# Attention-core backward / forward FLOP ratio: a plain backward runs 4 GEMMs (dQ, dK, dV, dP) =
# 2 x forward; FlashAttention also recomputes Q K^T in the backward, 2.5 x forward
# (Dao-AILab/flash-attention, benchmarks/benchmark_flash_attention.py).
ATTENTION_BACKWARD_FACTOR: dict[str, float] = {"standard": 2.0, "flash": 2.5}


def roofline_time(flops, bytes_moved, peak_flops_per_s, efficiency, memory_bandwidth):
    r"""Roofline time of a kernel: the larger of its compute time and its memory time.

    .. math:: T = \max\left(\frac{F}{\eta\,P},\ \frac{Q}{B_{mem}}\right)

    flops F (FLOP), bytes_moved Q (B, to and from device memory), peak_flops_per_s P (FLOP/s),
    efficiency eta (1, achieved fraction of peak, e.g. a measured GEMM efficiency),
    memory_bandwidth B_mem (B/s, counting reads plus writes). Assumes compute and memory traffic
    overlap perfectly, so the result is a lower bound on the kernel time.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009, Section 2.

    >>> roofline_time(flops=1e12, bytes_moved=1e9, peak_flops_per_s=1e15, efficiency=0.5,
    ...               memory_bandwidth=2e12)
    0.002
    """
    return maximum(flops / (peak_flops_per_s * efficiency), bytes_moved / memory_bandwidth)


def arithmetic_intensity(flops, bytes_moved):
    r"""Arithmetic (operational) intensity: FLOPs per byte of memory traffic.

    .. math:: I = F / Q

    flops F (FLOP), bytes_moved Q (B). Result in FLOP/B.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009, Section 2.

    >>> arithmetic_intensity(flops=2 * 4096**3, bytes_moved=3 * 2 * 4096**2)  # doctest: +ELLIPSIS
    1365.33...
    """
    return flops / bytes_moved


def ridge_point(peak_flops_per_s, memory_bandwidth):
    r"""Ridge point of the roofline: the intensity above which a kernel is compute-bound.

    .. math:: I^* = P / B_{mem}

    peak_flops_per_s P (FLOP/s; pass peak x efficiency for the attainable ridge),
    memory_bandwidth B_mem (B/s). Result in FLOP/B.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009, Section 2.

    >>> ridge_point(peak_flops_per_s=989e12, memory_bandwidth=3.35e12)  # doctest: +ELLIPSIS
    295.2...
    """
    return peak_flops_per_s / memory_bandwidth


def linear_forward_flops(n_tokens, n_in_features, n_out_features):
    r"""Forward FLOPs of a linear layer (a GEMM): Y[m, n] = X[m, k] W[k, n].

    .. math:: F = 2\,m\,k\,n

    n_tokens m (1, rows: tokens or samples), n_in_features k (1), n_out_features n (1).
    One multiply-add = 2 FLOP; the bias add (m n) is left out. The same count holds for the
    dgrad GEMM dX = dY W^T and the wgrad GEMM dW = X^T dY.
    Source: Narayanan et al., SC'21, Appendix ("2mkn FLOPs").

    >>> linear_forward_flops(n_tokens=8192, n_in_features=768, n_out_features=3072)
    38654705664
    """
    return 2 * n_tokens * n_in_features * n_out_features


def linear_backward_flops(n_tokens, n_in_features, n_out_features):
    r"""Backward FLOPs of a linear layer: activation gradient (dgrad) + weight gradient (wgrad).

    .. math:: F = \underbrace{2mkn}_{dX = dY\,W^T} + \underbrace{2mkn}_{dW = X^T dY} = 4\,m\,k\,n

    Parameters as in :func:`linear_forward_flops`. The first layer of a network needs no dgrad;
    the caller drops it there. Source: Narayanan et al., SC'21, Appendix (backward = 2 x forward).

    >>> linear_backward_flops(n_tokens=8192, n_in_features=768, n_out_features=3072)
    77309411328
    """
    return 4 * n_tokens * n_in_features * n_out_features


def conv2d_output_extent(in_extent, kernel_extent, stride, padding, dilation):
    r"""Output height (or width) of a 2-D convolution or pooling window.

    .. math:: H_{out} = \left\lfloor \frac{H_{in} + 2P - D\,(K - 1) - 1}{S} \right\rfloor + 1

    in_extent H_in (1, pixels), kernel_extent K (1), stride S (1), padding P (1, each side),
    dilation D (1; 1 for an ordinary convolution). Call once for height and once for width.
    Source: PyTorch documentation of torch.nn.Conv2d (shape formula).

    >>> conv2d_output_extent(in_extent=224, kernel_extent=7, stride=2, padding=3, dilation=1)
    112
    """
    return floor((in_extent + 2 * padding - dilation * (kernel_extent - 1) - 1) / stride) + 1


def conv2d_forward_flops(batch_size, out_height, out_width, n_in_channels, n_out_channels,
                         kernel_height, kernel_width, n_groups):
    r"""Forward FLOPs of a 2-D convolution (direct method count).

    .. math:: F = 2\,N\,H_{out} W_{out}\,C_{out}\,\frac{C_{in}}{G}\,K_h K_w

    batch_size N (1, images), out_height / out_width (1, from :func:`conv2d_output_extent`),
    n_in_channels C_in (1), n_out_channels C_out (1), kernel_height K_h, kernel_width K_w (1),
    n_groups G (1; 1 = dense, C_in = depthwise). One multiply-add = 2 FLOP; bias left out.
    Algorithms such as Winograd or FFT do fewer arithmetic operations; this is the model count.
    Source: the convolution definition; He et al. 2016 (ResNet, Table 1) count multiply-adds.

    >>> conv2d_forward_flops(batch_size=1, out_height=112, out_width=112, n_in_channels=3,
    ...                      n_out_channels=64, kernel_height=7, kernel_width=7, n_groups=1)
    236027904.0
    """
    return (2 * batch_size * out_height * out_width * n_out_channels * n_in_channels / n_groups
            * kernel_height * kernel_width)


def conv2d_backward_flops(batch_size, out_height, out_width, n_in_channels, n_out_channels,
                          kernel_height, kernel_width, n_groups):
    r"""Backward FLOPs of a 2-D convolution: input gradient (dgrad) + weight gradient (wgrad).

    .. math:: F = 2 \times 2\,N\,H_{out} W_{out}\,C_{out}\,\frac{C_{in}}{G}\,K_h K_w

    Parameters as in :func:`conv2d_forward_flops`. Each gradient pairs every output-gradient
    element with every kernel tap once, the same multiply-add count as the forward (a transposed
    convolution for dgrad, a correlation of input and output gradient for wgrad).
    Source: the convolution definition (backward = 2 x forward, as for any matmul-like layer).

    >>> conv2d_backward_flops(batch_size=1, out_height=112, out_width=112, n_in_channels=3,
    ...                       n_out_channels=64, kernel_height=7, kernel_width=7, n_groups=1)
    472055808.0
    """
    return 2 * conv2d_forward_flops(batch_size, out_height, out_width, n_in_channels,
                                    n_out_channels, kernel_height, kernel_width, n_groups)


def attention_qkv_flops(n_tokens, hidden_size, n_heads, n_kv_heads, head_dim):
    r"""Forward FLOPs of the Q, K and V projections, with grouped-query attention.

    .. math:: F = 2\,m\,h\,(a + 2 a_{kv})\,d

    n_tokens m (1, b s), hidden_size h (1), n_heads a (1, query heads), n_kv_heads a_kv (1;
    = a for multi-head, 1 for multi-query attention), head_dim d (1). GQA shrinks only these K/V
    projections; the score and AV FLOPs (:func:`attention_core_flops`) depend on the query heads.
    The output projection is ``linear_forward_flops(m, a d, h)``. Source: Narayanan et al., SC'21,
    Appendix (6 B s h^2 for a = a_kv, a d = h); Ainslie et al. 2023 (GQA).

    >>> attention_qkv_flops(n_tokens=4096, hidden_size=4096, n_heads=32, n_kv_heads=8, head_dim=128)
    206158430208
    """
    return 2 * n_tokens * hidden_size * (n_heads + 2 * n_kv_heads) * head_dim


def attention_core_flops(batch_size, seq_len, n_heads, head_dim, causal_fraction):
    r"""Forward FLOPs of the two attention matmuls: scores Q K^T and the weighted sum A V.

    .. math:: F = c\,(2\,b\,s^2\,a\,d + 2\,b\,s^2\,a\,d) = 4\,c\,b\,s^2\,h_a, \quad h_a = a\,d

    batch_size b (1, sequences), seq_len s (1), n_heads a (1, query heads), head_dim d (1),
    causal_fraction c (1): the computed fraction of the s x s score matrix — 1 to count all of it
    (Narayanan et al. and Korthikanti et al. count full s^2 even for causal GPT models), 0.5 for a
    causal kernel that skips the masked half (FlashAttention's convention; exactly (s+1)/(2s)).
    Backward = ATTENTION_BACKWARD_FACTOR x forward. Softmax: :func:`attention_softmax_flops`.
    Source: Narayanan et al., SC'21, Appendix (2 B s^2 h each); Dao-AILab/flash-attention
    benchmarks/benchmark_flash_attention.py (4 s^2 a d, halved when causal).

    >>> attention_core_flops(batch_size=8, seq_len=1024, n_heads=16, head_dim=64, causal_fraction=0.5)
    17179869184.0
    """
    return 4 * causal_fraction * batch_size * seq_len**2 * n_heads * head_dim


def attention_softmax_flops(batch_size, seq_len, n_heads, causal_fraction):
    r"""Forward FLOPs of the attention softmax over the score matrix.

    .. math:: F = 3\,c\,b\,a\,s^2

    batch_size b (1), seq_len s (1), n_heads a (1), causal_fraction c (1, see
    :func:`attention_core_flops`). Counts 3 FLOP per score element (max-subtract, exp, normalise);
    scaling by 1/sqrt(d) and masking are left out; Megatron's counts omit the softmax entirely.
    Source: Hoffmann et al. 2022 (Chinchilla), Appendix F ("Softmax: 3 x num_heads x seq_len x
    seq_len").

    >>> attention_softmax_flops(batch_size=1, seq_len=2048, n_heads=32, causal_fraction=1)
    402653184
    """
    return 3 * causal_fraction * batch_size * n_heads * seq_len**2


def pointwise_flops(n_elements, flops_per_element):
    r"""FLOPs of a pointwise (elementwise or row-normalisation) op.

    .. math:: F = N\,f

    n_elements N (1, e.g. tokens x hidden), flops_per_element f (FLOP, from POINTWISE_OPS, e.g.
    ``POINTWISE_OPS["layernorm"]["fwd_flops"]`` = 7). Source: counts documented at POINTWISE_OPS.

    >>> pointwise_flops(n_elements=8192 * 4096, flops_per_element=7)
    234881024
    """
    return n_elements * flops_per_element


def pointwise_bytes(n_elements, n_accesses, bytes_per_element, mask_bytes_per_element):
    r"""Device-memory traffic of a pointwise op: element reads + writes, plus a dropout mask.

    .. math:: Q = N\,(n_{acc}\,w + w_{mask})

    n_elements N (1), n_accesses n_acc (1, reads + writes per element, from POINTWISE_OPS),
    bytes_per_element w (B, 2 for bf16/fp16), mask_bytes_per_element w_mask (B, 1 for a dropout
    mask, else 0). Assumes one fused kernel with no cache reuse. With
    :func:`roofline_time` this gives the memory-bound time. Source: counts at POINTWISE_OPS.

    >>> pointwise_bytes(n_elements=8192 * 8192, n_accesses=3, bytes_per_element=2,
    ...                 mask_bytes_per_element=0)
    402653184
    """
    return n_elements * (n_accesses * bytes_per_element + mask_bytes_per_element)


def embedding_forward_bytes(n_tokens, hidden_size, bytes_per_element):
    r"""Memory traffic of an embedding lookup (gather); its FLOPs are ~0.

    .. math:: Q = 2\,m\,h\,w

    n_tokens m (1), hidden_size h (1), bytes_per_element w (B). Reads one table row per token and
    writes it out; the token ids (m integers) are left out. Source: the gather's definition.

    >>> embedding_forward_bytes(n_tokens=8192, hidden_size=4096, bytes_per_element=2)
    134217728
    """
    return 2 * n_tokens * hidden_size * bytes_per_element


def lm_head_forward_flops(n_tokens, hidden_size, vocab_size):
    r"""Forward FLOPs of the language-model head (logit layer), hidden -> vocabulary.

    .. math:: F = 2\,m\,h\,V

    n_tokens m (1), hidden_size h (1), vocab_size V (1). Backward = 2 x forward (4 m h V).
    Source: Narayanan et al., SC'21, Appendix ("2BshV in the forward pass").

    >>> lm_head_forward_flops(n_tokens=2048, hidden_size=12288, vocab_size=51200)
    2576980377600
    """
    return 2 * n_tokens * hidden_size * vocab_size


def optimizer_update_flops(n_params, flops_per_param):
    r"""FLOPs of one optimizer step.

    .. math:: F = \Psi\,f

    n_params Psi (1, parameters this device updates), flops_per_param f (FLOP, from OPTIMIZERS:
    15 for AdamW, 6 for SGD with momentum). Source: counts documented at OPTIMIZERS.

    >>> optimizer_update_flops(n_params=1e9, flops_per_param=15)
    15000000000.0
    """
    return n_params * flops_per_param


def optimizer_update_bytes(n_params, master_bytes_per_param, grad_bytes_per_param,
                           moment_bytes_per_param, n_moments, weight_bytes_per_param):
    r"""Device-memory traffic of one fused optimizer step (AdamW, SGD with momentum, SGD).

    .. math:: Q = \Psi\,(2\,w_{master} + w_{grad} + 2\,n_{mom}\,w_{mom} + w_{weight})

    n_params Psi (1), master_bytes_per_param w_master (B, the weight copy the optimizer updates:
    read + write; 4 for fp32), grad_bytes_per_param w_grad (B, read once), moment_bytes_per_param
    w_mom (B, each moment read + written; 4), n_moments n_mom (1, 2 for AdamW, 1 for momentum),
    weight_bytes_per_param w_weight (B, the separate low-precision model copy written after the
    step: 2 for bf16 mixed precision, 0 when the model trains in fp32 and the master is the model).
    fp32 AdamW: 2*4 + 4 + 4*4 + 0 = 28 B/param. Assumes one fused (multi-tensor) kernel; a
    per-op "foreach" implementation re-reads intermediates (~92 B/param measured on H100,
    perfmodel/data/validation/h100/micro2.csv). Source: AdamW, Loshchilov & Hutter 2019, Alg. 2.

    >>> optimizer_update_bytes(n_params=1e9, master_bytes_per_param=4, grad_bytes_per_param=4,
    ...                        moment_bytes_per_param=4, n_moments=2, weight_bytes_per_param=0)
    28000000000.0
    """
    return n_params * (2 * master_bytes_per_param + grad_bytes_per_param
                       + 2 * n_moments * moment_bytes_per_param + weight_bytes_per_param)
