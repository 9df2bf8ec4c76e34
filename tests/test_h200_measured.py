"""The H200 this project measured (perfmodel/data/validation/h200/): its spec file carries the
measured curves, and the training runs measured on it are validation datasets, one in-sample (its
kernel table was read) and one held-out."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

import perfmodel as pm
from perfmodel.formulas.gemm import unaligned_gemm_rate
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.kernels import GemmShapeModel, RateCurve
from perfmodel.prediction.step import device_rates
from perfmodel.specs.stack import load_stack
from perfmodel.validation import HELD_OUT, IN_SAMPLE, dataset_cases, validate
from perfmodel.validation.measured_h200 import DATASETS

DATA = Path(pm.__file__).parent / "data" / "validation" / "h200"


def _rates(dtype="bf16"):
    stack = load_stack("pytorch-eager")
    return device_rates(hw_params(pm.load_system("h200-sxm-141gb"), dtype), dtype, stack)


def test_the_spec_carries_the_measurements():
    d = pm.load_device("h200-sxm-141gb")
    assert d.measured_memory_bandwidth == pytest.approx(4.257e12)
    with open(DATA / "gemm.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("tflops_median")]
    for dtype in ("bf16", "fp8"):
        points = [(p.m, p.n, p.k, p.flops_per_s) for p in d.gemm[dtype]]
        # in the file's order; the file's C[m,n] = A[m,k] B[k,n] columns are m, k, n
        want = [(int(r["m"]), int(r["n"]), int(r["k"]), float(r["tflops_median"]) * 1e12) for r in rows
                if r["dtype"] == dtype]
        assert [p[:3] for p in points] == [w[:3] for w in want]
        assert [p[3] for p in points] == pytest.approx([w[3] for w in want])
    assert isinstance(_rates().gemm_curve, RateCurve) and isinstance(_rates("fp8").linear_curve, RateCurve)


def test_a_curve_of_aligned_gemms_does_not_time_a_misaligned_one():
    """The LM head over vocab 50257 (not a multiple of 8): the H200's points are all aligned (up to
    800 TFLOP/s), so the shape model's unaligned bound times it, 2/16 of the bf16 peak."""
    rates = _rates()
    assert isinstance(rates.misaligned_curve, GemmShapeModel)
    m, n, k = 8192, 50257, 768
    t = rates.gemm(m, n, k, aligned=False)
    bound = 2 * m * n * k / unaligned_gemm_rate(989e12, 2)
    assert t == pytest.approx(bound, rel=0.02) and t >= bound
    assert rates.gemm(m, 50304, k) < t / 3  # padded to a multiple of 8 it runs at the curve's rate
    # the H100 measured its LM heads: their curve stays
    h100 = device_rates(hw_params(pm.load_system("dgx-h100"), "bf16"), "bf16", load_stack("pytorch-eager"))
    assert isinstance(h100.misaligned_curve, RateCurve)


def test_datasets_are_marked_by_what_they_were_used_for():
    assert DATASETS["h200-eager-profiled"].kind == IN_SAMPLE
    assert DATASETS["h200-eager"].kind == HELD_OUT
    profiled = {c.case for c in dataset_cases("h200-eager-profiled")}
    held = {c.case for c in dataset_cases("h200-eager")}
    assert profiled == {"gpt2_124m_b8_eager", "resnet50_b256_eager", "bert_large_b16_s512_eager", "gpt2_355m_b8_compiled"}
    assert len(held) == 4 and not profiled & held


