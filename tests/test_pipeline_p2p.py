"""Transfers between pipeline stages as each stack sends them (perfmodel.prediction.p2p): the
scatter/gather split and its all-gather (Megatron-LM 2021-22, DeepSpeed's pipeline engine), the
sequence-parallel slice, or the whole activation (Megatron-Core without sequence parallelism)."""

import pytest

from perfmodel.formulas import collectives as coll
from perfmodel.formulas.pipeline import scatter_gather_p2p_time
from perfmodel.plan import Plan
from perfmodel.prediction import predict
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.placement import placement_levels
from perfmodel.specs.registry import load_system
from perfmodel.workloads import load_model

# GPT-3 175B, TP 8 x PP 4 x DP 4 on 16 DGX A100 nodes, 1F1B: each stage on its own nodes
PLAN = Plan(devices=128, tp=8, pp=4, micro_batch=1, global_batch=64, recompute="full")
SIZE = 1 * 2048 * 12288 * 2  # one micro-batch's activation: b x s x h x 2 bytes (bf16)


def _levels():
    hw = hw_params(load_system("dgx-a100"), "bf16")
    place = placement_levels(hw, 8, 4, 4, 128)
    return place.pp, place.tp


def _waited_per_microbatch(stack, sp):
    r = predict("gpt3-175b", "dgx-a100", PLAN.replace(stack=stack, sequence_parallel=sp))
    return (r.breakdown_s["pp_comm"] - r.details["embedding_sync_s"]) / r.details["n_microbatches"]


def test_scatter_gather_is_a_slice_over_the_network_then_a_gather_over_nvlink():
    """Megatron-LM 2021 (megatron/p2p_communication.py): 1/8 of the activation crosses the NIC,
    then gather_split_1d_tensor all-gathers the 8 slices over the node's NVSwitch; a 1F1B stage
    receives twice per micro-batch (its input, its output's gradient) and waits for both."""
    pp, tp = _levels()
    one = (pp.alpha + SIZE / 8 / pp.beta) + (7 * tp.alpha + 7 / 8 * SIZE / tp.beta)
    assert one == pytest.approx(scatter_gather_p2p_time(SIZE, 8, pp.alpha, pp.beta, tp.alpha, tp.beta), rel=1e-12)
    assert _waited_per_microbatch("megatron", False) == pytest.approx(2 * one, rel=1e-9)
    # DeepSpeed's pipeline engine partitions and gathers the same way (pipe_partitioned)
    assert _waited_per_microbatch("deepspeed", False) == pytest.approx(2 * one, rel=1e-9)
    # the gather is a real share of a transfer: the NIC moves 1/8, NVLink 7/8 at ~10x its rate
    gather = coll.ring_allgather_time(8, SIZE, tp.alpha, tp.beta)
    assert 0.1 < gather / one < 0.6


def test_sequence_parallel_sends_each_ranks_tokens_and_gathers_nothing():
    """Under sequence parallelism each rank holds s/t tokens between layers and sends them as they
    are: Megatron-LM 2022 turns scatter/gather off, Megatron-Core sizes the message s/t."""
    pp, _ = _levels()
    sliced = 2 * coll.point_to_point_time(SIZE / 8, pp.alpha, pp.beta)
    assert _waited_per_microbatch("megatron", True) == pytest.approx(sliced, rel=1e-9)
    assert _waited_per_microbatch("megatron-core", True) == pytest.approx(sliced, rel=1e-9)


def test_megatron_core_without_sequence_parallelism_sends_the_whole_activation():
    """Megatron-Core has no scatter/gather (pipeline_parallel/schedules.py get_tensor_shapes: the
    full [s, b, h] unless sequence parallel): every rank sends the whole tensor to its peer."""
    pp, _ = _levels()
    assert _waited_per_microbatch("megatron-core", False) == pytest.approx(
        2 * coll.point_to_point_time(SIZE, pp.alpha, pp.beta), rel=1e-9)


def test_the_gather_puts_the_split_between_the_whole_and_the_slice():
    whole = _waited_per_microbatch("megatron-core", False)
    split = _waited_per_microbatch("megatron", False)
    sliced = _waited_per_microbatch("megatron", True)
    assert sliced < split < whole
    assert load_model("gpt3-175b").hidden == 12288  # SIZE above is this model's activation
