r"""Memory: bytes per device of model states (weights, gradients, optimizer) and activations.

Model states follow ZeRO (Rajbhandari et al., SC'20, Sections 3.1 and 5, Figure 1): mixed-precision
Adam keeps 2 B fp16/bf16 weights + 2 B gradients + K = 12 B optimizer state (fp32 master weights,
momentum, variance) per parameter, and ZeRO stages 1/2/3 partition the optimizer state / + the
gradients / + the weights over the N_d data-parallel ranks. The byte widths are parameters, so any
dtype mix works; MODEL_STATE_BYTES_PER_PARAM lists the common ones.

Activations follow Korthikanti et al., "Reducing Activation Recomputation in Large Transformer
Models", MLSys 2023 (arXiv:2205.05198), Section 4 and Table 2: bytes stored per transformer layer
for the backward pass, by parallelism and recomputation mode, plus the pipeline (Section 4.2.3) and
embedding / output-layer (Section 4.3) terms. Paper letters: s sequence length, b micro-batch size,
h hidden size, a attention heads, t tensor-parallel size, p pipeline-parallel size, L layers,
v vocabulary size. Their assumptions: GPT layer (LayerNorm, multi-head self-attention with a = heads
and the s x s score matrix materialised, 4h GeLU MLP, dropout after attention and MLP); activations
in 16-bit (2 B), dropout masks 1 B per element; LayerNorm statistics (sb each) neglected. Grouped-
query attention only shrinks the stored K and V (4 of the 34 sbh), which these formulas ignore;
FlashAttention stores no score matrix, which removes the 5as/h term as selective recomputation does.
The step model counts the same tensors one by one with the model's real widths (GQA, head width,
gated MLP) in :mod:`perfmodel.formulas.activations`; these closed forms are its checks.
"""

from __future__ import annotations

from perfmodel.formulas._backend import minimum

# Bytes per parameter of model states: (weights, gradients, optimizer state K). ZeRO (Section 3.1):
# mixed-precision Adam 2 + 2 + 12. Megatron-LM README ("Distributed Optimizer"): bf16 params with
# fp32 grads 2 + 4 + 12 = 18; fp16 params and grads 2 + 2 + 16 = 20 (the optimizer also keeps fp32
# main grads); fp32 params and grads 4 + 4 + 8 = 16. SGD with momentum keeps one moment, not two.
MODEL_STATE_BYTES_PER_PARAM: dict[str, dict[str, float]] = {
    "adamw_mixed": dict(weight=2, grad=2, optimizer=12),
    "adamw_mixed_fp32_grads": dict(weight=2, grad=4, optimizer=12),
    "adamw_fp16_fp32_main_grads": dict(weight=2, grad=2, optimizer=16),
    "adamw_fp32": dict(weight=4, grad=4, optimizer=8),
    "sgd_momentum_mixed": dict(weight=2, grad=2, optimizer=8),
    "sgd_momentum_fp32": dict(weight=4, grad=4, optimizer=4),
}


def weight_bytes(n_params, weight_bytes_per_param):
    r"""Bytes of the model's weights (the copy the forward and backward use).

    .. math:: M_w = \Psi\,w

    n_params Psi (1, parameters held by this device), weight_bytes_per_param w (B, 2 for bf16).
    Source: Rajbhandari et al. (ZeRO), SC'20, Section 3.1 (2 Psi for fp16 weights).

    >>> weight_bytes(n_params=7.5e9, weight_bytes_per_param=2)
    15000000000.0
    """
    return n_params * weight_bytes_per_param


def gradient_bytes(n_params, grad_bytes_per_param):
    r"""Bytes of the gradients.

    .. math:: M_g = \Psi\,w_g

    n_params Psi (1), grad_bytes_per_param w_g (B, 2 for fp16/bf16, 4 for fp32 accumulation).
    Source: Rajbhandari et al. (ZeRO), SC'20, Section 3.1 (2 Psi for fp16 gradients).

    >>> gradient_bytes(n_params=7.5e9, grad_bytes_per_param=2)
    15000000000.0
    """
    return n_params * grad_bytes_per_param


