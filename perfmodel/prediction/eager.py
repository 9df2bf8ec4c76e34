"""A transformer layer timed and its activation memory counted kernel by kernel, from the stack
file's kernel inventory (:mod:`perfmodel.specs.inventory`; ``pytorch-eager`` is the bundled one).

Each kernel of the inventory is one row: a GEMM timed from its shape (:meth:`DeviceRates.gemm`),
the fused attention kernel from the times :func:`perfmodel.prediction.layers.layer_times` computes
for it, every other kernel as bytes over the copy bandwidth divided by the stack's measured
efficiency for its op (``copy``: 1.0). Every kernel takes at least the stack's launch overhead
(``DeviceRates`` applies the floor: an eager framework's CPU dispatches each op). Counts are
products of plain numbers, so b, s and t may be floats or numpy arrays.

Activation memory is what the forward kernels' ``saves`` name: the tensors autograd keeps for the
backward. The head (final norm, LM head, fp32 logits and loss) and the autocast weight copies are
counted here too (:func:`head_saved_bytes`, :func:`weight_copy_params_per_layer`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from perfmodel.formulas._backend import where
from perfmodel.frozen import IdentityMemo
from perfmodel.prediction.shapes import kv_heads_per_device, padded_vocab
from perfmodel.specs.inventory import DTYPE_LETTERS

__all__ = ["KernelRow", "family_of", "inventory_of", "autocast_on", "kernel_rows", "layer_sums", "saved_bytes_per_layer",
           "head_saved_bytes", "loss_backward_transient_bytes", "weight_copy_params_per_layer",
           "head_autocast_times"]


@dataclass(frozen=True)
class KernelRow:
    """One kernel of one layer for one micro-batch (fields are floats or numpy arrays)."""

    name: str
    direction: str  # "fwd" | "bwd"
    op: str
    time_s: object
    bytes: object  # device-memory traffic
    flops: object  # GEMM / attention FLOPs; 1 per element for arithmetic pointwise ops, 0 for copies


def family_of(model) -> str:
    """The inventory family of a transformer: ``bert`` for an encoder (Hugging Face's BERT:
    post-LayerNorm, separate q/k/v projections with bias, one exact-GELU kernel), ``llama`` for a
    SwiGLU MLP (RMSNorm, rotary, separate q/k/v projections), else ``gpt2`` (pre-LayerNorm, fused
    QKV with bias, the tanh-approximated GELU written as seven pointwise ops). A decoder mixing
    the traits runs the inventory of its MLP's family."""
    if model.kind == "encoder":
        return "bert"
    return "llama" if model.mlp == "swiglu" else "gpt2"


def inventory_of(stack, model):
    """The stack's inventory for the model's family, or None (the role-based path runs). A model
    trained without dropout (``model.dropout`` false) runs none of its dropout kernels and keeps none
    of their masks: PyTorch's dropout returns its input at p = 0 (ATen native/Dropout.cpp); a fused
    kernel that ran dropout among other ops (a compiled graph's) reads and writes no mask."""
    if stack.attention != "flash" or not stack.inventory:
        return None
    inventory = stack.inventory.get(family_of(model))
    if inventory is None or model.dropout:
        return inventory
    return _WITHOUT_DROPOUT.get(inventory, "without dropout", lambda: replace(
        inventory, forward=_without_masks(inventory.forward), backward=_without_masks(inventory.backward)))


def _without_masks(kernels) -> tuple:
    """``kernels`` less the dropout kernels, and the other kernels less their bool masks (``b``)."""
    return tuple(replace(k, read=k.read.replace("b", ""), write=k.write.replace("b", ""),
                         saves=tuple(x for x in k.saves if x[1] != "b"))
                 for k in kernels if k.op != "dropout")


_WITHOUT_DROPOUT = IdentityMemo(limit=64)  # an inventory -> the same without its dropout kernels


def autocast_on(stack, rates) -> bool:
    """Autocast runs when the stack says so and the activations are 16-bit."""
    return stack.autocast and rates.bytes_per_element < 4


