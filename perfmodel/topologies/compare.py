"""Which topology gives the lowest collective latency for N nodes: every topology side by side.

``compare_topologies(collective, size, nodes, link)`` lays the collective on each topology of the
foundation (fully connected, unidirectional and bidirectional ring, one switch, a k-ary tree of
switches, 2D and 3D torus, 2D mesh, hypercube, leaf-spine fat tree at 1:1 and 4:1, a two-level
node/network system) with the algorithms that suit it, costs each with the formulas of
:mod:`perfmodel.formulas` (textbook forms with the hops of the mapping, and the contention forms
where the mapping shares links), and keeps the fastest at ``size``. Each row splits its time into
a latency term (the formula with beta = inf) and a bandwidth term (alpha = 0, hop latency 0),
with the topology's hops, bisection bandwidth and links per node. Per topology, every pair of
its algorithms gets the message size where one overtakes the other (:mod:`perfmodel.topologies.crossovers`).

Model: alpha = the link's per-message latency, beta = its data bandwidth per direction, plus
``hop_latency`` per link a message crosses; a rank drives one message per link at a time (so a
fully connected rank sends to all n - 1 peers in one step, a rank on a switch one at a time).
Reduction compute is not included. Node counts a topology cannot take (a hypercube or binary tree
needs a power of two, a torus a factorisation) use the nearest valid count, said in ``note``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from perfmodel.errors import PlanError, SpecError, UnknownNameError, did_you_mean
from perfmodel.topologies.layouts import Algorithm, Network, layout

__all__ = ["COLLECTIVES", "TOPOLOGIES", "DEFAULT_HOP_LATENCY_S", "Network", "Algorithm", "TopologyRow",
           "TopologyComparison", "compare_topologies", "topology_algorithms"]

COLLECTIVES = ("allreduce", "allgather", "reducescatter", "broadcast", "alltoall")
TOPOLOGIES = {
    "fully-connected": "a link between every pair of nodes (n - 1 ports)",
    "ring-unidirectional": "ring with links one way only",
    "ring": "bidirectional ring (2 ports)",
    "switch": "star: one non-blocking crossbar switch",
    "kary-tree": "complete k-ary tree of switches, nodes at the leaves",
    "torus-2d": "2D torus (wraparound rings in x and y)",
    "torus-3d": "3D torus",
    "mesh-2d": "2D mesh (no wraparound)",
    "hypercube": "binary hypercube (log2 n ports)",
    "fat-tree-1:1": "leaf-spine fat tree, full bisection",
    "fat-tree-4:1": "leaf-spine fat tree, leaf uplinks oversubscribed 4:1",
    "hierarchical": "two-level: d devices on a node switch, nodes on a network switch",
}
# Per-hop latency when none is given: a model value of the order of a cut-through switch or
# router traversal (Dally & Towles 2004, Ch. 3: router delay of tens of ns; InfiniBand and
# Ethernet switch ASICs quote 100-600 ns port to port). Change it with ``hop_latency``.
DEFAULT_HOP_LATENCY_S = 100e-9


@dataclass(frozen=True)
class TopologyRow:
    """One topology: its fastest algorithm at the size, the time split, and static properties."""

    topology: str
    algorithm: str
    formula: str
    nodes: int
    shape: str
    latency_s: float
    bandwidth_s: float
    time_s: float
    diameter_hops: float
    average_hops: float
    bisection_bandwidth: float
    links_per_node: float
    note: str
    n_chunks: int | None = None
    candidates: tuple = ()  # (algorithm, time_s) of every algorithm considered

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("topology", "algorithm", "latency_s", "bandwidth_s", "time_s",
                                             "nodes", "shape", "diameter_hops", "average_hops",
                                             "bisection_bandwidth", "links_per_node", "formula", "n_chunks",
                                             "note")}
        out["hops"] = self.diameter_hops
        out["candidates"] = [{"algorithm": a, "time_s": t} for a, t in self.candidates]
        return out


@dataclass(frozen=True)
class TopologyComparison:
    """The result of :func:`compare_topologies` (renders itself; ``plot`` draws it)."""

    collective: str
    size_bytes: float
    nodes: int
    link: str
    alpha_s: float
    beta: float
    hop_latency_s: float
    rows: tuple[TopologyRow, ...]
    crossovers: tuple = ()
    networks: dict = field(default_factory=dict, repr=False, compare=False)
    algorithms: dict = field(default_factory=dict, repr=False, compare=False)

    def row(self, topology: str) -> TopologyRow:
        return next(r for r in self.rows if r.topology == topology)

    def to_dict(self) -> dict:
        return {"collective": self.collective, "size_bytes": self.size_bytes, "nodes": self.nodes,
                "link": self.link, "alpha_s": self.alpha_s, "beta_bytes_per_s": self.beta,
                "hop_latency_s": self.hop_latency_s, "rows": [r.to_dict() for r in self.rows],
                "crossovers": [c.to_dict() for c in self.crossovers]}

    CSV_COLUMNS = ("topology", "algorithm", "latency_s", "bandwidth_s", "time_s", "nodes", "shape",
                   "diameter_hops", "average_hops", "bisection_bandwidth", "links_per_node", "formula", "note")

    def to_rows(self) -> list[dict]:
        """One CSV row per topology (:attr:`CSV_COLUMNS`)."""
        return [r.to_dict() for r in self.rows]

    def plot(self, path) -> None:
        from perfmodel.topologies.plot import plot_topologies

        plot_topologies(self, path)

    def __rich_console__(self, console, options):
        from perfmodel.topologies.crossovers import render_comparison

        yield render_comparison(self, options.max_width)


def topology_algorithms(topology: str, nodes: int, collective: str) -> list[Algorithm]:
    """The algorithms costed for ``collective`` on ``topology`` with (about) ``nodes`` nodes."""
    _check(collective, nodes, topology)
    return list(layout(topology, nodes, collective).algorithms)


def _check(collective, nodes, topology=None) -> None:
    if collective not in COLLECTIVES:
        raise UnknownNameError(f"unknown collective '{collective}'{did_you_mean(str(collective), COLLECTIVES)}"
                               f" (expected one of {', '.join(COLLECTIVES)})")
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 2 <= nodes <= 1_000_000:
        raise PlanError(f"nodes: expected an integer in [2, 1000000], got {nodes!r}")
    if topology is not None and topology not in TOPOLOGIES:
        raise UnknownNameError(f"unknown topology '{topology}'{did_you_mean(topology, TOPOLOGIES)}")


def _network(link, hop_latency, intra_link) -> tuple[str, Network]:
    from perfmodel.prediction.hardware import link_data_bandwidth
    from perfmodel.specs.registry import load_link

    spec = load_link(link) if isinstance(link, str) else link
    intra = spec if intra_link is None else (load_link(intra_link) if isinstance(intra_link, str) else intra_link)
    if isinstance(hop_latency, bool) or not isinstance(hop_latency, (int, float)) or not (
            math.isfinite(hop_latency) and hop_latency >= 0):
        raise PlanError(f"hop latency: expected a non-negative finite time in seconds, got {hop_latency!r}")
    net = Network(spec.latency, link_data_bandwidth(spec), hop_latency, intra.latency, link_data_bandwidth(intra))
    return spec.name, net


def _check_finite(evaluated, topology, size, link, net) -> None:
    """Refuse times that overflow or underflow to inf/NaN (e.g. 1e308 B, or a link of 1e-320 B/s)."""
    for alg, total, latency, bandwidth, _ in evaluated:
        if not all(math.isfinite(float(x)) for x in (total, latency, bandwidth)):
            raise SpecError(f"{alg.name} on {topology}: {size:g} B over link {link} (latency {net.alpha:g} s, "
                            f"{net.beta:g} B/s, hop latency {net.hop_latency:g} s) gives a time of {float(total)!r} s, "
                            f"not a finite number; give a smaller size, a realistic hop latency or a link with a "
                            f"realistic bandwidth and latency")


def compare_topologies(collective: str, size: float, nodes: int, link, *, hop_latency: float = DEFAULT_HOP_LATENCY_S,
                       intra_link=None, topologies=None, crossovers: bool = True) -> TopologyComparison:
    """Cost ``collective`` of ``size`` bytes per rank on ``nodes`` nodes joined by ``link`` on every topology.

    ``link`` is a link name or spec (alpha = its latency, beta = its per-direction data rate);
    ``intra_link`` is the node fabric of the two-level system (default: ``link``). Returns a
    :class:`TopologyComparison` whose rows hold each topology's fastest algorithm at ``size``
    with ``latency_s + bandwidth_s == time_s``, and, with ``crossovers``, the message size at
    which each pair of a topology's algorithms trade places.
    """
    _check(collective, nodes)
    if isinstance(size, bool) or not (isinstance(size, (int, float)) and math.isfinite(size) and size > 0):
        raise PlanError(f"size: expected a positive finite number of bytes, got {size!r}")
    name, net = _network(link, hop_latency, intra_link)
    chosen = list(TOPOLOGIES) if topologies is None else list(topologies)
    for t in chosen:
        _check(collective, nodes, t)
    rows, algorithms = [], {}
    for topology in chosen:
        lay = layout(topology, nodes, collective)
        evaluated = [(alg, *alg.evaluate(size, net)) for alg in lay.algorithms]
        _check_finite(evaluated, topology, size, name, net)
        best, total, latency, bandwidth, chunks = min(evaluated, key=lambda e: e[1])
        if not math.isclose(latency + bandwidth, total, rel_tol=1e-9):  # every form is latency + bandwidth
            raise RuntimeError(f"internal: {best.formula} on {topology} does not split into latency + bandwidth "
                               f"({latency!r} + {bandwidth!r} != {total!r})")
        algorithms[topology] = (lay.nodes, lay.algorithms)
        rows.append(TopologyRow(
            topology=topology, algorithm=best.name, formula=best.formula, nodes=lay.nodes, shape=lay.shape,
            latency_s=latency, bandwidth_s=bandwidth, time_s=total, diameter_hops=lay.diameter,
            average_hops=lay.average_hops, bisection_bandwidth=float(lay.bisection_of(net.beta)),
            links_per_node=lay.links_per_node, note=lay.note, n_chunks=chunks,
            candidates=tuple((e[0].name, e[1]) for e in evaluated)))
    result = TopologyComparison(collective, float(size), nodes, name, float(net.alpha), float(net.beta),
                                float(hop_latency), tuple(rows), (), {"net": net}, algorithms)
    if crossovers:
        from perfmodel.topologies.crossovers import algorithm_crossovers

        result = replace(result, crossovers=tuple(algorithm_crossovers(result)))
    return result
