"""The pytorch-compile stack (issue 10, software stacks as kernel inventories): torch.compile's
TorchInductor runs the eager model code with each pointwise chain and the reduction it feeds as one
generated kernel. It is a variant of pytorch-eager (``base``): same GEMMs, attention, autocast,
optimizer and launch cost; its own kernel inventory for GPT-2 (from an H200 kernel table and
AOTAutograd's partition), role-based fused kernels for other families, the loss fused over bf16
logits, and one fitted efficiency for every Inductor kernel."""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.prediction.detail import layer_kernel_table, layer_kernels
from perfmodel.specs.stack import load_stack

PLAN = dict(devices=1, micro_batch=8, global_batch=8)


def test_compile_is_eager_with_its_own_kernels_loss_and_one_fitted_efficiency():
    eager, compiled = load_stack("pytorch-eager"), load_stack("pytorch-compile")
    for key in ("gemm_rate_scale", "attention", "autocast", "optimizer_bytes_per_param", "launch_overhead_time",
                "capabilities"):
        assert getattr(compiled, key) == getattr(eager, key), key
    # families without a compiled inventory keep the role-based kernels
    assert compiled.layer_kernels == (("dropout", "residual_add", "norm"), ("activation",),
                                      ("dropout", "residual_add", "norm"))
    assert set(compiled.inventory) == {"gpt2"} and set(eager.inventory) == {"gpt2", "llama", "bert"}
    assert compiled.fused_loss and not eager.fused_loss and compiled.logits_bytes == 2
    # one number for every Inductor-generated kernel, forward and backward
    # (measured on a GPU: a CPU, where Inductor writes C++, keeps the copy bandwidth)
    assert compiled.memory_efficiency == {} and set(compiled.memory_efficiency_on) == {"gpu"}
    assert set(compiled.memory_efficiency_on["gpu"].values()) == {(INDUCTOR, INDUCTOR)}
    assert compiled.kernel_efficiency(("layernorm",), "fwd", "cpu") == 1.0


INDUCTOR = 0.761
# the kernels of the H200 table of a compiled GPT-2 355M step that the [inventory.gpt2] kernels are
# (Inductor names a kernel by the ops it fuses; the trailing number is its index in its graph)
_TABLE_KERNELS = {
    ("resid_dropout+add+ln_2", "mlp.dropout+add+next_ln_1"):
        r"triton_per_fused__to_copy_add_native_dropout_native_layer_norm_native_layer_norm_backward_view_\d+",
    ("mlp.gelu",): r"triton_poi_fused__to_copy_add_mul_pow_tanh_view_\d+",
    ("attn.cache_key_copy", "attn.cache_value_copy"): r"triton_poi_fused_cat_split_transpose_view_\d+",
    ("mlp.dropout_bwd+next_ln_1_bwd", "resid_dropout_bwd+ln_2_bwd"):
        r"triton_per_fused__to_copy_add_native_dropout_backward_native_layer_norm_backward_view_\d+",
    ("mlp.c_proj.bias_grad", "attn.c_proj.bias_grad"): r"triton_red_fused__to_copy_native_dropout_backward_sum_view_\d+",
    ("mlp.c_fc.bias_grad",): r"triton_red_fused_sum_view_\d+",
    ("mlp.gelu_bwd",): r"triton_poi_fused__to_copy_add_mul_pow_tanh_tanh_backward_view_\d+",
    # the cat of dq, dk, dv that also adds the (zero) gradients of the k / v cache outputs
    ("attn.qkv_grad_cat", "attn.qkv_grad_cat.cache_grads"): r"triton_poi_fused__unsafe_view_add_cat_clone_transpose_view_\d+",
    ("attn.c_attn.bias_grad",): r"triton_red_fused__unsafe_view_add_cat_clone_sum_transpose_view_\d+",
    ("attn.cache_key_grad_zeros", "attn.cache_value_grad_zeros"):
        r"void at::native::vectorized_elementwise_kernel<8, at::native::FillFunctor<c10::BFloat16>.*",
    ("attn.c_attn.cast_weight", "attn.c_proj.cast_weight", "mlp.c_fc.cast_weight", "mlp.c_proj.cast_weight",
     "attn.c_attn.cast_weight_grad", "attn.c_proj.cast_weight_grad", "mlp.c_fc.cast_weight_grad",
     "mlp.c_proj.cast_weight_grad"): r"triton_poi_fused__to_copy_(11|18|17|3|8|16)",
}
# the weight casts by size (48 calls of 4h^2 elements: _11 and _18, 24 + 25 of 3h^2: _3 and _17, 24 + 24
# of h^2: _8 and _16); _17's 25th call is not a layer's and the bias casts (_9, _4, _12, ~1 us each)
# are not in the inventory, so neither counts
_SHARE = {"triton_poi_fused__to_copy_17": 24 / 25}


