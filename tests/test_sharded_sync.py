"""ZeRO-2 / ZeRO-3 (FSDP) as the frameworks run them (issue 11 item 1), checked against hand
calculations of perfmodel.prediction.rules.sharded_sync_times.

ZeRO-3: per micro-batch, a layer's parameters are gathered before its forward and its backward,
its gradients reduce-scattered after its backward, the next gather prefetched under the current
layer's compute (Zhao et al., VLDB 2023, Section 3.3). ZeRO-2 in buckets (DeepSpeed): gradients
reduce-scattered every micro-batch under the backward, updated parameters gathered once per step;
FSDP's SHARD_GRAD_OP (a flat-parameter stack) unit by unit every micro-batch.
"""

from __future__ import annotations

import pytest

from perfmodel.formulas import collectives as coll
from perfmodel.prediction.placement import DpLevels, Level
from perfmodel.prediction.rules import Choices, ShardUnits, gradient_sync_times, sharded_sync_times

# 16 ranks on one flat level (all inside the fabric): 2 us, 100 GB/s per device
LEVELS = DpLevels(local=16, intra_alpha=2e-6, intra_beta=100e9, inter_alpha=5e-6, inter_beta=25e9)
DP, M = 16, 4
FLAT = Level(2e-6, 100e9)  # the level a 16-rank group inside one node runs on


def _choices(zero, overlap=True):
    return Choices("bf16", "none", False, "1f1b", zero, "allreduce", overlap, "adamw")


def _units(fwd, bwd):
    # 32 layers of 200 M params (bf16 weights, fp32 gradients), 1 G params outside the layers
    return ShardUnits(32, 400e6, 800e6, fwd, bwd, 2e9, 4e9)


def _ag(size):
    return coll.ring_allgather_time(DP, size, 2e-6, 100e9)


def _rs(size):
    return coll.ring_reduce_scatter_time(DP, size, 2e-6, 100e9)


def test_zero3_compute_bound_layers_expose_only_the_first_fetches_and_the_rest():
    u = _units(fwd=0.05, bwd=0.1)  # a 400 MB gather takes ~3.8 ms: every layer covers its successor's
    sync, exposed = sharded_sync_times(_choices(3), FLAT, DP, M, u)
    rest = 2 * _ag(2e9) + _rs(4e9)
    assert sync == pytest.approx(M * (32 * (2 * _ag(400e6) + _rs(800e6)) + rest), rel=1e-12)
    assert exposed == pytest.approx(M * (_ag(400e6) + _ag(400e6) + _rs(800e6) + rest), rel=1e-12)
    # FSDP (per_unit) keeps its root unit gathered from its forward to its backward: one gather
    sync_fsdp, exposed_fsdp = sharded_sync_times(_choices(3), FLAT, DP, M, u._replace(per_unit=True))
    assert sync - sync_fsdp == pytest.approx(M * _ag(2e9), rel=1e-12)
    assert exposed - exposed_fsdp == pytest.approx(M * _ag(2e9), rel=1e-12)


def test_zero3_communication_bound_layers_expose_the_excess_of_each():
    u = _units(fwd=0.001, bwd=0.002)
    sync, exposed = sharded_sync_times(_choices(3), FLAT, DP, M, u)
    ag, rs = _ag(400e6), _rs(800e6)
    rest = 2 * _ag(2e9) + _rs(4e9)
    by_hand = M * (ag + 31 * (ag - 0.001) + (ag + rs) + 31 * (ag + rs - 0.002) + rest)
    assert exposed == pytest.approx(by_hand, rel=1e-12)
    assert exposed < sync


def test_zero2_reduce_scatters_every_micro_batch_and_gathers_once_per_step():
    u = _units(fwd=0.05, bwd=0.1)
    sync, exposed = sharded_sync_times(_choices(2), FLAT, DP, M, u)
    grads, params = 32 * 800e6 + 4e9, 32 * 400e6 + 2e9
    assert sync == pytest.approx(M * _rs(grads) + _ag(params), rel=1e-12)
    # the backward (3.2 s) covers each micro-batch's reduce-scatter but its last 25 MiB bucket;
    # the parameter gather after the step is exposed (no param_gather_overlap)
    assert exposed == pytest.approx(M * _rs(25 * 2**20) + _ag(params), rel=1e-12)


def test_bucketed_zero2_gathers_under_the_forward_where_the_stack_overlaps_it():
    # ZeRO-2 in buckets (DeepSpeed) with the stack's param_gather_overlap: the forward (1.6 s)
    # covers the step's parameter gather but its last 25 MiB bucket; the reduce-scatters as before
    u = _units(fwd=0.05, bwd=0.1)
    sync, exposed = sharded_sync_times(_choices(2), FLAT, DP, M, u, param_gather_overlap=True)
    grads, params = 32 * 800e6 + 4e9, 32 * 400e6 + 2e9
    assert sync == pytest.approx(M * _rs(grads) + _ag(params), rel=1e-12)
    assert exposed == pytest.approx(M * _rs(25 * 2**20) + _ag(25 * 2**20), rel=1e-12)


