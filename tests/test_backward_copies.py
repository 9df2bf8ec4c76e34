"""Kernels the role-based stacks run beside a layer's GEMMs that were not charged before: rotary
position embedding (one fused kernel on a rotary model's queries and keys after the QKV projection:
apex's fused RoPE under Megatron-Core, an XLA fusion under jax-xla; none for learned positions or
ALiBi), and the copies and reductions autograd adds to the backward (residual-branch gradient sums,
the QKV split's concatenation, bias-gradient reductions: perfmodel.specs.stack_backward)."""

from __future__ import annotations

import dataclasses

import pytest

import perfmodel as pm
from perfmodel.formulas import compute as cf
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.layers import layer_times
from perfmodel.prediction.shapes import role_kernels
from perfmodel.prediction.step import device_rates
from perfmodel.specs.registry import load_spec
from perfmodel.specs.stack import load_stack


def _layer(stack, model, b=1, s=4096, t=1):
    hw = hw_params(load_spec("dgx-h100"), "bf16", stack.gemm_rate_scale)
    rates = device_rates(hw, "bf16", stack)
    return rates, layer_times(model, stack, rates, 0.0, float("inf"), b=b, s=s, t=t, sp=False, recompute="none")


def test_rope_kernel_by_hand():
    """Llama 2 7B (32 heads of 128, 32 key/value heads), 4096 tokens, tp 2: the kernel reads and
    writes 4096 x (32 + 32) x 128 / 2 bf16 elements forward, the same backward, at the copy
    bandwidth (megatron-core lists no efficiency for rope): the layer is that much slower than the
    same stack without the role."""
    model = pm.load_model("llama2-7b")
    core = load_stack("megatron-core")
    without = dataclasses.replace(core, layer_kernels=tuple(k for k in core.layer_kernels if k != ("rope",)))
    rates, with_rope = _layer(core, model, t=2)
    _, no_rope = _layer(without, model, t=2)
    n = 4096 * (32 + 32) * 128 / 2
    one_pass = rates.memory(cf.pointwise_bytes(n, 2, 2, 0))
    assert with_rope.forward - no_rope.forward == pytest.approx(one_pass)
    assert with_rope.backward - no_rope.backward == pytest.approx(one_pass)
    assert with_rope.memory_bound - no_rope.memory_bound == pytest.approx(2 * one_pass)


def test_grouped_query_attention_ropes_fewer_keys():
    """Llama 3 8B has 8 key/value heads for 32 query heads: (32 + 8) x 128 elements a token."""
    model = pm.load_model("llama3-8b")
    core = load_stack("megatron-core")
    without = dataclasses.replace(core, layer_kernels=tuple(k for k in core.layer_kernels if k != ("rope",)))
    rates, with_rope = _layer(core, model)
    _, no_rope = _layer(without, model)
    assert with_rope.forward - no_rope.forward == pytest.approx(
        rates.memory(cf.pointwise_bytes(4096 * (32 + 8) * 128, 2, 2, 0)))


@pytest.mark.parametrize("stack", ["megatron-core", "jax-xla", "nemo-2024"])
def test_only_rotary_models_run_it(stack):
    kernels = load_stack(stack).layer_kernels
    assert ("rope",) in kernels
    assert ("rope",) in role_kernels(kernels, pm.load_model("llama2-7b"))
    for name in ("gpt3-175b", "gpt2-124m"):  # learned positions
        assert ("rope",) not in role_kernels(kernels, pm.load_model(name))


def test_alibi_models_have_no_position_parameters_and_no_rope(tmp_path):
    """A Falcon-style config with alibi true loads as ALiBi (BLOOM-like): no position table, no
    rotary kernel."""
    import json
    cfg = dict(model_type="falcon", hidden_size=1024, num_hidden_layers=4, num_attention_heads=16,
               vocab_size=65024, alibi=True, max_position_embeddings=2048)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    model = pm.load_model(str(path))
    assert model.positions == "alibi"
    assert ("rope",) not in role_kernels(load_stack("megatron-core").layer_kernels, model)


# --- the backward's autograd copies the role-based stacks charge ---------------------------------

def _without(stack, **changes):
    return dataclasses.replace(load_stack(stack), **changes)


def test_residual_branch_gradient_sums_by_hand():
    """Llama 2 7B, 4096 tokens, tp 1, megatron-core: two residual adds a layer, so the autograd
    engine sums two gradients of 4096 x 4096 bf16 elements twice in the backward, an add kernel
    each (read both, write the sum: 3 accesses) at the residual add's efficiency; a compiled
    backward (grad_accumulation "fused") reads one more tensor inside a neighbouring kernel."""
    model = pm.load_model("llama2-7b")
    core = load_stack("megatron-core")
    assert core.grad_accumulation == "kernel" and load_stack("jax-xla").grad_accumulation == "fused"
    rates, kernel = _layer(core, model)
    _, fused = _layer(_without("megatron-core", grad_accumulation="fused"), model)
    n = 4096 * 4096
    eff = core.kernel_efficiency(("residual_add",), "fwd", "gpu")
    one_add = rates.memory(cf.pointwise_bytes(n, 3, 2, 0) / eff)
    one_read = cf.pointwise_bytes(n, 1, 2, 0) / eff / rates.memory_bandwidth
    assert kernel.backward - fused.backward == pytest.approx(2 * one_add - 2 * one_read)
    assert kernel.forward == fused.forward