def _counts(model, b, s, t) -> dict:
    d = model.head_dim
    q = model.n_heads * d / t
    kv = kv_heads_per_device(model.n_kv_heads, t) * d
    return {"T": b * s, "h": model.hidden, "q": q, "kv": kv, "qkv": q + 2 * kv, "f": model.ffn_hidden / t,
            "heads": model.n_heads / t, "V": model.vocab / t}


def _all_float(*xs) -> bool:
    return all(type(x) in (int, float) for x in xs)


def _value(count, values):
    factor, names = count
    out = factor
    for name in names:
        out = out * values[name]
    return out


@functools.lru_cache(maxsize=None)
def _letter_bytes(letters: str) -> tuple[int, int]:
    return sum(DTYPE_LETTERS[c] for c in letters if c != "h"), letters.count("h")


def _bytes_of(letters: str, half: int) -> int:
    fixed, n_half = _letter_bytes(letters)
    return fixed + n_half * half


def _memory_time(rates, bytes_moved):
    """rates.memory, with a fast path for plain floats (a predict runs ~100 of these)."""
    bandwidth = rates.memory_bandwidth
    if type(bytes_moved) is float and type(bandwidth) is float:
        t = bytes_moved / bandwidth
        return t if t > rates.launch_time else rates.launch_time
    return rates.memory(bytes_moved)


def _row(kernel, direction, values, rates, stack, half, attention) -> KernelRow:
    if kernel.op == "gemm":
        m, n, k = (_value(c, values) for c in kernel.gemm)
        time = rates.linear_gemm(m, n, k) if kernel.linear else rates.gemm(m, n, k)
        return KernelRow(kernel.name, direction, "gemm", time, (m * k + k * n + m * n) * half, 2 * m * n * k)
    if kernel.op == "attention":
        time, bytes_moved, flops = attention[direction]
        return KernelRow(kernel.name, direction, "attention", time, bytes_moved, flops)
    n = _value(kernel.n, values)
    bytes_moved = n * (kernel.fixed_bytes + kernel.n_half * half)
    eff = stack.kernel_efficiency((kernel.op,), direction, rates.device_kind)
    flops = 0.0 if kernel.op == "copy" else n
    return KernelRow(kernel.name, direction, kernel.op, _memory_time(rates, bytes_moved / eff), bytes_moved, flops)


def kernel_rows(model, stack, rates, inventory, *, b, s, t, attention) -> tuple[KernelRow, ...]:
    """Every kernel of one layer, forward then backward, in the order they run.

    ``attention`` maps "fwd" / "bwd" to (seconds, bytes, FLOPs) of the fused attention kernel.
    Autocast-only kernels (casts) are left out when autocast is off (fp32 / tf32 runs)."""
    values = _counts(model, float(b), float(s), float(t)) if _all_float(b, s, t) else _counts(model, b, s, t)
    half = rates.bytes_per_element
    on = autocast_on(stack, rates)
    rows = []
    for direction, kernels in (("fwd", inventory.forward), ("bwd", inventory.backward)):
        rows.extend(_row(k, direction, values, rates, stack, half, attention) for k in kernels if on or not k.autocast)
    return tuple(rows)


_COMPILED: dict = {}  # id(inventory) -> (inventory, {(direction, autocast on, ...): memory-kernel arrays})
_EFFICIENCIES = IdentityMemo(limit=64)  # a stack -> its efficiencies as a hashable key (built once)


def _compiled(inventory, stack, direction: str, on: bool, device_kind: str = ""):
    """The memory-bound kernels of one direction as arrays (count factors, exponents of each count
    name, fixed and half operands per element, efficiency), built once per inventory."""
    import numpy as np

    entry = _COMPILED.get(id(inventory))
    if entry is None or entry[0] is not inventory:
        entry = _COMPILED[id(inventory)] = (inventory, {})
    key = (direction, on, device_kind, _EFFICIENCIES.get(stack, "key", lambda: (
        tuple(sorted(stack.memory_efficiency.items())),
        tuple(sorted((k, tuple(sorted(v.items()))) for k, v in stack.memory_efficiency_on.items())))))
    if key not in entry[1]:
        kernels = [k for k in (inventory.forward if direction == "fwd" else inventory.backward)
                   if k.op not in ("gemm", "attention") and (on or not k.autocast)]
        names = ("T", "h", "q", "kv", "qkv", "f", "heads", "V")
        exponents = np.array([[k.n[1].count(name) for name in names] for k in kernels], dtype=float)
        eff = [stack.kernel_efficiency((k.op,), direction, device_kind) for k in kernels]
        entry[1][key] = (names, np.array([k.n[0] for k in kernels]), exponents,
                         np.array([k.fixed_bytes for k in kernels], dtype=float),
                         np.array([k.n_half for k in kernels], dtype=float), np.array(eff))
    return entry[1][key]


