"""Under its board power limit a GPU cannot keep the boost clock its short microbenchmarks are timed
at: back-to-back GEMMs pull it to the limit within about 0.1 s and the clock falls. A device's
``[sustained]`` table states the rates measured after that (perfmodel/data/validation/h200/), and a
step's GEMMs run no faster than them (formulas.gemm.power_capped_time), fused attention at the
stated share of its rate, memory-bound kernels as before. Checked by hand, against the device's own
layer loops, and refused where a spec states the impossible."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

import perfmodel as pm
from perfmodel.errors import SpecError
from perfmodel.formulas.gemm import power_capped_time
from perfmodel.prediction.hardware import gemm_rates_source, hw_params
from perfmodel.prediction.step import device_rates
from perfmodel.specs.registry import bundled_dir
from perfmodel.specs.stack import load_stack

DATA = Path(pm.__file__).parent / "data" / "validation" / "h200"


def _summary() -> dict:
    with open(DATA / "sustained_summary.csv") as fh:
        return {r["test"]: r for r in csv.DictReader(fh)}


def test_the_spec_values_are_the_measured_loops():
    s = _summary()
    bf16 = (float(s["bf16_8192"]["settled_tflops"]) + float(s["bf16_8192x8192x7168"]["settled_tflops"])) / 2
    fp8 = (float(s["fp8_8192"]["settled_tflops"]) + float(s["fp8_8192x8192x7168"]["settled_tflops"])) / 2
    att = float(s["attention_cudnn_fb"]["settled_tflops"]) / float(s["attention_cudnn_fb"]["burst_tflops"])
    for name in ("h200-sxm-141gb", "h100-sxm5-80gb"):
        sus = pm.load_device(name).sustained
        assert sus.matmul["bf16"] == pytest.approx(bf16 * 1e12, rel=2e-3)
        assert sus.matmul["fp8"] == pytest.approx(fp8 * 1e12, rel=2e-3)
        assert sus.attention_fraction == pytest.approx(att, abs=0.005)
    # every loop of GEMMs or attention ended at the board's 700 W under the software power cap
    for test in ("bf16_8192", "fp8_8192", "bf16_8192x8192x7168", "fp8_8192x8192x7168", "attention_cudnn_fb"):
        assert float(s[test]["settled_power_w"]) > 680 and "0x4" in s[test]["throttle_reasons"]
        assert float(s[test]["settled_sm_mhz"]) < 1980
    # memory-bound loops draw as much but keep their bandwidth: nothing stated for them
    for test in ("copy_1GiB", "add_bf16_1GiB"):
        assert float(s[test]["slowdown"]) < 1.005


def test_formula_by_hand():
    flops = 2 * 8192 ** 3
    assert power_capped_time(1.37e-3, flops, 674e12) == pytest.approx(flops / 674e12)
    assert power_capped_time(5e-3, flops, 674e12) == 5e-3  # already slower than the bound


def _rates(system, dtype="bf16", stack="megatron-core"):
    st = load_stack(stack)
    return device_rates(hw_params(pm.load_system(system), dtype, st.gemm_rate_scale), dtype, st)


def test_gemms_are_bounded_by_the_sustained_rate():
    capped = _rates("dgx-h100")
    free = replace(capped, gemm_sustained=float("inf"), linear_sustained=float("inf"), attention_sustained=1.0)
    m, n, k = 8192, 28672, 8192  # a Llama-2-70B MLP up-projection at TP1: ~700 TFLOP/s on the H100 curve
    assert 2 * m * n * k / free.gemm(m, n, k) > 674e12
    assert capped.gemm(m, n, k) == pytest.approx(2 * m * n * k / 674e12, rel=1e-12)
    small = (512, 512, 512)  # far below the bound: untouched
    assert capped.gemm(*small) == free.gemm(*small)


def test_fp8_linear_layers_take_the_fp8_bound_and_attention_its_share():
    capped = _rates("dgx-h100", dtype="fp8")
    free = replace(capped, gemm_sustained=float("inf"), linear_sustained=float("inf"), attention_sustained=1.0)
    m, n, k = 8192, 28672, 8192
    assert capped.linear_gemm(m, n, k) == pytest.approx(max(free.linear_gemm(m, n, k), 2 * m * n * k / 1197e12))
    assert capped.linear_gemm(m, n, k) > free.linear_gemm(m, n, k)
    flops = 4 * 2 * 32 * 4096 ** 2 * 128 / 2
    assert capped.flash_attention(flops, backward=True) == pytest.approx(free.flash_attention(flops, backward=True) / 0.89)


def test_the_rule_reproduces_the_measured_layer_loops():
    """Three decoder layers, forward+backward, looped for 15-40 s on the H200 (not used to set any
    value): their settled time is the burst loop plus what the rule adds to the profiled GEMM and
    attention kernels: GEMMs at no more than 674 TFLOP/s, attention at 89 %."""
    s = _summary()
    cases = {"layer_l8b_mb2_s4096": ("layer_kernels.csv", (2, 4096, 4096, 32, 8, 14336)),
             "layer_l8b_mb1_s2048": ("layer_kernels_l8b_mb1_s2048.csv", (1, 2048, 4096, 32, 8, 14336)),
             "layer_h1024_mb8_s2048": ("layer_kernels_h1024_mb8_s2048.csv", (8, 2048, 1024, 16, 16, 2816))}
    sus = pm.load_device("h200-sxm-141gb").sustained
    for test, (kernels_file, (b, seq, h, heads, kv, ffn)) in cases.items():
        with open(DATA / kernels_file) as fh:
            kernels = list(csv.DictReader(fh))
        gemm_s = sum(float(k["us_per_step"]) for k in kernels if k["kernel"].startswith(("nvjet", "void cublasLt"))) * 1e-6
        attention_s = sum(float(k["us_per_step"]) for k in kernels if "sdpa" in k["kernel"]) * 1e-6
        d, tokens = h // heads, b * seq
        flops = 3 * 2 * tokens * (h * (h + 2 * kv * d) + h * h + 3 * h * ffn)  # qkv, out, gate+up, down
        burst, settled = float(s[test]["burst_ms"]) * 1e-3, float(s[test]["settled_ms"]) * 1e-3
        predicted = (burst + power_capped_time(gemm_s, flops, sus.matmul["bf16"]) - gemm_s
                     + attention_s * (1 / sus.attention_fraction - 1))
        assert settled / burst - 1 > 0.05  # each loop slowed by the cap
        assert predicted == pytest.approx(settled, rel=0.03), test


def _device_file(tmp_path, replace_from: str, replace_to: str) -> str:
    text = (Path(bundled_dir()) / "gpu" / "h200-sxm-141gb.toml").read_text()
    assert replace_from in text
    text = text.replace(replace_from, replace_to).replace('name = "h200-sxm-141gb"', 'name = "h200-x"')
    path = tmp_path / "h200-x.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("old, new, says", [
    ('bf16 = { value = "674 TFLOP/s"', 'bf16 = { value = "1200 TFLOP/s"', "above the dense bf16 peak"),
    ('attention = { value = "89 %"', 'attention = { value = "120 %"', "fraction in (0, 1]"),
    ('fp8 = { value = "1197 TFLOP/s"', 'fp9 = { value = "1197 TFLOP/s"', "expected a dtype"),
])
def test_impossible_sustained_tables_are_refused(tmp_path, old, new, says):
    path = _device_file(tmp_path, old, new)
    with pytest.raises(SpecError, match=says.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        pm.load_device(path)


def test_the_output_says_where_the_cap_applies():
    hw = hw_params(pm.load_system("dgx-h100"), "bf16")
    assert "674 TFLOP/s sustained under the power cap" in gemm_rates_source(hw)
    a100 = hw_params(pm.load_system("dgx-a100"), "bf16")
    assert "power cap" not in gemm_rates_source(a100)  # no measurement: nothing bounds it
