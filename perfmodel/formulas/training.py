r"""Whole-model training FLOPs and MFU: one transformer layer, one iteration, 6 N T.

Covers the GEMM FLOPs of one GPT transformer layer, the FLOPs of one training iteration with full
activation recomputation (Narayanan et al. SC'21 eq. 3) and without it (Korthikanti et al. 2022
App. A eq. 7, the FLOPs that MFU counts), the dense 6 N T rule (Kaplan et al. 2020) and model FLOPs
utilisation. The per-operation counts these totals are made of (linear, attention, LM head) and
the roofline that times them are in :mod:`perfmodel.formulas.compute`.

Counting convention as in :mod:`perfmodel.formulas.compute`: one multiply-add is 2 FLOP, and a
matmul's backward (dgrad + wgrad) is 2 x its forward.

Sources: D. Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters
Using Megatron-LM", SC'21 (eq. 3 and Appendix); V. Korthikanti et al., "Reducing Activation
Recomputation in Large Transformer Models", MLSys 2023 (Appendix A, Section 6.3); J. Kaplan et
al., "Scaling Laws for Neural Language Models", 2020 (Section 2.1); A. Chowdhery et al., "PaLM:
Scaling Language Modeling with Pathways", 2022 (MFU).
"""

from __future__ import annotations


def megatron_layer_forward_flops(batch_size, seq_len, hidden_size):
    r"""Forward FLOPs of one GPT transformer layer (4h MLP, multi-head attention), GEMMs only.

    .. math:: F = 24\,b\,s\,h^2 + 4\,b\,s^2\,h

    batch_size b (1), seq_len s (1), hidden_size h (1). QKV 6bsh^2, scores 2bs^2h, AV 2bs^2h,
    output projection 2bsh^2, MLP 16bsh^2; full s^2 (no causal halving), no softmax or norms.
    Source: Narayanan et al., SC'21, Appendix; Korthikanti et al. 2022, Appendix A.

    >>> megatron_layer_forward_flops(batch_size=1, seq_len=2048, hidden_size=12288)
    7627861917696
    """
    return 24 * batch_size * seq_len * hidden_size**2 + 4 * batch_size * seq_len**2 * hidden_size


def megatron_training_flops(batch_size, seq_len, n_layers, hidden_size, vocab_size):
    r"""FLOPs of one training iteration of a GPT model with full activation recomputation.

    .. math:: F = 96\,B\,s\,l\,h^2 \left(1 + \frac{s}{6h} + \frac{V}{16\,l\,h}\right)

    batch_size B (1, global batch in sequences), seq_len s (1), n_layers l (1), hidden_size h
    (1), vocab_size V (1). Each layer runs forward, recompute-forward and a 2x backward
    (4 x :func:`megatron_layer_forward_flops`); the logit layer runs 6BshV (not recomputed).
    Source: Narayanan et al., SC'21, eq. (3) and Appendix. Without recomputation use
    :func:`megatron_model_flops`.

    >>> megatron_training_flops(batch_size=1536, seq_len=2048, n_layers=96, hidden_size=12288,
    ...                         vocab_size=51200)  # doctest: +ELLIPSIS
    4.5109...e+18
    """
    B, s, l, h, V = batch_size, seq_len, n_layers, hidden_size, vocab_size
    return 96 * B * s * l * h**2 * (1 + s / (6 * h) + V / (16 * l * h))


def megatron_model_flops(batch_size, seq_len, n_layers, hidden_size, vocab_size):
    r"""Model FLOPs of one GPT training iteration (forward + backward, no recomputation).

    .. math:: F = 72\,B\,L\,s\,h^2 \left(1 + \frac{s}{6h} + \frac{v}{12\,h\,L}\right)

    Parameters as in :func:`megatron_training_flops`. These are the FLOPs that MFU counts. Selective
    recomputation re-runs Q K^T and A V, n_layers x ``attention_core_flops`` = 4BLs^2h more, as the
    paper's text says; its printed eq. (8), 72BLsh^2(1 + s/3h + v/12hL), adds 12BLs^2h instead, and
    its Table 5 HFU column follows eq. (8). Source: Korthikanti et al. 2022, Appendix A, eq. (7).

    >>> megatron_model_flops(batch_size=64, seq_len=2048, n_layers=96, hidden_size=12288,
    ...                      vocab_size=51200)  # doctest: +ELLIPSIS
    1.4109...e+17
    """
    B, s, L, h, v = batch_size, seq_len, n_layers, hidden_size, vocab_size
    return 72 * B * L * s * h**2 * (1 + s / (6 * h) + v / (12 * h * L))


def dense_training_flops(n_params, n_tokens):
    r"""Training FLOPs of a dense model by the 6 N T rule.

    .. math:: C = 6\,N\,T

    n_params N (1, non-embedding parameters), n_tokens T (1, tokens trained on). 2 FLOP per
    parameter per token forward, 4 backward; attention-score FLOPs (~ s/(6h) relative) ignored.
    Source: Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Section 2.1.

    >>> dense_training_flops(n_params=175e9, n_tokens=300e9)
    3.15e+23
    """
    return 6 * n_params * n_tokens


def mfu(model_flops_per_step, step_time, n_devices, peak_flops_per_s):
    r"""Model FLOPs utilisation: achieved model FLOP/s over the devices' peak FLOP/s.

    .. math:: \mathrm{MFU} = \frac{F_{model}}{T_{step}\; n_{dev}\; P}

    model_flops_per_step F_model (FLOP, e.g. :func:`megatron_model_flops`; recomputation not
    counted), step_time T_step (s), n_devices n_dev (1), peak_flops_per_s P (FLOP/s per device,
    dense, in the training dtype). Source: Korthikanti et al. 2022, Section 6.3 (MFU and HFU,
    defined after Chowdhery et al. 2022, PaLM).

    >>> mfu(model_flops_per_step=1.4109e17, step_time=13.75, n_devices=64,
    ...     peak_flops_per_s=312e12)  # doctest: +ELLIPSIS
    0.5138...
    """
    return model_flops_per_step / (step_time * n_devices * peak_flops_per_s)