def test_eager_runs_within_the_issue_bound_and_memory_close():
    """Transformers timed kernel by kernel from the stack's inventory (GPT-2, Llama, BERT): eager
    steps within 10 % (issue 10's bound for a hardware group) and peak memory within 5 % of
    torch.cuda.max_memory_allocated. ResNet-50's memory within 5 % too. Reported, not bounded here:
    the compiled runs and ResNet-50's step time (-12 %)."""
    with open(DATA / "eager_runs.csv") as fh:
        rows = {r["case"]: r for r in csv.DictReader(fh)}
    results = [r for name in ("h200-eager-profiled", "h200-eager") for r in validate(name).cases]
    for res in results:
        if rows[res.case]["stack"] != "pytorch-eager":
            continue
        if rows[res.case]["model"] != "resnet50":
            assert abs(res.predicted_s / res.measured_s - 1) < 0.10, res.case
        case = next(c for name in ("h200-eager-profiled", "h200-eager") for c in dataset_cases(name) if c.case == res.case)
        memory = pm.predict(case.model, case.system, case.plan).memory_bytes_per_device["total"]
        assert memory == pytest.approx(float(rows[res.case]["peak_allocated_gb"]) * 1e9, rel=0.05), res.case


def test_batch_norm_efficiency_is_the_gpus_only():
    """The pytorch-eager stack's batch-norm and max-pool efficiencies were measured on ATen's CUDA
    kernels (the H200 ResNet-50 kernel table: 13.29 ms forward, 10.77 ms backward over 53 layers
    against 4.01 / 6.68 ms of bytes at the copy bandwidth); a CPU keeps the copy bandwidth."""
    stack = load_stack("pytorch-eager")
    assert stack.kernel_efficiency(("batchnorm",), "fwd", "gpu") == pytest.approx(4.01 / 13.29, abs=0.002)
    assert stack.kernel_efficiency(("batchnorm",), "bwd", "gpu") == pytest.approx(6.68 / 10.77, abs=0.002)
    assert stack.kernel_efficiency(("batchnorm",), "fwd", "cpu") == 1.0
    assert stack.kernel_efficiency(("layernorm",), "fwd", "cpu") == stack.kernel_efficiency(("layernorm",), "fwd", "gpu")


def test_a_device_kind_the_loader_does_not_know_is_refused(tmp_path):
    from perfmodel.errors import SpecError
    from importlib import resources

    text = (resources.files("perfmodel.specs") / "stacks" / "pytorch-eager.toml").read_text()
    bad = text.replace("batchnorm = { gpu = [0.302, 0.620] }", "batchnorm = { tpu = [0.302, 0.620] }")
    bad = bad.replace('name = "pytorch-eager"', 'name = "eager-x"')
    path = tmp_path / "eager-x.toml"
    path.write_text(bad)
    with pytest.raises(SpecError, match="batchnorm.tpu.*device kind"):
        load_stack(str(path))


def test_an_encoder_runs_the_bert_inventory_whose_kernels_the_profile_counts():
    """BERT (post-LayerNorm, separate q/k/v, one exact-GELU kernel) has its own inventory. Per layer
    the H200 kernel table of an eager BERT-large step counts (over 24 layers): 832 cast kernels
    (34 a layer), 145 bias-gradient reductions (6), 435 GEMMs (18), 48 mixed-dtype adds forward (2)
    and 98 fp32 gradient accumulations (4), 48 dropouts each way (2)."""
    from perfmodel.prediction.eager import family_of, inventory_of

    bert, gpt2 = pm.load_model("bert-large"), pm.load_model("gpt2-124m")
    assert family_of(bert) == "bert" and family_of(gpt2) == "gpt2"
    inv = inventory_of(load_stack("pytorch-eager"), bert)
    kernels = inv.forward + inv.backward
    casts = [k for k in kernels if k.op == "copy"]
    assert len(casts) == 34 and all(k.autocast for k in casts)
    assert sum(k.name.endswith("bias_grad") for k in kernels) == 6
    assert sum(k.op == "gemm" for k in kernels) == 18
    assert sum(k.op == "residual_add" for k in inv.forward) == 2 and sum(k.op == "residual_add" for k in inv.backward) == 4
    assert sum(k.op == "dropout" for k in inv.forward) == 2 and sum(k.op == "dropout" for k in inv.backward) == 2
    with open(DATA / "profile_kernels_bert_large.csv") as fh:
        table = list(csv.DictReader(fh))
    copies = sum(int(r["count"]) for r in table if "copy_kernel" in r["kernel"] and "Memset" not in r["kernel"])
    assert copies // 24 == 34  # the embeddings' and the head's casts are the remainder


