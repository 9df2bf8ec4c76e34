"""Activation memory of one transformer layer on one device, item by item, for a stack without a
kernel inventory (Megatron-LM, Megatron-Core with Transformer Engine, FSDP training loops).

The items are the tensors the backward keeps (:mod:`perfmodel.formulas.activations`), shaped by
the model (query and key/value widths with GQA and a set head width, gated or plain MLP, one or
two norms, a parallel block), the stack (flash or materialised attention; dropout masks where the
stack runs dropout kernels) and the plan (tensor and sequence parallelism, recomputation):

* ``none``: every item; ``selective``: the s x s score matrices (or FlashAttention's row
  statistics) recomputed, not kept (Korthikanti et al. 2022 Section 5); ``full``: only the layer
  input (:func:`perfmodel.formulas.activations.checkpoint_bytes`).
* ``selective`` under a stack whose ``selective_recompute`` is ``"dots"`` (JAX's
  ``checkpoint_dots_with_no_batch_dims``, MaxText's ``minimal`` remat): the layer input, the q, k
  and v projections, the MLP's up projections (gate and up of a gated MLP) and, in a sequential
  block, the attention projection's output, from which the second norm's input is recomputed; a
  parallel block's projection outputs only feed the next layer's input and are not kept. The
  norms, the activation function and the attention core are recomputed.
* A norm feeding a fused norm + linear (Transformer Engine LayerNormLinear) keeps its input and
  its output once; the output that feeds q, k and v (or both branches of a shared-norm parallel
  block) is one tensor. Both norms of a parallel block read the same block input: saved once.

With the stack's 16-bit activations and MHA, a GeLU MLP of 4h, dropout and materialised attention
the items add up to Korthikanti et al.'s 34sbh + 5as^2b (Table 2, each parallel row) plus the
norms' fp32 statistics, which the paper neglects.
"""

from __future__ import annotations

from perfmodel.formulas import activations as act
from perfmodel.formulas._backend import where
from perfmodel.plan import DTYPE_BYTES
from perfmodel.prediction.rules import inflight_microbatches
from perfmodel.prediction.shapes import kv_heads_per_device, role_kernels
from perfmodel.prediction.zero3_tensorwise import held_gathered_elements

__all__ = ["ITEMS", "layer_activation_items"]

ITEMS = ("norm_inputs", "norm_stats", "linear_inputs", "qkv", "attention_scores", "attention_output",
         "dropout_masks", "mlp_hidden", "checkpoint", "projection_output")


def _n_dropouts(kernels) -> int:
    return sum(1 for kernel in kernels if "dropout" in kernel)


def layer_activation_items(model, stack, *, b, s, t, sp, recompute, bytes_per_element) -> dict:
    """{item: bytes} of one layer, one micro-batch, one device (see the module docstring)."""
    e, tokens = bytes_per_element, b * s
    r = t if sp else 1
    h = model.hidden
    zero = 0.0 * tokens
    if recompute == "full":
        return {**{k: zero for k in ITEMS}, "checkpoint": act.checkpoint_bytes(tokens, h, e, r)}
    q = model.n_heads * model.head_dim / t
    kv = kv_heads_per_device(model.n_kv_heads, t) * model.head_dim
    gated = 1 if model.mlp == "swiglu" else 0
    if stack.recompute_policy(recompute) == "dots":
        return {**{k: zero for k in ITEMS}, "checkpoint": act.checkpoint_bytes(tokens, h, e, r),
                "qkv": act.qkv_bytes(tokens, q, kv, e),
                "mlp_hidden": act.mlp_up_output_bytes(tokens, model.ffn_hidden / t, e, gated),
                # the second norm's input is recomputed from the layer input and this output
                "projection_output": zero if model.parallel_block else act.norm_input_bytes(tokens, h, e, r)}
    heads = model.n_heads / t
    n_norms = model.n_block_norms
    # sequential block: two norms, each on its own input; parallel: both read the block input
    n_norm_inputs = 1 if model.parallel_block else 2
    stats = 2 if model.norm == "layernorm" else 1
    # norm outputs feeding linears: the QKV input and the MLP input (one tensor with a shared norm)
    linear_in = n_norms * act.linear_input_bytes(tokens, h / r, e)
    if stack.attention == "flash":
        scores = act.softmax_stat_bytes(tokens, heads)
    else:
        scores = act.score_bytes(b, s, heads, e, 1 if _n_dropouts(role_kernels(stack.score_kernels, model)) else 0)
    if recompute == "selective":
        scores = zero
    return {
        "norm_inputs": n_norm_inputs * act.norm_input_bytes(tokens, h, e, r),
        "norm_stats": n_norms * act.norm_stat_bytes(tokens, stats, r),
        "linear_inputs": linear_in,
        "qkv": act.qkv_bytes(tokens, q, kv, e),
        "attention_scores": scores,
        "attention_output": act.linear_input_bytes(tokens, q, e),
        "dropout_masks": _n_dropouts(role_kernels(stack.layer_kernels, model)) * act.dropout_mask_bytes(tokens, h, r),
        "mlp_hidden": act.mlp_hidden_bytes(tokens, model.ffn_hidden / t, e, gated),
        "checkpoint": zero,
        "projection_output": zero,
    }


