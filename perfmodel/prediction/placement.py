"""Where each parallel group's traffic goes: the alpha/beta of the tensor-parallel ring, the
data-parallel hierarchy and the pipeline point-to-point link for one placement.

Rank order follows Megatron-LM (tensor-parallel ranks innermost, then data parallel, then
pipeline stages): a TP group fills consecutive devices of a node, data-parallel peers come next,
pipeline stages are outermost. Numbers may be floats or numpy arrays (sweeps).
"""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.formulas import collectives as coll
from perfmodel.formulas._backend import floor, maximum, minimum, where
from perfmodel.prediction.hardware import allreduce_beta, inter_node_level, intra_node_level

__all__ = ["Level", "DpLevels", "Placement", "SpanLevels", "placement_levels", "data_parallel_levels",
           "strided_group_level", "strided_group_span",
           "two_level_allreduce_time", "data_parallel_allreduce_time", "flat_level", "ring_level"]


class Level(NamedTuple):
    """One level's latency (s) and per-device bandwidth (B/s)."""

    alpha: object
    beta: object


class DpLevels(NamedTuple):
    """The data-parallel group's two levels: ``local`` ranks share a node (fabric), the rest
    meet over the network."""

    local: object
    intra_alpha: object
    intra_beta: object
    inter_alpha: object
    inter_beta: object


class SpanLevels(NamedTuple):
    """A strided group over ``nodes`` nodes with ``local`` of its ranks in each: the fabric between
    the ranks of a node (``intra``), the network between nodes (``inter``); one node: ``nodes``
    is 1 and ``inter`` unused."""

    nodes: object
    local: object
    intra: Level
    inter: Level


class Placement(NamedTuple):
    tp: Level
    dp: DpLevels
    pp: Level


def placement_levels(hw, tp, dp, pp, devices) -> Placement:
    """alpha/beta of the TP ring, the DP hierarchy and the pipeline p2p for this placement."""
    per_node = hw.devices_per_node
    tp_in_node = tp <= per_node
    intra_a, intra_b = intra_node_level(hw, tp, maximum(per_node / tp, 1))
    # each group's network level, with the nodes it spans (oversubscription beyond a pod)
    inter_a, inter_b = inter_node_level(hw, per_node, tp / per_node)
    tp_level = Level(where(tp_in_node, intra_a, inter_a), where(tp_in_node, allreduce_beta(hw, intra_b, tp), inter_b))
    inter_a, inter_b = inter_node_level(hw, per_node, tp * dp / per_node)  # a stage's data-parallel group
    # data-parallel ranks sharing a node (consecutive TP groups of the same stage)
    local = minimum(where(tp_in_node, maximum(floor(per_node / tp), 1), 1), dp)
    dpi_a, dpi_b = intra_node_level(hw, tp * local, maximum(per_node / local, 1), stride=tp)
    dp_levels = DpLevels(local, dpi_a, allreduce_beta(hw, dpi_b, local), inter_a, inter_b)
    # pipeline neighbours are tp * dp ranks apart: another node once a stage fills a node
    stage_span = tp * dp
    cross = (devices > per_node) & (stage_span >= per_node)
    ppi_a, ppi_b = intra_node_level(hw, minimum(2 * stage_span, per_node), maximum(per_node / (2 * stage_span), 1),
                                    stride=stage_span)
    pp_a, pp_b = inter_node_level(hw, per_node, 2 * stage_span / per_node)  # two neighbouring stages
    return Placement(tp_level, dp_levels, Level(where(cross, pp_a, ppi_a), where(cross, pp_b, ppi_b)))


def strided_group_level(hw, stride, size) -> Level:
    """alpha/beta of a group of ``size`` ranks ``stride`` apart (a context-parallel ring, tp apart):
    the fabric while its ``stride x size`` devices fit in a node (every such group of the node
    exchanging at once), else the network with every device of the node sending, oversubscribed
    when the group spans more nodes than a non-blocking pod (the two levels of
    :func:`strided_group_span`; a ring is as slow as its slowest hop)."""
    span = strided_group_span(hw, stride, size)
    in_node = stride * size <= hw.devices_per_node
    return Level(where(in_node, span.intra.alpha, span.inter.alpha), where(in_node, span.intra.beta, span.inter.beta))


