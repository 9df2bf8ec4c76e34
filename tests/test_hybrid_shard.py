"""Hybrid sharding (issue 11): ZeRO-2/3 within groups of N data-parallel ranks (FSDP HYBRID_SHARD /
_HYBRID_SHARD_ZERO2, DeepSpeed MiCS), replicated across dp / N groups, checked against hand
calculations: memory / N, the all-gather and reduce-scatter within the group on the fabric, and
an all-reduce of each rank's gradient shard (1/N of the gradient bytes) across the replicas on
the network.
"""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.errors import PlanError
from perfmodel.prediction.placement import DpLevels
from perfmodel.prediction.rules import Choices, ShardUnits, hybrid_sync_times, sharded_sync_times

# 4 nodes of 8 ranks, no latency so the bytes show: 400 GB/s per device in the node, 50 GB/s out
LEVELS = DpLevels(local=8, intra_alpha=0.0, intra_beta=400e9, inter_alpha=0.0, inter_beta=50e9)
DP, N, M = 32, 8, 2
# 32 layers of 250 M params (bf16 weights 500 MB, fp32 gradients 1 GB), 1 G params outside the layers
UNITS = ShardUnits(32, 500e6, 1e9, 0.010, 0.020, 2e9, 4e9)


def _choices(zero, group=N):
    return Choices("bf16", "none", False, "1f1b", zero, "allreduce", True, "adamw", "none", group)


def test_zero3_hybrid_moves_gathers_into_the_node_and_a_shard_all_reduce_onto_the_network():
    sync, exposed = hybrid_sync_times(_choices(3), LEVELS, DP, M, UNITS)
    # in the group of 8 (fabric, 400 GB/s): all-gather 7/8 of a layer's 500 MB, reduce-scatter 7/8 of 1 GB
    ag = 7 / 8 * 500e6 / 400e9                      # 1.09375 ms
    rs = 7 / 8 * 1e9 / 400e9                        # 2.1875 ms
    # across the 4 replicas (network, 50 GB/s): ring all-reduce of the 1 GB / 8 = 125 MB gradient shard
    ar = 2 * 3 / 4 * (1e9 / 8) / 50e9               # 3.75 ms
    rest = 2 * (7 / 8 * 2e9 / 400e9) + 7 / 8 * 4e9 / 400e9 + 2 * 3 / 4 * (4e9 / 8) / 50e9
    assert sync == pytest.approx(M * (32 * (2 * ag + rs + ar) + rest))
    # the backward's collectives (gather + reduce-scatter + shard all-reduce, 7.03 ms) fit under the
    # 20 ms backward of the previous layer; the forward's gather under its 10 ms forward
    assert exposed == pytest.approx(M * (ag + (ag + rs + ar) + rest))


def test_zero2_hybrid_reduce_scatter_and_shard_all_reduce_every_micro_batch():
    sync, _ = hybrid_sync_times(_choices(2), LEVELS, DP, M, UNITS)
    grads, params = 32 * 1e9 + 4e9, 32 * 500e6 + 2e9  # 36 GB of gradients, 18 GB of parameters
    rs = 7 / 8 * grads / 400e9 + 2 * 3 / 4 * (grads / 8) / 50e9  # in the node, then the 1/8 shard across
    ag = 7 / 8 * params / 400e9  # updated parameters gathered once per step, in the node only
    assert sync == pytest.approx(M * rs + ag)


def test_group_of_the_whole_dp_is_plain_sharding():
    flat = LEVELS._replace(local=32)  # one 32-rank level: the hybrid group of 32 is the dp group
    assert hybrid_sync_times(_choices(3, 32), flat, DP, M, UNITS) == pytest.approx(
        sharded_sync_times(_choices(3), (0.0, 400e9), DP, M, UNITS))


