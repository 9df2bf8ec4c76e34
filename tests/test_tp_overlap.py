"""Tensor-parallel collectives under their GEMMs as Transformer Engine runs them (issue 10: the
megatron-core stack charged its overlapped TP collectives as free).

The megatron-core stack's ``[tp_overlap]`` slots are NeMo's H100 preset: ring exchange for the
all-gathers feeding a GEMM (the GEMM in t chunks, three compute streams), the forward
reduce-scatters pipelined in 4 chunks on 24 / 16 SMs with the GEMM launched on the rest, the
backward's independent collectives in bulk beside the dgrad / wgrad GEMMs. Checked by hand here.
"""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.errors import SpecError
from perfmodel.formulas.collectives import ring_allgather_time
from perfmodel.prediction import tp_overlap as tpo
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.placement import placement_levels
from perfmodel.prediction.step import device_rates
from perfmodel.specs.stack import load_stack
from perfmodel.specs.tp_overlap import OverlapSlot

H100_SMS = 132


def test_a_pipelined_reduce_scatter_by_hand():
    # NeMo's proj_fprop: 24 SMs held for the whole GEMM (set_sm_margin), 4 chunks. A 1 ms GEMM runs
    # 132 / 108 = 1.2222 ms; the chunks' reduce-scatters (0.1 ms each) run under the next chunk,
    # the last one after: 1.2222 + 0.1 = 1.3222 ms
    slot = OverlapSlot("pipeline", sms=24, splits=4, margin=True)
    assert tpo.slot_time(slot, 1e-3, 0.4e-3, 4, H100_SMS) == pytest.approx(1e-3 * 132 / 108 + 0.1e-3, rel=1e-12)
    # a collective longer than the GEMM: the first chunk's GEMM, then the collectives back to back
    assert tpo.slot_time(slot, 1e-3, 3e-3, 4, H100_SMS) == pytest.approx(1e-3 * 132 / 108 / 4 + 3e-3, rel=1e-12)


def test_bulk_and_ring_exchange_by_hand():
    # bulk, 24 SMs without margin: the GEMM loses them only while the 0.3 ms collective runs:
    # 1 ms + 0.3 ms x 24 / 132 = 1.0545 ms
    bulk = OverlapSlot("bulk", sms=24)
    assert tpo.slot_time(bulk, 1e-3, 0.3e-3, 4, H100_SMS) == pytest.approx(1e-3 + 0.3e-3 * 24 / 132, rel=1e-12)
    # ring exchange on copy engines (no SMs): 3 transfers of 0.2 ms beside 4 chunk GEMMs of 0.25 ms
    ring = OverlapSlot("ring_exchange")
    assert tpo.slot_time(ring, 1e-3, 0.6e-3, 4, H100_SMS) == pytest.approx(1e-3, rel=1e-12)
    # transfers of 0.4 ms: each step waits 0.15 ms for its transfer, 3 steps
    assert tpo.slot_time(ring, 1e-3, 1.2e-3, 4, H100_SMS) == pytest.approx(1e-3 + 3 * 0.15e-3, rel=1e-12)
    # a device without a stated SM count: no SM cost
    assert tpo.slot_time(bulk, 1e-3, 0.3e-3, 4, 0) == pytest.approx(1e-3, rel=1e-12)


def _llama_setup(tp=4, seq=4096):
    system = pm.load_system("dgx-h100")
    stack = load_stack("megatron-core")
    hw = hw_params(system, "bf16", stack.gemm_rate_scale)
    return pm.load_model("llama2-7b"), stack, hw, device_rates(hw, "bf16", stack), seq