def test_inductor_efficiency_is_the_fit_of_the_in_sample_kernel_table():
    """The stack's one fitted number, recomputed: the bytes the inventory's memory-bound kernels move
    in a compiled GPT-2 355M step (8 x 1024 tokens, 24 layers) over the time the matching kernels of
    the H200 table took, against the H200's measured copy bandwidth. Every memory-bound kernel of
    the inventory is matched."""
    import csv
    import pathlib
    import re

    table = pathlib.Path(__file__).resolve().parents[1] / "perfmodel" / "data" / "validation" / "h200" / \
        "profile_kernels_gpt2_355m_compiled.csv"
    with open(table) as fh:
        measured = [(r["kernel"], float(r["us_per_step"]) * 1e-6) for r in csv.DictReader(fh)]
    plan = pm.Plan(stack="pytorch-compile", devices=1, micro_batch=8, global_batch=8, seq=1024)
    rows = {r.name: r for r in layer_kernels("gpt2-355m", "h200-sxm-141gb", plan)}
    memory_bound = {name for name, r in rows.items() if r.op not in ("gemm", "attention")}
    assert memory_bound == {n for names in _TABLE_KERNELS for n in names}
    moved = seconds = 0.0
    for names, pattern in _TABLE_KERNELS.items():
        matched = [t * _SHARE.get(kernel, 1.0) for kernel, t in measured if re.fullmatch(pattern, kernel)]
        assert matched, pattern
        moved += 24 * sum(rows[n].bytes for n in names)
        seconds += sum(matched)
    fitted = moved / seconds / pm.load_system("h200-sxm-141gb").device.measured_memory_bandwidth
    assert fitted == pytest.approx(INDUCTOR, abs=5e-4)


def test_a_fused_kernel_by_hand():
    """GPT-2 124M, 8 x 1024 tokens, bf16 on one H100: the kernel after the attention reads c_proj's
    bf16 output and the fp32 residual stream, writes the dropout mask, the fp32 residual and
    LayerNorm's bf16 output (13 B an element of 8 x 1024 x 768; the rstd's 4 B a token not counted),
    at Inductor's 76.1 % of 3027.76 GB/s: 33.2 us, where eager runs four kernels and two casts."""
    model = pm.load_model("gpt2-124m")
    rows = layer_kernel_table(model, "h100-sxm5-80gb", pm.Plan(stack="pytorch-compile", **PLAN))
    fused = next(r for r in rows if r["kernel"] == "resid_dropout+add+ln_2")
    assert fused["bytes"] == 13 * 8 * 1024 * 768
    assert fused["time_us"] == pytest.approx(fused["bytes"] / (3027.76e9 * INDUCTOR) * 1e6, rel=1e-3)
    forward = [r for r in rows if r["direction"] == "fwd" and not r["kernel"].startswith("total")]
    eager_rows = layer_kernel_table(model, "h100-sxm5-80gb", pm.Plan(stack="pytorch-eager", **PLAN))
    assert len([r for r in eager_rows if r["direction"] == "fwd"]) > 2 * len(forward)


def test_a_family_without_a_compiled_inventory_runs_the_fused_roles():
    """A Llama (RMSNorm, SwiGLU, no dropout) has no compiled inventory: its layer is the role-based
    kernels, the residual add and the next RMSNorm in one kernel, at Inductor's efficiency."""
    rows = layer_kernel_table("llama2-7b", "h100-sxm5-80gb", pm.Plan(stack="pytorch-compile", devices=1, micro_batch=1,
                                                                     global_batch=1, seq=2048))
    fused = [r for r in rows if r["direction"] == "fwd" and r["op"] == "residual_add+rmsnorm"]
    assert len(fused) == 2
    assert fused[0]["time_us"] == pytest.approx(fused[0]["bytes"] / (3027.76e9 * INDUCTOR) * 1e6, rel=1e-3)


