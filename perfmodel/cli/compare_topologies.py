"""``perfmodel compare topologies`` and ``perfmodel compare pcie``: registered on the ``compare`` group."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Optional

import typer

from perfmodel.cli.options import MAX_SIZE, Dtype
from perfmodel.cli.render import Format, emit_json, emit_rows

Collective = enum.Enum("Collective", {c: c for c in ("allreduce", "allgather", "reducescatter", "broadcast",
                                                      "alltoall")}, type=str)

TOPOLOGY_COLUMNS = ["topology", "algorithm", "latency_s", "bandwidth_s", "time_s", "nodes", "shape", "diameter_hops",
                    "average_hops", "bisection_bandwidth", "links_per_node", "formula", "note"]


def topologies(
    collective: Collective = typer.Option(..., "--collective", help="the collective operation"),
    size: str = typer.Option(..., "--size", help="buffer per rank with a unit, e.g. '1 GiB' or '64 KB' (all-gather: "
                             "the output; all-to-all: the whole send buffer)"),
    nodes: int = typer.Option(..., "--nodes", min=2, max=1_000_000, help="number of nodes (ranks)"),
    link: str = typer.Option(..., "--link", help="the link joining nodes, e.g. ib-ndr, nvlink4, eth-100g "
                             "(alpha = its latency, beta = its data rate per direction)"),
    hop_latency: str = typer.Option("100 ns", "--hop-latency", help="latency added per link a message crosses"),
    intra_link: Optional[str] = typer.Option(None, "--intra-link", help="node fabric of the 'hierarchical' "
                                             "topology (default: --link)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write the latency/bandwidth split per topology and "
                                        "time vs message size to FILE.png or FILE.svg"),
    format: Format = typer.Option(Format.table, "--format", help="table (default), json ({rows: [{topology, "
                                  "algorithm, latency_s, bandwidth_s, time_s, hops, diameter_hops, average_hops, "
                                  "bisection_bandwidth, links_per_node, nodes, shape, note, candidates}], "
                                  "crossovers: [{topology, algorithm_a, algorithm_b, size_bytes, faster_below, "
                                  "faster_above, method, closed_form_latex}], ...}) or csv (one row per topology)"),
) -> None:
    """One collective on every network topology: fully connected, rings, a switch, a k-ary tree, 2D/3D
    torus, 2D mesh, hypercube, fat trees (1:1 and 4:1) and a two-level system. Per topology the fastest
    algorithm at SIZE, its time split into a latency term (beta = inf) and a bandwidth term (alpha = 0),
    hops, bisection bandwidth and links per node; then, per pair of a topology's algorithms, the message
    size at which one overtakes the other. Node counts a topology cannot take use the nearest valid one
    (see the note column).

    Example: perfmodel compare topologies --collective allreduce --size "1 GiB" --nodes 64 --link ib-hdr
    """
    from perfmodel.errors import UnitError
    from perfmodel.topologies.compare import compare_topologies
    from perfmodel.units import parse_quantity

    if plot is not None:
        from perfmodel.cli.paths import check_plot

        check_plot(plot)
    def quantity(flag: str, text: str, dimension: str, **kwargs) -> float:
        try:
            return parse_quantity(text, dimension, **kwargs)
        except UnitError as exc:
            raise UnitError(f"{flag}: {exc}") from None

    size_bytes = quantity("--size", size, "bytes", allow_zero=False)
    hop = quantity("--hop-latency", hop_latency, "time")
    result = compare_topologies(collective.value, size_bytes, nodes, link, hop_latency=hop, intra_link=intra_link)
    if plot is not None:
        result.plot(plot)
    if format == Format.json:
        emit_json(result.to_dict())
    elif format == Format.csv:
        emit_rows([r.to_dict() for r in result.rows], format, columns=TOPOLOGY_COLUMNS)
    else:
        from rich.console import Console

        Console().print(result)


def pcie(
    system: str = typer.Option("pcie-8gpu", "--system", help="a system whose devices sit on a PCIe tree"),
    model: str = typer.Option(..., "--model", help="a transformer preset whose heads divide 2, 4 and 8, e.g. "
                              "megatron-1.7b"),
    micro_batch: Optional[int] = typer.Option(None, "--micro-batch", min=1, max=MAX_SIZE, help="sequences per "
                                              "micro-batch (default 1)"),
    global_batch: Optional[int] = typer.Option(None, "--global-batch", min=1, max=MAX_SIZE, help="sequences per "
                                               "step (default: the micro-batch)"),
    seq: Optional[int] = typer.Option(None, "--seq", min=1, max=MAX_SIZE, help="sequence length (default the "
                                      "model's)"),
    dtype: Optional[Dtype] = typer.Option(None, "--dtype", help="compute dtype (default bf16)"),
    format: Format = typer.Option(Format.table, "--format", help="table (default), json ({system, model, "
                                  "overheads, tp: [...], devices_per_switch: [...], bus_bound_tp, crossover_tp, "
                                  "root_limits_ring_below, root_limits_copies_below, notes}) or csv (the tp rows)"),
) -> None:
    """How much GPUs sharing PCIe switches and the root complex slow each other: the link's transaction
    overhead (line code, TLP headers and framing, DLLPs), then tensor parallelism over 2, 4 and 8 GPUs
    (per-GPU bandwidth of the TP ring and of concurrent host copies, what limits each, the predicted
    step and the TP degree where it turns bus-bound), then a what-if with 1, 2, 4 or 8 GPUs behind each
    switch.

    Example: perfmodel compare pcie --system pcie-8gpu --model megatron-1.7b
    """
    from perfmodel.compare.pcie import pcie_contention_story

    fields = {k: v for k, v in (("micro_batch", micro_batch), ("global_batch", global_batch), ("seq", seq),
                                ("dtype", dtype.value if dtype is not None else None)) if v is not None}
    story = pcie_contention_story(system, model, **fields)
    if format == Format.json:
        emit_json(story.to_dict())
    elif format == Format.csv:
        rows = [r.to_dict() for r in story.tp_rows]
        emit_rows(rows, format, columns=list(rows[0]))
    else:
        from rich.console import Console

        Console().print(story)
