"""``perfmodel compare topologies`` and ``perfmodel compare pcie``: registered on the ``compare`` group."""

from __future__ import annotations

import enum
from typing import Annotated, Optional

import typer

from perfmodel.cli.options import (
    DtypeOpt,
    FormatOpt,
    GlobalBatch,
    Link,
    MicroBatch,
    Model,
    Plot,
    Seq,
    System,
    plan_fields,
)
from perfmodel.cli.paths import check_plot, plotted
from perfmodel.cli.render import Format, show

Collective = enum.Enum("Collective", {c: c for c in ("allreduce", "allgather", "reducescatter", "broadcast",
                                                      "alltoall")}, type=str)

CollectiveOpt = Annotated[Collective, typer.Option("--collective", help="the collective operation")]
Size = Annotated[str, typer.Option("--size", help="buffer per rank with a unit, e.g. '1 GiB' or '64 KB' (all-gather: "
                                   "the output; all-to-all: the whole send buffer)")]
Nodes = Annotated[int, typer.Option("--nodes", min=2, max=1_000_000, help="number of nodes (ranks)")]
HopLatency = Annotated[str, typer.Option("--hop-latency", help="latency added per link a message crosses")]
IntraLink = Annotated[Optional[str], typer.Option("--intra-link", help="node fabric of the 'hierarchical' topology "
                                                  "(default: --link)")]


def topologies(collective: CollectiveOpt = ..., size: Size = ..., nodes: Nodes = ..., link: Link = ...,
               hop_latency: HopLatency = "100 ns", intra_link: IntraLink = None, plot: Plot = None,
               format: FormatOpt = Format.table) -> None:
    """One collective on every network topology: fully connected, rings, a switch, a k-ary tree, 2D/3D
    torus, 2D mesh, hypercube, fat trees (1:1 and 4:1) and a two-level system. Per topology the fastest
    algorithm at SIZE, its time split into a latency term (beta = inf) and a bandwidth term (alpha = 0),
    hops, bisection bandwidth and links per node; then, per pair of a topology's algorithms, the message
    size at which one overtakes the other. Node counts a topology cannot take use the nearest valid one
    (see the note column). --link joins the nodes: alpha is its latency, beta its data rate per
    direction.

    Formats: table; json ({rows: [{topology, algorithm, latency_s, bandwidth_s, time_s, hops,
    diameter_hops, average_hops, bisection_bandwidth, links_per_node, nodes, shape, note, candidates}],
    crossovers: [{topology, algorithm_a, algorithm_b, size_bytes, faster_below, faster_above, method,
    closed_form_latex}], ...}); csv (one row per topology). --plot: the latency/bandwidth split per
    topology and time vs message size.

    Example: perfmodel compare topologies --collective allreduce --size "1 GiB" --nodes 64 --link ib-hdr
    """
    from perfmodel.topologies.compare import compare_topologies

    check_plot(plot)
    size_bytes = _quantity("--size", size, "bytes", allow_zero=False)
    hop = _quantity("--hop-latency", hop_latency, "time")
    result = compare_topologies(collective.value, size_bytes, nodes, link, hop_latency=hop, intra_link=intra_link)
    if plot is not None:
        plotted(type(result).plot, result, plot)
    show(result, format)


def _quantity(flag: str, text: str, dimension: str, **kwargs) -> float:
    from perfmodel.errors import UnitError
    from perfmodel.units import parse_quantity

    try:
        return parse_quantity(text, dimension, **kwargs)
    except UnitError as exc:
        raise UnitError(f"{flag}: {exc}") from None


def pcie(system: System = "pcie-8gpu", model: Model = ..., micro_batch: MicroBatch = None,
         global_batch: GlobalBatch = None, seq: Seq = None, dtype: DtypeOpt = None,
         format: FormatOpt = Format.table) -> None:
    """How much GPUs sharing PCIe switches and the root complex slow each other: the link's transaction
    overhead (line code, TLP headers and framing, DLLPs), then tensor parallelism over 2, 4 and 8 GPUs
    (per-GPU bandwidth of the TP ring and of concurrent host copies, what limits each, the predicted
    step and the TP degree where it turns bus-bound), then a what-if with 1, 2, 4 or 8 GPUs behind each
    switch. --system is a system whose devices sit on a PCIe tree (default pcie-8gpu); --model a
    transformer preset whose heads divide 2, 4 and 8, e.g. megatron-1.7b.

    Formats: table; json ({system, model, overheads, tp: [...], devices_per_switch: [...], bus_bound_tp,
    crossover_tp, root_limits_ring_below, root_limits_copies_below, notes}); csv (the tp rows).

    Example: perfmodel compare pcie --system pcie-8gpu --model megatron-1.7b
    """
    from perfmodel.compare.pcie import pcie_contention_story

    fields = plan_fields(micro_batch=micro_batch, global_batch=global_batch, seq=seq, dtype=dtype)
    show(pcie_contention_story(system, model, **fields), format)