def test_saved_tensors_are_those_of_aotautograds_partition():
    """The compiled GPT-2's activation memory item by item against what AOTAutograd's partitioner
    saves for a small GPT-2 (perfmodel/data/validation/inductor/gpt2_partition.csv: hidden 256, 2
    layers, 4 heads, vocabulary 1000, 2 x 64 tokens): the layers' saves, the head's (final norm, the
    bf16 logits the output holds, the loss's amax and log) and the bf16 weight copies. The trace's
    own storage bytes, less what the model leaves out on purpose: the attention output's (tokens,
    hidden) copy the CPU makes (a free view of the flash kernel's output on a GPU), the bf16 bias
    copies the model counts and the trace does not save, and the token ids, positions, labels and
    the causal mask (a few small tensors): within 1 %."""
    import csv
    import pathlib

    from perfmodel.prediction import eager
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.step import device_rates
    from perfmodel.workloads.transformer import TransformerModel

    path = pathlib.Path(__file__).resolve().parents[1] / "perfmodel" / "data" / "validation" / "inductor" / "gpt2_partition.csv"
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    tokens, h, layers, vocab = 128, 256, 2, 1000
    saved = [r for r in rows if r["role"] == "saved"]
    traced = sum(int(r["storage_bytes"]) for r in saved)
    traced += next(int(r["storage_bytes"]) for r in rows if r["role"] == "output" and r["shape"] == "2x64x1000")
    cpu_copies = [r for r in saved if r["shape"] == f"{h}x{tokens}" and r["producer"] == "aten.permute.default"]
    # per layer: the LayerNorm outputs feeding c_attn and c_fc and the attention output (3 a layer)
    assert len(cpu_copies) == 3 * layers
    small = [r for r in saved if r["dtype"] in ("int64", "bool") and int(r["bytes"]) <= 8 * tokens]
    expected = traced - int(cpu_copies[0]["bytes"]) * layers - sum(int(r["storage_bytes"]) for r in small)

    tiny = TransformerModel(name="tiny", n_layers=layers, hidden=h, n_heads=4, vocab=vocab, seq_len=64)
    stack = load_stack("pytorch-compile")
    rates = device_rates(hw_params(pm.load_system("h200-sxm-141gb"), "bf16"), "bf16", stack)
    per_layer = eager.saved_bytes_per_layer(tiny, stack, rates, eager.inventory_of(stack, tiny), b=2, s=64, t=1)
    # the zero gradients of the k / v outputs: counted with the saves (alive at the backward's start),
    # made by the backward, so not in the forward's list
    per_layer -= 2 * tokens * h * 2
    head = eager.head_saved_bytes(tiny, stack, b=2, s=64, t=1, half=2)  # with the causal mask (2x1x64x64)
    biases = 3 * h + h + 4 * h + h
    copies = 2 * (layers * (eager.weight_copy_params_per_layer(tiny, 1) - biases) + vocab * h)
    assert layers * per_layer + head + copies == pytest.approx(expected, rel=0.01)


