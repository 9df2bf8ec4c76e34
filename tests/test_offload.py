"""CPU offload (issue 11): ZeRO-Offload's optimizer on the host and activations parked in host
memory, checked against hand calculations (Ren et al., USENIX ATC'21, Sections 4-5), and the
PCIe contention of devices offloading at once behind one switch (formulas.pcie_copies).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import perfmodel as pm
from perfmodel.errors import MissingSpecError, PlanError
from perfmodel.prediction.hardware import hw_params, pcie_dma_bandwidth
from perfmodel.prediction.offload import host_copy_bandwidth
from perfmodel.prediction.step import Choices, transformer_terms
from perfmodel.specs.registry import load_link
from perfmodel.specs.stack import load_stack
from perfmodel.workloads import load_model

# a ~10B GPT (50 layers, hidden 4096, 32 heads, seq 1024: the size of DeepSpeed's ZeRO-Offload tutorial)
MODEL = load_model("gpt2-1.5b", layers=50, hidden=4096, heads=32, seq=1024)
ONE_GPU = dict(devices=1, micro_batch=4, global_batch=4, stack="deepspeed", zero=2, recompute="full", dtype="fp16")
PCIE4 = pcie_dma_bandwidth(load_link("pcie4-x16"))  # 28.73 GB/s of data per direction (256 B payloads)
# what one EPYC 7742 socket's cores reach in DRAM at a copy's read/write mix (hardware/cpu/epyc-7742.toml
# [measured], the Mess benchmark: 67 % of 8 channels x DDR4-3200 x 8 B = 204.8 GB/s)
EPYC_7742_DRAM = 138.2e9


def test_zero_offload_of_a_10b_model_on_one_a100():
    base = pm.predict(MODEL, "dgx-a100", pm.Plan(**ONE_GPU))
    r = pm.predict(MODEL, "dgx-a100", pm.Plan(offload="optimizer", **ONE_GPU))
    p = r.details["params_per_device"]
    assert p == pytest.approx(10.28e9, rel=1e-3)
    mem = r.memory_bytes_per_device
    # device: fp16 weights (2 B) + activations + gradients: under ZeRO-2 the gradient partition goes
    # to the host too, the device keeps one 5e8-element fp16 reduce bucket (1 GB) of its 20.6 GB
    assert mem["optimizer"] == 0.0
    assert mem["weights"] == pytest.approx(2 * p) and mem["gradients"] == pytest.approx(5e8 * 2)
    assert base.memory_bytes_per_device["gradients"] == pytest.approx(2 * p)
    assert mem["total"] == pytest.approx(mem["weights"] + mem["gradients"] + mem["activations"])
    assert base.memory_bytes_per_device["optimizer"] == pytest.approx(12 * p)  # what moved: K = 12
    assert not base.fits_in_memory and r.fits_in_memory  # 168 GB does not fit 80 GB, 25 GB does
    # ZeRO-1 with offload keeps the whole fp16 gradient on the device
    z1 = pm.predict(MODEL, "dgx-a100", pm.Plan(offload="optimizer", **{**ONE_GPU, "zero": 1}))
    assert z1.memory_bytes_per_device["gradients"] == pytest.approx(2 * p)
    assert z1.memory_bytes_per_device["optimizer"] == 0.0
    # host: fp32 master + 2 moments (12 B) + the fp32 gradient buffer (4 B) = 16 B per parameter
    assert r.details["host_memory_bytes_per_device"] == pytest.approx(16 * p)  # 164 GB
    # one GPU alone behind its PCIe switch: the whole Gen4 x16 link
    assert r.details["host_copy_bandwidth"] == pytest.approx(PCIE4)
    assert PCIE4 == pytest.approx(28.73e9, rel=1e-3)
    # one micro-batch a step: DeepSpeed casts the gradient partition to fp32 on the device and copies
    # 4 B/param down under the backward; the fp16 parameters come back up, 2 B/param
    d2h = 4 * p / PCIE4  # 1.43 s
    assert r.details["offload_d2h_per_microbatch_s"] == pytest.approx(d2h)
    assert r.details["offload_h2d_s"] == pytest.approx(2 * p / PCIE4)
    # CPU Adam: 28 B/param (read p, g, m, v; write p, m, v) over 2 sockets x 138.2 GB/s
    cpu = p * 28 / (2 * EPYC_7742_DRAM)  # 1.04 s
    assert r.details["cpu_optimizer_s"] == pytest.approx(cpu)
    # the CPU step and the copy back are exposed (no DPU); the gradient copy hides under the backward
    # up to the backward's length
    assert r.breakdown_s["optimizer"] == pytest.approx(cpu + 2 * p / PCIE4)
    stack = load_stack("deepspeed")
    c = Choices("fp16", "full", False, "1f1b", 2, "allreduce", True, "adamw", "optimizer")
    terms = transformer_terms(MODEL, stack, hw_params(pm.load_system("dgx-a100"), "fp16", stack.gemm_rate_scale), c,
                              tp=1, pp=1, dp=1, micro_batch=4, global_batch=4, virtual_stages=1, seq=1024, devices=1)
    backward = terms.backward_per_microbatch_s
    assert 0 < backward < d2h
    assert r.breakdown_s["other"] == pytest.approx(d2h - backward)
    assert r.breakdown_s["compute"] == pytest.approx(base.breakdown_s["compute"])
    assert r.step_time_s == pytest.approx(sum(r.breakdown_s.values()))


def test_gradient_copy_longer_than_the_backward_is_exposed_per_micro_batch():
    stack, c = load_stack("deepspeed"), Choices("fp16", "full", False, "1f1b", 2, "allreduce", True, "adamw", "optimizer")
    hw = replace(hw_params(pm.load_system("dgx-a100"), "fp16", stack.gemm_rate_scale), host_link_bandwidth=1e9)
    r = transformer_terms(MODEL, stack, hw, c, tp=1, pp=1, dp=1, micro_batch=1, global_batch=2, virtual_stages=1,
                          seq=1024, devices=1)
    p = r.params_per_device
    # 2 micro-batches: the first copies its fp16 gradients to a host buffer (2 B/param, 20.6 s over
    # a 1 GB/s link), the last brings them back to add to (2 B) and copies the sum down in fp32 (4 B)
    first, last = 2 * p / 1e9, 6 * p / 1e9
    assert r.offload.d2h_s == pytest.approx((first + last) / 2)
    # each micro-batch's copies exposed beyond its backward (recompute included)
    assert r.breakdown["other"] == pytest.approx(first + last - 2 * r.backward_per_microbatch_s)


def test_activation_offload_keeps_two_layers_and_exposes_what_the_layer_compute_cannot_hide():
    stack = load_stack("deepspeed")
    system = pm.load_system("dgx-a100")
    hw = hw_params(system, "fp16", stack.gemm_rate_scale)
    args = dict(tp=1, pp=1, dp=1, micro_batch=2, global_batch=4, virtual_stages=1, seq=1024, devices=1)

    def terms(offload, link, recompute="none"):
        c = Choices("fp16", recompute, False, "1f1b", 2, "allreduce", True, "adamw", offload)
        return transformer_terms(MODEL, stack, replace(hw, host_link_bandwidth=link), c, **args)

    base, r = terms("none", PCIE4), terms("activations", PCIE4)
    per_layer = r.offload.host_bytes / (50 - 2)  # the host holds 48 of 50 layers (1 micro-batch in flight)
    assert base.memory["activations"] - r.memory["activations"] == pytest.approx(48 * per_layer)
    assert r.memory["total"] == pytest.approx(base.memory["total"] - 48 * per_layer)
    # a slow link (100 MB/s): each copy outlasts its layer's forward and backward, exposed by
    # m x L x (2 copy - (forward + backward)) = 2 x 50 x (2 copy - layer compute)
    slow = terms("activations", 100e6)
    copy = per_layer / 100e6
    assert slow.breakdown["other"] == pytest.approx(2 * 50 * (2 * copy - slow.layer_compute_s))
    # without recompute a layer saves ~620 MB (34 sbh + 5 a s^2 b bytes), 21.6 ms over PCIe Gen4, longer
    # than its ~3-7 ms of compute: link-bound. With full recompute it saves its 16 MB input (2 sbh),
    # 0.58 ms, hidden under the layer's compute
    assert r.breakdown["other"] > 1.0
    full = terms("activations", PCIE4, "full")
    assert full.offload.host_bytes == pytest.approx(48 * 2 * 1024 * 2 * 4096)
    assert full.breakdown["other"] == 0.0


def test_two_gpus_behind_one_switch_each_get_half_the_uplink():
    hw = hw_params(pm.load_system("pcie-8gpu"), "bf16")
    one, two = host_copy_bandwidth(hw, 1), host_copy_bandwidth(hw, 2)
    assert one == pytest.approx(PCIE4)  # alone: its own x16 Gen4 link (the uplink is the same link)
    assert two == pytest.approx(PCIE4 / 2)  # both GPUs of the switch copy at once: uplink / 2
    # all 8: 2 per switch on 4 switches; uplink / 2 = 14.4 GB/s < root 126 GB/s / 8 = 15.75 GB/s
    assert host_copy_bandwidth(hw, 8) == pytest.approx(min(PCIE4 / 2, 126e9 / 8))
    # DGX A100: GPUs in pairs behind PCIe Gen4 switches to the CPUs ([host] table)
    assert host_copy_bandwidth(hw_params(pm.load_system("dgx-a100"), "bf16"), 8) == pytest.approx(PCIE4 / 2)
    r = pm.predict("llama2-7b", "pcie-8gpu", pm.Plan(devices=2, zero=2, stack="fsdp", micro_batch=1,
                                                     offload="activations"))
    assert r.details["host_copy_bandwidth"] == pytest.approx(PCIE4 / 2)


def test_host_memory_too_small_is_refused_in_one_line():
    # GPT-3 175B on one DGX A100 node with ZeRO-3: 175e9 / 8 x 16 B = 350 GB per GPU, 2.8 TB > 2 TB
    with pytest.raises(PlanError, match="host memory") as err:
        pm.predict("gpt3-175b", "dgx-a100", pm.Plan(devices=8, zero=3, stack="deepspeed", micro_batch=1,
                                                    recompute="full", offload="optimizer"))
    assert "\n" not in str(err.value) and "2 TB" in str(err.value)


@pytest.mark.parametrize("system, plan, error, message", [
    ("dgx-h100", dict(stack="megatron-core", offload="optimizer"), PlanError,
     "stack 'megatron-core' does not offload optimizer"),
    ("dgx-a100", dict(stack="megatron", offload="activations"), PlanError, "stack 'megatron' does not offload activations"),
    ("pcie-8gpu", dict(stack="fsdp", offload="optimizer"), MissingSpecError, "names no host_cpu"),
])
def test_refusals(system, plan, error, message):
    with pytest.raises(error, match=message) as err:
        pm.predict("llama2-7b", system, pm.Plan(devices=8, zero=2 if plan["stack"] == "fsdp" else 1, micro_batch=1,
                                                **plan))
    assert "\n" not in str(err.value)


def test_sweep_offload_key_matches_predict_and_marks_unsupported_rows():
    df = pm.sweep(MODEL, "dgx-a100", {"offload": ["none", "optimizer"], "stack": ["deepspeed", "megatron"]},
                  devices=1, micro_batch=4, zero=1, recompute="full", dtype="fp16")
    row = df[(df["offload"] == "optimizer") & (df["stack"] == "deepspeed")]
    one = pm.predict(MODEL, "dgx-a100", pm.Plan(offload="optimizer", **{**ONE_GPU, "zero": 1}))
    assert row["step_time_s"].item() == pytest.approx(one.step_time_s)
    assert row["fits_in_memory"].item()
    bad = df[(df["offload"] == "optimizer") & (df["stack"] == "megatron")]
    assert "does not offload optimizer" in str(bad["reason"].item())


def test_optimize_never_offloads():
    # optimize does not search offload or shard groups: every plan it returns runs on its stack as is
    best = pm.optimize(MODEL, "dgx-a100", devices=8, global_batch=64, top=3)
    assert best.plans and all(p.offload == "none" and p.shard_group is None for p in best.plans)


def test_sweep_marks_offload_without_a_host_cpu_invalid():
    df = pm.sweep("llama2-7b", "pcie-8gpu", {"offload": ["optimizer", "activations"]}, devices=8, zero=2,
                  stack="fsdp")
    reasons = dict(zip(df["offload"].astype(str), df["reason"].astype(object).fillna("")))
    assert "names no host_cpu" in reasons["optimizer"] and reasons["activations"] == ""


@pytest.mark.parametrize("half, m, total", [(2, 1, 4), (2, 2, 8), (2, 5, 20), (4, 1, 4), (4, 3, 20)])
def test_gradient_copies_follow_deepspeed_accumulation(half, m, total):
    # fp32 at the last micro-batch (4 B), 16-bit partial sums down before it and back up after the
    # first (h each): 4 + 2 h (m - 1) bytes per parameter a step
    from perfmodel.prediction.offload import gradient_copy_bytes

    first, middle, last = gradient_copy_bytes(half, m)
    assert float(first + max(m - 2, 0) * middle + last) == total == 4 + 2 * half * (m - 1)


def test_three_micro_batches_expose_each_copy_beyond_its_own_backward():
    # m = 3 over a 1 GB/s link: the first micro-batch copies its fp16 gradients down (2 B/param), the
    # second brings the sum up and sends it down again (2 + 2), the last brings it up and sends the
    # fp32 total down (2 + 4); each exposed beyond its own backward
    stack, c = load_stack("deepspeed"), Choices("fp16", "full", False, "1f1b", 2, "allreduce", True, "adamw", "optimizer")
    hw = replace(hw_params(pm.load_system("dgx-a100"), "fp16", stack.gemm_rate_scale), host_link_bandwidth=1e9)
    r = transformer_terms(MODEL, stack, hw, c, tp=1, pp=1, dp=1, micro_batch=1, global_batch=3, virtual_stages=1,
                          seq=1024, devices=1)
    p, back = r.params_per_device, r.backward_per_microbatch_s
    copies = (2 * p / 1e9, 4 * p / 1e9, 6 * p / 1e9)
    assert all(t > back for t in copies)
    assert r.breakdown["other"] == pytest.approx(sum(t - back for t in copies))
    assert r.offload.d2h_s == pytest.approx(sum(copies) / 3)
