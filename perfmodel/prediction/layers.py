"""Time of one transformer layer (and the embedding / LM head) for one micro-batch on one device.

Each kernel is timed on its own: GEMMs from their shape (m, n, k) by the device's measured GEMM
curve where its spec has one, else by the GEMM shape model (:mod:`perfmodel.formulas.gemm`:
tile and wave quantization over the device's compute units, at its measured maximum achievable
matmul rate or, without one, the datasheet peak as an upper bound); memory-bound kernels
by bytes over memory bandwidth, and every kernel at least the stack's launch overhead (an eager
framework cannot issue kernels faster than its CPU dispatches them). Inputs are plain numbers,
so the same code runs on floats (``predict``) and numpy arrays (sweeps).

FLOP and byte counts come from :mod:`perfmodel.formulas.compute`; see that module for sources.
Letters: b micro-batch, s sequence, h hidden, a heads, g kv-heads, d head dim, f ffn hidden,
V vocab, t tensor-parallel size, e bytes per activation element.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.formulas import compute as cf
from perfmodel.formulas import gemm as gf
from perfmodel.formulas._backend import where
from perfmodel.formulas.collectives import ring_allreduce_time
from perfmodel.frozen import IdentityMemo
from perfmodel.prediction import eager, moe
from perfmodel.prediction.backward_copies import backward_copies_time, bias_grad_time, grad_accumulation_time
from perfmodel.prediction.kernels import gemm_alignment
from perfmodel.prediction.rates import DeviceRates, pass_sums
from perfmodel.prediction.shapes import kv_heads_per_device, mlp_shapes, padded_vocab, qkv_gather_times, role_kernels, tp_allreduces_per_layer

__all__ = ["DeviceRates", "LayerTimes", "layer_times", "linear_shapes", "flash_attention_times", "ring_attention_times", "head_times", "logits_bytes",
           "embedding_times"]


@dataclass(frozen=True)
class LayerTimes:
    """Seconds for one micro-batch through one layer on one device, and its FLOPs."""

    forward: object
    backward: object
    recompute: object
    tp_comm_forward: object
    tp_comm_backward: object
    tp_comm_recompute: object
    memory_bound: object  # part of forward + backward spent in memory-bound kernels
    model_flops: object  # forward + backward FLOPs of the layer (no recompute), full s^2
    gemm_forward: object  # the linear-layer GEMMs of the forward pass (TP collectives can hide under them)
    attention_forward: object = 0.0  # the attention core of the forward (ring-attention exchanges hide under it)
    attention_backward: object = 0.0  # the attention core of the backward
    # expert-parallel all-to-alls of a mixture of experts (prediction.moe), exposed; 0 for dense
    ep_comm_forward: object = 0.0
    ep_comm_backward: object = 0.0
    ep_comm_recompute: object = 0.0
    # (forward, dgrad, wgrad) seconds of each linear GEMM of linear_shapes (the TP overlap's GEMMs,
    # prediction.tp_overlap); empty for a stack timed by its kernel inventory
    linear_gemm_times: tuple = ()


def _role_rows(model) -> dict:
    norm = "rmsnorm" if model.norm == "rmsnorm" else "layernorm"
    act = {"swiglu": "silu_mul", "relu2": "relu2"}.get(model.mlp, "gelu")
    return {"norm": norm, "activation": act, "dropout": "dropout", "residual_add": "residual_add",
            "softmax": "softmax", "rope": "rope"}


def role_elements(model, role, tokens, t, shard=1):
    """Elements a memory-bound kernel of ``role`` runs on in one layer on a rank of ``t``: the MLP
    activation's f / t columns, rope the queries and keys of the rank's heads (after the QKV
    projection), the others the hidden width, on tokens / ``shard`` (sequence parallelism)."""
    if role == "rope":
        return tokens * (model.n_heads + model.n_kv_heads) * model.head_dim / t
    return tokens * model.ffn_hidden / t if role == "activation" else tokens * model.hidden / shard


def _kernel_ops(kernel, rows):
    return tuple(rows[role] for role in kernel)


def _kernel_bytes(kernel, rows, n_elements_of, e, direction):
    """Bytes of one (possibly fused) kernel: fusing k ops saves k-1 write/read round trips."""
    accesses = 0
    mask = 0
    n_el = None
    for role in kernel:
        row = cf.POINTWISE_OPS[rows[role]]
        accesses = accesses + row[f"{direction}_accesses"]
        mask = mask + row[f"{direction}_mask_bytes"]
        n_el = n_elements_of(role)
    accesses = accesses - 2 * (len(kernel) - 1)
    return cf.pointwise_bytes(n_el, accesses, e, mask)


# what one kernel's bytes and rate depend on besides the sizes, per stack object: (accesses, mask
# bytes per element, efficiency) (a predict asks for the same ~30 kernels each time)
_KERNEL_COEFFICIENTS = IdentityMemo(limit=4096)


def _kernel_coefficients(kernel, rows, direction, stack, device_kind=""):
    def compute():
        ops = _kernel_ops(kernel, rows)
        accesses = sum(cf.POINTWISE_OPS[op][f"{direction}_accesses"] for op in ops) - 2 * (len(kernel) - 1)
        mask = sum(cf.POINTWISE_OPS[op][f"{direction}_mask_bytes"] for op in ops)
        return accesses, mask, stack.kernel_efficiency(ops, direction, device_kind)

    # _role_rows varies by model in its norm and activation only
    return _KERNEL_COEFFICIENTS.get(stack, (kernel, rows["norm"], rows["activation"], direction, device_kind), compute)


def _pointwise(kernels, rows, n_elements_of, rates, direction, stack):
    """Seconds of memory-bound ``kernels`` (each a tuple of fused roles): the bytes of
    :func:`_kernel_bytes` at the stack's efficiency of the kernel's slowest op."""
    total = 0.0
    e = rates.bytes_per_element
    for kernel in kernels:
        accesses, mask, eff = _kernel_coefficients(kernel, rows, direction, stack, rates.device_kind)
        bytes_moved = cf.pointwise_bytes(n_elements_of(kernel[-1]), accesses, e, mask)
        total = total + rates.memory(bytes_moved / eff)
    return total


# FP8 cast-transpose: a BF16 tensor read (2 B) and written as FP8 and as its FP8 transpose
# (1 + 1 B), with its amax taken on the way (Transformer Engine cast_transpose; delayed scaling
# keeps the amax history, so the scale needs no extra pass)
FP8_CAST_TRANSPOSE_BYTES = 4
# FP8 transpose of an FP8 tensor: read 1 B, write its transpose 1 B (tex.fp8_transpose)
FP8_TRANSPOSE_OF_FP8_BYTES = 2


def _fp8_casts(rates: DeviceRates, shapes, tokens, h, attn_width, ffn_width):
    """(forward, backward) seconds of the FP8 casts around a layer's linear GEMMs, 0 without FP8.

    Forward: the inputs of the attention projection and of the MLP's down projection are cast
    (the QKV and up projections take theirs from the LayerNorm, fused with the cast in TE's
    LayerNormLinear / LayerNormMLP). Backward: every linear layer's output gradient dY is cast
    and transposed for its dgrad and wgrad GEMMs (TE _Linear backward), and the two LayerNorm
    outputs (h wide, on every token the GEMM reads: all of them after a sequence-parallel gather),
    kept in FP8 without their transpose, are transposed for the QKV and up projections' wgrad
    GEMMs (Transformer Engine v1.9-v1.12 layernorm_linear.py / layernorm_mlp.py backward:
    ``ln_out_total_t = tex.fp8_transpose(ln_out_total, ...)``).
    """
    if not rates.fp8_linear:
        return 0.0, 0.0
    fwd = rates.memory(tokens * attn_width * FP8_CAST_TRANSPOSE_BYTES) + rates.memory(
        tokens * ffn_width * FP8_CAST_TRANSPOSE_BYTES)
    bwd = 2 * rates.memory(tokens * h * FP8_TRANSPOSE_OF_FP8_BYTES)
    for m_, _k, n_ in shapes:
        bwd = bwd + rates.memory(m_ * n_ * FP8_CAST_TRANSPOSE_BYTES)
    return fwd, bwd


def flash_attention_times(model, rates: DeviceRates, *, b, s, t, causal=True) -> dict:
    """{"fwd" | "bwd": (seconds, bytes, FLOPs)} of the fused attention kernel on a/t heads (and
    max(a_kv / t, 1) key/value heads, :func:`.shapes.kv_heads_per_device`); a model trained with
    dropout adds its random numbers to the forward (:func:`perfmodel.formulas.gemm.
    attention_dropout_time`, at the device's measured cost, none where not measured)."""
    heads, d, e = model.n_heads / t, model.head_dim, rates.bytes_per_element
    kv_heads = kv_heads_per_device(model.n_kv_heads, t)
    c = 0.5 if causal else 1.0
    flops = cf.attention_core_flops(b, s, heads, d, c)
    sm = cf.attention_softmax_flops(b, s, heads, c)
    bytes_f = gf.flash_attention_forward_bytes(b, s, heads, kv_heads, d, e)
    bytes_b = gf.flash_attention_backward_bytes(b, s, heads, kv_heads, d, e)
    flops_b = cf.ATTENTION_BACKWARD_FACTOR["flash"] * flops
    blocks = gf.attention_key_blocks(s, c, gf.ATTENTION_BLOCK)
    att_fwd = rates.flash_attention(flops, False, bytes_f, sm, blocks)
    if model.attention_dropout:  # a random number per computed score (its backward measured no slower)
        att_fwd = att_fwd + gf.attention_dropout_time(b * heads * s * s * c, rates.attention_dropout_time)
    att_bwd = rates.flash_attention(flops_b, True, bytes_b,
                                    sm * cf.POINTWISE_OPS["softmax"]["bwd_flops"] / cf.POINTWISE_OPS["softmax"]["fwd_flops"],
                                    blocks)
    return {"fwd": (att_fwd, bytes_f, flops), "bwd": (att_bwd, bytes_b, flops_b)}


def linear_shapes(model, tokens, t):
    """(m, k, n) of each forward GEMM of a layer's linear layers (TP-sharded: column-parallel QKV
    and up/gate, row-parallel projection and down)."""
    h, a, d, g = model.hidden, model.n_heads, model.head_dim, model.n_kv_heads
    return [(tokens, h, (a * d + 2 * g * d) / t), (tokens, a * d / t, h)] + mlp_shapes(model, tokens,
                                                                                      model.ffn_hidden, t)


def _role_based_times(model, stack, rates: DeviceRates, *, b, s, t, sp, causal, cp=1):
    """(forward, backward, memory-bound, forward linear GEMMs, selective-recompute, attention
    backward) seconds of a layer, and the (forward, dgrad, wgrad) seconds of each linear GEMM from its GEMMs, attention and the stack's memory-bound kernels by
    role. With context parallelism (``s`` is then the rank's s/cp tokens) the rank's attention is
    cp times that of s/cp tokens (:func:`perfmodel.formulas.context.ring_attention_flops`)."""
    h, a, d, f = model.hidden, model.n_heads, model.head_dim, model.ffn_hidden
    e = rates.bytes_per_element
    tokens = b * s
    rows = _role_rows(model)
    shapes = linear_shapes(model, tokens, t)
    triples = rates.linear_gemm_triples(shapes)  # (forward, dgrad, wgrad) of each
    gemm_fwd, gemm_bwd = pass_sums(triples)
    cast_fwd, cast_bwd = _fp8_casts(rates, shapes, tokens, h, a * d / t, f / t)
    gemm_fwd_kernels = gemm_fwd

    heads = a / t  # attention core on a/t heads
    if stack.attention == "flash":
        attention = ring_attention_times(flash_attention_times(model, rates, b=b, s=s, t=t, causal=causal), cp)
        att_fwd, att_bwd = attention["fwd"][0], attention["bwd"][0]
        score_fwd = 0.0
        score_bwd = 0.0
    else:
        scores = b * heads * s * s
        qk_bytes = scores * e + 2 * tokens * heads * d * e
        # Q K^T: s x s scores over k = d; (probs) V: s x d over k = s; one per sequence and head
        att_fwd = (rates.attention_matmul(s, s, d, b * heads, qk_bytes)
                   + rates.attention_matmul(s, d, s, b * heads, qk_bytes))
        att_bwd = cf.ATTENTION_BACKWARD_FACTOR["standard"] * att_fwd
        n_scores = lambda role: scores  # noqa: E731 - every score kernel runs on the score matrix
        score = role_kernels(stack.score_kernels, model)
        score_fwd = _pointwise(score, rows, n_scores, rates, "fwd", stack)
        score_bwd = _pointwise(score, rows, n_scores, rates, "bwd", stack)
        # context parallelism: the rank's queries against all s keys, cp blocks of (s/cp)^2 scores
        att_fwd, att_bwd, score_fwd, score_bwd = cp * att_fwd, cp * att_bwd, cp * score_fwd, cp * score_bwd

    # memory-bound kernels of the layer (on s/t of the tokens with sequence parallelism)
    shard = t if sp else 1

    def n_elements(role):
        return role_elements(model, role, tokens, t, shard)

    kernels = role_kernels(stack.layer_kernels, model)
    pw_fwd = _pointwise(kernels, rows, n_elements, rates, "fwd", stack)
    pw_bwd = (_pointwise(kernels, rows, n_elements, rates, "bwd", stack)
              + grad_accumulation_time(kernels, tokens * h / shard, rates, stack)
              + bias_grad_time(model, stack, rates, tokens, t, shard))
    forward = gemm_fwd + cast_fwd + att_fwd + score_fwd + pw_fwd
    copies = backward_copies_time(model, stack, rates, tokens, t)
    backward = gemm_bwd + cast_bwd + att_bwd + score_bwd + pw_bwd + copies
    memory_bound = pw_fwd + pw_bwd + score_fwd + score_bwd + cast_fwd + cast_bwd + copies
    return forward, backward, memory_bound, gemm_fwd_kernels, att_fwd + score_fwd, att_bwd + score_bwd, triples


def ring_attention_times(attention: dict, cp) -> dict:
    """:func:`flash_attention_times` of a rank's s/cp tokens as context parallelism runs it: cp
    ring steps, each a kernel of the same work (load-balanced causal attention,
    :func:`perfmodel.formulas.context.ring_attention_flops`), so cp times the seconds, bytes and
    FLOPs (unchanged for cp = 1)."""
    return {k: (cp * v[0], cp * v[1], cp * v[2]) for k, v in attention.items()}


def layer_times(model, stack, rates: DeviceRates, tp_alpha, tp_beta, *, b, s, t, sp, recompute,
                causal=True, cp=1, ep=1, ep_levels=None) -> LayerTimes:
    """Forward, backward and recompute seconds of one layer for one micro-batch of b sequences.

    recompute: "none" | "selective" (attention scores, Korthikanti et al. 2022 Section 5; under a
    stack whose ``selective_recompute`` is ``"dots"`` the whole forward but its weight matmuls) |
    "full" (the whole layer again before its backward). sp: sequence parallelism (pointwise
    kernels on s/t of the sequence; all-gather + reduce-scatter instead of all-reduce). A stack
    with a kernel inventory for the model's family is timed kernel by kernel
    (:mod:`perfmodel.prediction.eager`; sequence parallelism does not change its kernels).
    cp: context parallelism, ``s`` being the rank's s/cp tokens (:func:`ring_attention_times`).
    """
    tokens = b * s
    kernel_causal = causal and stack.causal_skip  # the scores the kernel computes (model FLOPs: ``causal``)
    inventory = eager.inventory_of(stack, model)
    policy = stack.recompute_policy(recompute)
    if inventory is not None:  # the stack's own kernel list
        attention = ring_attention_times(flash_attention_times(model, rates, b=b, s=s, t=t, causal=kernel_causal), cp)
        forward, backward, memory_bound, gemm_fwd_kernels = eager.layer_sums(
            model, stack, rates, inventory, b=b, s=s, t=t, attention=attention)
        selective, att_bwd = attention["fwd"][0], attention["bwd"][0]
        triples = ()
    else:
        forward, backward, memory_bound, gemm_fwd_kernels, selective, att_bwd, triples = _role_based_times(
            model, stack, rates, b=b, s=s, t=t, sp=sp, causal=kernel_causal, cp=cp)
    moe_flops, ep_comm = 0.0, (0.0, 0.0, 0.0)
    if moe.is_moe(model):  # router, experts and all-to-alls in place of the dense MLP (prediction.moe)
        rows = _role_rows(model)
        act = lambda n, d: _pointwise((("activation",),), rows, lambda r: n, rates, d, stack)  # noqa: E731
        cast = (lambda n: rates.memory(n * FP8_CAST_TRANSPOSE_BYTES)) if rates.fp8_linear else None  # noqa: E731
        df, db, dm, dg, moe_flops = moe.moe_layer_delta(model, stack, rates, act, b=b, s=s, t=t, sp=sp, ep=ep,
                                                        fp8_cast=cast)
        forward, backward, memory_bound, gemm_fwd_kernels = forward + df, backward + db, memory_bound + dm, gemm_fwd_kernels + dg
        ep_comm = moe.ep_comm_times(model, rates, ep_levels, b=b, s=s, t=t, sp=sp, ep=ep, recompute=policy)
    # under the dots policy only the weight matmuls' outputs are kept: the rest of the forward runs again
    recompute_time = {"none": 0.0, "selective": selective, "dots": forward - gemm_fwd_kernels, "full": forward}[policy]

    # tensor parallelism: 2 all-reduces forward, 2 backward (Megatron-LM, Shoeybi et al. 2019
    # Figure 4), fewer for a parallel block (.shapes.tp_allreduces_per_layer); with sequence
    # parallelism an all-gather + reduce-scatter pair each, the same ring volume (Korthikanti et
    # al. 2022 Section 4.2.2); with more TP ranks than key/value heads, the QKV all-gather; a MoE
    # layer's routed copies add pairs (prediction.moe.tp_collectives_extra)
    size = tokens * model.hidden * rates.bytes_per_element
    one_ar = ring_allreduce_time(t, size, tp_alpha, tp_beta)  # 0 for t = 1
    n_fwd, n_bwd = (n + moe.tp_collectives_extra(model, t) for n in tp_allreduces_per_layer(model))
    gather_fwd, gather_bwd = qkv_gather_times(model, tokens, rates.bytes_per_element, t, tp_alpha, tp_beta)
    tp_fwd = n_fwd * one_ar + gather_fwd
    tp_rec = tp_fwd if recompute == "full" else 0.0

    # model FLOPs count what the model needs: the causal half of the scores for a decoder (the
    # FlashAttention convention), so MFU cannot exceed the achieved rate even when a flash kernel
    # skips the masked half (Megatron's and PaLM's MFU formulas count the full s^2)
    gemm_flops = 0.0
    for m_, k_, n_ in linear_shapes(model, tokens, t):
        gemm_flops = gemm_flops + cf.linear_forward_flops(m_, k_, n_)
    c = 0.5 if causal else 1.0
    # (context parallelism: cp times the attention of the rank's s/cp tokens, as ring_attention_times)
    model_flops = 3 * (gemm_flops + cp * cf.attention_core_flops(b, s, model.n_heads / t, model.head_dim, c)) + moe_flops
    return LayerTimes(forward, backward, recompute_time, tp_fwd, n_bwd * one_ar + gather_bwd, tp_rec,
                      memory_bound, model_flops, gemm_fwd_kernels, selective, att_bwd, *ep_comm, triples)


def logits_bytes(stack, half: int) -> int:
    """Bytes per logit the loss reads and the head keeps: the plan's half dtype for a ``fused_loss``
    stack (its loss runs over the LM head's output; 4 B in an fp32 run), else ``stack.logits_bytes``."""
    return half if stack.fused_loss else stack.logits_bytes


def head_times(model, stack, rates: DeviceRates, *, b, s, t):
    """(forward, backward, memory-bound part, model FLOPs) of the final norm, LM head and loss.

    The LM head is vocabulary-parallel over t; the cross-entropy reads and writes the logits in
    the stack's logits dtype (:func:`logits_bytes`) ``cross_entropy_passes`` times over forward and
    backward.
    """
    tokens = b * s
    h = model.hidden
    vocab = padded_vocab(model, stack, t)
    shard = vocab / t
    aligned = gemm_alignment(shard, h)  # elements both are multiples of (a vocab of 50257: 1)
    w = cf.lm_head_forward_flops(tokens, h, shard)
    rows = _role_rows(model)
    norm_f = _pointwise((("norm",),), rows, lambda r: tokens * h, rates, "fwd", stack)
    norm_b = _pointwise((("norm",),), rows, lambda r: tokens * h, rates, "bwd", stack)
    e_logit = logits_bytes(stack, rates.bytes_per_element)
    # a fused loss reads the logits of the model's vocabulary (the padded LM head's output sliced)
    ce = rates.memory(tokens * (model.vocab if stack.fused_loss else vocab) / t * e_logit * stack.cross_entropy_passes)
    pad_copy = 0.0
    if stack.fused_loss:  # Inductor's pad_mm copies the gradient of an unpadded vocabulary into the
        # padded LM head's layout: one read and one write of the half logits
        eff = stack.kernel_efficiency(("copy",), "bwd", rates.device_kind)
        pad_copy = where(vocab > model.vocab, rates.memory(2 * tokens * vocab / t * e_logit / eff), 0.0)
    # forward logits[tokens, shard] = X[tokens, h] W[h, shard]; dgrad and wgrad as in layer_times
    casts_f = casts_b = 0.0
    if eager.inventory_of(stack, model) is not None and eager.autocast_on(stack, rates):
        casts_f, casts_b = eager.head_autocast_times(model, stack, rates, b=b, s=s, t=t)
    gemm = rates.fp32_input_gemm if stack.logits_matmul_fp32 else rates.gemm  # fp32 logits matmul: TF32 on a GPU
    forward = gemm(tokens, shard, h, aligned) + norm_f + ce / 2 + casts_f
    backward = gemm(tokens, h, shard, aligned) + gemm(h, shard, tokens, aligned) + norm_b + ce / 2 + casts_b + pad_copy
    return forward, backward, norm_f + norm_b + ce + casts_f + casts_b + pad_copy, 3 * w


def embedding_times(model, rates: DeviceRates, *, b, s):
    """(forward, backward) of the token (+ position) embedding lookup and its gradient."""
    tokens = b * s
    e = rates.bytes_per_element
    n_tables = 2 if model.positions == "learned" else 1
    forward = rates.memory(cf.embedding_forward_bytes(tokens, model.hidden, e) * n_tables)
    backward = rates.memory(2 * tokens * model.hidden * e * n_tables)
    return forward, backward
