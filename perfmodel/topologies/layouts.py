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

from dataclasses import replace

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

from perfmodel.topologies.algorithms import (
    MAX_DEVICES_PER_NODE,
    MAX_NODES_PER_LEAF,
    TREE_ARITY,
    Algorithm,
    Layout,
    Network,
    algorithm,
    direct_alltoall,
    single_port,
    step_latency,
)

__all__ = ["Network", "Algorithm", "layout", "TREE_ARITY", "MAX_NODES_PER_LEAF", "MAX_DEVICES_PER_NODE"]


def _fully_connected(n, collective, notes):
    one = lambda f: (lambda s, net, c: f(n, s, step_latency(net, 1), net.beta))  # noqa: E731
    algs = {
        "allreduce": [algorithm("one-shot", coll.one_shot_allreduce_time, one(coll.one_shot_allreduce_time)),
                      algorithm("two-shot", coll.two_shot_allreduce_time, one(coll.two_shot_allreduce_time)),
                      algorithm("ring", coll.ring_allreduce_time, one(coll.ring_allreduce_time))],
        "allgather": [algorithm("direct", coll.direct_allgather_time, one(coll.direct_allgather_time)),
                      algorithm("ring", coll.ring_allgather_time, one(coll.ring_allgather_time))],
        "reducescatter": [algorithm("direct", coll.direct_reduce_scatter_time, one(coll.direct_reduce_scatter_time)),
                          algorithm("ring", coll.ring_reduce_scatter_time, one(coll.ring_reduce_scatter_time))],
        "broadcast": [algorithm("direct", mp.direct_broadcast_time, one(mp.direct_broadcast_time)),
                      algorithm("scatter + allgather", mp.direct_scatter_allgather_broadcast_time,
                           one(mp.direct_scatter_allgather_broadcast_time)),
                      *single_port(n, 1, "broadcast", False)],
        "alltoall": [algorithm("direct", coll.direct_alltoall_time, one(coll.direct_alltoall_time))],
    }[collective]
    return Layout(n, f"{n}", "", float(topo.fully_connected_diameter(n)),
                   float(topo.fully_connected_average_hops(n)), lambda b: topo.fully_connected_bisection_bandwidth(n, b),
                   float(topo.fully_connected_links_per_node(n)), algs)


def _ring_unidirectional(n, collective, notes):
    one = lambda f: (lambda s, net, c: f(n, s, step_latency(net, 1), net.beta))  # noqa: E731
    if collective == "alltoall":
        algs = [algorithm("ring (store-and-forward)", mp.unidirectional_ring_alltoall_time,
                     one(mp.unidirectional_ring_alltoall_time))]
    else:
        algs = single_port(n, 1, collective, False)
    return Layout(n, f"{n}", "", float(topo.unidirectional_ring_diameter(n)),
                   float(topo.unidirectional_ring_average_hops(n)),
                   lambda b: topo.unidirectional_ring_bisection_bandwidth(n, b),
                   float(topo.unidirectional_ring_links_per_node(n)), algs)


def _ring(n, collective, notes):
    pow2 = is_power(n, 2)
    one = lambda f: (lambda s, net, c: f(n, s, step_latency(net, 1), net.beta))  # noqa: E731
    placed = lambda f: (lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency))  # noqa: E731
    if collective == "allreduce":
        algs = [algorithm("bidirectional ring", coll.bidirectional_ring_allreduce_time,
                     one(coll.bidirectional_ring_allreduce_time))]
        if pow2:
            algs += [algorithm("rabenseifner", cont.rabenseifner_allreduce_on_ring_time,
                          placed(cont.rabenseifner_allreduce_on_ring_time)),
                     algorithm("recursive doubling", cont.recursive_doubling_allreduce_on_ring_time,
                          placed(cont.recursive_doubling_allreduce_on_ring_time))]
    elif collective == "allgather":
        algs = [algorithm("bidirectional ring", mp.bidirectional_ring_allgather_time, one(mp.bidirectional_ring_allgather_time))]
        if pow2:
            algs.append(algorithm("recursive doubling", cont.recursive_doubling_allgather_on_ring_time,
                             placed(cont.recursive_doubling_allgather_on_ring_time)))
    elif collective == "reducescatter":
        algs = [algorithm("bidirectional ring", mp.bidirectional_ring_reduce_scatter_time,
                     one(mp.bidirectional_ring_reduce_scatter_time))]
        if pow2:
            algs.append(algorithm("recursive halving", cont.recursive_halving_reduce_scatter_on_ring_time,
                             placed(cont.recursive_halving_reduce_scatter_on_ring_time)))
    elif collective == "broadcast":
        f = mp.bidirectional_pipelined_ring_broadcast_time
        algs = [algorithm("two pipelined chains", f, lambda s, net, c: f(n, s, step_latency(net, 1), net.beta, c), True)]
    else:
        # the shortest-way ring schedule meets the bisection bound of direct all-to-all (nS/8 beta)
        algs = [algorithm("ring (shortest way)", mp.ring_alltoall_time, one(mp.ring_alltoall_time))]
    if not pow2 and collective in ("allreduce", "allgather", "reducescatter"):
        notes.append("recursive halving/doubling skipped: needs a power-of-two node count")
    return Layout(n, f"{n}", "", float(topo.ring_diameter(n)), float(topo.ring_average_hops(n)),
                   lambda b: topo.ring_bisection_bandwidth(n, b), float(topo.ring_links_per_node(n)), algs)


