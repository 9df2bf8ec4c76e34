"""A stack names the fused attention kernel it runs (issue 10, software stacks as kernel
inventories): LLM Foundry's FSDP runs of 2023-24 import flash-attn 2.x, whose kernels have no
Hopper path, while the H100's own measurement (PyTorch 2.11 SDPA) runs at FlashAttention-3 rates.
The device file holds FlashAttention-2's published H100 points apart from its default
(Shah et al., FlashAttention-3, arXiv 2407.08608, Figures 4 and 5); checked by hand here.
"""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.specs.stack import load_stack
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.kernels import attention_curves, gemm_shape_model
from perfmodel.prediction.step import device_rates

FA2 = "flash-attention-2"


def _flops(batch, heads, seq, head_dim):
    return 4 * 0.5 * batch * seq**2 * heads * head_dim  # causal forward (the [attention] convention)


def test_the_h100_file_holds_flash_attention_2_apart_from_its_measured_default():
    h100 = pm.load_device("h100-sxm5-80gb")
    points = h100.attention_kernels[FA2]["bf16"]
    assert [p.seq for p in points] == [512, 1024, 2048, 4096, 8192, 16384]
    assert "2407.08608" in h100.sources[f"attention_kernels.{FA2}.bf16"]
    fa2_fwd, fa2_bwd = attention_curves(h100, "bf16", FA2)
    default_fwd, _ = attention_curves(h100, "bf16")
    w = _flops(2, 16, 8192, 128)
    # on a measured point the curve gives the point's own rate: 333 TFLOP/s forward ...
    assert w / fa2_fwd.time(w) == pytest.approx(333e12, rel=1e-9)
    # ... and the backward rate the fwd+bwd column implies: 2.5 w / (3.5 w / 322.1 - w / 333) = 318 TFLOP/s
    assert 2.5 * w / fa2_bwd.time(2.5 * w) == pytest.approx(2.5 / (3.5 / 322.1e12 - 1 / 333e12), rel=1e-9)
    assert 2.5 / (3.5 / 322.1e12 - 1 / 333e12) == pytest.approx(318e12, rel=2e-3)
    # the default (SDPA of PyTorch 2.11) is FlashAttention-3 class: about 1.8x faster at this size
    assert 1.7 < fa2_fwd.time(w) / default_fwd.time(w) < 2.0


def test_fsdp_runs_flash_attention_2_and_megatron_core_the_devices_default():
    system = pm.load_system("dgx-h100")
    hw = hw_params(system, "bf16")
    fsdp, core = load_stack("fsdp"), load_stack("megatron-core")
    assert fsdp.attention_kernel == FA2 and core.attention_kernel == ""
    assert device_rates(hw, "bf16", fsdp).attention_curves == hw.attention_kernels[FA2]
    assert device_rates(hw, "bf16", core).attention_curves == hw.attention


def test_a_device_without_the_kernels_points_keeps_its_own_attention_path():
    # A100: FlashAttention-2 is its native kernel, its measured default; no separate points
    hw = hw_params(pm.load_system("dgx-a100"), "bf16")
    assert FA2 not in hw.attention_kernels
    assert hw.attention is not None
    assert device_rates(hw, "bf16", load_stack("fsdp")).attention_curves == hw.attention