def test_chunked_gemms_run_three_at_a_time():
    model, stack, hw, rates, tokens = _llama_setup()
    gemms = tpo.slot_gemm_times(stack.tp_overlap, model, rates, tokens, 8)
    # QKV forward of llama2-7b on 8 ranks: C[T, 3 x 4096 / 8] = X[T, 4096] W; ring exchange in 8
    # chunks of T / 8 rows, three at a time on TE's three compute streams: 8 / 3 GEMMs of 3 T / 8 rows
    alone = rates.linear_gemm(tokens, 1536, 4096)
    run = 8 / 3 * rates.linear_gemm(3 * tokens / 8, 1536, 4096)
    assert gemms["qkv_fprop"] == pytest.approx((alone, run), rel=1e-12)
    # the pipelined MLP-down forward: 4 chunks, three at a time; MLP up = up + gate (SwiGLU)
    down = rates.linear_gemm(tokens, 4096, 11008 / 8)
    assert gemms["fc2_fprop"] == pytest.approx((down, 4 / 3 * rates.linear_gemm(3 * tokens / 4, 4096, 11008 / 8)),
                                               rel=1e-12)
    assert gemms["fc1_wgrad"][0] == pytest.approx(2 * rates.linear_gemm(4096, 11008 / 8, tokens), rel=1e-12)
    assert gemms["fc1_wgrad"][0] == gemms["fc1_wgrad"][1]  # bulk: the whole GEMM
    assert run > alone  # smaller GEMMs, lower efficiency on the measured curve


def test_the_step_charges_what_the_slots_add_to_the_gemms():
    model, stack, hw, rates, seq = _llama_setup()
    plan = pm.Plan(stack="megatron-core", tp=4, dp=2, micro_batch=1, global_batch=4, seq=seq, sequence_parallel=True)
    r = pm.predict(model, "dgx-h100", plan)
    alpha, beta = placement_levels(hw, 4, 2, 1, 8).tp
    one = ring_allgather_time(4, seq * 4096 * 2, alpha, beta)  # one all-gather of T x h bf16 over 4 ranks
    gemms = tpo.slot_gemm_times(stack.tp_overlap, model, rates, seq, 4)
    forward = backward = 0.0
    for name in tpo.FORWARD:
        alone, run = gemms[name]
        forward += tpo.slot_time(stack.tp_overlap.slots[name], run, one, 4, H100_SMS) - alone
    for name in tpo.BACKWARD:
        alone, run = gemms[name]
        backward += tpo.slot_time(stack.tp_overlap.slots[name], run, one, 4, H100_SMS) - alone
    m = 4 / (1 * 2)
    assert r.breakdown_s["tp_comm"] == pytest.approx(m * 32 * (forward + backward), rel=1e-9)
    # more than free, less than waiting for the 2 + 2 all-reduces' worth of collectives a layer moves
    assert 0 < r.breakdown_s["tp_comm"] < m * 32 * 8 * one
    # without sequence parallelism Megatron-Core runs no TP overlap: every collective waits
    flat = pm.predict(model, "dgx-h100", plan.replace(sequence_parallel=False))
    assert flat.breakdown_s["tp_comm"] == pytest.approx(m * 32 * 8 * one, rel=1e-9)


def test_a_mixture_of_experts_waits_for_its_mlp_collectives():
    # Megatron-Core's token dispatcher gathers and reduce-scatters the routed tokens itself, outside
    # the userbuffers: top_k (2) all-gather + reduce-scatter pairs each way per pass on the MLP side,
    # and its sp2hp / hp2sp all-to-alls (1/tp of a pair), exposed
    model = pm.load_model("mixtral-8x7b")
    stack = load_stack("megatron-core")
    hw = hw_params(pm.load_system("dgx-h100"), "bf16", stack.gemm_rate_scale)
    rates = device_rates(hw, "bf16", stack)
    gemms = tpo.slot_gemm_times(stack.tp_overlap, model, rates, 4096, 4, moe=True)
    assert not any(name.startswith(("fc1", "fc2")) for name in gemms)
    pairs = 2 + 1 / 4
    fwd, bwd = tpo.layer_exposed(stack.tp_overlap, gemms, 1e-3, 4, H100_SMS, moe_pairs=pairs)
    attn_fwd = sum(tpo.slot_time(stack.tp_overlap.slots[n], gemms[n][1], 1e-3, 4, H100_SMS) - gemms[n][0]
                   for n in ("qkv_fprop", "proj_fprop"))
    assert fwd == pytest.approx(2 * pairs * 1e-3 + attn_fwd, rel=1e-12)
    assert bwd > 2 * pairs * 1e-3