def test_four_dgx_h100_nodes_with_shard_group_8_end_to_end():
    model = pm.load_model("llama2-7b")
    base = dict(devices=32, stack="fsdp", zero=3, micro_batch=1, global_batch=64)
    full = pm.predict(model, "dgx-h100", pm.Plan(**base))
    hybrid = pm.predict(model, "dgx-h100", pm.Plan(shard_group=8, **base))
    p = hybrid.details["params_per_device"]
    mem = hybrid.memory_bytes_per_device
    # model states / 8 instead of / 32: bf16 weights 2 B, fsdp's fp32 gradients 4 B, Adam K = 12 B;
    # the weights also hold ZeRO-3's two gathered layers (bf16, unsharded)
    gathered = 2 * model.n_params_per_layer * 2
    assert mem["weights"] == pytest.approx(p * 2 / 8 + gathered)
    assert mem["gradients"] == pytest.approx(p * 4 / 8)
    assert mem["optimizer"] == pytest.approx(p * 12 / 8)
    assert full.memory_bytes_per_device["optimizer"] == pytest.approx(p * 12 / 32)
    # DGX H100's eight 400G NICs carry a ring over 4 nodes (one crossing per node per NIC) about as
    # fast as NVLink carries one in a node (8 x 48 GB/s vs 480 GB/s): full sharding gains nothing by
    # staying in the node, and hybrid adds the shard all-reduce after each reduce-scatter
    assert hybrid.details["dp_sync_s"] > full.details["dp_sync_s"]
    assert "hybrid: shard group 8, 4 replicas" in hybrid.to_dict()["plan_summary"]


def test_hybrid_sharding_wins_where_the_network_is_the_bottleneck():
    # GCP A3: four 200G NICs per node (100 GB/s) against 8 x 48 GB/s on DGX H100: the full ring's 3 S
    # per node over the network outweighs hybrid's 1.5 S plus its in-node collectives
    model = pm.load_model("llama2-7b")
    base = dict(devices=32, stack="fsdp", zero=3, micro_batch=1, global_batch=64)
    full = pm.predict(model, "a3-highgpu-8g", pm.Plan(**base))
    hybrid = pm.predict(model, "a3-highgpu-8g", pm.Plan(shard_group=8, **base))
    assert hybrid.details["dp_sync_s"] < full.details["dp_sync_s"]


@pytest.mark.parametrize("plan, message", [
    (dict(devices=32, stack="fsdp", zero=1, shard_group=8), "needs --zero 2 or 3, got ZeRO 1"),
    (dict(devices=32, stack="fsdp", zero=3, shard_group=3), "--shard-group 3 does not divide dp = 32"),
    (dict(devices=32, stack="fsdp", zero=3, shard_group=64), "--shard-group 64 does not divide dp = 32"),
    (dict(devices=16, stack="megatron-core", zero=1, shard_group=8), "needs --zero 2 or 3"),
])
def test_refusals_are_one_line(plan, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(")) as err:
        pm.predict("llama2-7b", "dgx-h100", pm.Plan(micro_batch=1, **plan))
    assert "\n" not in str(err.value)


def test_a_stack_without_hybrid_sharding_is_refused(tmp_path):
    text = open(pm.__file__.replace("__init__.py", "specs/stacks/fsdp.toml")).read()
    (tmp_path / "nohybrid.toml").write_text(text.replace('name = "fsdp"', 'name = "nohybrid"')
                                            .replace("hybrid_shard = true", "hybrid_shard = false"))
    with pytest.raises(PlanError, match="stack 'nohybrid' does not run hybrid sharding"):
        pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=16, zero=3, shard_group=8, micro_batch=1,
                                                    stack=str(tmp_path / "nohybrid.toml")))


def test_sweep_marks_a_bad_shard_group_invalid_with_the_same_reason():
    df = pm.sweep("llama2-7b", "dgx-h100", {"shard_group": [8, 3, "none"]}, devices=32, zero=3, stack="fsdp")
    reasons = dict(zip(df["shard_group"].astype(str), df["reason"].astype(object).fillna("")))
    assert "does not divide dp = 32" in reasons["3"]
    assert reasons["8"] == "" and df["reason"].isna().sum() == 2 and df["shard_group"].isna().sum() == 1
    # the same step as predict for the valid rows
    one = pm.predict("llama2-7b", "dgx-h100", pm.Plan(devices=32, zero=3, stack="fsdp", micro_batch=1, shard_group=8))
    assert df.loc[df["shard_group"] == 8, "step_time_s"].item() == pytest.approx(one.step_time_s)