def layer_activation_bytes(model, stack, **kw):
    """The sum of :func:`layer_activation_items`."""
    total = 0.0
    for value in layer_activation_items(model, stack, **kw).values():
        total = total + value
    return total


def gathered_weight_bytes(model, stack, c, t, dp):
    """ZeRO-3 / FSDP FULL_SHARD: the gathered 16-bit weights of the layer being computed and of the
    one prefetched, beside the shards (0 below stage 3 or without data parallelism).

    A stack that gathers tensor by tensor with no prefetch and no reuse (``[zero3]`` gather
    "tensor", prefetch false, reuse_distance 0: the DeepSpeed of 2021) holds one module's tensors
    at a time, released after the module runs, plus the flat buffer PyTorch 1.8's list all-gather
    fills before copying out, one tensor's worth (:mod:`perfmodel.prediction.zero3_tensorwise`):
    the largest module and its largest tensor.

    PyTorch FSDP all-gathers one wrapped unit (a transformer block under the usual auto-wrap policy)
    before it runs and frees it after; with ``limit_all_gathers`` (default true) at most two
    consecutive units hold their unsharded parameters (torch/distributed/fsdp/
    fully_sharded_data_parallel.py, ``limit_all_gathers`` and ``backward_prefetch`` docs).
    ZeRO-3 keeps the same working set (Rajbhandari et al., SC'20, Section 5.3: parameters
    "only materialised when needed"). The embedding / LM head units are not counted here.
    """
    if c.zero < 3:
        return 0.0 * dp
    if stack.zero3.holds_one_module:
        return where(dp > 1, held_gathered_elements(model, t) * DTYPE_BYTES[c.dtype], 0.0)
    return where(dp > 1, 2 * model.n_params_per_layer / t * DTYPE_BYTES[c.dtype], 0.0)


def activation_details(model, stack, plan, n_layers, inflight=None) -> dict:
    """Flat ``memory_*`` keys of a prediction: each item of one layer, one micro-batch
    (``memory_layer_<item>_bytes``), the layer-micro-batches the stage counted holds
    (``memory_layers_held``: ``n_layers`` x ``inflight``, by default the first stage's) and ZeRO-3's
    gathered weights."""
    m = plan.global_batch / (plan.micro_batch * plan.dp)
    if inflight is None:
        inflight = inflight_microbatches(plan.schedule, plan.pp, m, plan.virtual_stages)
    cp = getattr(plan, "cp", 1)  # a context-parallel rank keeps its s / cp tokens
    items = layer_activation_items(model, stack, b=plan.micro_batch, s=plan.seq / cp, t=plan.tp,
                                   sp=plan.sequence_parallel, recompute=plan.recompute,
                                   bytes_per_element=DTYPE_BYTES[plan.dtype])
    out = {f"memory_layer_{k}_bytes": float(v) for k, v in items.items()}
    out["memory_layers_held"] = float(n_layers * inflight)
    if plan.zero >= 3:
        out["memory_gathered_weights_bytes"] = float(gathered_weight_bytes(model, stack, plan, plan.tp, plan.dp * cp))
    return out