def optimizer_state_bytes(n_params, master_bytes_per_param, moment_bytes_per_param, n_moments):
    r"""Bytes of the optimizer state: master weights and moments (ZeRO's K Psi).

    .. math:: M_{opt} = K\,\Psi, \quad K = w_{master} + n_{mom}\,w_{mom}

    n_params Psi (1), master_bytes_per_param w_master (B, 4 for the fp32 master copy of mixed
    precision, 0 in fp32 training where the weights are the master), moment_bytes_per_param w_mom
    (B, 4), n_moments n_mom (1, 2 for Adam/AdamW, 1 for SGD with momentum). Mixed-precision Adam:
    K = 4 + 2 x 4 = 12. Source: Rajbhandari et al. (ZeRO), SC'20, Section 3.1.

    >>> optimizer_state_bytes(n_params=7.5e9, master_bytes_per_param=4, moment_bytes_per_param=4,
    ...                       n_moments=2)
    90000000000.0
    """
    return n_params * (master_bytes_per_param + n_moments * moment_bytes_per_param)


def model_state_bytes(n_params, weight_bytes_per_param, grad_bytes_per_param,
                      optimizer_bytes_per_param):
    r"""Model-state bytes per device with plain data parallelism (ZeRO baseline, no partitioning).

    .. math:: M = (w + w_g + K)\,\Psi

    n_params Psi (1), weight_bytes_per_param w (B), grad_bytes_per_param w_g (B),
    optimizer_bytes_per_param K (B; 12 for mixed-precision Adam). Mixed-precision Adam:
    16 Psi. Source: Rajbhandari et al. (ZeRO), SC'20, Figure 1 ("Baseline: (2 + 2 + K) Psi").

    >>> model_state_bytes(n_params=7.5e9, weight_bytes_per_param=2, grad_bytes_per_param=2,
    ...                   optimizer_bytes_per_param=12)
    120000000000.0
    """
    return (weight_bytes_per_param + grad_bytes_per_param + optimizer_bytes_per_param) * n_params


def zero1_model_state_bytes(n_params, weight_bytes_per_param, grad_bytes_per_param,
                            optimizer_bytes_per_param, dp):
    r"""Model-state bytes per device with ZeRO stage 1 (optimizer state partitioned, P_os).

    .. math:: M = (w + w_g)\,\Psi + \frac{K\,\Psi}{N_d}

    Parameters as in :func:`model_state_bytes`; dp N_d (1, data-parallel ranks sharing the
    partition). Also Megatron's distributed optimizer ("6 + 12/d" B/param for bf16 weights and
    fp32 grads). Source: Rajbhandari et al. (ZeRO), SC'20, Figure 1 and Section 5.1.

    >>> zero1_model_state_bytes(n_params=7.5e9, weight_bytes_per_param=2, grad_bytes_per_param=2,
    ...                         optimizer_bytes_per_param=12, dp=64)
    31406250000.0
    """
    return ((weight_bytes_per_param + grad_bytes_per_param) * n_params
            + optimizer_bytes_per_param * n_params / dp)


def zero2_model_state_bytes(n_params, weight_bytes_per_param, grad_bytes_per_param,
                            optimizer_bytes_per_param, dp):
    r"""Model-state bytes per device with ZeRO stage 2 (optimizer state + gradients, P_os+g).

    .. math:: M = w\,\Psi + \frac{(w_g + K)\,\Psi}{N_d}

    Parameters as in :func:`zero1_model_state_bytes`. Source: Rajbhandari et al. (ZeRO), SC'20,
    Figure 1 and Section 5.2.

    >>> zero2_model_state_bytes(n_params=7.5e9, weight_bytes_per_param=2, grad_bytes_per_param=2,
    ...                         optimizer_bytes_per_param=12, dp=64)
    16640625000.0
    """
    return (weight_bytes_per_param * n_params
            + (grad_bytes_per_param + optimizer_bytes_per_param) * n_params / dp)