def layer_sums(model, stack, rates, inventory, *, b, s, t, attention):
    """(forward, backward, memory-bound, forward GEMMs) seconds of one layer: the sums of
    :func:`kernel_rows`, with the memory-bound kernels of a float plan priced as numpy arrays
    (one predict runs ~100 of them; arrays of plans take :func:`kernel_rows`)."""
    floats = _all_float(b, s, t) and type(rates.memory_bandwidth) is float
    if not floats:
        rows = kernel_rows(model, stack, rates, inventory, b=b, s=s, t=t, attention=attention)
        return _sums(rows)
    import numpy as np

    values = _counts(model, float(b), float(s), float(t))
    half, on = rates.bytes_per_element, autocast_on(stack, rates)
    totals, memory_bound, gemm_fwd = {}, 0.0, 0.0
    for direction, kernels in (("fwd", inventory.forward), ("bwd", inventory.backward)):
        names, factor, exponents, fixed, n_half, eff = _compiled(inventory, stack, direction, on, rates.device_kind)
        v = np.array([values[name] for name in names])
        n = factor * np.prod(v ** exponents, axis=1)
        with np.errstate(all="ignore"):  # an absurd spec value overflows: predict refuses the result
            times = np.maximum(n * (fixed + n_half * half) / eff / rates.memory_bandwidth, rates.launch_time)
            mem = float(times.sum())
        total = mem
        for k in kernels:
            if k.op in ("gemm", "attention"):
                row = _row(k, direction, values, rates, stack, half, attention)
                total = total + row.time_s
                if direction == "fwd" and k.op == "gemm":
                    gemm_fwd = gemm_fwd + row.time_s
        totals[direction] = total
        memory_bound = memory_bound + mem
    return totals["fwd"], totals["bwd"], memory_bound, gemm_fwd


def _sums(rows):
    forward = backward = memory_bound = gemm_fwd = 0.0
    for r in rows:
        if r.direction == "fwd":
            forward = forward + r.time_s
            if r.op == "gemm":
                gemm_fwd = gemm_fwd + r.time_s
        else:
            backward = backward + r.time_s
        if r.op not in ("gemm", "attention"):
            memory_bound = memory_bound + r.time_s
    return forward, backward, memory_bound, gemm_fwd


def saved_bytes_per_layer(model, stack, rates, inventory, *, b, s, t):
    """Bytes autograd keeps for the backward of one layer: the forward kernels' ``saves``."""
    values = _counts(model, b, s, t)
    half = rates.bytes_per_element
    on = autocast_on(stack, rates)
    total = 0.0
    for kernel in inventory.forward:
        if on or not kernel.autocast:
            for count, letters in kernel.saves:
                total = total + _value(count, values) * _bytes_of(letters, half)
    return total