def test_fsdp_shard_grad_op_gathers_and_reduces_unit_by_unit_every_micro_batch():
    """PyTorch FSDP's SHARD_GRAD_OP (a flat-parameter stack: per_unit) gathers each unit's
    parameters before its forward every micro-batch (no reshard after forward; prefetched under the
    unit before, the fsdp stack's param_gather_overlap) and reduce-scatters its gradients after its
    backward: per micro-batch 32 gathers of 400 MB and 32 reduce-scatters of 800 MB, each with its
    ring latency; compute-bound units expose the first gather and the last reduce-scatter, and the
    root unit's 2 GB gather and 4 GB reduce-scatter wait."""
    from perfmodel.specs.stack import load_stack

    fsdp = load_stack("fsdp")
    assert fsdp.param_gather_overlap and fsdp.flat_grad_copy and load_stack("llm-foundry-2023").flat_grad_copy
    u = _units(fwd=0.05, bwd=0.1)._replace(per_unit=True)
    sync, exposed = sharded_sync_times(_choices(2), FLAT, DP, M, u, param_gather_overlap=True)
    ag, rs, rest = _ag(400e6), _rs(800e6), _ag(2e9) + _rs(4e9)
    assert sync == pytest.approx(M * (32 * (ag + rs) + rest), rel=1e-12)
    assert exposed == pytest.approx(M * (ag + rs + rest), rel=1e-12)
    # without gather overlap every unit's gather waits
    _, waits = sharded_sync_times(_choices(2), FLAT, DP, M, u, param_gather_overlap=False)
    assert waits == pytest.approx(M * (32 * ag + rs + rest), rel=1e-12)


def test_one_rank_communicates_nothing():
    sync, exposed = sharded_sync_times(_choices(3), FLAT, 1, M, _units(0.01, 0.02))
    assert sync == 0 and exposed == 0


def test_gradient_sync_dispatches_sharded_stages_to_the_sharded_model():
    u = _units(fwd=0.05, bwd=0.1)
    for zero in (2, 3):
        assert gradient_sync_times(_choices(zero), LEVELS, DP, M, 1e10, 5e9, 1.0, u) == \
            sharded_sync_times(_choices(zero), FLAT, DP, M, u)


def test_fsdp_step_hides_gathers_behind_compute():
    """A 7B model with ZeRO-3 on 8 H100s in one node: the gathers run on NVLink under the layers'
    compute, so the exposed part is a small fraction of the whole synchronisation (issue 11: no
    fully exposed gathers where the frameworks overlap them)."""
    import perfmodel as pm

    r = pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=8, micro_batch=2, global_batch=64, zero=3,
                                                     stack="pytorch-eager", seq=4096))
    assert r.breakdown["dp_comm"] < 0.25 * r.comm_total_s


# --- a group spanning nodes: NCCL's ring crosses each node once per channel, on every NIC -------------

def test_ring_over_nodes_runs_at_the_nics_the_groups_ranks_of_a_node_drive():
    from perfmodel.prediction.placement import ring_level
    # 2 nodes, 8 ranks of the group in each: 8 x 25 GB/s of NICs >= the fabric's 100 GB/s
    two_nodes = DpLevels(local=8, intra_alpha=2e-6, intra_beta=100e9, inter_alpha=5e-6, inter_beta=25e9)
    assert ring_level(two_nodes, 16) == (5e-6, 100e9)
    # 2 ranks of the group per node (tp 4): their two NICs, 50 GB/s, set the rate
    assert ring_level(two_nodes._replace(local=2), 4) == (5e-6, 50e9)
    # one rank per node: the plain network ring; inside one node: the fabric
    assert ring_level(two_nodes._replace(local=1), 2) == (5e-6, 25e9)
    assert ring_level(two_nodes, 8) == (2e-6, 100e9)


def test_zero3_over_two_nodes_gathers_at_the_rate_of_the_nodes_nics():
    two_nodes = DpLevels(local=4, intra_alpha=2e-6, intra_beta=100e9, inter_alpha=5e-6, inter_beta=20e9)
    u = _units(fwd=0.05, bwd=0.1)
    sync, _ = gradient_sync_times(_choices(3), two_nodes, 8, M, 1e10, 5e9, 1.0, u)
    # 8 ranks, 4 per node: every step waits 5 us, each rank moves 7/8 S at 4 x 20 = 80 GB/s
    ag = 7 * 5e-6 + 7 / 8 * 400e6 / 80e9
    rs = 7 * 5e-6 + 7 / 8 * 800e6 / 80e9
    rest = 2 * (7 * 5e-6 + 7 / 8 * 2e9 / 80e9) + 7 * 5e-6 + 7 / 8 * 4e9 / 80e9
    assert sync == pytest.approx(M * (32 * (2 * ag + rs) + rest), rel=1e-12)


