"""The pieces every topology's layout is built from: the network numbers, an algorithm (name,
formula, time), the per-step latency of a mapping, and the single-port log-step algorithms.

:mod:`perfmodel.topologies.layouts` assembles them per topology.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import logtree as tree
from perfmodel.formulas import mapped as mp

__all__ = ["Network", "Algorithm", "Layout", "TREE_ARITY", "MAX_NODES_PER_LEAF", "MAX_DEVICES_PER_NODE",
           "step_latency", "algorithm", "direct_alltoall", "single_port"]

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


def step_latency(net: Network, hops):
    return mp.step_latency_time(net.alpha, net.hop_latency, hops)


def algorithm(name, func, time, chunked=False) -> Algorithm:
    return Algorithm(name, f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}", time, chunked)


def direct_alltoall(n, ports, diameter, bisection_of) -> Algorithm:
    f = mp.direct_alltoall_bisection_time
    return algorithm("direct", f, lambda s, net, c: f(n, s, net.alpha, net.beta, net.hop_latency, ports, diameter,
                                                 bisection_of(net.beta)))


def single_port(n, hops, collective, pow2, *, chain=True) -> list[Algorithm]:
    """Textbook forms with every step crossing ``hops`` links and no shared link (a switch)."""
    out = []
    t = lambda f: (lambda s, net, c: f(n, s, step_latency(net, hops), net.beta))  # noqa: E731
    if collective == "allreduce":
        out.append(algorithm("ring", coll.ring_allreduce_time, t(coll.ring_allreduce_time)))
        if pow2:
            out += [algorithm("rabenseifner", tree.rabenseifner_allreduce_time, t(tree.rabenseifner_allreduce_time)),
                    algorithm("recursive doubling", tree.recursive_doubling_allreduce_time,
                         t(tree.recursive_doubling_allreduce_time)),
                    algorithm("double binary tree", tree.double_binary_tree_allreduce_time,
                         t(tree.double_binary_tree_allreduce_time))]
    elif collective == "allgather":
        out.append(algorithm("ring", coll.ring_allgather_time, t(coll.ring_allgather_time)))
        if pow2:
            out.append(algorithm("recursive doubling", tree.recursive_doubling_allgather_time,
                            t(tree.recursive_doubling_allgather_time)))
    elif collective == "reducescatter":
        out.append(algorithm("ring", coll.ring_reduce_scatter_time, t(coll.ring_reduce_scatter_time)))
        if pow2:
            out.append(algorithm("recursive halving", tree.recursive_halving_reduce_scatter_time,
                            t(tree.recursive_halving_reduce_scatter_time)))
    elif collective == "broadcast":
        f = coll.pipelined_ring_broadcast_time
        if chain:
            out.append(algorithm("pipelined chain", f, lambda s, net, c: f(n, s, step_latency(net, hops), net.beta, c), True))
        if pow2:
            out += [algorithm("binomial tree", tree.binomial_tree_broadcast_time, t(tree.binomial_tree_broadcast_time)),
                    algorithm("scatter + allgather", tree.scatter_allgather_broadcast_time,
                         t(tree.scatter_allgather_broadcast_time)),
                    algorithm("double binary tree", tree.double_binary_tree_broadcast_time,
                         t(tree.double_binary_tree_broadcast_time))]
    return out


@dataclass(frozen=True)
class Layout:
    nodes: int
    shape: str
    note: str
    diameter: float
    average_hops: float
    bisection_of: Callable  # beta -> one-direction bisection bandwidth (B/s)
    links_per_node: float
    algorithms: list


