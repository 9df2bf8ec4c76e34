"""The pytorch-compile stack (issue 10, software stacks as kernel inventories): torch.compile's
TorchInductor runs the eager model code with each pointwise chain and the reduction it feeds as one
generated kernel. It is a variant of pytorch-eager (``base``): same GEMMs, attention, autocast,
optimizer and launch cost, three memory-bound kernels per layer instead of the eager inventory."""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.prediction.detail import layer_kernel_table
from perfmodel.specs.stack import load_stack

PLAN = dict(devices=1, micro_batch=8, global_batch=8)


def test_compile_is_eager_with_fused_pointwise_chains_and_no_inventory():
    eager, compiled = load_stack("pytorch-eager"), load_stack("pytorch-compile")
    for key in ("gemm_rate_scale", "attention", "autocast", "optimizer_bytes_per_param", "launch_overhead_time",
                "memory_efficiency", "capabilities", "logits_bytes"):
        assert getattr(compiled, key) == getattr(eager, key), key
    assert compiled.layer_kernels == (("dropout", "residual_add", "norm"), ("activation",),
                                      ("dropout", "residual_add", "norm"))
    assert eager.inventory and not compiled.inventory


def test_a_fused_kernel_by_hand_and_fewer_kernels_than_eager():
    """GPT-2 124M, 8 x 1024 tokens, bf16 on one H100: dropout + residual add + LayerNorm forward
    moves 44,040,192 B: 7 B per element of 8 x 1024 x 768, i.e. 3 bf16 accesses (dropout 2 + residual
    add 3 + LayerNorm 2, less one write/read round trip per fusion) and the 1-byte dropout mask at the slowest of its ops'
    measured efficiencies (layernorm 0.513 of 3027.76 GB/s): 28.35 us, one kernel where eager
    runs three."""
    model = pm.load_model("gpt2-124m")
    rows = layer_kernel_table(model, "h100-sxm5-80gb", pm.Plan(stack="pytorch-compile", **PLAN))
    fused = next(r for r in rows if r["direction"] == "fwd" and r["op"] == "dropout+residual_add+layernorm")
    assert fused["bytes"] == 7 * 8 * 1024 * 768
    assert fused["time_us"] == pytest.approx(fused["bytes"] / (3027.76e9 * 0.513) * 1e6, rel=1e-3)
    memory_bound = [r for r in rows if r["direction"] == "fwd" and r["op"] not in ("gemm", "attention", "")]
    assert len(memory_bound) == 3
    eager_rows = layer_kernel_table(model, "h100-sxm5-80gb", pm.Plan(stack="pytorch-eager", **PLAN))
    assert len([r for r in eager_rows if r["direction"] == "fwd"]) > 3 * len([r for r in rows if r["direction"] == "fwd"])


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
