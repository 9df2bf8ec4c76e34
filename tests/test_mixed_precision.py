"""Mixed precision as it is run (issue 10 item 2): ``--dtype fp8`` is Transformer Engine's recipe,
FP8 GEMMs in the transformer layers' linear layers only, BF16 everywhere else, plus the casts
and the cached FP8 weights it costs (perfmodel.plan.precision_of)."""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.plan import precision_of
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.layers import head_times, layer_times
from perfmodel.prediction.step import device_rates
from perfmodel.specs.stack import load_stack

H100 = pm.load_system("h100-sxm5-80gb")
MODEL = pm.load_model("llama2-7b")
STACK = load_stack("megatron-core")


def _rates(dtype):
    return device_rates(hw_params(H100, dtype), dtype, STACK)


def _layer(dtype):
    return layer_times(MODEL, STACK, _rates(dtype), 0.0, float("inf"), b=1, s=4096, t=1, sp=False,
                       recompute="none")


def test_precision_per_operation_class():
    assert precision_of("fp8") == ("fp8", "bf16", 4)
    assert precision_of("bf16") == ("bf16", "bf16", 2)
    assert precision_of("fp32").compute == "fp32"


def test_fp8_runs_only_the_linear_gemms_in_fp8():
    bf16, fp8 = _layer("bf16"), _layer("fp8")
    # the linear layers' GEMMs are faster, but not more than the FP8 / BF16 achievable rates allow
    ratio = bf16.gemm_forward / fp8.gemm_forward
    assert 1.2 < ratio < 2.0
    # the LM head (and so the loss around it) stays in BF16: the same time in both
    head = [head_times(MODEL, STACK, _rates(d), b=1, s=4096, t=1)[0] for d in ("bf16", "fp8")]
    assert head[0] == pytest.approx(head[1], rel=1e-12)


def test_fp8_adds_the_cast_kernels():
    bf16, fp8 = _layer("bf16"), _layer("fp8")
    # memory-bound time grows by the cast-transposes (2 in the forward, one per linear dY backward)
    assert fp8.memory_bound > bf16.memory_bound
    n, h, f = 4096, MODEL.hidden, MODEL.ffn_hidden
    bw = hw_params(H100, "fp8").memory_bandwidth
    forward_casts = (n * h + n * f) * 4 / bw  # attention output and MLP activation, 4 B each
    assert fp8.memory_bound - bf16.memory_bound > forward_casts


def test_fp8_casts_by_hand():
    """Forward: cast-transposes of the attention projection's and the down projection's inputs
    (bf16 read, FP8 and its transpose written: 4 B an element). Backward: each linear layer's output
    gradient cast-transposed (4 B), and the two LayerNorm outputs, kept in FP8, transposed for the
    QKV and up projections' wgrad (Transformer Engine's fp8_transpose: 1 + 1 B an element)."""
    from perfmodel.prediction.layers import _fp8_casts, linear_shapes

    rates = _rates("fp8")
    n, h, f = 4096, MODEL.hidden, MODEL.ffn_hidden
    a_d = MODEL.n_heads * MODEL.head_dim
    shapes = linear_shapes(MODEL, n, 1)
    fwd, bwd = _fp8_casts(rates, shapes, n, h, a_d, f)
    assert fwd == pytest.approx(rates.memory(n * a_d * 4) + rates.memory(n * f * 4), rel=1e-12)
    by_hand = sum(rates.memory(m * o * 4) for m, _k, o in shapes) + 2 * rates.memory(n * h * 2)
    assert bwd == pytest.approx(by_hand, rel=1e-12)
    assert _fp8_casts(_rates("bf16"), shapes, n, h, a_d, f) == (0.0, 0.0)


def test_fp8_step_speedup_is_far_below_the_peak_ratio():
    plan = pm.Plan(devices=8, tp=8, micro_batch=1, global_batch=64, seq=4096, stack="megatron-core",
                   sequence_parallel=True)
    bf16 = pm.predict(MODEL, "dgx-h100", plan.replace(dtype="bf16"))
    fp8 = pm.predict(MODEL, "dgx-h100", plan.replace(dtype="fp8"))
    speedup = bf16.step_time_s / fp8.step_time_s
    peak_ratio = H100.device.peak("fp8") / H100.device.peak("bf16")
    assert 1.0 < speedup < 0.9 * peak_ratio, speedup


def test_fp8_weights_hold_bf16_and_the_cached_fp8_copy():
    plan = pm.Plan(devices=8, tp=8, micro_batch=1, global_batch=8, seq=4096, stack="megatron-core")
    bf16 = pm.predict(MODEL, "dgx-h100", plan.replace(dtype="bf16")).memory_bytes_per_device
    fp8 = pm.predict(MODEL, "dgx-h100", plan.replace(dtype="fp8")).memory_bytes_per_device
    assert fp8["weights"] == pytest.approx(2 * bf16["weights"], rel=1e-12)
    assert fp8["optimizer"] == pytest.approx(bf16["optimizer"], rel=1e-12)