def test_fsdp_on_eight_dgx_h100_nodes_gathers_at_eight_nics_per_node():
    import perfmodel as pm
    from perfmodel.prediction.placement import data_parallel_levels, ring_level
    from perfmodel.prediction.hardware import hw_params
    hw = hw_params(pm.load_system("dgx-h100"), "bf16")
    levels = data_parallel_levels(hw, 64)
    alpha, beta = ring_level(levels, 64)
    # 8 ranks of the group per node, 8 NDR NICs at 48 GB/s each (96 % of 50 GB/s): 384 GB/s per rank,
    # under NVLink's all-reduce-equivalent 480 GB/s -- not the 48 GB/s of one NIC
    assert levels.local == 8
    assert beta == pytest.approx(8 * 48e9, rel=1e-3)
    assert alpha == levels.inter_alpha


def test_megatron_530b_data_parallel_increment_from_its_buffer_and_nccls_nic_rate():
    """The 530B run of SC'21 Table 1 (TP 8 x PP 35, interleaved, Megatron-LM's local DDP, no overlap)
    from DP 1 (280 GPUs) to DP 8 (2240 GPUs) at the same batch per replica: the step grows by the
    all-reduce of the fullest stage's gradient buffer, one call (Megatron-LM 2021
    DistributedDataParallel.allreduce_gradients: fp16 gradients under --fp16, one flattened buffer),
    over 8 ranks one per node, each on its own HDR NIC at NCCL's 24 GB/s bus bandwidth
    (perfmodel/data/validation/nccl_allreduce_busbw_reference_nvidia.csv, '200Gb RDMA' and the NCCL
    maintainer's 24 GB/s per 200G NIC): 2 (n-1)/n S / busbw, within 25 %."""
    import perfmodel as pm

    kw = dict(tp=8, pp=35, micro_batch=1, recompute="full", schedule="interleaved", virtual_stages=3,
              stack="megatron", dtype="fp16", overlap=False)
    one = pm.predict("megatron-530b", "dgx-a100", devices=280, global_batch=315, **kw)
    eight = pm.predict("megatron-530b", "dgx-a100", devices=2240, global_batch=2520, **kw)
    # the first stage: 105 / 35 layers of 1 / 8 of a 530B layer, the 51200 x 20480 token embedding / 8
    # (vocab-parallel) and the 2048 x 20480 position embedding (replicated)
    params = 3 * pm.load_model("megatron-530b").n_params_per_layer / 8 + 51200 * 20480 / 8 + 2048 * 20480
    by_hand = 2 * 7 / 8 * params * 2 / 24e9
    assert eight.details["params_per_device"] == pytest.approx(params, rel=0.01)
    assert eight.step_time_s - one.step_time_s == pytest.approx(by_hand, rel=0.25)


def test_fsdp_concatenates_each_micro_batch_s_gradients_into_its_flat_buffer(tmp_path):
    # PyTorch FSDP's original parameters are split views of the flat parameter, so autograd builds
    # the flat gradient with a cat every micro-batch on the compute stream: a read and a write of
    # every layer gradient (bf16: 2 x 2 B a parameter), here over 4 micro-batches on one GPU
    import perfmodel as pm
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.rates import device_rates
    from perfmodel.specs.stack import load_stack

    stack = load_stack("fsdp")
    assert stack.flat_grad_copy and load_stack("llm-foundry-2023").flat_grad_copy
    assert not load_stack("megatron-core").flat_grad_copy
    off = tmp_path / "fsdp-no-flat.toml"
    off.write_text('name = "fsdp-no-flat"\nbase = "fsdp"\nflat_grad_copy = false\n')
    plan = pm.Plan(devices=1, micro_batch=1, global_batch=4, seq=1024, dtype="bf16", recompute="none")
    model = pm.load_model("gpt2-355m")
    with_cat = pm.predict(model, "dgx-h100", plan.replace(stack="fsdp"))
    without = pm.predict(model, "dgx-h100", plan.replace(stack=str(off)))
    rates = device_rates(hw_params(pm.load_system("dgx-h100"), "bf16", stack.gemm_rate_scale), "bf16", stack)
    per_layer = model.params_breakdown()["layers"] / model.n_layers
    by_hand = 4 * model.n_layers * rates.memory(2 * 2 * per_layer)
    assert with_cat.step_time_s - without.step_time_s == pytest.approx(by_hand, rel=1e-9)


def test_predict_runs_fsdp_shard_grad_op_unit_by_unit():
    """End to end: under the fsdp stack a ZeRO-2 plan's sync is per unit (every micro-batch a gather
    and a reduce-scatter per layer, each with its latency), more than the bucketed model charges."""
    import perfmodel as pm
    from perfmodel.specs.stack import load_stack

    plan = pm.Plan(devices=64, zero=2, micro_batch=2, global_batch=256, seq=2048, stack="fsdp")
    per_unit = pm.predict("llama2-7b", "dgx-h100", plan)
    fsdp = load_stack("fsdp")
    assert fsdp.flat_grad_copy
    import perfmodel.prediction.step as step_module
    units = step_module.shard_units
    try:  # the same prediction with the units' flag off: the bucketed (DeepSpeed) ZeRO-2
        step_module.shard_units = lambda *a, **k: units(*a, **k)._replace(per_unit=False)
        bucketed = pm.predict("llama2-7b", "dgx-h100", plan)
    finally:
        step_module.shard_units = units
    assert per_unit.details["dp_sync_s"] > bucketed.details["dp_sync_s"]
