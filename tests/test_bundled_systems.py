"""The systems of the held-out runs (issue 10): TPU v5e/v5p pods, GCP A3 High, A100 40GB nodes; the
jax-xla stack; the MaxText and A100 40GB held-out rows they make predictable.

Every expected number is worked out in a comment from the spec files' sources (Google Cloud TPU
docs, Google Cloud "Networking and GPU machines", the A100 datasheet as tabulated by
glennklockwood.com, MaxText's maxtext_utils.py), not read back from the code."""

import subprocess
import sys
from pathlib import Path

import pytest

import perfmodel as pm
from perfmodel.errors import PlanError
from perfmodel.prediction.kernels import gemm_shape_model
from perfmodel.specs.registry import bundled_dir, check_file, load_device, load_system
from perfmodel.validation import validate

NEW_FILES = ("xpu/tpu-v5e.toml", "link/ici-v5e.toml", "system/tpu-v5e-pod.toml", "system/tpu-v5p-pod.toml",
             "gpu/a100-sxm4-40gb.toml", "system/dgx-a100-40g.toml", "link/eth-200g.toml",
             "system/a3-highgpu-8g.toml")


@pytest.mark.parametrize("rel", NEW_FILES)
def test_new_spec_files_pass_hardware_check(rel):
    path = Path(bundled_dir()) / rel
    assert check_file(path).name == path.stem
    out = subprocess.run([sys.executable, "-m", "perfmodel", "hardware", "check", str(path)],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")


def test_tpu_v5e_chip_link_and_pod_match_the_google_table():
    chip = load_device("tpu-v5e")
    assert chip.peak("bf16") == 197e12 and chip.memory_bytes == 16e9 and chip.memory_bandwidth == 819e9
    # 4 MXUs of 128 x 128 per chip: 197e12 / (4 x 128 x 128 x 2 FLOP) = 1.503 GHz, a plausible clock
    assert chip.matmul.units == 4 and chip.matmul.tile == (128, 128, 128)
    pod = load_system("tpu-v5e-pod")
    assert pod.devices_per_node == 256 and pod.fabric.kind == "torus" and tuple(pod.fabric.dims) == (16, 16)
    # 400 GB/s bidirectional ICI per chip over 4 ports: 50 GB/s per link per direction; Google's
    # pod all-reduce bandwidth 51.2 TB/s = 256 chips x 4 links x 50 GB/s
    assert pod.fabric.link.bandwidth == 50e9
    assert 256 * 4 * pod.fabric.link.bandwidth == pytest.approx(51.2e12)
    # DCN: 32 hosts x 2 x 100 Gb/s = 64 NICs x 12.5 GB/s = 800 GB/s = Google's 6.4 Tb/s per pod
    assert pod.network.nics_per_node * pod.network.link.bandwidth == pytest.approx(6.4e12 / 8)


def test_tpu_v5p_pod_is_16x20x28_without_dcn():
    pod = load_system("tpu-v5p-pod")
    # 16 x 20 x 28 = 8960 chips (Google: 8960 chips per pod; scaling-book: 16x20x28)
    assert pod.devices_per_node == 16 * 20 * 28 == 8960
    assert pod.network is None and pod.fabric.link.bandwidth == 100e9


def test_a3_high_network_and_a100_40gb():
    a3 = load_system("a3-highgpu-8g")
    # 1,000 Gb/s over 5 NICs = 200 Gb/s each; 4 GPU NICs: 4 x 25 GB/s = 100 GB/s per VM
    assert a3.network.nics_per_node * a3.network.link.bandwidth == 4 * 200e9 / 8
    # GPUDirect-TCPX reaches 65.7-67.8 GB/s of all-reduce bus bandwidth between two VMs (SkyPilot's
    # nccl-tests table, 256 MB - 2 GB): their mean over the 100 GB/s of the four GPU NICs
    assert a3.network.efficiency == pytest.approx((67.82 + 67.09 + 66.20 + 65.72) / 4 / 100, abs=5e-4)
    assert a3.device.name == "h100-sxm5-80gb" and a3.fabric.links_per_device == 18
    node = load_system("dgx-a100-40g")
    assert node.device.memory_bytes == pytest.approx(39.586 * 2**30) and node.device.memory_bandwidth == 1555e9
    # 1600 Gb/s node to node (the LLM Foundry section title) = 8 x 200 Gb/s
    assert node.network.nics_per_node * node.network.link.bandwidth == 1600e9 / 8
    # same SMs, tile and MAMF as the 80 GB part, so the same achievable GEMM rate
    r40 = gemm_shape_model(load_device("a100-sxm4-40gb"), "bf16").achievable_flops_per_s
    r80 = gemm_shape_model(load_device("a100-sxm4-80gb"), "bf16").achievable_flops_per_s
    assert r40 == r80 and r40 < 312e12


def test_tpu_v5e_gemm_by_hand():
    """C = A B with m = n = k = 4096 on one v5e chip at its measured XLA matmul rate (181.8 TFLOP/s
    at 8192^3, the JAX Pallas TPU guide). The unquantized rate R divides that measurement by the
    8192^3 shape's own quantization: 4096 output tiles of 128 x 128 over 4 MXUs = 1024 waves of
    64 k-steps + 1 fill step, so R = 181.8e12 x 65 / 64 = 184.6 TFLOP/s. At 4096^3: 1024 tiles =
    256 waves of 32 + 1 steps, each step of a wave 4 units x 2 x 128^3 FLOP at R:
    256 x 33 x 4 x 4,194,304 / R = 767.7 us; epilogue: 256 waves x 4 tiles x 128^2 x 2 B
    / 819 GB/s = 41.0 us; the memory roofline (3 x 4096^2 x 2 B / 819 GB/s = 123 us) is lower."""
    chip = load_device("tpu-v5e")
    model = gemm_shape_model(chip, "bf16")
    rate = 181.8e12 * 65 / 64
    assert model.achievable_flops_per_s == pytest.approx(rate, rel=1e-12)
    t = model.time(4096.0, 4096.0, 4096.0, True, chip.memory_bandwidth, 1.0)
    assert t == pytest.approx(256 * 33 * 4 * 2 * 128**3 / rate + 1024 * 128**2 * 2 / 819e9, rel=1e-9)
    assert t == pytest.approx(808.6e-6, rel=1e-3)


@pytest.mark.parametrize("system,devices,plan", [
    ("tpu-v5e-pod", 256, dict(zero=3, micro_batch=2, global_batch=512, seq=2048, recompute="full")),
    ("tpu-v5e-pod", 512, dict(zero=3, micro_batch=2, global_batch=1024, seq=2048, recompute="full")),
    ("tpu-v5p-pod", 64, dict(tp=4, zero=3, micro_batch=8, global_batch=128, seq=2048, recompute="selective")),
    ("a3-highgpu-8g", 16, dict(zero=3, micro_batch=4, global_batch=64, seq=4096, recompute="full")),
    ("dgx-a100-40g", 16, dict(zero=3, micro_batch=4, global_batch=64, seq=4096, recompute="full")),
])
def test_predict_runs_on_each_new_system(system, devices, plan):
    p = pm.predict("llama2-7b", system, pm.Plan(devices=devices, stack="jax-xla", **plan))
    assert p.step_time_s > 0 and 0 < p.mfu < 1
    assert p.plan.devices == devices and p.details["stack"] == "jax-xla"


def test_jax_xla_stack_runs_fsdp_as_zero3_not_zero1():
    with pytest.raises(PlanError, match="jax-xla.*ZeRO stage 1"):
        pm.predict("gpt2-124m", "a3-highgpu-8g", pm.Plan(devices=8, zero=1, stack="jax-xla"))
    p = pm.predict("gpt2-124m", "a3-highgpu-8g", pm.Plan(devices=8, zero=3, stack="jax-xla"))
    assert p.details["stack"] == "jax-xla"


def test_jax_xla_reduces_bf16_gradients_of_fp32_parameters():
    """MaxText keeps float32 parameters but casts each kernel to bfloat16 where it is used, so the
    gradients XLA reduce-scatters and all-reduces are bfloat16 (2 B), the parameters' gradient
    buffers and AdamW states float32."""
    from perfmodel.specs.stack import load_stack
    stack = load_stack("jax-xla")
    assert stack.grad_reduce_bytes == 2 and stack.autocast
    plan = pm.Plan(devices=8, zero=3, micro_batch=4, global_batch=32, seq=4096, stack="jax-xla")
    r = pm.predict("llama2-7b", "a3-highgpu-8g", plan)
    # the held gradients stay float32: 4 B a parameter, sharded over the 8 ranks
    assert r.memory_bytes_per_device["gradients"] == pytest.approx(pm.load_model("llama2-7b").n_params * 4 / 8)


# --- held-out rows these systems make predictable -------------------------------------------------

def _heldout():
    r = validate("heldout-2022-2024")
    return {c.case: c for c in r.cases}, {s.case: s.reason for s in r.skipped}


def test_rows_enabled_by_the_new_systems_are_predicted():
    cases, skipped = _heldout()
    for name in ("mpt13b_a100_40g_128gpu", "maxtext_llama2_7b_a3_1vm"):
        assert name in cases and name not in skipped
    # LLM Foundry: 2048 sequences x 2048 tokens / (1972 tokens/s/GPU x 128 GPUs) = 16.615 s
    assert cases["mpt13b_a100_40g_128gpu"].measured_s == pytest.approx(2048 * 2048 / (1972 * 128))
    # MaxText's convention (maxtext_utils.py calculate_tflops_training_per_device): per chip and step
    # 6 N s b + 6 h L d s^2 b with Llama 2 7B's N = 6,738,415,616 (embedding 32000 x 4096 twice,
    # 32 x (4 x 4096^2 + 3 x 4096 x 11008 + 2 x 4096), final norm 4096), s = 4096, b = 4,
    # h = 32, L = 32, d = 128: 6.6242e14 + 5.2777e13 = 7.1520e14 FLOP at 492 TFLOP/s = 1.4537 s
    n_params = 2 * 32000 * 4096 + 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096
    assert n_params == 6_738_415_616
    flops = 6 * n_params * 4096 * 4 + 6 * 32 * 32 * 128 * 4096**2 * 4
    assert cases["maxtext_llama2_7b_a3_1vm"].measured_s == pytest.approx(flops / 492e12)
    assert cases["maxtext_llama2_7b_a3_1vm"].measured_s == pytest.approx(1.4537, rel=1e-4)


def test_maxtext_plan_of_the_a3_row():
    from perfmodel.validation import dataset_cases

    case = next(c for c in dataset_cases("heldout-2022-2024") if c.case == "maxtext_llama2_7b_a3_1vm")
    # ici_fsdp_parallelism=8 -> ZeRO-3 over 8; per_device_batch_size 4 x 8 chips = 32 sequences, one
    # micro-batch each (no accumulation); remat_policy=minimal_flash -> selective
    plan = case.plan
    assert (case.system, plan.stack, plan.zero, plan.devices, plan.tp, plan.micro_batch, plan.global_batch,
            plan.recompute) == ("a3-highgpu-8g", "jax-xla", 3, 8, 1, 4, 32, "selective")


def test_synthetic_and_multi_slice_maxtext_rows_are_stated():
    """MaxText's synthetic models keep base.yml's head_dim 256 (32 heads x 256 = 8192 attention
    width on hidden 10240); FSDP within a VM/slice x data parallelism across them is hybrid
    sharding over one VM's ranks."""
    from perfmodel.validation import dataset_cases

    by_name = {c.case: c for c in dataset_cases("heldout-2022-2024") if hasattr(c, "model")}
    skipped = _heldout()[1]
    assert [n for n in skipped if n.startswith("maxtext_")] == ["maxtext_mixtral8x7b_v6e_256"]
    assert by_name["maxtext_32b_v5p_1x128"].model.head_dim == 256
    assert by_name["maxtext_32b_v5p_1x128"].model.hidden == 10240
    two_vms = by_name["maxtext_llama2_7b_a3_2vm"].plan
    assert (two_vms.devices, two_vms.zero, two_vms.shard_group) == (16, 3, 8)
    assert by_name["maxtext_llama2_7b_a3_1vm"].plan.shard_group is None
    # (the MaxText Mixtral run on TPU v6e, no longer skipped for its experts, names the missing system)
    assert not any("no bundled system" in skipped[n] for n in skipped
                   if n.startswith("maxtext_") and n != "maxtext_mixtral8x7b_v6e_256")
    assert "no bundled system for 'Google TPU v6e" in skipped["maxtext_mixtral8x7b_v6e_256"]


def test_a_maxtext_row_published_in_tokens_per_second_is_not_read_as_tflops():
    """The Mixtral v5p row gives 2909 tokens/s per chip (not MaxText's TFLOP/s): 9216 sequences x 4096
    tokens / (2909 x 256 chips) = 50.69 s per step; the recipe sets no remat policy, so base.yml's
    default (full) runs."""
    from perfmodel.validation import dataset_cases

    case = next(c for c in dataset_cases("heldout-2022-2024") if c.case == "maxtext_mixtral8x7b_v5p_256chips")
    assert case.measured_s == pytest.approx(9216 * 4096 / (2909 * 256))
    assert case.plan.recompute == "full"
