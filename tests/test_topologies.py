"""compare topologies: every topology of the foundation, the latency/bandwidth split, the node counts a
topology cannot take, the algorithm crossovers, and the fact that a fully connected network has the
lowest latency term (issue 4, items 3, 6, 7). Link numbers come from the bundled link files.
"""

from __future__ import annotations

import json
import math

import pytest

from perfmodel.cli import main
from perfmodel.errors import PerfModelError, UnknownNameError
from perfmodel.specs.registry import load_link
from perfmodel.topologies.compare import (
    COLLECTIVES,
    DEFAULT_HOP_LATENCY_S,
    TOPOLOGIES,
    compare_topologies,
)

GIB, MIB = 2.0**30, 2.0**20


# --- the fact: fully connected has the lowest latency --------------------------------------------


@pytest.mark.parametrize("link", ["ib-hdr", "nvlink4"])
@pytest.mark.parametrize("collective", COLLECTIVES)
def test_fully_connected_has_the_lowest_latency_term(link, collective):
    """For every collective, node count and size: no topology's fastest algorithm has a smaller latency
    term than fully connected's (strictly smaller from 8 nodes on; at 4 nodes a 2x2 torus or a 4-node
    hypercube can match its two steps)."""
    for nodes in (4, 8, 16, 64, 100, 256):
        for size in (8.0, MIB, GIB):
            result = compare_topologies(collective, size, nodes, link, crossovers=False)
            fc = result.row("fully-connected").latency_s
            for row in result.rows:
                if row.topology == "fully-connected":
                    continue
                assert fc <= row.latency_s * (1 + 1e-12), (nodes, size, row.topology, row.latency_s, fc)
                if nodes >= 8:
                    assert fc < row.latency_s, (nodes, size, row.topology)


def test_fully_connected_latency_is_what_its_algorithms_say():
    """1 GiB all-reduce on 64 nodes over ib-hdr: two-shot, 2 steps of alpha + one hop."""
    link = load_link("ib-hdr")
    row = compare_topologies("allreduce", GIB, 64, "ib-hdr", crossovers=False).row("fully-connected")
    assert row.algorithm == "two-shot"
    assert row.latency_s == pytest.approx(2 * (link.latency + DEFAULT_HOP_LATENCY_S))
    assert row.bandwidth_s == pytest.approx(2 * GIB / (64 * link.bandwidth))
    small = compare_topologies("allreduce", 1024.0, 64, "ib-hdr", crossovers=False).row("fully-connected")
    assert small.algorithm == "one-shot" and small.latency_s == pytest.approx(link.latency + DEFAULT_HOP_LATENCY_S)


# --- the split and the static properties -----------------------------------------------------------


@pytest.mark.parametrize("collective", COLLECTIVES)
def test_every_topology_has_a_row_whose_terms_sum_to_its_time(collective):
    result = compare_topologies(collective, 64 * MIB, 32, "ib-ndr", crossovers=False)
    assert [r.topology for r in result.rows] == list(TOPOLOGIES)
    for row in result.rows:
        assert row.latency_s > 0 and row.bandwidth_s > 0
        assert row.latency_s + row.bandwidth_s == pytest.approx(row.time_s, rel=1e-9)
        assert row.time_s == min(t for _, t in row.candidates)
        assert row.diameter_hops >= 1 and row.average_hops <= row.diameter_hops
        assert row.bisection_bandwidth > 0 and row.links_per_node >= 1


def test_static_properties_come_from_the_topology_formulas():
    result = compare_topologies("allgather", MIB, 64, "ib-hdr", crossovers=False)
    beta = load_link("ib-hdr").bandwidth
    fc, ring, hyper, torus = (result.row(t) for t in ("fully-connected", "ring", "hypercube", "torus-3d"))
    assert (fc.diameter_hops, fc.links_per_node, fc.bisection_bandwidth) == (1, 63, 32 * 32 * beta)
    assert (ring.diameter_hops, ring.links_per_node, ring.bisection_bandwidth) == (32, 2, 2 * beta)
    assert (hyper.diameter_hops, hyper.links_per_node, hyper.bisection_bandwidth) == (6, 6, 32 * beta)
    assert torus.shape == "4x4x4" and torus.diameter_hops == 6


def test_oversubscription_makes_the_fat_tree_all_to_all_bisection_bound():
    """1:1, each node's own link limits all-to-all ((n-1)/n S/beta); 4:1, the leaf uplinks do (n S / 4 B)."""
    beta = load_link("ib-hdr").bandwidth
    result = compare_topologies("alltoall", GIB, 64, "ib-hdr", crossovers=False)
    full, thin = result.row("fat-tree-1:1"), result.row("fat-tree-4:1")
    assert thin.bisection_bandwidth == pytest.approx(full.bisection_bandwidth / 4)
    assert full.bandwidth_s == pytest.approx(63 / 64 * GIB / beta)
    assert thin.bandwidth_s == pytest.approx(64 * GIB / (4 * thin.bisection_bandwidth)) == pytest.approx(2 * GIB / beta)


def test_a_thin_tree_is_the_worst_place_for_all_to_all():
    result = compare_topologies("alltoall", GIB, 64, "ib-hdr", crossovers=False)
    tree = result.row("kary-tree").bandwidth_s
    for topology in ("switch", "fat-tree-1:1", "hypercube", "torus-3d", "fully-connected"):
        assert tree > 2 * result.row(topology).bandwidth_s


