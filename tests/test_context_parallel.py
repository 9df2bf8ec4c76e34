"""Context parallelism (issue 11): Megatron-Core's --context-parallel-size as Transformer Engine runs
it (ring attention, load-balanced causal chunks). Hand calculations on Llama 2 7B (h 4096, 32 heads
of 128, 32 kv heads, ffn 11008 SwiGLU) at seq 8192 on DGX H100."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

import perfmodel as pm
from perfmodel.errors import PlanError
from perfmodel.formulas import context as ctx
from perfmodel.prediction.context import context_level
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.layers import flash_attention_times, layer_times
from perfmodel.prediction.step import device_rates
from perfmodel.specs.registry import load_spec
from perfmodel.specs.stack import load_stack

SEQ = 8192
H, HEADS, D, F = 4096, 32, 128, 11008
# one layer's forward linear-layer FLOPs per token: 2 x (QKV h x 3h + proj h x h + SwiGLU 3 x h x f)
GEMM_FLOPS_PER_TOKEN = 2 * (H * 3 * H + H * H + 3 * H * F)  # = 404,750,336
# causal attention core of one sequence, forward: 4 x 0.5 x s^2 x a x d
CAUSAL_ATTENTION_FLOPS = 2 * SEQ**2 * HEADS * D  # = 549,755,813,888


def _layer(cp, tp=1):
    model = pm.load_model("llama2-7b")
    stack = load_stack("megatron-core")
    hw = hw_params(load_spec("dgx-h100"), "bf16", stack.gemm_rate_scale)
    rates = device_rates(hw, "bf16", stack)
    return model, rates, layer_times(model, stack, rates, 0.0, float("inf"), b=1, s=SEQ / cp, t=tp, sp=False,
                                     recompute="none", causal=True, cp=cp)


def _predict(system="dgx-h100", **plan):
    base = dict(seq=SEQ, micro_batch=1, global_batch=16, recompute="selective", zero=1, stack="megatron-core")
    return pm.predict("llama2-7b", system, pm.Plan(**{**base, **plan}))


def test_gemm_and_attention_flops_per_device_halve_with_cp_2():
    _, _, one = _layer(cp=1)
    _, _, two = _layer(cp=2)
    # model FLOPs of a layer = 3 x (GEMMs + causal attention) of the rank's work
    assert one.model_flops == pytest.approx(3 * (SEQ * GEMM_FLOPS_PER_TOKEN + CAUSAL_ATTENTION_FLOPS), rel=1e-12)
    # cp 2: GEMMs on 4096 tokens; attention: half of the causal FLOPs (load-balanced chunks 0,3 / 1,2)
    assert two.model_flops == pytest.approx(3 * (SEQ / 2 * GEMM_FLOPS_PER_TOKEN + CAUSAL_ATTENTION_FLOPS / 2),
                                            rel=1e-12)
    assert ctx.ring_attention_flops(1, SEQ, HEADS, D, 2) == CAUSAL_ATTENTION_FLOPS / 2


def test_rank_attention_is_cp_steps_of_the_local_chunk():
    model, rates, two = _layer(cp=2)
    step = flash_attention_times(model, rates, b=1, s=SEQ / 2, t=1, causal=True)
    # 2 ring steps, each the causal-attention work of a 4096-token chunk (2 x 4096^2 x 32 x 128 FLOPs)
    assert step["fwd"][2] == pytest.approx(2 * 4096**2 * HEADS * D, rel=1e-12)
    assert two.attention_forward == pytest.approx(2 * step["fwd"][0], rel=1e-12)
    assert two.attention_backward == pytest.approx(2 * step["bwd"][0], rel=1e-12)


@pytest.mark.parametrize("tp, expected", [(1, 2 * 1 * 4096 * 32 * 128 * 2),  # 67,108,864 B
                                          (2, 2 * 1 * 4096 * 16 * 128 * 2)])  # heads split over tp
def test_kv_bytes_per_ring_step(tp, expected):
    # 2 (K and V) x b x s/cp x kv_heads/tp x head_dim x 2 B (bf16)
    assert ctx.kv_chunk_bytes(1, SEQ, 2, 32, tp, D, 2) == expected
    r = _predict(tp=tp, cp=2, devices=2 * tp * 8)
    assert r.details["cp_kv_chunk_bytes"] == expected


def test_devices_are_tp_cp_pp_dp():
    r = _predict(tp=2, cp=2, pp=2, devices=32)
    assert r.plan.dp == 4 and r.plan.devices == 2 * 2 * 2 * 4
    r = _predict(tp=2, cp=4, dp=2)
    assert r.plan.devices == 16
    with pytest.raises(PlanError, match=r"tp x cp x pp = 2 x 4 x 1 = 8"):
        _predict(tp=2, cp=4, devices=12)
    with pytest.raises(PlanError, match=r"tp x cp x pp x dp = 2 x 2 x 1 x 3 = 12, but devices is 16"):
        _predict(tp=2, cp=2, dp=3, devices=16)


def test_exposed_ring_comm_is_zero_on_nvlink():
    # tp 1 x cp 2 in one node: a 64 MiB chunk at 450 GB/s x efficiency takes ~0.17 ms, under a
    # forward attention step (137 GFLOP, ~0.3 ms on H100); the backward's 128 MiB under ~2.5x that
    r = _predict(cp=2, devices=16)
    assert r.breakdown["cp_comm"] == 0.0
    assert r.comm_total_s > _predict(cp=1, devices=8).comm_total_s  # the exchanges still run, hidden


def test_exposed_ring_comm_across_nodes_by_hand():
    """tp 8 x cp 2: the ring crosses two nodes; each exchange runs on the network at one 400 Gb/s
    NIC per GPU; the 4 kv heads per rank make a small forward attention step that cannot hide it
    (the backward's, 2.5x the work at the rate the power cap leaves, just hides its two chunks)."""
    stack = load_stack("megatron-core")
    hw = hw_params(load_spec("dgx-h100"), "bf16", stack.gemm_rate_scale)
    level = context_level(hw, tp=8, cp=2)
    nic = hw.network_bandwidth * hw.network_efficiency
    assert level.beta == pytest.approx(nic, rel=1e-12) and level.alpha == hw.network_latency
    _, _, lt = _layer(cp=2, tp=8)
    chunk = 2 * 1 * 4096 * 4 * 128 * 2  # 8 MiB: kv heads 32 / tp 8
    fwd = max(0.0, level.alpha + chunk / level.beta - lt.attention_forward / 2)  # cp - 1 = 1 exchange
    bwd = max(0.0, level.alpha + 2 * chunk / level.beta - lt.attention_backward / 2)
    assert fwd > 0 and bwd >= 0
    r = _predict(tp=8, cp=2, devices=16, recompute="none")
    m = 16 / (1 * 1)  # global batch / (micro-batch x dp): 16 micro-batches, dp 1
    assert r.breakdown["cp_comm"] == pytest.approx(m * 32 * (fwd + bwd), rel=1e-9)
    # a selective recompute of the attention core runs the forward ring again
    sel = _predict(tp=8, cp=2, devices=16, recompute="selective")
    assert sel.breakdown["cp_comm"] == pytest.approx(m * 32 * (2 * fwd + bwd), rel=1e-9)


def test_slow_fabric_exposes_the_ring_in_a_sweep():
    df = pm.sweep("llama2-7b", "dgx-h100", "cp=1,2;fabric.link.bandwidth=1 GB/s,450 GB/s", devices=16,
                  global_batch=16, seq=SEQ, micro_batch=1)
    cp_comm = {(int(r.cp), r["fabric.link.bandwidth"]): r.breakdown_cp_comm_s for _, r in df.iterrows()}
    assert cp_comm[(1, 1e9)] == 0 and cp_comm[(1, 450e9)] == 0
    assert cp_comm[(2, 450e9)] == 0  # NVLink hides it
    # 1 GB/s per NVLink x 18 links x 82.2 % efficiency = 14.8 GB/s: a 64 MiB forward exchange takes
    # 4.5 ms, far above a ~0.3 ms attention step; the backward's 128 MiB twice that. 2 micro-batches
    # (16 / dp 8) x 32 layers x 3 exchange units: 0.87 s if nothing hid; the attention hides a little
    exchange_s = 1e-6 + 2 * 4096 * 32 * 128 * 2 / (18 * 1e9 * 0.822)
    assert 0.8 * 2 * 32 * 3 * exchange_s < cp_comm[(2, 1e9)] < 2 * 32 * 3 * exchange_s
    # the sweep's rows are predict's
    df = pm.sweep("llama2-7b", "dgx-h100", "cp=1,2,4;tp=1,2", devices=16, global_batch=16, seq=SEQ, micro_batch=1)
    for _, row in df.iterrows():
        one = _predict(cp=int(row.cp), tp=int(row.tp), devices=16, recompute="none", zero=0)
        assert row.step_time_s == pytest.approx(one.step_time_s, rel=1e-9)
        assert row.breakdown_cp_comm_s == pytest.approx(one.breakdown["cp_comm"], rel=1e-9, abs=1e-15)


def test_stack_without_cp_refused_in_one_line():
    with pytest.raises(PlanError, match=r"stack 'megatron' does not run context parallelism"):
        _predict(cp=2, devices=16, stack="megatron")
    for stack in ("fsdp", "pytorch-eager"):
        with pytest.raises(PlanError, match="context parallelism"):
            _predict(cp=2, devices=16, stack=stack, zero=0)
    df = pm.sweep("llama2-7b", "dgx-h100", "cp=1,2;stack=megatron,megatron-core", devices=16, global_batch=16,
                  seq=SEQ, micro_batch=1)
    bad = df[(df.cp == 2) & (df["stack"] == "megatron")].iloc[0]
    assert "does not run context parallelism" in bad.reason
    assert df.reason.isna().sum() == 3


def test_stack_file_cp_capability(tmp_path):
    assert load_stack("megatron-core").capabilities.cp is True
    assert load_stack("megatron").capabilities.cp is False
    text = (tmp_path / "mcore-nocp.toml")
    from importlib import resources
    src = resources.files("perfmodel.specs.stacks").joinpath("megatron-core.toml").read_text()
    text.write_text(src.replace('name = "megatron-core"', 'name = "mcore-nocp"').replace("cp = true\n", ""))
    assert load_stack(str(text)).capabilities.cp is False  # a table that does not say: no
    text.write_text(src.replace('name = "megatron-core"', 'name = "mcore-nocp"').replace("cp = true", 'cp = "yes"'))
    with pytest.raises(pm.SpecError, match="cp"):
        load_stack(str(text))


@pytest.mark.parametrize("seq", [8190, 8196])
def test_seq_not_divisible_by_2cp_refused(seq):
    # cp 2: 4 chunks; 8190 % 4 = 2, 8196 % 4 = 0 but cp 8 needs 16 | seq (8196 % 16 = 4)
    cp = 2 if seq == 8190 else 8
    with pytest.raises(PlanError, match=rf"seq {seq} is not divisible by 2 x cp = {2 * cp}"):
        _predict(cp=cp, devices=8 * cp, seq=seq)


def test_cp_needs_a_transformer():
    with pytest.raises(PlanError, match="not a transformer"):
        pm.predict("resnet50", "dgx-a100", pm.Plan(cp=2, devices=2, global_batch=2))


def test_memory_activations_divide_by_cp_plus_ring_buffers():
    one, two = _predict(cp=1, devices=8), _predict(cp=2, devices=16)  # dp 8 both
    act1, act2 = one.memory_bytes_per_device["activations"], two.memory_bytes_per_device["activations"]
    # every activation term is linear in s (flash attention stores no s^2), so /2, plus the two
    # K,V receive buffers of the ring (2 x 64 MiB)
    assert act2 == pytest.approx(act1 / 2 + 2 * 67108864, rel=1e-9)
    # weights and gradients do not change; the distributed optimizer shards over dp x cp = 16 ranks
    for part in ("weights", "gradients"):
        assert two.memory_bytes_per_device[part] == one.memory_bytes_per_device[part]
    assert two.memory_bytes_per_device["optimizer"] == pytest.approx(one.memory_bytes_per_device["optimizer"] / 2)


def test_gradients_reduce_over_dp_times_cp():
    # cp 2 x dp 4 on one node reduces over the same 8 ranks as dp 8
    a, b = _predict(cp=2, devices=8), _predict(cp=1, devices=8)
    assert a.details["dp_sync_s"] == pytest.approx(b.details["dp_sync_s"], rel=1e-12)
    assert a.details["model_flops_per_step"] == pytest.approx(b.details["model_flops_per_step"], rel=1e-12)


def test_cp_1_is_unchanged_and_resolved_plan_shows_cp():
    r = _predict(devices=8)
    assert r.plan.cp == 1 and r.breakdown["cp_comm"] == 0.0 and r.details["cp_kv_chunk_bytes"] == 0.0
    two = _predict(cp=2, devices=16)
    assert two.to_dict()["plan"]["cp"] == 2 and "cp 2" in two.to_dict()["plan_summary"]
    assert sum(two.breakdown.values()) == pytest.approx(two.step_time_s, rel=1e-12)


def test_cli_cp_flag():
    cmd = [sys.executable, "-m", "perfmodel", "predict", "--model", "llama2-7b", "--system", "dgx-h100", "--devices",
           "16", "--cp", "2", "--seq", "8192", "--global-batch", "16"]
    res = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["plan"]["cp"] == 2 and obj["plan"]["dp"] == 8 and "cp_comm" in obj["breakdown_s"]
    res = subprocess.run([*cmd, "--stack", "megatron"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "context parallelism" in res.stderr


def test_optimize_never_returns_cp():
    best = pm.optimize("llama2-7b", "dgx-h100", devices=8, global_batch=16, top=3)
    assert all(p.cp == 1 for p in best.plans)


def test_hw_replace_keeps_the_level_formula():
    # the CP ring of tp 2 x cp 4 stays in the node: the fabric's per-GPU NVLink bandwidth
    hw = hw_params(load_spec("dgx-h100"), "bf16")
    level = context_level(hw, tp=2, cp=4)
    assert level.beta == pytest.approx(hw.fabric_links * hw.fabric_bandwidth * hw.fabric_efficiency, rel=1e-12)
    slow = dataclasses.replace(hw, fabric_bandwidth=hw.fabric_bandwidth / 10)
    assert context_level(slow, tp=2, cp=4).beta == pytest.approx(level.beta / 10, rel=1e-12)


def test_crossover_refuses_cp_in_one_line():
    # the crossover equations model tp, pp and dp; a cp plan is refused rather than solved without it
    with pytest.raises(PlanError, match=r"context parallelism \(cp = 2\) is not in the crossover equations"):
        pm.find_crossover("llama2-7b", "dgx-h100", "dp", "devices", plan=pm.Plan(cp=2, seq=SEQ, devices=16))


def test_layers_detail_runs_on_the_ranks_tokens():
    from perfmodel.prediction.detail import layer_kernel_table

    plan = pm.Plan(cp=2, seq=SEQ, devices=16, global_batch=16, micro_batch=1, stack="megatron-core")
    rows = layer_kernel_table("llama2-7b", "dgx-h100", plan)
    total_fwd = next(r for r in rows if r["kernel"].startswith("total") and r["direction"] == "fwd")
    # the forward's linear GEMMs on 4096 tokens: 4096 x 404,750,336 FLOPs = 1657.86 GFLOP
    assert total_fwd["gflops"] == pytest.approx(4096 * GEMM_FLOPS_PER_TOKEN / 1e9, rel=1e-6)


def test_heldout_loader_reads_cp():
    """The NVIDIA dgxc-benchmarking Llama 3.1 rows (perfmodel/data/validation/heldout_published_runs.csv)
    run with their published CP 2: dp = devices / (tp x cp x pp)."""
    from perfmodel.validation.heldout import _cases

    cases = {c.case: c for c in _cases()}
    eight = cases["llama31_8b_h100_8gpu_bf16_cp2"]
    assert eight.plan.cp == 2 and eight.plan.tp == 1 and eight.plan.pp == 1
    seventy = cases["llama31_70b_h100_64gpu_fp8_cp2"]
    assert (seventy.plan.tp, seventy.plan.cp, seventy.plan.pp) == (4, 2, 4)
    assert pm.predict(eight.model, eight.system, eight.plan).plan.dp == 4  # 8 / (1 x 2 x 1)
    assert cases["nemotron4_15b_h100_16gpu_bf16"].plan.cp == 1
