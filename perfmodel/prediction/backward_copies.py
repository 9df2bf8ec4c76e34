"""What autograd adds to a transformer layer's backward in the role-based stacks, beside the kernels
of the stack's ``[layer]`` list: copies (a flat-parameter wrapper's gradient concatenation, the
backward of a fused QKV projection's split), the sums of the residual branches' two input gradients
and the bias-gradient reductions, as a stack's keys say it runs them
(:mod:`perfmodel.specs.stack_backward`). :func:`perfmodel.prediction.layers.layer_times` adds them to
the layer's backward; :mod:`perfmodel.prediction.detail` lists them."""

from __future__ import annotations

from perfmodel.formulas import compute as cf
from perfmodel.prediction.rates import DeviceRates

__all__ = ["backward_copies_time", "grad_accumulation_time", "bias_grad_time"]

def backward_copies_time(model, stack, rates: DeviceRates, tokens, t):
    """Seconds of the copies autograd adds to a layer's backward: a flat-parameter wrapper (PyTorch
    FSDP, the stack's ``flat_grad_copy``) concatenates the layer's gradients into its flat gradient
    every micro-batch, a read and a write of each; a fused QKV projection split into views (the
    stack's ``qkv_split``) has the split's backward concatenate dq, dk, dv, a read and a write of the
    projection's output."""
    e = rates.bytes_per_element
    copies = rates.memory(2 * e * model.n_params_per_layer / t) if stack.flat_grad_copy else 0.0
    if stack.qkv_split:
        eff = stack.kernel_efficiency(("copy",), "bwd", rates.device_kind)
        width = (model.n_heads + 2 * model.n_kv_heads) * model.head_dim / t
        copies = copies + rates.memory(2 * e * tokens * width / eff)
    return copies


def grad_accumulation_time(kernels, n_elements, rates: DeviceRates, stack):
    """Seconds a layer's backward spends summing the two gradients of each residual branch's input
    (it feeds the sublayer and the residual add; ``n_elements`` each, one sum per residual add of
    ``kernels``): under PyTorch's autograd engine an add kernel of its own (``InputBuffer::
    accumulate``: read both, write the sum, 3 accesses), under a compiled backward (``stack.
    grad_accumulation`` "fused": XLA, TorchInductor) one more read in a neighbouring fusion; at the
    stack's residual-add efficiency. The CNN path (:mod:`perfmodel.prediction.dense`) and the
    profiled eager inventories count the same sums."""
    n_sums = sum(role == "residual_add" for kernel in kernels for role in kernel)
    if not n_sums:
        return 0.0
    fused = stack.grad_accumulation == "fused"
    eff = stack.kernel_efficiency(("residual_add",), "fwd", rates.device_kind)
    one = cf.pointwise_bytes(n_elements, 1 if fused else 3, rates.bytes_per_element, 0) / eff
    if fused:  # inside another kernel: its bytes, no launch of its own
        return n_sums * one / rates.memory_bandwidth
    return n_sums * rates.memory(one)


def bias_grad_time(model, stack, rates: DeviceRates, tokens, t, shard):
    """Seconds of a biased layer's bias-gradient reductions in the backward (``stack.bias_grad``
    "reduction", :mod:`perfmodel.specs.stack_backward`): each linear layer's bias gradient is its
    output gradient summed over the tokens, a reduction kernel reading it once: the QKV projection's
    (heads + 2 kv heads) x head_dim / t and the up projection's (and gate's) f / t columns, the
    row-parallel output and down projections' h (on the rank's tokens / t with sequence
    parallelism), at the stack's backward norm efficiency (the row-reduction kernels the profiled
    eager inventories time the same way). None where the stack fuses it into the weight-gradient
    GEMM (Transformer Engine: every FP8 linear layer of a "reduction" stack; under "qkv-fused" the
    QKV projection's) or the model has no biases."""
    mode = stack.bias_grad
    if not model.bias or mode == "fused" or (rates.fp8_linear and mode == "reduction"):
        return 0.0
    a, g, d, h, f = model.n_heads, model.n_kv_heads, model.head_dim, model.hidden, model.ffn_hidden
    up = 2 if model.mlp == "swiglu" else 1
    per_column = tokens * rates.bytes_per_element / stack.kernel_efficiency(("layernorm",), "bwd", rates.device_kind)
    out_proj = rates.memory(per_column * h / shard)  # the attention output's, and the dense MLP's down projection's
    attention = out_proj + (0.0 if mode == "qkv-fused" else rates.memory(per_column * (a + 2 * g) * d / t))
    if model.is_moe:  # the experts' MLPs replace the dense one (their bias sums are not modelled)
        return attention
    return attention + rates.memory(per_column * up * f / t) + out_proj