def test_the_fused_loss_keeps_half_logits_and_a_padded_gradient():
    """Under fused_loss the head keeps 8 B a token for the loss (amax and log) in place of the fp32
    log-probabilities (and, with causal_skip false, the causal mask), the loss backward's peak is
    the half gradient of the logits and, for a vocabulary Inductor pads (50257 -> 50264), its padded
    copy; the copy also takes one read and one write of the half logits in the backward, not for a
    vocabulary already a multiple of 8."""
    from perfmodel.prediction import eager
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.layers import head_times
    from perfmodel.prediction.step import device_rates

    compiled = load_stack("pytorch-compile")
    gpt2, llama = pm.load_model("gpt2-124m"), pm.load_model("llama2-7b")
    tokens = 8 * 1024
    kw = dict(b=8, s=1024, t=1)
    eager_stack = load_stack("pytorch-eager")
    fused = eager.head_saved_bytes(gpt2, compiled, half=2, **kw)
    mask = 8 * 1024 * 1024 * 2  # the causal mask the compiled stack keeps (b s^2 bf16)
    assert eager.head_saved_bytes(gpt2, eager_stack, half=2, **kw) - (fused - mask) == tokens * (4 * 50257 - 8)
    assert eager.loss_backward_transient_bytes(gpt2, compiled, half=2, **kw) == 2 * 2 * tokens * 50257
    assert eager.loss_backward_transient_bytes(llama, compiled, half=2, **kw) == 2 * tokens * 32000
    assert eager.loss_backward_transient_bytes(gpt2, eager_stack, **kw) == 8 * tokens * 50257
    rates = device_rates(hw_params(pm.load_system("h200-sxm-141gb"), "bf16"), "bf16", compiled)
    unpadded = compiled.__class__(**{**compiled.__dict__, "pad_vocab_multiple": 1})
    copy = head_times(gpt2, compiled, rates, **kw)[1] - head_times(gpt2, unpadded, rates, **kw)[1]
    padded_gemms = (rates.gemm(tokens, 768, 50264, True) + rates.gemm(768, 50264, tokens, True)
                    - rates.gemm(tokens, 768, 50257, False) - rates.gemm(768, 50257, tokens, False))
    pad = 2 * tokens * 50264 * 2 / (rates.memory_bandwidth * INDUCTOR)
    assert copy == pytest.approx(padded_gemms + pad, rel=1e-6)  # the loss reads the unpadded logits either way


def test_compile_is_faster_than_eager_by_its_memory_bound_kernels_only():
    model = pm.load_model("gpt2-124m")
    eager = pm.predict(model, "h100-sxm5-80gb", pm.Plan(stack="pytorch-eager", **PLAN))
    compiled = pm.predict(model, "h100-sxm5-80gb", pm.Plan(stack="pytorch-compile", **PLAN))
    assert compiled.step_time_s < eager.step_time_s
    assert compiled.breakdown_s["optimizer"] == pytest.approx(eager.breakdown_s["optimizer"], rel=1e-12)


def test_inductor_pads_the_lm_head_and_materialises_the_causal_mask():
    """Two things Inductor and Hugging Face do under torch.compile that eager does not: the matmul
    dimensions are padded to multiples of 8 (bf16), so GPT-2's LM head over vocab 50257 runs as an
    aligned GEMM over 50264; the causal mask is a tensor, so the attention kernel computes all s^2
    scores (twice the causal work) while the model FLOPs (MFU) still count the causal half."""
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.layers import flash_attention_times, head_times, layer_times
    from perfmodel.prediction.step import device_rates

    compiled, eager = load_stack("pytorch-compile"), load_stack("pytorch-eager")
    assert compiled.pad_vocab_multiple == 8 and eager.pad_vocab_multiple == 1
    assert compiled.causal_skip is False and eager.causal_skip is True
    model = pm.load_model("gpt2-124m")
    rates = device_rates(hw_params(pm.load_system("h200-sxm-141gb"), "bf16"), "bf16", compiled)
    tokens, h = 8 * 1024, 768
    fwd = head_times(model, compiled, rates, b=8, s=1024, t=1)[0]
    aligned = rates.gemm(tokens, 50264, h, True)
    misaligned = rates.gemm(tokens, 50257, h, False)
    assert aligned < misaligned / 3 and fwd < misaligned  # the padded head runs at the curve's rate
    lt = layer_times(model, compiled, rates, 0.0, float("inf"), b=8, s=1024, t=1, sp=False, recompute="none")
    full = flash_attention_times(model, rates, b=8, s=1024, t=1, causal=False)
    assert lt.attention_forward == pytest.approx(full["fwd"][0], rel=1e-12)
    lt_eager = layer_times(model, eager, rates, 0.0, float("inf"), b=8, s=1024, t=1, sp=False, recompute="none")
    assert lt.model_flops == pytest.approx(lt_eager.model_flops, rel=1e-12)  # MFU counts the causal half