def test_a_stack_without_slots_hides_each_pass_under_its_gemms():
    # jax-xla overlaps without [tp_overlap]: each pass's collectives under that pass's GEMMs
    jax = load_stack("jax-xla")
    assert jax.tp_comm_overlap and jax.tp_overlap is None
    assert tpo.mode(jax, pm.load_model("llama2-7b"), False) == "pass"
    assert tpo.pass_level_exposed(3e-3, 5e-3, 2e-3) == pytest.approx((1e-3, 1e-3), rel=1e-12)


def _stack_text(extra: str, overlap: str = "true") -> str:
    from importlib import resources

    text = (resources.files("perfmodel.specs") / "stacks" / "megatron-core.toml").read_text()
    text = text.replace('name = "megatron-core"', 'name = "mc2"').replace("tp_comm_overlap = true",
                                                                          f"tp_comm_overlap = {overlap}")
    return text.replace('qkv_fprop = { method = "ring_exchange", sms = 1 }', extra)


def test_bad_tp_overlap_tables_are_one_line_errors(tmp_path):
    path = tmp_path / "mc2.toml"
    path.write_text(_stack_text('qkv_fprop = { method = "ring", sms = 1 }'))
    with pytest.raises(SpecError, match=r"\[tp_overlap.qkv_fprop\] method.*ring_exchange"):
        load_stack(str(path))
    path.write_text(_stack_text('qkv_fprop = { method = "ring_exchange", sms = 1 }', overlap="false"))
    with pytest.raises(SpecError, match="tp_comm_overlap = false"):
        load_stack(str(path))
    path.write_text(_stack_text('qkv_fprop = { method = "ring_exchange", sm = 1 }'))
    with pytest.raises(SpecError, match="sm"):
        load_stack(str(path))


def test_a_slot_runs_as_transformer_engine_can_run_it(tmp_path):
    path = tmp_path / "mc2.toml"
    # an all-gather feeding its GEMM cannot run beside it in bulk
    path.write_text(_stack_text('qkv_fprop = { method = "bulk", sms = 4 }'))
    with pytest.raises(SpecError, match="qkv_fprop runs as ring_exchange or pipeline"):
        load_stack(str(path))
    # a ring exchange runs in tp steps: no splits
    path.write_text(_stack_text('qkv_fprop = { method = "ring_exchange", splits = 4 }'))
    with pytest.raises(SpecError, match="only a pipeline slot splits"):
        load_stack(str(path))
    text = _stack_text('qkv_fprop = { method = "ring_exchange", sms = 1 }').replace(
        'qkv_wgrad = { method = "bulk", sms = 24 }', 'qkv_wgrad = { method = "pipeline", sms = 24 }')
    path.write_text(text)
    with pytest.raises(SpecError, match="qkv_wgrad runs as bulk"):
        load_stack(str(path))


def test_devices_without_streaming_multiprocessors_pay_no_sm_cost():
    # Gaudi 2's [matmul] units are 2 MMEs and a TPU's are MXUs, not SMs a collective kernel holds:
    # megatron-core's slots run there without SM cost (and without dividing by U - n < 0)
    for system in ("gaudi2-hls", "tpu-v5p-pod"):
        assert hw_params(pm.load_system(system), "bf16").compute_units == 0
    r = pm.predict("llama2-70b", "gaudi2-hls", devices=64, tp=8, pp=2, sequence_parallel=True, stack="megatron-core")
    assert 0 < r.breakdown_s["tp_comm"] < r.step_time_s
    assert hw_params(pm.load_system("dgx-h100"), "bf16").compute_units == H100_SMS


def test_fp8_all_gathers_move_one_byte_an_element():
    # Transformer Engine all-gathers the FP8 copies its GEMMs read (initialize_ub: fp8_buf for the
    # all-gather layers); the reduce-scatters of 16-bit outputs keep 2 bytes
    from perfmodel.prediction.layers import layer_times

    model, stack, _, _, seq = _llama_setup()
    hw = hw_params(pm.load_system("dgx-h100"), "fp8", stack.gemm_rate_scale)
    rates = device_rates(hw, "fp8", stack)
    assert rates.fp8_linear
    alpha, beta = placement_levels(hw, 4, 2, 1, 8).tp
    lt = layer_times(model, stack, rates, alpha, beta, b=1, s=seq, t=4, sp=True, recompute="none")
    got = tpo.exposed_times(stack, model, rates, lt, tokens=seq, t=4, alpha=alpha, beta=beta, units=H100_SMS, sp=True)
    rs = ring_allgather_time(4, seq * 4096 * 2, alpha, beta)
    ag = ring_allgather_time(4, seq * 4096 * 1, alpha, beta)
    want = tpo.layer_exposed(stack.tp_overlap, tpo.slot_gemm_times(stack.tp_overlap, model, rates, seq, 4), rs, 4,
                             H100_SMS, gather=ag)
    assert got == pytest.approx(want, rel=1e-12)
    assert ag < rs


