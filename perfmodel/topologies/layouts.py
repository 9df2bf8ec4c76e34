"""How each topology holds a collective: the nearest valid shape, the algorithms and their formulas.

Used by :mod:`perfmodel.topologies.compare`. Every algorithm is a formula of :mod:`perfmodel.formulas`
called with the topology's numbers: the textbook form with each step's hops folded into its
latency (:func:`perfmodel.formulas.mapped.step_latency_time`) where the mapping shares no link,
the placed and contention forms (:mod:`perfmodel.formulas.contention`,
:mod:`perfmodel.formulas.treecoll`, :mod:`perfmodel.formulas.gridcoll`) where it does or where
hops differ from step to step. Log-step algorithms are offered only for the node counts they are
defined for (powers of two); a topology that cannot take the node count (a hypercube, a binary
tree, a torus factorisation) is built with the nearest count it can take
(:mod:`perfmodel.topologies.shapes`), and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import contention as cont
from perfmodel.formulas import gridcoll as grid
from perfmodel.formulas import logtree as tree
from perfmodel.formulas import mapped as mp
from perfmodel.formulas import switched as sw
from perfmodel.formulas import topology as topo
from perfmodel.formulas import torus as tor
from perfmodel.formulas import treecoll as tc
from perfmodel.topologies.shapes import (
    is_power,
    largest_divisor,
    nearest_grid,
    nearest_power,
)

__all__ = ["Network", "Algorithm", "layout", "TREE_ARITY", "MAX_NODES_PER_LEAF", "MAX_DEVICES_PER_NODE"]

TREE_ARITY = 2  # the k-ary tree row: a binary tree, the thin tree whose bisection is one link
MAX_NODES_PER_LEAF = 32  # fat tree: a 64-port leaf switch with 32 ports down, 32 up at 1:1
MAX_DEVICES_PER_NODE = 8  # hierarchical: up to 8 devices per node (a DGX-like server)
MAX_CHUNKS = 1 << 24


@dataclass(frozen=True)
class Network:
    """The link numbers a collective is costed with (the intra pair for the two-level system)."""

    alpha: object  # s, per message
    beta: object  # B/s per link per direction
    hop_latency: object  # s per link crossed
    alpha_intra: object
    beta_intra: object

    def latency_only(self) -> Network:
        return replace(self, beta=math.inf, beta_intra=math.inf)

    def bandwidth_only(self) -> Network:
        return replace(self, alpha=0.0, hop_latency=0.0, alpha_intra=0.0)


@dataclass(frozen=True)
class Algorithm:
    """One algorithm laid on one topology: ``time(size, net, n_chunks)`` from a formula."""

    name: str
    formula: str  # perfmodel.formulas function that costs it (module.function)
    time: Callable
    chunked: bool = False  # pipelined: the number of chunks is chosen per size

    def best_chunks(self, size, net: Network) -> int | None:
        """Integer chunk count minimising the time (the time is convex in the count)."""
        if not self.chunked:
            return None
        lo, hi = 1, MAX_CHUNKS
        while hi - lo > 2:
            m1 = lo + (hi - lo) // 3
            m2 = hi - (hi - lo) // 3
            if self.time(size, net, m1) <= self.time(size, net, m2):
                hi = m2
            else:
                lo = m1
        return min(range(lo, hi + 1), key=lambda c: self.time(size, net, c))

    def evaluate(self, size, net: Network) -> tuple[float, float, float, int | None]:
        """(time, latency term, bandwidth term, chunks) at ``size`` on ``net``."""
        chunks = self.best_chunks(size, net)
        total = float(self.time(size, net, chunks))
        latency = float(self.time(size, net.latency_only(), chunks))
        bandwidth = float(self.time(size, net.bandwidth_only(), chunks))
        return total, latency, bandwidth, chunks


# --- the algorithms of each topology --------------------------------------------------------------


def _step(net: Network, hops):
    return mp.step_latency_time(net.alpha, net.hop_latency, hops)


def _alg(name, func, time, chunked=False) -> Algorithm:
    return Algorithm(name, f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}", time, chunked)


def _direct_alltoall(n, ports, diameter, bisection_of) -> Algorithm:
    f = mp.direct_alltoall_bisection_time
    return _alg("direct", f, lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency, ports, diameter,
                                                 bisection_of(net.beta)))


def _single_port(n, hops, collective, pow2, *, chain=True) -> list[Algorithm]:
    """Textbook forms with every step crossing ``hops`` links and no shared link (a switch)."""
    out = []
    t = lambda f: (lambda s, net, c: f(n, s, _step(net, hops), net.beta))  # noqa: E731
    if collective == "allreduce":
        out.append(_alg("ring", coll.ring_allreduce_time, t(coll.ring_allreduce_time)))
        if pow2:
            out += [_alg("rabenseifner", tree.rabenseifner_allreduce_time, t(tree.rabenseifner_allreduce_time)),
                    _alg("recursive doubling", tree.recursive_doubling_allreduce_time,
                         t(tree.recursive_doubling_allreduce_time)),
                    _alg("double binary tree", tree.double_binary_tree_allreduce_time,
                         t(tree.double_binary_tree_allreduce_time))]
    elif collective == "allgather":
        out.append(_alg("ring", coll.ring_allgather_time, t(coll.ring_allgather_time)))
        if pow2:
            out.append(_alg("recursive doubling", tree.recursive_doubling_allgather_time,
                            t(tree.recursive_doubling_allgather_time)))
    elif collective == "reducescatter":
        out.append(_alg("ring", coll.ring_reduce_scatter_time, t(coll.ring_reduce_scatter_time)))
        if pow2:
            out.append(_alg("recursive halving", tree.recursive_halving_reduce_scatter_time,
                            t(tree.recursive_halving_reduce_scatter_time)))
    elif collective == "broadcast":
        f = coll.pipelined_ring_broadcast_time
        if chain:
            out.append(_alg("pipelined chain", f, lambda s, net, c: f(n, s, _step(net, hops), net.beta, c), True))
        if pow2:
            out += [_alg("binomial tree", tree.binomial_tree_broadcast_time, t(tree.binomial_tree_broadcast_time)),
                    _alg("scatter + allgather", tree.scatter_allgather_broadcast_time,
                         t(tree.scatter_allgather_broadcast_time)),
                    _alg("double binary tree", tree.double_binary_tree_broadcast_time,
                         t(tree.double_binary_tree_broadcast_time))]
    return out


@dataclass(frozen=True)
class _Layout:
    nodes: int
    shape: str
    note: str
    diameter: float
    average_hops: float
    bisection_of: Callable  # beta -> one-direction bisection bandwidth (B/s)
    links_per_node: float
    algorithms: list


def _fully_connected(n, collective, notes):
    one = lambda f: (lambda s, net, c: f(n, s, _step(net, 1), net.beta))  # noqa: E731
    algs = {
        "allreduce": [_alg("one-shot", coll.one_shot_allreduce_time, one(coll.one_shot_allreduce_time)),
                      _alg("two-shot", coll.two_shot_allreduce_time, one(coll.two_shot_allreduce_time)),
                      _alg("ring", coll.ring_allreduce_time, one(coll.ring_allreduce_time))],
        "allgather": [_alg("direct", coll.direct_allgather_time, one(coll.direct_allgather_time)),
                      _alg("ring", coll.ring_allgather_time, one(coll.ring_allgather_time))],
        "reducescatter": [_alg("direct", coll.direct_reduce_scatter_time, one(coll.direct_reduce_scatter_time)),
                          _alg("ring", coll.ring_reduce_scatter_time, one(coll.ring_reduce_scatter_time))],
        "broadcast": [_alg("direct", mp.direct_broadcast_time, one(mp.direct_broadcast_time)),
                      _alg("scatter + allgather", mp.direct_scatter_allgather_broadcast_time,
                           one(mp.direct_scatter_allgather_broadcast_time)),
                      *_single_port(n, 1, "broadcast", False)],
        "alltoall": [_alg("direct", coll.direct_alltoall_time, one(coll.direct_alltoall_time))],
    }[collective]
    return _Layout(n, f"{n}", "", float(topo.fully_connected_diameter(n)),
                   float(topo.fully_connected_average_hops(n)), lambda b: topo.fully_connected_bisection_bandwidth(n, b),
                   float(topo.fully_connected_links_per_node(n)), algs)


def _ring_unidirectional(n, collective, notes):
    one = lambda f: (lambda s, net, c: f(n, s, _step(net, 1), net.beta))  # noqa: E731
    if collective == "alltoall":
        algs = [_alg("ring (store-and-forward)", mp.unidirectional_ring_alltoall_time,
                     one(mp.unidirectional_ring_alltoall_time))]
    else:
        algs = _single_port(n, 1, collective, False)
    return _Layout(n, f"{n}", "", float(topo.unidirectional_ring_diameter(n)),
                   float(topo.unidirectional_ring_average_hops(n)),
                   lambda b: topo.unidirectional_ring_bisection_bandwidth(n, b),
                   float(topo.unidirectional_ring_links_per_node(n)), algs)


def _ring(n, collective, notes):
    pow2 = is_power(n, 2)
    one = lambda f: (lambda s, net, c: f(n, s, _step(net, 1), net.beta))  # noqa: E731
    placed = lambda f: (lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency))  # noqa: E731
    if collective == "allreduce":
        algs = [_alg("bidirectional ring", coll.bidirectional_ring_allreduce_time,
                     one(coll.bidirectional_ring_allreduce_time))]
        if pow2:
            algs += [_alg("rabenseifner", cont.rabenseifner_allreduce_on_ring_time,
                          placed(cont.rabenseifner_allreduce_on_ring_time)),
                     _alg("recursive doubling", cont.recursive_doubling_allreduce_on_ring_time,
                          placed(cont.recursive_doubling_allreduce_on_ring_time))]
    elif collective == "allgather":
        algs = [_alg("bidirectional ring", mp.bidirectional_ring_allgather_time, one(mp.bidirectional_ring_allgather_time))]
        if pow2:
            algs.append(_alg("recursive doubling", cont.recursive_doubling_allgather_on_ring_time,
                             placed(cont.recursive_doubling_allgather_on_ring_time)))
    elif collective == "reducescatter":
        algs = [_alg("bidirectional ring", mp.bidirectional_ring_reduce_scatter_time,
                     one(mp.bidirectional_ring_reduce_scatter_time))]
        if pow2:
            algs.append(_alg("recursive halving", cont.recursive_halving_reduce_scatter_on_ring_time,
                             placed(cont.recursive_halving_reduce_scatter_on_ring_time)))
    elif collective == "broadcast":
        f = mp.bidirectional_pipelined_ring_broadcast_time
        algs = [_alg("two pipelined chains", f, lambda s, net, c: f(n, s, _step(net, 1), net.beta, c), True)]
    else:
        # the shortest-way ring schedule meets the bisection bound of direct all-to-all (nS/8 beta)
        algs = [_alg("ring (shortest way)", mp.ring_alltoall_time, one(mp.ring_alltoall_time))]
    if not pow2 and collective in ("allreduce", "allgather", "reducescatter"):
        notes.append("recursive halving/doubling skipped: needs a power-of-two node count")
    return _Layout(n, f"{n}", "", float(topo.ring_diameter(n)), float(topo.ring_average_hops(n)),
                   lambda b: topo.ring_bisection_bandwidth(n, b), float(topo.ring_links_per_node(n)), algs)


def _switch(n, collective, notes):
    pow2 = is_power(n, 2)
    if collective == "alltoall":
        algs = [_direct_alltoall(n, 1, 2, lambda b: sw.switch_bisection_bandwidth(n, b))]
        if pow2:
            f = tree.bruck_alltoall_time
            algs.append(_alg("bruck", f, lambda s, net, c: f(n, s, _step(net, 2), net.beta)))
    else:
        algs = _single_port(n, 2, collective, pow2)
    if not pow2:
        notes.append("log-step algorithms skipped: they need a power-of-two node count")
    return _Layout(n, f"{n}", "", float(sw.switch_diameter(n)), float(sw.switch_average_hops(n)),
                   lambda b: sw.switch_bisection_bandwidth(n, b), float(sw.switch_links_per_node(n)), algs)


def _kary_tree(n, collective, notes, arity=TREE_ARITY):
    used = n if is_power(n, arity) else nearest_power(n, arity)
    if used != n:
        notes.append(f"{used} nodes: a complete {arity}-ary tree needs a power of {arity}")
    n = used
    hops = float(sw.kary_tree_diameter(n, arity))
    binary = arity == 2
    placed = lambda f: (lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency))  # noqa: E731
    if collective == "allreduce":
        f = cont.contended_ring_allreduce_time
        algs = [_alg("ring", f, lambda s, net, c: f(n, s, net.alpha, net.beta, hops, net.hop_latency, 1))]
        if binary:
            algs += [_alg("rabenseifner", tc.rabenseifner_allreduce_binary_tree_time,
                          placed(tc.rabenseifner_allreduce_binary_tree_time)),
                     _alg("recursive doubling", tc.recursive_doubling_allreduce_binary_tree_time,
                          placed(tc.recursive_doubling_allreduce_binary_tree_time))]
    elif collective in ("allgather", "reducescatter"):
        f = cont.contended_ring_allgather_time
        algs = [_alg("ring", f, lambda s, net, c: f(n, s, net.alpha, net.beta, hops, net.hop_latency, 1))]
        if binary:
            g = (tc.recursive_doubling_allgather_binary_tree_time if collective == "allgather"
                 else tc.recursive_halving_reduce_scatter_binary_tree_time)
            algs.append(_alg("recursive doubling" if collective == "allgather" else "recursive halving", g, placed(g)))
    elif collective == "broadcast":
        f = coll.pipelined_ring_broadcast_time
        algs = [_alg("pipelined chain", f, lambda s, net, c: f(n, s, _step(net, hops), net.beta, c), True)]
        if binary:
            algs.append(_alg("binomial tree", tc.binomial_broadcast_binary_tree_time,
                             placed(tc.binomial_broadcast_binary_tree_time)))
    else:
        algs = [_direct_alltoall(n, 1, hops, lambda b: sw.kary_tree_bisection_bandwidth(n, arity, b))]
    return _Layout(n, f"{n} (arity {arity})", "", hops, float(sw.kary_tree_average_hops(n, arity)),
                   lambda b: sw.kary_tree_bisection_bandwidth(n, arity, b),
                   float(sw.kary_tree_links_per_node(n, arity)), algs)


def _hypercube(n, collective, notes):
    used = n if is_power(n, 2) else nearest_power(n, 2)
    if used != n:
        notes.append(f"{used} nodes: a hypercube needs a power of two")
    n = used
    one = lambda f: (lambda s, net, c: f(n, s, _step(net, 1), net.beta))  # noqa: E731
    dims = float(topo.hypercube_diameter(n))
    algs = {
        "allreduce": [_alg("recursive doubling", tree.recursive_doubling_allreduce_time,
                           one(tree.recursive_doubling_allreduce_time)),
                      _alg("rabenseifner", tree.rabenseifner_allreduce_time, one(tree.rabenseifner_allreduce_time))],
        "allgather": [_alg("recursive doubling", tree.recursive_doubling_allgather_time,
                           one(tree.recursive_doubling_allgather_time))],
        "reducescatter": [_alg("recursive halving", tree.recursive_halving_reduce_scatter_time,
                               one(tree.recursive_halving_reduce_scatter_time))],
        "broadcast": [_alg("binomial tree", tree.binomial_tree_broadcast_time, one(tree.binomial_tree_broadcast_time)),
                      _alg("scatter + allgather", mp.scatter_recursive_doubling_broadcast_time,
                           one(mp.scatter_recursive_doubling_broadcast_time))],
        "alltoall": [_direct_alltoall(n, dims, dims, lambda b: topo.hypercube_bisection_bandwidth(n, b)),
                     _alg("dimension exchange (bruck)", tree.bruck_alltoall_time, one(tree.bruck_alltoall_time))],
    }[collective]
    return _Layout(n, f"{n} ({int(dims)} dims)", "", dims, float(topo.hypercube_average_hops(n)),
                   lambda b: topo.hypercube_bisection_bandwidth(n, b), float(topo.hypercube_links_per_node(n)), algs)


def _grid(n, collective, notes, kind):
    n_dims = 3 if kind == "torus-3d" else 2
    used, dims = nearest_grid(n, n_dims)
    if used != n:
        notes.append(f"{used} nodes: {n} has no {n_dims}D factorisation with every side >= 2")
    if kind != "mesh-2d" and 2 in dims:
        notes.append("a side of 2: its wraparound is a second link between the same two nodes")
    n = used
    if kind == "torus-2d":
        fs = (grid.torus2d_ring_allreduce_time, grid.torus2d_ring_allgather_time, grid.torus2d_ring_reduce_scatter_time,
              grid.torus2d_pipelined_broadcast_time)
        props = (tor.torus2d_diameter(*dims), tor.torus2d_average_hops(*dims),
                 lambda b: tor.torus2d_bisection_bandwidth(*dims, b), tor.torus2d_links_per_node(*dims))
        ports, label = 4, "rings per dimension"
    elif kind == "torus-3d":
        fs = (grid.torus3d_ring_allreduce_time, grid.torus3d_ring_allgather_time, grid.torus3d_ring_reduce_scatter_time,
              grid.torus3d_pipelined_broadcast_time)
        props = (tor.torus3d_diameter(*dims), tor.torus3d_average_hops(*dims),
                 lambda b: tor.torus3d_bisection_bandwidth(*dims, b), tor.torus3d_links_per_node(*dims))
        ports, label = 6, "rings per dimension"
    else:
        fs = (grid.mesh2d_ring_allreduce_time, grid.mesh2d_ring_allgather_time, grid.mesh2d_ring_reduce_scatter_time,
              grid.mesh2d_pipelined_broadcast_time)
        props = (tor.mesh2d_diameter(*dims), tor.mesh2d_average_hops(*dims),
                 lambda b: tor.mesh2d_bisection_bandwidth(*dims, b), tor.mesh2d_links_per_node(*dims))
        ports, label = 2, "ring per line"  # a corner node has 2 links
    ar, ag, rs, bc = fs
    at = lambda f: (lambda s, net, c: f(*dims, s, net.alpha, net.beta, net.hop_latency))  # noqa: E731
    algs = {
        "allreduce": [_alg(label, ar, at(ar))],
        "allgather": [_alg(label, ag, at(ag))],
        "reducescatter": [_alg(label, rs, at(rs))],
        "broadcast": [_alg("chains per dimension", bc,
                           lambda s, net, c: bc(*dims, s, net.alpha, net.beta, net.hop_latency, c), True)],
        "alltoall": [_direct_alltoall(n, ports, float(props[0]), props[2])],
    }[collective]
    return _Layout(n, "x".join(map(str, dims)), "", float(props[0]), float(props[1]), props[2], float(props[3]), algs)


def _fat_tree(n, collective, notes, oversubscription):
    p = largest_divisor(n, min(MAX_NODES_PER_LEAF, n / 2))
    o = oversubscription
    pow2 = is_power(n, 2) and is_power(p, 2)
    placed = lambda f: (lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency, o, p))  # noqa: E731
    if collective == "allreduce":
        algs = [_alg("ring", cont.contiguous_ring_allreduce_fat_tree_time,
                     placed(cont.contiguous_ring_allreduce_fat_tree_time))]
        if pow2:
            algs += [_alg("rabenseifner", tc.rabenseifner_allreduce_fat_tree_time,
                          placed(tc.rabenseifner_allreduce_fat_tree_time)),
                     _alg("recursive doubling", tc.recursive_doubling_allreduce_fat_tree_time,
                          placed(tc.recursive_doubling_allreduce_fat_tree_time))]
    elif collective in ("allgather", "reducescatter"):
        algs = [_alg("ring", tc.contiguous_ring_allgather_fat_tree_time, placed(tc.contiguous_ring_allgather_fat_tree_time))]
        if pow2:
            g = (tc.recursive_doubling_allgather_fat_tree_time if collective == "allgather"
                 else tc.recursive_halving_reduce_scatter_fat_tree_time)
            algs.append(_alg("recursive doubling" if collective == "allgather" else "recursive halving", g, placed(g)))
    elif collective == "broadcast":
        f = tc.contiguous_pipelined_broadcast_fat_tree_time
        algs = [_alg("pipelined chain", f, lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency, o, p, c),
                     True)]
        if pow2:
            algs.append(_alg("binomial tree", tc.binomial_broadcast_fat_tree_time, placed(tc.binomial_broadcast_fat_tree_time)))
    else:
        algs = [_direct_alltoall(n, 1, float(sw.fat_tree_diameter(n, p)),
                                 lambda b: sw.fat_tree_bisection_bandwidth(n, p, b, o))]
    if not pow2 and collective != "alltoall":
        notes.append("log-step algorithms skipped: they need powers of two (nodes and nodes per leaf)")
    return _Layout(n, f"{n // p} leaves x {p}", "", float(sw.fat_tree_diameter(n, p)),
                   float(sw.fat_tree_average_hops(n, p)), lambda b: sw.fat_tree_bisection_bandwidth(n, p, b, o),
                   float(sw.fat_tree_links_per_node(n)), algs)


def _hierarchical(n, collective, notes):
    d = largest_divisor(n, min(MAX_DEVICES_PER_NODE, n / 2))
    nodes = n // d

    def two_level(f):
        return lambda s, net, c: f(nodes, d, s, mp.step_latency_time(net.alpha_intra, net.hop_latency, 2),
                                   net.beta_intra, _step(net, 4), net.beta)

    f = {"allreduce": coll.hierarchical_allreduce_time, "allgather": tc.hierarchical_allgather_time,
         "reducescatter": tc.hierarchical_reduce_scatter_time, "broadcast": tc.hierarchical_broadcast_time}.get(collective)
    if collective == "broadcast":
        g = tc.hierarchical_pipelined_broadcast_time
        algs = [_alg("two-level binomial", f, two_level(f)),
                _alg("pipelined chain", g, lambda s, net, c: g(nodes, d, s, mp.step_latency_time(
                    net.alpha_intra, net.hop_latency, 2), net.beta_intra, _step(net, 4), net.beta, c), True)]
    elif f is not None:
        algs = [_alg("two-level ring", f, two_level(f))]
    else:
        algs = [_direct_alltoall(n, 1, 4, lambda b: sw.hierarchical_bisection_bandwidth(nodes, d, b))]
    return _Layout(n, f"{nodes} nodes x {d}", "", float(sw.hierarchical_diameter(nodes, d)),
                   float(sw.hierarchical_average_hops(nodes, d)),
                   lambda b: sw.hierarchical_bisection_bandwidth(nodes, d, b),
                   float(sw.hierarchical_links_per_node(nodes, d)), algs)


def layout(topology: str, n: int, collective: str) -> _Layout:
    """The shape, note, static properties and algorithms of ``collective`` on ``topology``."""
    notes: list[str] = []
    if topology == "fully-connected":
        lay = _fully_connected(n, collective, notes)
    elif topology == "ring-unidirectional":
        lay = _ring_unidirectional(n, collective, notes)
    elif topology == "ring":
        lay = _ring(n, collective, notes)
    elif topology == "switch":
        lay = _switch(n, collective, notes)
    elif topology == "kary-tree":
        lay = _kary_tree(n, collective, notes)
    elif topology == "hypercube":
        lay = _hypercube(n, collective, notes)
    elif topology in ("torus-2d", "torus-3d", "mesh-2d"):
        lay = _grid(n, collective, notes, topology)
    elif topology.startswith("fat-tree"):
        lay = _fat_tree(n, collective, notes, float(topology.split("-")[-1].split(":")[0]))
    else:
        lay = _hierarchical(n, collective, notes)
    return replace(lay, note="; ".join(notes))