def test_nemo_distributed_fused_adam_holds_bf16_gradients_remainders_and_fp8_parameters():
    """nemo-2024 (Apex DistributedFusedAdam as NeMo 24.09 configures it), by hand for Llama 3 8B on 8
    H100s with CP 2 (its shards span dp x cp = 8 ranks): bf16 runs hold 2 B weights + 2 B bf16
    gradients + (2 B remainders + 8 B moments) / 8; FP8 runs 1 B FP8 weights + 1 B transpose cache +
    2 B gradients + (4 B fp32 master + 8 B) / 8. Megatron-Core's own optimizer: 2 + 4 + 12 / 8."""
    plan = pm.Plan(devices=8, cp=2, micro_batch=1, global_batch=32, seq=8192, zero=1)
    p = pm.predict("llama3-8b", "dgx-h100", plan.replace(stack="nemo-2024", dtype="bf16")).details["params_per_device"]
    states = {}
    for stack in ("nemo-2024", "megatron-core"):
        for dtype in ("bf16", "fp8"):
            m = pm.predict("llama3-8b", "dgx-h100", plan.replace(stack=stack, dtype=dtype)).memory_bytes_per_device
            states[stack, dtype] = (m["weights"] / p, m["gradients"] / p, m["optimizer"] / p)
    assert states["nemo-2024", "bf16"] == pytest.approx((2, 2, 10 / 8))
    assert states["nemo-2024", "fp8"] == pytest.approx((2, 2, 12 / 8))
    assert states["megatron-core", "bf16"] == pytest.approx((2, 4, 12 / 8))
    assert states["megatron-core", "fp8"] == pytest.approx((4, 4, 12 / 8))
    # remainders complete a bf16 weight only: fp16 weights keep an fp32 master (12 B of states)
    fp16 = pm.predict("llama3-8b", "dgx-h100", plan.replace(stack="nemo-2024", dtype="fp16")).memory_bytes_per_device
    assert fp16["optimizer"] / p == pytest.approx(12 / 8)
    # the gradients reduce-scatter in bf16 and FP8 parameters gather as 1 B: less to sync
    sync = {s: pm.predict("llama3-8b", "dgx-h100", plan.replace(stack=s, dtype="fp8")).details["dp_sync_s"]
            for s in ("nemo-2024", "megatron-core")}
    assert sync["nemo-2024"] < 0.6 * sync["megatron-core"]


def test_adamw_with_bf16_states_keeps_bf16_moments_and_no_master_for_bf16_weights():
    """--optimizer adamw-bf16 (NeMo's optim.dtype bf16), by hand per parameter over D = 8 shards:
    bf16 weights are their own master, 2 + 2 B moments -> 4 / 8; FP8 parameters keep a bf16 master
    (Apex stores params that are not bf16) -> 6 / 8; the step moves half the bytes."""
    plan = pm.Plan(devices=8, cp=2, micro_batch=1, global_batch=32, seq=8192, zero=1, stack="nemo-2024")
    out = {}
    for opt in ("adamw", "adamw-bf16"):
        for dtype in ("bf16", "fp8"):
            r = pm.predict("llama3-8b", "dgx-h100", plan.replace(optimizer=opt, dtype=dtype))
            out[opt, dtype] = (r.memory_bytes_per_device["optimizer"] / r.details["params_per_device"],
                               r.breakdown_s["optimizer"])
    assert out["adamw-bf16", "bf16"][0] == pytest.approx(4 / 8)
    assert out["adamw-bf16", "fp8"][0] == pytest.approx(6 / 8)
    assert out["adamw", "bf16"][0] == pytest.approx(10 / 8)
    # the step's bytes: bf16 weight, bf16 gradient and two bf16 moments (2 x 2 + 2 + 4 x 2 = 14 B)
    # against the 28 B of an fp32-state step
    assert out["adamw-bf16", "bf16"][1] == pytest.approx(out["adamw", "bf16"][1] * 14 / 28, rel=1e-9)
    # Megatron-Core keeps bf16 weights under FP8 (no FP8 parameters): those are their own master
    core = {opt: pm.predict("llama3-8b", "dgx-h100", plan.replace(stack="megatron-core", dtype="fp8", optimizer=opt))
            for opt in ("adamw", "adamw-bf16")}
    p = core["adamw"].details["params_per_device"]
    assert core["adamw-bf16"].memory_bytes_per_device["optimizer"] / p == pytest.approx(4 / 8)