def zero3_model_state_bytes(n_params, weight_bytes_per_param, grad_bytes_per_param,
                            optimizer_bytes_per_param, dp):
    r"""Model-state bytes per device with ZeRO stage 3 (everything partitioned, P_os+g+p).

    .. math:: M = \frac{(w + w_g + K)\,\Psi}{N_d}

    Parameters as in :func:`zero1_model_state_bytes`. Excludes the temporarily gathered weights
    of the layer being computed. Source: Rajbhandari et al. (ZeRO), SC'20, Figure 1, Section 5.3.

    >>> zero3_model_state_bytes(n_params=7.5e9, weight_bytes_per_param=2, grad_bytes_per_param=2,
    ...                         optimizer_bytes_per_param=12, dp=64)
    1875000000.0
    """
    return (weight_bytes_per_param + grad_bytes_per_param + optimizer_bytes_per_param) * n_params / dp


def activation_bytes_per_layer(seq_len, batch_size, hidden_size, n_heads):
    r"""Activation bytes stored by one transformer layer, no model parallelism.

    .. math:: M = s\,b\,h\left(34 + 5\,\frac{a\,s}{h}\right)

    seq_len s (1), batch_size b (1, micro-batch in sequences), hidden_size h (1), n_heads a (1).
    Attention 11sbh + 5as^2b, MLP 19sbh, two LayerNorms 4sbh (assumptions: module docstring).
    Source: Korthikanti et al. 2022, Section 4.1, eq. (1); Table 2 row "no parallelism".

    >>> activation_bytes_per_layer(seq_len=2048, batch_size=1, hidden_size=12288, n_heads=96)
    2868903936.0
    """
    s, b, h, a = seq_len, batch_size, hidden_size, n_heads
    return s * b * h * (34 + 5 * a * s / h)


def activation_bytes_per_layer_tp(seq_len, batch_size, hidden_size, n_heads, tp):
    r"""Activation bytes per layer per device with t-way tensor parallelism (no sequence parallel).

    .. math:: M = s\,b\,h\left(10 + \frac{24}{t} + 5\,\frac{a\,s}{h\,t}\right)

    Parameters as in :func:`activation_bytes_per_layer`; tp t (1, tensor-parallel size). The
    10sbh (LayerNorm inputs, dropout masks and inputs) is replicated on every TP rank.
    Source: Korthikanti et al. 2022, Section 4.2.1, eq. (2); Table 2 "tensor parallel (baseline)".

    >>> activation_bytes_per_layer_tp(seq_len=2048, batch_size=1, hidden_size=12288, n_heads=96, tp=8)
    578813952.0
    """
    s, b, h, a, t = seq_len, batch_size, hidden_size, n_heads, tp
    return s * b * h * (10 + 24 / t + 5 * a * s / (h * t))


def activation_bytes_per_layer_tp_sp(seq_len, batch_size, hidden_size, n_heads, tp):
    r"""Activation bytes per layer per device with tensor + sequence parallelism.

    .. math:: M = \frac{s\,b\,h}{t}\left(34 + 5\,\frac{a\,s}{h}\right)

    Parameters as in :func:`activation_bytes_per_layer_tp`. Sequence parallelism splits the
    LayerNorm / dropout regions along s, so everything is divided by t.
    Source: Korthikanti et al. 2022, Section 4.2.2, eq. (4); Table 2 "tensor + sequence parallel".

    >>> activation_bytes_per_layer_tp_sp(seq_len=2048, batch_size=1, hidden_size=12288, n_heads=96,
    ...                                  tp=8)
    358612992.0
    """
    s, b, h, a, t = seq_len, batch_size, hidden_size, n_heads, tp
    return s * b * h / t * (34 + 5 * a * s / h)