def test_the_cast_efficiency_is_the_profiles_casts_against_their_bytes():
    """pytorch-eager's GPU ``copy`` efficiency: at it, the casts of the eager GPT-2 124M step (the
    inventory's, 12 layers, and the head's; each at least the launch overhead) take what the step's
    cast kernels (direct_copy and bfloat16_copy) took on the H200: 7.48 ms; at the copy bandwidth
    they would take 5.78. A CPU keeps the copy bandwidth."""
    from perfmodel.prediction.detail import layer_kernel_table
    from perfmodel.prediction.eager import head_autocast_times

    stack = load_stack("pytorch-eager")
    assert stack.kernel_efficiency(("copy",), "fwd", "gpu") == 0.725
    assert stack.kernel_efficiency(("copy",), "fwd", "cpu") == 1.0
    model = pm.load_model("gpt2-124m")
    plan = pm.Plan(devices=1, micro_batch=8, global_batch=8, seq=1024, stack="pytorch-eager")
    rows = layer_kernel_table(model, pm.load_system("h200-sxm-141gb"), plan)
    layer = sum(r["time_us"] for r in rows if r["op"] == "copy" and not r["kernel"].endswith(".cat")) * 1e-6
    head = sum(head_autocast_times(model, stack, _rates(), b=8, s=1024, t=1))
    with open(DATA / "eager_kernels_gpt2_124m.csv") as fh:
        measured = sum(float(r["us_per_step"]) for r in csv.DictReader(fh)
                       if "direct_copy_kernel" in r["kernel"] or "bfloat16_copy_kernel" in r["kernel"]) * 1e-6
    assert measured == pytest.approx(7.48e-3, rel=0.002)
    assert 12 * layer + head == pytest.approx(measured, rel=0.01)


def test_attention_dropout_adds_its_random_numbers_to_the_fused_forward():
    """The H200's [measured] attention_dropout (0.48 ps a computed score, fitted on the eager GPT-2
    124M and BERT-large kernel tables): a model trained with attention dropout pays it on every
    computed score of the fused attention forward (half of them for a causal kernel), not on its
    backward; a model without attention dropout (Llama; OPT's attention_dropout 0) and a device
    without the measurement (the H100) pay nothing."""
    import perfmodel as pm
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.layers import flash_attention_times
    from perfmodel.prediction.step import device_rates
    from perfmodel.specs.stack import load_stack

    eager = load_stack("pytorch-eager")
    h200 = hw_params(pm.load_system("h200-sxm-141gb"), "bf16")
    assert h200.attention_dropout_time == pytest.approx(0.48e-12)
    rates = device_rates(h200, "bf16", eager)
    gpt2 = pm.load_model("gpt2-124m")
    plain = dataclasses.replace(gpt2, attention_dropout=False)
    with_, without = (flash_attention_times(m, rates, b=8, s=1024, t=1, causal=True) for m in (gpt2, plain))
    assert with_["fwd"][0] - without["fwd"][0] == pytest.approx(8 * 12 * 1024**2 / 2 * 0.48e-12, rel=1e-9)
    assert with_["bwd"][0] == pytest.approx(without["bwd"][0], rel=1e-12)
    full = flash_attention_times(gpt2, rates, b=8, s=1024, t=1, causal=False)
    full_plain = flash_attention_times(plain, rates, b=8, s=1024, t=1, causal=False)
    assert full["fwd"][0] - full_plain["fwd"][0] == pytest.approx(8 * 12 * 1024**2 * 0.48e-12, rel=1e-9)
    h100 = device_rates(hw_params(pm.load_system("h100-sxm5-80gb"), "bf16"), "bf16", eager)
    assert flash_attention_times(gpt2, h100, b=8, s=1024, t=1) == flash_attention_times(plain, h100, b=8, s=1024, t=1)
