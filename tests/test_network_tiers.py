"""Per-tier oversubscription (issue 11): a network whose pods of ``full_bisection_nodes`` nodes
are non-blocking, oversubscribed above them. Checked against a hand calculation of the
per-device network bandwidth each parallel group sees."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from perfmodel import predict
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.placement import placement_levels
from perfmodel.specs.registry import bundled_dir, load_spec

HDR_PER_DEVICE = 25e9 * 0.96  # one 200 Gb/s HDR NIC per A100 (8 per node), at the spec's 96 % efficiency


def _tiered(pod_nodes: float, oversubscription: float = 4.0):
    return dataclasses.replace(hw_params(load_spec("dgx-a100"), "bf16"), oversubscription=oversubscription,
                               pod_nodes=pod_nodes)


@pytest.mark.parametrize("dp, expected", [(4, HDR_PER_DEVICE), (8, HDR_PER_DEVICE / 4)])
def test_data_parallel_group_sees_oversubscription_only_beyond_its_pod(dp, expected):
    # TP 8 fills a node; DP 4 spans 4 nodes = the pod (full bandwidth); DP 8 spans 8 (4:1 above the pod)
    levels = placement_levels(_tiered(pod_nodes=4), tp=8, dp=dp, pp=1, devices=8 * dp)
    assert levels.dp.inter_beta == pytest.approx(expected, rel=1e-12)


def test_pipeline_neighbours_in_one_pod_are_not_oversubscribed():
    # a stage spans 2 nodes (tp 8 x dp 2); two neighbouring stages span 4 nodes: one pod
    hw = _tiered(pod_nodes=4)
    assert placement_levels(hw, tp=8, dp=2, pp=8, devices=128).pp.beta == pytest.approx(HDR_PER_DEVICE, rel=1e-12)
    # with 2-node pods the same pair of stages crosses a pod boundary
    assert placement_levels(_tiered(pod_nodes=2), tp=8, dp=2, pp=8, devices=128).pp.beta == \
        pytest.approx(HDR_PER_DEVICE / 4, rel=1e-12)


def test_no_pod_means_every_group_across_nodes_is_oversubscribed():
    levels = placement_levels(_tiered(pod_nodes=0), tp=8, dp=2, pp=1, devices=16)
    assert levels.dp.inter_beta == pytest.approx(HDR_PER_DEVICE / 4, rel=1e-12)


def _system_file(tmp_path: Path, extra: str) -> Path:
    text = (bundled_dir() / "system" / "dgx-a100.toml").read_text()
    text = text.replace('name = "dgx-a100"', 'name = "dgx-a100-tiered"').replace(
        "oversubscription = 1.0", "oversubscription = 4.0\n" + extra)
    path = tmp_path / "dgx-a100-tiered.toml"
    path.write_text(text)
    return path


def test_spec_file_pod_reaches_the_step(tmp_path):
    """End to end: the gradient all-reduce of a DP group inside a 16-node pod costs what it costs
    on a full-bisection network; without the pod line it is slower (4:1 everywhere)."""
    plan = dict(devices=128, tp=8, pp=1, global_batch=512, micro_batch=4)
    flat = predict("megatron-3.6b", "dgx-a100", **plan).breakdown["dp_comm"]
    pod = predict("megatron-3.6b", str(_system_file(tmp_path, "full_bisection_nodes = 16")), **plan).breakdown["dp_comm"]
    everywhere = predict("megatron-3.6b", str(_system_file(tmp_path, "")), **plan).breakdown["dp_comm"]
    assert pod == pytest.approx(flat, rel=1e-12)
    assert everywhere > 1.5 * flat