def test_a_mixture_of_experts_with_dense_layers_weighs_both():
    # every second layer a MoE layer (moe_layer_freq 2): half the layers wait for their MLP-side
    # collectives, the dense half runs them under its slots
    from perfmodel.prediction.layers import layer_times
    from perfmodel.workloads.transformer import TransformerModel

    moe = TransformerModel(name="half-moe", n_layers=8, hidden=4096, n_heads=32, n_kv_heads=8, ffn_hidden=14336,
                           vocab=32000, seq_len=4096, positions="rotary", mlp="swiglu", norm="rmsnorm", bias=False,
                           tied_embeddings=False, n_experts=8, top_k=2, moe_layer_freq=2, dropout=False)
    stack = load_stack("megatron-core")
    hw = hw_params(pm.load_system("dgx-h100"), "bf16", stack.gemm_rate_scale)
    rates = device_rates(hw, "bf16", stack)
    alpha, beta = placement_levels(hw, 4, 2, 1, 8).tp
    lt = layer_times(moe, stack, rates, alpha, beta, b=1, s=4096, t=4, sp=True, recompute="none")
    got = tpo.exposed_times(stack, moe, rates, lt, tokens=4096, t=4, alpha=alpha, beta=beta, units=H100_SMS, sp=True)
    one = ring_allgather_time(4, 4096 * 4096 * 2, alpha, beta)
    dense = tpo.layer_exposed(stack.tp_overlap, tpo.slot_gemm_times(stack.tp_overlap, moe, rates, 4096, 4), one, 4,
                              H100_SMS)
    sparse = tpo.layer_exposed(stack.tp_overlap, tpo.slot_gemm_times(stack.tp_overlap, moe, rates, 4096, 4, moe=True),
                               one, 4, H100_SMS, moe_pairs=2 + 1 / 4)
    assert got == pytest.approx(tuple(0.5 * a + 0.5 * b for a, b in zip(sparse, dense)), rel=1e-12)


def test_a_slot_holding_every_sm_is_a_one_line_error(tmp_path):
    path = tmp_path / "mc2.toml"
    path.write_text(_stack_text('qkv_fprop = { method = "ring_exchange", sms = 132 }'))
    with pytest.raises(SpecError, match=r"qkv_fprop: its collective holds 132 SMs, at least as many as the device has \(132\)"):
        pm.predict("llama2-7b", "dgx-h100", devices=8, tp=4, sequence_parallel=True, stack=str(path))


def test_the_slot_gemm_memo_keys_the_overlap_table_and_the_model():
    """slot_gemm_times keeps its float results in the rates' memo: a second overlap table (another
    stream count) or another model on the same rates gets its own times, not the first's."""
    import dataclasses

    tp_overlap = tpo
    stack = load_stack("megatron-core")
    rates = device_rates(hw_params(pm.load_system("dgx-h100"), "bf16", stack.gemm_rate_scale), "bf16", stack)
    model = pm.load_model("llama2-7b")
    first = tp_overlap.slot_gemm_times(stack.tp_overlap, model, rates, 8192.0, 8)
    other = dataclasses.replace(stack.tp_overlap, streams=1)
    second = tp_overlap.slot_gemm_times(other, model, rates, 8192.0, 8)
    assert second == tp_overlap._slot_gemm_times(other, model, rates, 8192.0, 8, False, ())
    assert second != first
    bigger = pm.load_model("llama2-70b")
    assert tp_overlap.slot_gemm_times(stack.tp_overlap, bigger, rates, 8192.0, 8) == \
        tp_overlap._slot_gemm_times(stack.tp_overlap, bigger, rates, 8192.0, 8, False, ())