def test_qkv_split_backward_is_a_concatenation_by_hand():
    """Megatron's fused query_key_value output is split into views; the backward concatenates
    dq, dk, dv: a read and a write of 4096 x (32 + 2 x 32) x 128 / 2 bf16 elements at tp 2."""
    model = pm.load_model("llama2-7b")
    core = load_stack("megatron-core")
    assert core.qkv_split and load_stack("megatron").qkv_split and not load_stack("jax-xla").qkv_split
    rates, split = _layer(core, model, t=2)
    _, views = _layer(_without("megatron-core", qkv_split=False), model, t=2)
    eff = core.kernel_efficiency(("copy",), "bwd", "gpu")
    assert split.backward - views.backward == pytest.approx(rates.memory(2 * 2 * 4096 * 96 * 128 / 2 / eff))
    assert split.forward == views.forward


def test_bias_gradient_reductions_by_hand():
    """Megatron 3.6B's biased layer (h 3072, 32 heads, f 4h), 2048 tokens, tp 2, no sequence
    parallelism, under the fsdp stack (PyTorch nn.Linear: addmm's backward sums the output gradient
    over the tokens): reductions reading 3h/2, 4h/2, h and h columns of bf16 gradients at the
    backward norm efficiency; under megatron-core the QKV projection's is in Transformer Engine's
    GEMM epilogue (the other three skip their bias add and are summed); none for a bias-free model."""
    model = pm.load_model("megatron-3.6b")
    assert model.bias and model.hidden == 3072
    fsdp = load_stack("fsdp")
    assert fsdp.bias_grad == "reduction" and load_stack("megatron-core").bias_grad == "qkv-fused"
    rates, reduced = _layer(fsdp, model, s=2048, t=2)
    _, fused = _layer(_without("fsdp", bias_grad="fused"), model, s=2048, t=2)
    eff = fsdp.kernel_efficiency(("layernorm",), "bwd", "gpu")
    h = 3072
    by_hand = sum(rates.memory(2048 * w * 2 / eff) for w in (3 * h / 2, 4 * h / 2, h, h))
    assert reduced.backward - fused.backward == pytest.approx(by_hand)
    assert reduced.forward == fused.forward
    core = load_stack("megatron-core")
    _, qkv_fused = _layer(core, model, s=2048, t=2)
    _, all_fused = _layer(_without("megatron-core", bias_grad="fused"), model, s=2048, t=2)
    eff_core = core.kernel_efficiency(("layernorm",), "bwd", "gpu")
    assert qkv_fused.backward - all_fused.backward == pytest.approx(
        sum(rates.memory(2048 * w * 2 / eff_core) for w in (4 * h / 2, h, h)))
    llama = pm.load_model("llama2-7b")
    assert _layer(fsdp, llama)[1].backward == _layer(_without("fsdp", bias_grad="fused"), llama)[1].backward


def test_an_fp32_logits_matmul_runs_at_the_tf32_rate_on_a_gpu_only():
    """MaxText computes its logits projection in float32 (jax-xla's logits_matmul_fp32): on the H100
    at the measured TF32 curve, half the bf16 rate, its three GEMMs (forward, dgrad, wgrad) slower by
    the difference; a TPU runs float32 dots in one bf16 pass (no fp32-input model); a V100 without
    TF32 at its fp32 rate."""
    from perfmodel.prediction.hardware import fp32_input_gemm_model
    from perfmodel.prediction.kernels import gemm_model
    from perfmodel.prediction.layers import head_times

    stack = load_stack("jax-xla")
    assert stack.logits_matmul_fp32
    model = pm.load_model("llama2-7b")
    hw = hw_params(load_spec("a3-highgpu-8g"), "bf16", stack.gemm_rate_scale)
    rates = device_rates(hw, "bf16", stack)
    plain = device_rates(hw, "bf16", _without("jax-xla", logits_matmul_fp32=False))
    fwd, bwd, _, _ = head_times(model, stack, rates, b=4, s=4096, t=1)
    fwd0, bwd0, _, _ = head_times(model, _without("jax-xla", logits_matmul_fp32=False), plain, b=4, s=4096, t=1)
    tokens, h, v = 4 * 4096, 4096, 32000
    tf32, bf16 = rates.fp32_input_gemm, plain.gemm
    assert fwd - fwd0 == pytest.approx(tf32(tokens, v, h) - bf16(tokens, v, h))
    assert bwd - bwd0 == pytest.approx(tf32(tokens, h, v) + tf32(h, v, tokens) - bf16(tokens, h, v) - bf16(h, v, tokens))
    # the H100's measured TF32 curve, read directly (no power cap measured for it)
    measured = gemm_model(pm.load_device("h100-sxm5-80gb"), "tf32")
    assert tf32(tokens, v, h) == pytest.approx(max(measured.time(2 * tokens * v * h), rates.launch_time))
    assert tf32(tokens, v, h) > 1.5 * bf16(tokens, v, h)
    # a misaligned vocabulary (GPT-2's 50257) is slower in fp32 inputs than aligned, as in bf16
    assert tf32(tokens, 50257, h, 1.0) > tf32(tokens, 50256, h)
    # an fp32 plan runs every GEMM in fp32 already: no TF32 head
    fp32_rates = device_rates(hw_params(load_spec("a3-highgpu-8g"), "fp32", stack.gemm_rate_scale), "fp32", stack)
    assert fp32_rates.fp32_input_curve is None
    # a TPU runs fp32 dots in one bf16 pass, an AMD GPU (ROCm) in fp32: no TF32 model for either
    assert fp32_input_gemm_model(pm.load_device("tpu-v5p")) is None
    assert fp32_input_gemm_model(pm.load_device("mi300x")) is None
    assert "fp32" in fp32_input_gemm_model(pm.load_device("v100-sxm2-32gb"))[0].source