def _switch(n, collective, notes):
    pow2 = is_power(n, 2)
    if collective == "alltoall":
        algs = [direct_alltoall(n, 1, 2, lambda b: sw.switch_bisection_bandwidth(n, b))]
        if pow2:
            f = tree.bruck_alltoall_time
            algs.append(algorithm("bruck", f, lambda s, net, c: f(n, s, step_latency(net, 2), net.beta)))
    else:
        algs = single_port(n, 2, collective, pow2)
    if not pow2:
        notes.append("log-step algorithms skipped: they need a power-of-two node count")
    return Layout(n, f"{n}", "", float(sw.switch_diameter(n)), float(sw.switch_average_hops(n)),
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
        algs = [algorithm("ring", f, lambda s, net, c: f(n, s, net.alpha, net.beta, hops, net.hop_latency, 1))]
        if binary:
            algs += [algorithm("rabenseifner", tc.rabenseifner_allreduce_binary_tree_time,
                          placed(tc.rabenseifner_allreduce_binary_tree_time)),
                     algorithm("recursive doubling", tc.recursive_doubling_allreduce_binary_tree_time,
                          placed(tc.recursive_doubling_allreduce_binary_tree_time))]
    elif collective in ("allgather", "reducescatter"):
        f = cont.contended_ring_allgather_time
        algs = [algorithm("ring", f, lambda s, net, c: f(n, s, net.alpha, net.beta, hops, net.hop_latency, 1))]
        if binary:
            g = (tc.recursive_doubling_allgather_binary_tree_time if collective == "allgather"
                 else tc.recursive_halving_reduce_scatter_binary_tree_time)
            algs.append(algorithm("recursive doubling" if collective == "allgather" else "recursive halving", g, placed(g)))
    elif collective == "broadcast":
        f = coll.pipelined_ring_broadcast_time
        algs = [algorithm("pipelined chain", f, lambda s, net, c: f(n, s, step_latency(net, hops), net.beta, c), True)]
        if binary:
            algs.append(algorithm("binomial tree", tc.binomial_broadcast_binary_tree_time,
                             placed(tc.binomial_broadcast_binary_tree_time)))
    else:
        algs = [direct_alltoall(n, 1, hops, lambda b: sw.kary_tree_bisection_bandwidth(n, arity, b))]
    return Layout(n, f"{n} (arity {arity})", "", hops, float(sw.kary_tree_average_hops(n, arity)),
                   lambda b: sw.kary_tree_bisection_bandwidth(n, arity, b),
                   float(sw.kary_tree_links_per_node(n, arity)), algs)


def _hypercube(n, collective, notes):
    used = n if is_power(n, 2) else nearest_power(n, 2)
    if used != n:
        notes.append(f"{used} nodes: a hypercube needs a power of two")
    n = used
    one = lambda f: (lambda s, net, c: f(n, s, step_latency(net, 1), net.beta))  # noqa: E731
    dims = float(topo.hypercube_diameter(n))
    algs = {
        "allreduce": [algorithm("recursive doubling", tree.recursive_doubling_allreduce_time,
                           one(tree.recursive_doubling_allreduce_time)),
                      algorithm("rabenseifner", tree.rabenseifner_allreduce_time, one(tree.rabenseifner_allreduce_time))],
        "allgather": [algorithm("recursive doubling", tree.recursive_doubling_allgather_time,
                           one(tree.recursive_doubling_allgather_time))],
        "reducescatter": [algorithm("recursive halving", tree.recursive_halving_reduce_scatter_time,
                               one(tree.recursive_halving_reduce_scatter_time))],
        "broadcast": [algorithm("binomial tree", tree.binomial_tree_broadcast_time, one(tree.binomial_tree_broadcast_time)),
                      algorithm("scatter + allgather", mp.scatter_recursive_doubling_broadcast_time,
                           one(mp.scatter_recursive_doubling_broadcast_time))],
        "alltoall": [direct_alltoall(n, dims, dims, lambda b: topo.hypercube_bisection_bandwidth(n, b)),
                     algorithm("dimension exchange (bruck)", tree.bruck_alltoall_time, one(tree.bruck_alltoall_time))],
    }[collective]
    return Layout(n, f"{n} ({int(dims)} dims)", "", dims, float(topo.hypercube_average_hops(n)),
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
        "allreduce": [algorithm(label, ar, at(ar))],
        "allgather": [algorithm(label, ag, at(ag))],
        "reducescatter": [algorithm(label, rs, at(rs))],
        "broadcast": [algorithm("chains per dimension", bc,
                           lambda s, net, c: bc(*dims, s, net.alpha, net.beta, net.hop_latency, c), True)],
        "alltoall": [direct_alltoall(n, ports, float(props[0]), props[2])],
    }[collective]
    return Layout(n, "x".join(map(str, dims)), "", float(props[0]), float(props[1]), props[2], float(props[3]), algs)


def _fat_tree(n, collective, notes, oversubscription):
    p = largest_divisor(n, min(MAX_NODES_PER_LEAF, n / 2))
    o = oversubscription
    pow2 = is_power(n, 2) and is_power(p, 2)
    placed = lambda f: (lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency, o, p))  # noqa: E731
    if collective == "allreduce":
        algs = [algorithm("ring", cont.contiguous_ring_allreduce_fat_tree_time,
                     placed(cont.contiguous_ring_allreduce_fat_tree_time))]
        if pow2:
            algs += [algorithm("rabenseifner", tc.rabenseifner_allreduce_fat_tree_time,
                          placed(tc.rabenseifner_allreduce_fat_tree_time)),
                     algorithm("recursive doubling", tc.recursive_doubling_allreduce_fat_tree_time,
                          placed(tc.recursive_doubling_allreduce_fat_tree_time))]
    elif collective in ("allgather", "reducescatter"):
        algs = [algorithm("ring", tc.contiguous_ring_allgather_fat_tree_time, placed(tc.contiguous_ring_allgather_fat_tree_time))]
        if pow2:
            g = (tc.recursive_doubling_allgather_fat_tree_time if collective == "allgather"
                 else tc.recursive_halving_reduce_scatter_fat_tree_time)
            algs.append(algorithm("recursive doubling" if collective == "allgather" else "recursive halving", g, placed(g)))
    elif collective == "broadcast":
        f = tc.contiguous_pipelined_broadcast_fat_tree_time
        algs = [algorithm("pipelined chain", f, lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency, o, p, c),
                     True)]
        if pow2:
            algs.append(algorithm("binomial tree", tc.binomial_broadcast_fat_tree_time, placed(tc.binomial_broadcast_fat_tree_time)))
    else:
        algs = [direct_alltoall(n, 1, float(sw.fat_tree_diameter(n, p)),
                                 lambda b: sw.fat_tree_bisection_bandwidth(n, p, b, o))]
    if not pow2 and collective != "alltoall":
        notes.append("log-step algorithms skipped: they need powers of two (nodes and nodes per leaf)")
    return Layout(n, f"{n // p} leaves x {p}", "", float(sw.fat_tree_diameter(n, p)),
                   float(sw.fat_tree_average_hops(n, p)), lambda b: sw.fat_tree_bisection_bandwidth(n, p, b, o),
                   float(sw.fat_tree_links_per_node(n)), algs)


