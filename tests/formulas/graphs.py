"""Small graph toolkit for the topology tests: build the actual graph, then brute-force it.

Breadth-first search gives hop counts (diameter, average over ordered distinct terminal pairs);
exhaustive enumeration of balanced cuts gives the one-direction bisection, on small instances.
Used by test_topology.py, test_torus.py and test_switched.py.
"""

from __future__ import annotations

import itertools
from collections import deque

import pytest

BETA = 1e9


class Graph:
    """Terminals + switches; links are full duplex with a capacity per direction."""

    def __init__(self, directed=False):
        self.adj: dict = {}
        self.edges: list = []  # (u, v, capacity)
        self.terminals: list = []
        self.directed = directed

    def node(self, v, terminal=True):
        self.adj.setdefault(v, [])
        if terminal:
            self.terminals.append(v)

    def link(self, u, v, cap=BETA):
        self.adj[u].append(v)
        if not self.directed:
            self.adj[v].append(u)
        self.edges.append((u, v, cap))

    def distances_from(self, src):
        dist = {src: 0}
        queue = deque([src])
        while queue:
            u = queue.popleft()
            for w in self.adj[u]:
                if w not in dist:
                    dist[w] = dist[u] + 1
                    queue.append(w)
        return dist

    def hop_stats(self):
        """(diameter, mean over ordered distinct terminal pairs) of shortest-path hops."""
        lengths = []
        for s in self.terminals:
            dist = self.distances_from(s)
            lengths += [dist[t] for t in self.terminals if t != s]
        return max(lengths), sum(lengths) / len(lengths)

    def bisection(self):
        """Min over balanced terminal splits and switch placements of one-way cut capacity."""
        terms = self.terminals
        switches = [v for v in self.adj if v not in set(terms)]
        best = float("inf")
        first, rest = terms[0], terms[1:]
        for combo in itertools.combinations(rest, len(terms) // 2 - 1):
            side_a = {first, *combo}
            for placement in itertools.product((0, 1), repeat=len(switches)):
                a = side_a | {s for s, bit in zip(switches, placement) if bit}
                if self.directed:  # one direction: whichever is smaller
                    ab = sum(c for u, v, c in self.edges if u in a and v not in a)
                    ba = sum(c for u, v, c in self.edges if v in a and u not in a)
                    cut = min(ab, ba)
                else:
                    cut = sum(c for u, v, c in self.edges if (u in a) != (v in a))
                best = min(best, cut)
        return best

    def degree(self, v):
        if self.directed:  # outgoing links
            return sum(1 for u, _, _ in self.edges if u == v)
        return sum(1 for u, w, _ in self.edges if v in (u, w))


def fully_connected(n):
    g = Graph()
    for i in range(n):
        g.node(i)
    for i, j in itertools.combinations(range(n), 2):
        g.link(i, j)
    return g


def ring(n, directed=False):
    g = Graph(directed=directed)
    for i in range(n):
        g.node(i)
    for i in range(n):
        g.link(i, (i + 1) % n)
    return g


def star(n):
    g = Graph()
    g.node("sw", terminal=False)
    for i in range(n):
        g.node(i)
        g.link(i, "sw")
    return g


def kary_tree(levels, k):
    g = Graph()
    g.node(("s", 0, 0), terminal=False)
    frontier = [("s", 0, 0)]
    for level in range(1, levels + 1):
        nxt = []
        for parent in frontier:
            for c in range(k):
                leaf = level == levels
                v = (("t" if leaf else "s"), level, parent[2] * k + c)
                g.node(v, terminal=leaf)
                g.link(parent, v)
                nxt.append(v)
        frontier = nxt
    return g


def grid(dims, wrap):
    g = Graph()
    coords = list(itertools.product(*[range(k) for k in dims]))
    for c in coords:
        g.node(c)
    for c in coords:
        for axis, k in enumerate(dims):
            if not wrap and c[axis] == k - 1:
                continue
            nb = list(c)
            nb[axis] = (c[axis] + 1) % k
            g.link(c, tuple(nb))
    return g


def hypercube(d):
    g = Graph()
    for v in range(2**d):
        g.node(v)
    for v in range(2**d):
        for b in range(d):
            if v < v ^ (1 << b):
                g.link(v, v ^ (1 << b))
    return g


def fat_tree(n, p, o):
    """Leaves with p nodes each; each leaf's uplinks merged into one link of p*beta/o to the spine."""
    g = Graph()
    g.node("spine", terminal=False)
    for leaf in range(n // p):
        g.node(("leaf", leaf), terminal=False)
        g.link(("leaf", leaf), "spine", cap=p * BETA / o)
    for r in range(n):
        g.node(r)
        g.link(r, ("leaf", r // p))
    return g


def hierarchical(n_nodes, d, beta_intra, beta_inter):
    g = Graph()
    g.node("net", terminal=False)
    for node in range(n_nodes):
        g.node(("nsw", node), terminal=False)
        g.link(("nsw", node), "net", cap=d * beta_inter)
        for dev in range(d):
            g.node((node, dev))
            g.link((node, dev), ("nsw", node), cap=beta_intra)
    return g


def check_graph(g, diameter, average, bisection=None, degree=None, total=None):
    got_d, got_avg = g.hop_stats()
    assert got_d == pytest.approx(float(diameter), rel=1e-12)
    assert got_avg == pytest.approx(float(average), rel=1e-12)
    if bisection is not None:
        assert g.bisection() == pytest.approx(float(bisection), rel=1e-12)
    if degree is not None:
        assert max(g.degree(t) for t in g.terminals) == pytest.approx(float(degree))
    if total is not None:
        assert len(g.edges) == pytest.approx(float(total))