def head_saved_bytes(model, stack, *, b, s, t, half):
    r"""Bytes the head keeps until its backward, and the logits the model output holds.

    Final norm: LayerNorm keeps its fp32 input and fp32 mean + rstd (4h + 8 B per token);
    RMSNorm its fp32 input, rsqrt and normalised tensor (8h + 4). LM head: its input cast to the
    half dtype (``half`` h B per token). Logits: the LM head's output in the half dtype, held by
    the model's output object (``outputs.logits``) through the backward; HF's loss upcasts them
    (``logits.float()``, transformers loss/loss_utils.py ForCausalLMLoss) and cross_entropy =
    log_softmax + nll_loss keeps the fp32 log-probabilities (4 V B per token; the fp32 copy
    itself is freed: log_softmax's backward needs only its result). GPT-2's embedding dropout
    keeps its bool mask (h B per token), as BERT's. Vocabulary split over t. Older transformers
    (DefaultCrossEntropyLoss, 4.45-era) shifted an fp32 *copy* of the logits instead of the labels
    (``logits[..., :-1, :].contiguous()``): one more fp32 logits tensor in the forward and a
    zeros + copy in the backward, not counted here.

    A ``fused_loss`` stack (TorchInductor) keeps a per-token fp32 max and log-sum-exp (8 B) in
    place of the log-probabilities: AOTAutograd's partition of the loss graph saves the half
    logits, ``amax`` and ``log``. Under its compiled inventory the final norm's input and output
    are the last layer's saves (its ``next_ln_1`` kernel), so the norm term here stands for what
    the layers do not count: the first layer's LayerNorm input (fp32) and its rstd. A stack that
    passes the causal mask as a tensor (``causal_skip`` false, a decoder) keeps it once for every
    layer's attention backward: b s^2 half-dtype elements (AOTAutograd saves it)."""
    tokens = b * s
    h, vocab = model.hidden, model.vocab / t
    norm = (8 * h + 4) if model.norm == "rmsnorm" else (4 * h + 8)
    mask = h if family_of(model) in ("gpt2", "bert") else 0  # the embeddings' dropout mask
    loss = 8 if stack.fused_loss else 4 * vocab
    causal_mask = b * s * s * half if (not stack.causal_skip and model.kind == "decoder") else 0.0
    return tokens * (norm + half * h + half * vocab + loss + mask) + causal_mask


def loss_backward_transient_bytes(model, stack, *, b, s, t, half=2):
    """The loss backward's peak: nll_loss's backward writes the fp32 gradient of the log-probs
    (b s V) and log_softmax's backward the fp32 gradient of the logits (b s V) while the first is
    alive (PyTorch aten nll_loss_backward, _log_softmax_backward_data): 2 x 4 B per logit. A
    ``fused_loss`` stack's one backward kernel writes the gradient of the half logits (``half`` B
    per logit), and, when the stack pads the vocabulary for the LM head (Inductor's pad_mm), a
    padded copy of it beside it: 2 x ``half`` B."""
    tokens, vocab = b * s, model.vocab / t
    if not stack.fused_loss:
        return 2 * 4 * tokens * vocab
    padded = where(padded_vocab(model, stack, t) > model.vocab, 2.0, 1.0)
    return padded * half * tokens * vocab


def weight_copy_params_per_layer(model, t):
    """Parameters of one layer that autocast casts to 16 bits per forward (weights and biases of
    the linear layers; norms run in fp32, embeddings are not autocast)."""
    total = 0.0
    for _name, n_in, n_out in model.linear_shapes():
        total = total + n_in * n_out / t + (n_out if model.bias else 0)
    return total


def head_autocast_times(model, stack, rates, *, b, s, t):
    """(forward, backward) seconds of the head's autocast casts: the LM head's input and weight
    cast to the half dtype, the logits upcast to fp32 for the loss (``logits.float()``); backward
    the gradient of the logits cast back, the weight and input gradients cast to fp32; at the
    stack's efficiency for casts (``copy``) on the device; a ``fused_loss`` stack runs only the
    weight's casts."""
    tokens, h, vocab, half = b * s, model.hidden, model.vocab / t, rates.bytes_per_element
    # a fused_loss stack folds the input's and the logits' casts into its norm and loss kernels
    casts = (h * vocab,) if stack.fused_loss else (tokens * h, h * vocab, tokens * vocab)
    eff_f = stack.kernel_efficiency(("copy",), "fwd", rates.device_kind)
    eff_b = stack.kernel_efficiency(("copy",), "bwd", rates.device_kind)
    fwd = bwd = 0.0
    for n in casts:
        fwd = fwd + rates.memory(n * (4 + half) / eff_f)
        bwd = bwd + rates.memory(n * (4 + half) / eff_b)
    return fwd, bwd