def _hierarchical(n, collective, notes):
    d = largest_divisor(n, min(MAX_DEVICES_PER_NODE, n / 2))
    nodes = n // d

    def two_level(f):
        return lambda s, net, c: f(nodes, d, s, mp.step_latency_time(net.alpha_intra, net.hop_latency, 2),
                                   net.beta_intra, step_latency(net, 4), net.beta)

    f = {"allreduce": coll.hierarchical_allreduce_time, "allgather": tc.hierarchical_allgather_time,
         "reducescatter": tc.hierarchical_reduce_scatter_time, "broadcast": tc.hierarchical_broadcast_time}.get(collective)
    if collective == "broadcast":
        g = tc.hierarchical_pipelined_broadcast_time
        algs = [algorithm("two-level binomial", f, two_level(f)),
                algorithm("pipelined chain", g, lambda s, net, c: g(nodes, d, s, mp.step_latency_time(
                    net.alpha_intra, net.hop_latency, 2), net.beta_intra, step_latency(net, 4), net.beta, c), True)]
    elif f is not None:
        algs = [algorithm("two-level ring", f, two_level(f))]
    else:
        algs = [direct_alltoall(n, 1, 4, lambda b: sw.hierarchical_bisection_bandwidth(nodes, d, b))]
    return Layout(n, f"{nodes} nodes x {d}", "", float(sw.hierarchical_diameter(nodes, d)),
                   float(sw.hierarchical_average_hops(nodes, d)),
                   lambda b: sw.hierarchical_bisection_bandwidth(nodes, d, b),
                   float(sw.hierarchical_links_per_node(nodes, d)), algs)


def layout(topology: str, n: int, collective: str) -> Layout:
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