def activation_bytes_per_layer_tp_selective(seq_len, batch_size, hidden_size, tp):
    r"""Activation bytes per layer per device: tensor parallel + selective recomputation.

    .. math:: M = s\,b\,h\left(10 + \frac{24}{t}\right)

    Parameters as in :func:`activation_bytes_per_layer_tp`. Selective recomputation drops the
    5as^2b/t of Q K^T, softmax, softmax dropout and attention over V (recomputed in backward).
    Source: Korthikanti et al. 2022, Section 5; Table 2 "tensor parallel + selective ...".

    >>> activation_bytes_per_layer_tp_selective(seq_len=2048, batch_size=1, hidden_size=12288, tp=8)
    327155712.0
    """
    s, b, h, t = seq_len, batch_size, hidden_size, tp
    return s * b * h * (10 + 24 / t)


def activation_bytes_per_layer_tp_sp_selective(seq_len, batch_size, hidden_size, tp):
    r"""Activation bytes per layer per device: tensor + sequence parallel + selective recompute.

    .. math:: M = 34\,\frac{s\,b\,h}{t}

    Parameters as in :func:`activation_bytes_per_layer_tp`. Independent of the number of heads.
    Source: Korthikanti et al. 2022, Section 5, eq. (6) per layer; Table 2 last-but-one row.

    >>> activation_bytes_per_layer_tp_sp_selective(seq_len=2048, batch_size=1, hidden_size=12288,
    ...                                            tp=8)
    106954752.0
    """
    return 34 * seq_len * batch_size * hidden_size / tp


def activation_bytes_per_layer_full_recompute(seq_len, batch_size, hidden_size):
    r"""Activation bytes per layer with full recomputation: only the 16-bit layer input is kept.

    .. math:: M = 2\,s\,b\,h

    seq_len s (1), batch_size b (1), hidden_size h (1). Replicated on every TP rank, as the
    paper assumes; the layer being recomputed needs its full activations transiently (add one
    layer of :func:`activation_bytes_per_layer_tp` at peak). Source: Korthikanti et al. 2022,
    Section 5 and Table 2 "full activation recomputation".

    >>> activation_bytes_per_layer_full_recompute(seq_len=2048, batch_size=1, hidden_size=12288)
    50331648
    """
    return 2 * seq_len * batch_size * hidden_size


def activation_bytes_per_layer_full_recompute_sp(seq_len, batch_size, hidden_size, tp):
    r"""Activation bytes per layer with full recomputation when the checkpoint is sequence-split.

    .. math:: M = \frac{2\,s\,b\,h}{t}

    Parameters as in :func:`activation_bytes_per_layer_tp`. With sequence parallelism the layer
    input already lives split along s on the TP ranks; Korthikanti et al. note this 2sbhL/t
    (Section 5) but, without sequence parallelism, it costs an extra all-gather per layer.
    Source: Korthikanti et al. 2022, Section 5.

    >>> activation_bytes_per_layer_full_recompute_sp(seq_len=2048, batch_size=1, hidden_size=12288,
    ...                                              tp=8)
    6291456.0
    """
    return 2 * seq_len * batch_size * hidden_size / tp


def pipeline_1f1b_activation_bytes(layer_activation_bytes, n_layers, pp, n_microbatches):
    r"""Activation bytes on the first pipeline stage with the 1F1B schedule (its peak).

    .. math:: M = M_{layer}\,\frac{L}{p}\,\min(p,\ m)

    layer_activation_bytes M_layer (B, one layer, one micro-batch, e.g.
    :func:`activation_bytes_per_layer_tp_sp`), n_layers L (1), pp p (1, pipeline stages),
    n_microbatches m (1, per step). The first stage holds the activations of p micro-batches in
    flight (fewer if m < p), each for its L/p layers: L layers' worth, whatever p.
    Excludes the embedding / output terms (:func:`embedding_dropout_activation_bytes`).
    Source: Korthikanti et al. 2022, Section 4.2.3, eq. (5); Narayanan et al., SC'21, Section 2.2.

    >>> pipeline_1f1b_activation_bytes(layer_activation_bytes=106954752, n_layers=96, pp=8,
    ...                                n_microbatches=64)
    10267656192.0
    """
    return layer_activation_bytes * n_layers / pp * minimum(pp, n_microbatches)