def strided_group_span(hw, stride, size) -> SpanLevels:
    """The levels of a group of ``size`` ranks ``stride`` apart (an expert-parallel all-to-all,
    tp x cp apart), split by where its peers are: while its ``stride x size`` devices fit in a node
    all are on the fabric; else each node holds ``per_node / stride`` of them (1 when a stride
    fills a node), reached over the fabric, and the others over the network, every device of the
    node sending at once, oversubscribed when the group spans more nodes than a non-blocking pod."""
    per_node = hw.devices_per_node
    span = stride * size
    local = where(span <= per_node, size, minimum(maximum(floor(per_node / stride), 1), size))
    intra_a, intra_b = intra_node_level(hw, minimum(span, per_node), maximum(per_node / span, 1), stride=stride)
    inter_a, inter_b = inter_node_level(hw, per_node, span / per_node)
    return SpanLevels(size / local, local, Level(intra_a, intra_b), Level(inter_a, inter_b))


def data_parallel_levels(hw, dp, tp=1, pp=1) -> DpLevels:
    """The data-parallel part of :func:`placement_levels` for a plan of tp x dp x pp devices."""
    return placement_levels(hw, tp, dp, pp, tp * dp * pp).dp


def two_level_allreduce_time(size, dp, levels: DpLevels):
    """All-reduce of ``size`` bytes over ``dp`` ranks placed as ``levels`` says: two-level,
    pipelined as NCCL runs it (reduce-scatter in the node, all-reduce across nodes, all-gather,
    chunk by chunk); a plain ring on one level when the other has one member."""
    local, ia, ib, ea, eb = levels
    return coll.pipelined_hierarchical_allreduce_time(dp / local, local, size, ia, ib, ea, eb)


def data_parallel_allreduce_time(hw, size, dp, tp=1, pp=1):
    """Seconds of the gradient all-reduce of ``size`` bytes over ``dp`` ranks, placed as a step
    places them (calibration fits this same model)."""
    return two_level_allreduce_time(size, dp, data_parallel_levels(hw, dp, tp, pp))


def flat_level(levels: DpLevels, dp) -> Level:
    """The one level a flat (non-hierarchical) data-parallel exchange runs on: the network once
    the group spans nodes, else the fabric."""
    spans = levels.local < dp
    return Level(where(spans, levels.inter_alpha, levels.intra_alpha), where(spans, levels.inter_beta, levels.intra_beta))


def ring_level(levels: DpLevels, dp) -> Level:
    """The level a ring collective (all-gather, reduce-scatter) over ``dp`` ranks runs on, placed
    as ``levels`` says.

    Inside a node: the fabric. Spanning nodes: each step waits on the network's latency, and the
    rate per rank is the smaller of the fabric's and ``local`` times the network's per-device
    share. NCCL builds one ring per NIC (rail) and spreads its channels over them, so a ring that
    enters and leaves a node once per channel carries each rank's (n-1)/n S through all the
    group's ``local`` NICs of the node at once, not through one device's NIC; the group's rate is
    what the node's NICs give it. With one rank per node this is the plain network ring.
    Source: NVIDIA NCCL src/graph/search.cc and src/graph/rings.cc (ring channels searched per
    NIC, one network crossing per node per channel); S. Jeaugey, "Massively Scale Your Deep
    Learning Training with NCCL 2.4", NVIDIA blog 2019 (rings crossing nodes on every NIC).
    """
    spans = levels.local < dp
    across = minimum(levels.intra_beta, levels.local * levels.inter_beta)
    return Level(where(spans, levels.inter_alpha, levels.intra_alpha), where(spans, across, levels.intra_beta))
