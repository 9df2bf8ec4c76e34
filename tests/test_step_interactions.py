"""Interactions between the step model's parallel dimensions and offload (found by a review of the
merged features): each case is the physics stated in its docstring, checked against predict, sweep
or crossover."""

from __future__ import annotations

import dataclasses

import pytest

import perfmodel as pm
from perfmodel import sweep
from perfmodel.errors import PlanError


def test_faster_nvlink_never_slows_a_step_with_overlapped_tp():
    """Under megatron-core's TP overlap the backward that hides the gradient reduce is its compute
    plus the TP comm the GEMMs do not cover; a faster link must not shrink it below that."""
    grid = {"devices": [128], "tp": [4], "zero": [1], "stack": ["megatron-core"], "micro_batch": [1],
            "global_batch": [256], "fabric.link.bandwidth": ["100 GB/s", "900 GB/s"]}
    df = sweep("llama2-7b", "dgx-h100", grid)
    slow, fast = df["step_time_s"].tolist()
    assert fast <= slow


def test_interleaved_without_virtual_stages_is_1f1b_for_p2p():
    """Megatron turns --overlap-p2p-communication off without virtual stages: interleaved with v = 1
    waits for its transfers like 1F1B."""
    plan = dict(devices=1024, tp=8, pp=8, global_batch=1536, micro_batch=1, stack="megatron-core")
    one = pm.predict("gpt3-175b", "dgx-a100", schedule="1f1b", **plan)
    inter = pm.predict("gpt3-175b", "dgx-a100", schedule="interleaved", virtual_stages=1, **plan)
    assert inter.breakdown_s["pp_comm"] == pytest.approx(one.breakdown_s["pp_comm"], rel=1e-12)


def test_cp_ring_sends_the_replicated_kv_head_when_tp_exceeds_kv_heads():
    """tp 8 over 2 KV heads: each rank holds one (replicated) K,V head, so a ring step carries
    2 (K, V) x b x s/cp x 1 head x head_dim x 2 B = 2 x 1 x 4096 x 1 x 128 x 2 = 2 MiB."""
    model = dataclasses.replace(pm.load_model("llama2-7b"), n_kv_heads=2)
    r = pm.predict(model, "dgx-h100", devices=16, tp=8, cp=2, micro_batch=1, global_batch=1, seq=8192,
                   stack="megatron-core", sequence_parallel=True)
    assert r.details["cp_kv_chunk_bytes"] == 2 * 1 * 4096 * 1 * 128 * 2


def test_moe_activation_offload_moves_the_expert_tensors_too():
    """With activation offload the device keeps 2 of the 32 layers (pp = 1: one micro-batch in
    flight), so 30 layers' saved tensors move to the host: for a MoE model, routed tokens and expert
    tensors included -- per layer exactly the dense twin's plus the MoE extras."""
    from perfmodel.prediction import moe

    model = pm.load_model("mixtral-8x7b")
    dense = dataclasses.replace(model, n_experts=1, top_k=1)
    base = dict(devices=64, stack="deepspeed", zero=3, micro_batch=1, global_batch=64, recompute="none")

    def moved_per_layer(m):
        full = pm.predict(m, "dgx-a100", **base).memory_bytes_per_device["activations"]
        kept = pm.predict(m, "dgx-a100", offload="activations", **base).memory_bytes_per_device["activations"]
        return (full - kept) / 30

    extra = moe.activation_extra_bytes_per_layer(model, b=1, s=model.seq_len, t=1, recompute="none",
                                                 bytes_per_element=2)
    assert extra > 0
    assert moved_per_layer(model) - moved_per_layer(dense) == pytest.approx(extra, rel=1e-9)


def test_moe_full_recompute_counts_the_recomputed_layers_expert_tensors():
    """Full recompute keeps each layer's input plus one layer recomputed in full: for a MoE model the
    latter includes its routed tokens and expert tensors, so it exceeds the dense twin's."""
    from perfmodel.prediction import moe

    model = pm.load_model("mixtral-8x7b")
    plan = dict(devices=8, tp=2, micro_batch=1, global_batch=4, sequence_parallel=True, stack="megatron-core")
    full = pm.predict(model, "dgx-h100", recompute="full", **plan)
    extra = moe.activation_extra_bytes_per_layer(model, b=1, s=model.seq_len, t=2, recompute="none",
                                                 bytes_per_element=2)
    assert extra > 0
    dense = dataclasses.replace(model, n_experts=1, top_k=1)
    dense_full = pm.predict(dense, "dgx-h100", recompute="full", **plan)
    gap = full.memory_bytes_per_device["activations"] - dense_full.memory_bytes_per_device["activations"]
    assert gap == pytest.approx(extra, rel=1e-9)


def test_sweep_marks_a_host_memory_overflow_invalid_as_predict_refuses_it():
    """gpt3-175b on one DGX A100 node with its optimizer offloaded needs ~2.8 TB of host memory (16
    B/param x 175e9), more than the node's 2 TB: predict refuses it, the sweep row is invalid."""
    with pytest.raises(PlanError, match="host memory"):
        pm.predict("gpt3-175b", "dgx-a100", devices=8, stack="deepspeed", zero=1, micro_batch=1,
                   offload="optimizer")
    df = sweep("gpt3-175b", "dgx-a100", {"devices": [8], "stack": ["deepspeed"], "zero": [1],
                                         "micro_batch": [1], "offload": ["optimizer", "none"]})
    over, plain = df.to_dict("records")
    assert "host memory" in over["reason"] and over["step_time_s"] != over["step_time_s"]  # NaN
    assert plain["step_time_s"] > 0


def test_crossover_refuses_hybrid_sharding_in_one_line():
    with pytest.raises(PlanError, match="hybrid sharding"):
        pm.find_crossover("llama2-7b", "dgx-a100", "dp", "devices", devices=64, stack="fsdp", zero=3,
                          shard_group=8, micro_batch=1, global_batch=128)