def interleaved_activation_factor(pp, n_virtual_stages):
    r"""Extra activation memory of Megatron's interleaved 1F1B schedule, relative to 1F1B.

    .. math:: f = 1 + \frac{p - 1}{p\,m}

    pp p (1, pipeline stages), n_virtual_stages m (1, model chunks per device, >= 2 for the
    interleaved schedule; 1F1B itself has f = 1, not this formula at m = 1). The first stage
    holds L (1 + (p-1)/(pm)) layers of activations; multiply the 1F1B result by f.
    Source: Korthikanti et al. 2022, Section 4.2.3 (m = "number of interleaving stages");
    the schedule is Narayanan et al., SC'21, Section 2.2.2 (there v chunks).

    >>> interleaved_activation_factor(pp=35, n_virtual_stages=3)  # doctest: +ELLIPSIS
    1.3238...
    """
    return 1 + (pp - 1) / (pp * n_virtual_stages)


def gpipe_activation_bytes(layer_activation_bytes, n_layers, pp, n_microbatches):
    r"""Activation bytes per stage with the GPipe schedule (all forwards before any backward).

    .. math:: M = M_{layer}\,\frac{L}{p}\,m

    Parameters as in :func:`pipeline_1f1b_activation_bytes`. Every stage keeps all m
    micro-batches until the backward starts. Source: Huang et al. 2019 (GPipe);
    Narayanan et al., SC'21, Section 2.2.1 (1F1B bounds in-flight micro-batches to p instead).

    >>> gpipe_activation_bytes(layer_activation_bytes=106954752, n_layers=96, pp=8,
    ...                        n_microbatches=64)
    82141249536.0
    """
    return layer_activation_bytes * n_layers / pp * n_microbatches


def embedding_dropout_activation_bytes(seq_len, batch_size, hidden_size, tp, pp):
    r"""Activation bytes of the input-embedding dropout on the first pipeline stage.

    .. math:: M = \frac{s\,b\,h\,p}{t}

    seq_len s, batch_size b, hidden_size h, tp t, pp p (all 1). A 1-byte mask per element,
    sequence-parallel, for the p micro-batches in flight on the first stage.
    Source: Korthikanti et al. 2022, Section 4.3.

    >>> embedding_dropout_activation_bytes(seq_len=2048, batch_size=1, hidden_size=12288, tp=8, pp=8)
    25165824.0
    """
    return seq_len * batch_size * hidden_size * pp / tp


def output_layer_activation_bytes(seq_len, batch_size, hidden_size, vocab_size, tp):
    r"""Activation bytes of the final LayerNorm, LM head input and fp32 logits (cross-entropy).

    .. math:: M = \frac{2sbh + 2sbh + 4sbv}{t} = \frac{4\,s\,b\,h}{t}\left(1 + \frac{v}{h}\right)

    seq_len s, batch_size b, hidden_size h, vocab_size v, tp t (all 1). LayerNorm input and LM
    head input in 16 bits (sequence-parallel), logits in fp32 split over the vocabulary. Held by
    the last stage; Korthikanti count it on the first stage only when p = 1 (delta_{p=1}).
    Source: Korthikanti et al. 2022, Section 4.3.

    >>> output_layer_activation_bytes(seq_len=2048, batch_size=1, hidden_size=12288,
    ...                               vocab_size=51200, tp=8)
    65011712.0
    """
    s, b, h, v, t = seq_len, batch_size, hidden_size, vocab_size, tp
    return 4 * s * b * h / t * (1 + v / h)