# --- node counts a topology cannot take ------------------------------------------------------------


@pytest.mark.parametrize("nodes", [2, 5, 7, 12, 48, 100])
def test_a_changed_node_count_is_always_said(nodes):
    result = compare_topologies("allreduce", MIB, nodes, "ib-hdr", crossovers=False)
    for row in result.rows:
        if row.nodes != nodes:
            assert str(row.nodes) in row.note, (row.topology, row.note)
    assert result.row("hypercube").nodes & (result.row("hypercube").nodes - 1) == 0
    dims = [int(x) for x in result.row("torus-3d").shape.split("x")]
    assert len(dims) == 3 and math.prod(dims) == result.row("torus-3d").nodes


def test_log_step_algorithms_are_skipped_off_powers_of_two_and_said():
    row = compare_topologies("allreduce", 8.0, 12, "ib-hdr", crossovers=False).row("switch")
    assert {a for a, _ in row.candidates} == {"ring"} and "power-of-two" in row.note


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(UnknownNameError, match="did you mean 'allreduce'"):
        compare_topologies("allreduc", MIB, 8, "ib-hdr")
    with pytest.raises(PerfModelError, match="nodes"):
        compare_topologies("allreduce", MIB, 1, "ib-hdr")
    with pytest.raises(PerfModelError, match="size"):
        compare_topologies("allreduce", -1.0, 8, "ib-hdr")
    with pytest.raises(UnknownNameError):
        compare_topologies("allreduce", MIB, 8, "ib-hdx")


# --- crossovers ------------------------------------------------------------------------------------


def test_ring_vs_double_binary_tree_crossover_is_the_closed_form():
    """2(n-1) a + 2(n-1)/n S/b = 2 log2(n) a + 2 S/b  =>  S* = (n - 1 - log2 n) n a b, a = alpha + 2 delta."""
    n, link = 64, load_link("ib-hdr")
    result = compare_topologies("allreduce", MIB, n, "ib-hdr")
    (c,) = [c for c in result.crossovers if c.topology == "switch" and {c.algorithm_a, c.algorithm_b} ==
            {"ring", "double binary tree"}]
    a = link.latency + 2 * DEFAULT_HOP_LATENCY_S
    assert c.method == "sympy" and c.closed_form_latex
    assert c.size_bytes == pytest.approx((n - 1 - math.log2(n)) * n * a * link.bandwidth, rel=1e-9)
    assert (c.faster_below, c.faster_above) == ("double binary tree", "ring")


def test_every_crossover_is_where_the_two_times_meet():
    result = compare_topologies("broadcast", MIB, 64, "nvlink4")
    net = result.networks["net"]
    methods = {c.method for c in result.crossovers}
    assert {"sympy", "numeric"} <= methods  # pipelined chains choose their chunks per size: numeric
    for c in result.crossovers:
        if c.size_bytes is None:
            continue
        algs = {a.name: a for a in result.algorithms[c.topology][1]}
        ta, tb = (algs[name].evaluate(c.size_bytes, net)[0] for name in (c.algorithm_a, c.algorithm_b))
        assert ta == pytest.approx(tb, rel=1e-4), c
        below = {n: algs[n].evaluate(c.size_bytes / 2, net)[0] for n in (c.algorithm_a, c.algorithm_b)}
        assert min(below, key=below.get) == c.faster_below


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_json_rows_and_crossovers(capsys):
    main(["compare", "topologies", "--collective", "allreduce", "--size", "1 GiB", "--nodes", "16", "--link",
          "ib-hdr", "--format", "json"])
    obj = json.loads(capsys.readouterr().out)
    assert {r["topology"] for r in obj["rows"]} == set(TOPOLOGIES)
    for row in obj["rows"]:
        assert {"topology", "latency_s", "bandwidth_s", "time_s", "algorithm", "hops", "bisection_bandwidth",
                "links_per_node", "note"} <= set(row)
    assert obj["crossovers"] and {"algorithm_a", "algorithm_b", "size_bytes"} <= set(obj["crossovers"][0])


@pytest.mark.parametrize("args, message", [
    (["--size", "1 GB/s"], "--size: expected a size"),
    (["--size", "12"], "--size: expected a size"),
    (["--plot", "x.pdf"], "expected a .png or .svg"),
    (["--link", "ib-hdx"], "unknown link 'ib-hdx'"),
])
def test_cli_bad_input_exits_2_with_one_line(capsys, args, message):
    base = {"--collective": "allreduce", "--size": "1 MiB", "--nodes": "8", "--link": "ib-hdr"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["compare", "topologies"] + [x for kv in base.items() for x in kv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and err.count("\n") == 1


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_cli_plot(tmp_path, capsys, suffix):
    out = tmp_path / f"topologies{suffix}"
    main(["compare", "topologies", "--collective", "alltoall", "--size", "1 MiB", "--nodes", "16", "--link",
          "nvlink4", "--plot", str(out), "--format", "csv"])
    assert out.stat().st_size > 10_000
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("topology,algorithm,latency_s,bandwidth_s,time_s") and len(lines) == 1 + len(TOPOLOGIES)