@pytest.mark.parametrize("device", ["a100-sxm4-80gb", "a100-sxm4-40gb", "a100-pcie-80gb"])
def test_the_a100_attention_is_flash_attention_2_as_its_paper_measures(device):
    # Dao, FlashAttention-2 (arXiv 2307.08691), A100 forward + backward figure, causal, head dim 128:
    # 99 TFLOP/s at seq 512 .. 189 at 16k, 16k tokens of 16 heads; forward and backward each at
    # that rate (the figure gives their sum only)
    a100 = pm.load_device(device)
    assert "2307.08691" in a100.sources["attention.bf16"]
    fwd, bwd = attention_curves(a100, "bf16")
    for seq, rate in ((512, 99e12), (2048, 155e12), (16384, 189e12)):
        w = _flops(16384 // seq, 16, seq, 128)
        assert 3.5 * w / (fwd.time(w) + bwd.time(2.5 * w)) == pytest.approx(rate, rel=1e-9)
    # the matmuls at the full achievable rate (the shape model's fused attention before
    # FUSED_ATTENTION_EFFICIENCY) would be over 1.6x faster than the kernel at seq 2k
    shape = gemm_shape_model(a100, "bf16")
    w = _flops(8, 16, 2048, 128)
    assert w / shape.achievable_flops_per_s < fwd.time(w) / 1.6


def test_the_kernel_choice_moves_an_fsdp_step_by_its_attention_time(tmp_path):
    text = open(_stack_file("fsdp")).read()
    plain = "\n".join(line for line in text.splitlines() if not line.startswith("attention_kernel"))
    other = tmp_path / "fsdp3.toml"
    other.write_text(plain.replace('name = "fsdp"', 'name = "fsdp3"'))
    model = pm.load_model("llama2-7b")
    plan = dict(devices=8, zero=3, micro_batch=1, global_batch=8, seq=8192)
    fa2 = pm.predict(model, "dgx-h100", pm.Plan(stack="fsdp", **plan))
    fa3 = pm.predict(model, "dgx-h100", pm.Plan(stack=str(other), **plan))
    # 32 layers x (fwd + bwd) of causal attention over 8192 tokens, 32 heads of 128, one sequence
    w = _flops(1, 32, 8192, 128)
    h100 = pm.load_device("h100-sxm5-80gb")
    (f2, b2), (f3, b3) = attention_curves(h100, "bf16", FA2), attention_curves(h100, "bf16")
    share = h100.sustained.attention_fraction  # the rate attention keeps under the power cap
    by_hand = 32 * ((f2.time(w) + b2.time(2.5 * w)) - (f3.time(w) + b3.time(2.5 * w))) / share
    assert fa2.breakdown_s["compute"] - fa3.breakdown_s["compute"] == pytest.approx(by_hand, rel=1e-6)


def _stack_file(name):
    from importlib import resources
    return str(resources.files("perfmodel.specs") / "stacks" / f"{name}.toml")


def test_llm_foundry_2023_is_fsdp_with_attention_at_half_flash_attention_2():
    """The variant stack takes every key of its base (fsdp) but its attention: the 2023 Triton
    kernel at 50 % of FlashAttention-2 (FA2 paper: 'around 2x' over FlashAttention-1)."""
    fsdp, old = load_stack("fsdp"), load_stack("llm-foundry-2023")
    same = ("gemm_rate_scale", "layer_kernels", "memory_efficiency", "optimizer_bytes_per_param", "capabilities",
            "grad_reduce_bytes", "attention_kernel", "launch_overhead_time")
    assert all(getattr(old, k) == getattr(fsdp, k) for k in same)
    assert old.attention_rate_scale == 0.5 and fsdp.attention_rate_scale == 1.0
    model = pm.load_model("llama2-7b")
    plan = dict(devices=8, zero=3, micro_batch=1, global_batch=8, seq=8192)
    new = pm.predict(model, "dgx-h100", pm.Plan(stack="fsdp", **plan))
    slow = pm.predict(model, "dgx-h100", pm.Plan(stack="llm-foundry-2023", **plan))
    # every attention kernel takes twice as long: 32 layers x (fwd + bwd) once more
    w = _flops(1, 32, 8192, 128)
    h100 = pm.load_device("h100-sxm5-80gb")
    f2, b2 = attention_curves(h100, "bf16", FA2)
    by_hand = 32 * (f2.time(w) + b2.time(2.5 * w)) / h100.sustained.attention_fraction  # under the power cap
    # and MPT's QKV split (qkv_split, which the variant sets): the backward's cat of dq, dk, dv,
    # a read and a write of 8192 x 3 x 4096 bf16 elements a layer at the copy efficiency
    assert old.qkv_split and not fsdp.qkv_split
    rates = device_rates(hw_params(pm.load_system("dgx-h100"), "bf16"), "bf16", old)
    by_hand += 32 * rates.memory(2 * 2 * 8192 * 3 * 4096 / old.kernel_efficiency(("copy",), "bwd", "gpu"))
    assert slow.breakdown_s["compute"] - new.breakdown_s["compute"] == pytest.approx(by_hand, rel=1e-6)


def test_a_stack_variant_names_a_bundled_base_and_a_fraction(tmp_path):
    from perfmodel.errors import SpecError

    def variant(name, body):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'name = "{name}"\n' + body)
        return str(path)

    light = load_stack(variant("light", 'base = "megatron-core"\ndescription = "x"\n'))
    assert light.tp_overlap == load_stack("megatron-core").tp_overlap and light.description == "x"
    with pytest.raises(SpecError, match="base"):
        load_stack(variant("orphan", 'base = "no-such-stack"\n'))
    with pytest.raises(SpecError, match="attention_rate_scale"):
        load_stack(variant("faster", 'base = "fsdp"\nattention_rate_scale = { value = "150 %", source = "s" }\n'))
    with pytest.raises(SpecError, match="flash"):  # only a fused kernel has a rate to scale
        load_stack(variant("scores", 'base = "megatron"\nattention_rate_scale = { value = "50 %", source = "s" }\n'))


def test_a_variant_must_name_itself(tmp_path):
    from perfmodel.errors import SpecError

    path = tmp_path / "nameless.toml"
    path.write_text('base = "fsdp"\n')
    with pytest.raises(SpecError, match="name: missing"):
        load_stack(str(path))
