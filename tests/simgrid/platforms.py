"""Topologies and collective algorithms as plain data for the SimGrid oracle (no simgrid import).

A *topology* knows its links (bandwidth per direction in B/s, latency in s, SimGrid sharing
policy) and the route between two hosts as a list of ``(link, direction)``. A *collective* is a
list of synchronous phases, each a list of concurrent point-to-point flows ``(src, dst, bytes)``
between ranks; ``order[rank]`` is the host the rank runs on (rank placement).
:func:`build_job` turns both into a picklable :class:`Job` that tests/simgrid/sgrun.py runs in a
fresh SimGrid engine.

Conventions of the closed forms being checked (perfmodel/formulas/contention.py): links are full
duplex (SimGrid SPLITDUPLEX: direction UP and DOWN each have the full bandwidth), a route's
latency is the sum of its links' latencies (``hop_latency`` per link), a switch backplane is a
SHARED link (one capacity for every flow through it, no latency of its own), and a phase starts
when every flow of the previous phase has finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

UP, DOWN, NONE = "UP", "DOWN", "NONE"
SPLIT, SHARED = "SPLITDUPLEX", "SHARED"


@dataclass
class Job:
    """Everything one simulation needs, as plain picklable data."""

    n_hosts: int
    links: dict[str, tuple[float, float, str]]  # name -> (bandwidth B/s, latency s, policy)
    routes: dict[tuple[int, int], list[tuple[str, str]]]  # (src, dst) host -> [(link, dir)]
    phases: list[tuple[list[tuple[int, int, int]], int]]  # ([(src, dst, bytes)], repeat)

    @property
    def n_flows(self):
        return sum(len(flows) * repeat for flows, repeat in self.phases)


# --- topologies ---------------------------------------------------------------------------------


@dataclass
class Topology:
    n_hosts: int
    links: dict[str, tuple[float, float, str]] = field(default_factory=dict)

    def add_link(self, name, bandwidth, latency, policy=SPLIT):
        self.links[name] = (float(bandwidth), float(latency), policy)
        return name

    def route(self, src, dst):  # pragma: no cover - every topology overrides it
        raise NotImplementedError


class Ring(Topology):
    """Bidirectional ring: link e<j> joins host j and j+1 (UP = clockwise j -> j+1).

    Shortest way round; at exactly half the ring the lower host goes clockwise and the upper one
    counter-clockwise (the tie rule of contention.recursive_doubling_allgather_on_ring_time).
    """

    def __init__(self, n, beta, hop_latency):
        super().__init__(n)
        for j in range(n):
            self.add_link(f"e{j}", beta, hop_latency)

    def route(self, src, dst):
        n = self.n_hosts
        cw = (dst - src) % n
        if cw < n - cw or (cw == n - cw and src < dst):
            return [(f"e{(src + k) % n}", UP) for k in range(cw)]
        return [(f"e{(src - k - 1) % n}", DOWN) for k in range(n - cw)]


class Switch(Topology):
    """n hosts on one switch; with ``backplane`` (B/s) its switching capacity is one SHARED link."""

    def __init__(self, n, beta, hop_latency, backplane=None):
        super().__init__(n)
        for j in range(n):
            self.add_link(f"port{j}", beta, hop_latency)
        self.backplane = backplane is not None
        if self.backplane:
            self.add_link("backplane", backplane, 0.0, SHARED)

    def route(self, src, dst):
        middle = [("backplane", NONE)] if self.backplane else []
        return [(f"port{src}", UP), *middle, (f"port{dst}", DOWN)]


class FullyConnected(Topology):
    """A full-duplex link between every pair of hosts (UP = lower -> higher host)."""

    def __init__(self, n, beta, hop_latency):
        super().__init__(n)
        for i in range(n):
            for j in range(i + 1, n):
                self.add_link(f"fc{i}_{j}", beta, hop_latency)

    def route(self, src, dst):
        lo, hi = min(src, dst), max(src, dst)
        return [(f"fc{lo}_{hi}", UP if src < dst else DOWN)]


class Hypercube(Topology):
    """n = 2^d hosts, a link along each dimension; e-cube routing (lowest differing bit first)."""

    def __init__(self, n, beta, hop_latency):
        super().__init__(n)
        for v in range(n):
            for b in range(int(math.log2(n))):
                if not v & (1 << b):
                    self.add_link(f"h{v}_{b}", beta, hop_latency)

    def route(self, src, dst):
        hops, at = [], src
        for b in range(int(math.log2(self.n_hosts))):
            if (at ^ dst) & (1 << b):
                nxt = at ^ (1 << b)
                hops.append((f"h{min(at, nxt)}_{b}", UP if at < nxt else DOWN))
                at = nxt
        return hops


class Torus2D(Topology):
    """kx x ky torus, host = y*kx + x; link x<x>_<y> goes +x, y<x>_<y> goes +y (UP = plus).

    Dimension-order routing (x then y), shortest direction, ties towards plus.
    """

    def __init__(self, kx, ky, beta, hop_latency):
        super().__init__(kx * ky)
        self.kx, self.ky = kx, ky
        for y in range(ky):
            for x in range(kx):
                self.add_link(f"x{x}_{y}", beta, hop_latency)
                self.add_link(f"y{x}_{y}", beta, hop_latency)

    def _walk(self, a, b, k):
        plus = (b - a) % k
        if plus <= k - plus:
            return [(a + i) % k for i in range(plus)], UP
        return [(a - i - 1) % k for i in range(k - plus)], DOWN

    def route(self, src, dst):
        (sx, sy), (dx, dy) = divmod(src, self.kx)[::-1], divmod(dst, self.kx)[::-1]
        xs, xdir = self._walk(sx, dx, self.kx)
        ys, ydir = self._walk(sy, dy, self.ky)
        return [(f"x{x}_{sy}", xdir) for x in xs] + [(f"y{dx}_{y}", ydir) for y in ys]

    def snake_order(self):
        """Boustrophedon rank order: a Hamiltonian cycle of 1-hop edges when ky is even."""
        return [y * self.kx + (x if y % 2 == 0 else self.kx - 1 - x)
                for y in range(self.ky) for x in range(self.kx)]


class Tree(Topology):
    """Complete k-ary tree of switches with the n = k^levels hosts at the leaves.

    The link above vertex (level, index) is t<level>_<index> (UP = towards the root); level 0
    holds the hosts.
    """

    def __init__(self, levels, arity, beta, hop_latency):
        super().__init__(arity**levels)
        self.levels, self.arity = levels, arity
        for level in range(levels):
            for i in range(arity ** (levels - level)):
                self.add_link(f"t{level}_{i}", beta, hop_latency)

    def route(self, src, dst):
        up, down, a, b, level = [], [], src, dst, 0
        while a != b:
            up.append((f"t{level}_{a}", UP))
            down.append((f"t{level}_{b}", DOWN))
            a, b, level = a // self.arity, b // self.arity, level + 1
        return up + down[::-1]


class FatTree(Topology):
    """Leaf-spine: n hosts, p per leaf, each leaf's uplink one aggregate link of p*beta/o.

    Host h sits on leaf h // p. Spines are non-blocking (no link of their own), as
    contention.strided_ring_allreduce_fat_tree_time assumes.
    """

    def __init__(self, n, n_nodes_per_leaf, beta, oversubscription, hop_latency):
        super().__init__(n)
        self.p = n_nodes_per_leaf
        for h in range(n):
            self.add_link(f"node{h}", beta, hop_latency)
        for leaf in range(n // self.p):
            self.add_link(f"leaf{leaf}", self.p * beta / oversubscription, hop_latency)

    def route(self, src, dst):
        ls, ld = src // self.p, dst // self.p
        if ls == ld:
            return [(f"node{src}", UP), (f"node{dst}", DOWN)]
        return [(f"node{src}", UP), (f"leaf{ls}", UP), (f"leaf{ld}", DOWN), (f"node{dst}", DOWN)]

    def strided_order(self):
        """Rank r on leaf r mod L: every ring edge leaves its leaf."""
        n_leaves = self.n_hosts // self.p
        return [(r % n_leaves) * self.p + r // n_leaves for r in range(self.n_hosts)]


class PCIeTree(Topology):
    """Host memory (host 0) under a root complex; n_switches PCIe switches with k devices each.

    Device g (host g + 1) has its own link (beta) to switch g // k; each switch one uplink
    (B_up) to the root; the root one link (B_root) to memory. Device -> memory crosses 3 links.
    """

    def __init__(self, k, n_switches, beta, uplink_bandwidth, root_bandwidth, hop_latency):
        super().__init__(1 + k * n_switches)
        self.k = k
        for g in range(k * n_switches):
            self.add_link(f"dev{g}", beta, hop_latency)
        for s in range(n_switches):
            self.add_link(f"up{s}", uplink_bandwidth, hop_latency)
        self.add_link("root", root_bandwidth, hop_latency)

    def route(self, src, dst):
        if dst == 0:
            g = src - 1
            return [(f"dev{g}", UP), (f"up{g // self.k}", UP), ("root", UP)]
        g = dst - 1
        return [("root", DOWN), (f"up{g // self.k}", DOWN), (f"dev{g}", DOWN)]


class TwoLevel(Topology):
    """n_nodes x d devices: an NVSwitch-like node switch (beta_intra) and one NIC per device
    (beta_inter) on a non-blocking network switch. Host a*d + i is device i of node a.

    Same node: device port up, device port down. Other node: NIC up, NIC down (device i talks
    to device i of the other node, the rail of the hierarchical all-reduce). With
    ``shared_nic`` the node has one NIC of beta_inter that its d rails share.
    """

    def __init__(self, n_nodes, d, beta_intra, latency_intra, beta_inter, latency_inter, shared_nic=False):
        super().__init__(n_nodes * d)
        self.d, self.shared_nic = d, shared_nic
        for h in range(n_nodes * d):
            self.add_link(f"dev{h}", beta_intra, latency_intra)
        for h in range(n_nodes if shared_nic else n_nodes * d):
            self.add_link(f"nic{h}", beta_inter, latency_inter)

    def route(self, src, dst):
        if src // self.d == dst // self.d:
            return [(f"dev{src}", UP), (f"dev{dst}", DOWN)]
        if self.shared_nic:  # one NIC per node: all d rails leave through it
            return [(f"nic{src // self.d}", UP), (f"nic{dst // self.d}", DOWN)]
        return [(f"nic{src}", UP), (f"nic{dst}", DOWN)]


# --- collectives: synchronous phases of concurrent flows between ranks --------------------------
# Each returns [(flows, repeat)] with flows [(src_rank, dst_rank, bytes)]; sizes are integers
# because SimGrid counts bytes as uint64 (the tests pick sizes the divisions leave whole).


def _whole(x):
    if x != int(x):
        raise ValueError(f"flow size {x} B is not a whole number of bytes; pick a divisible size")
    return int(x)


def ring_allreduce(n, size):
    """2(n-1) steps, rank r sends one S/n block to r+1 (Patarasuk & Yuan 2009)."""
    return [([(r, (r + 1) % n, _whole(size / n)) for r in range(n)], 2 * (n - 1))]


def ring_allgather(n, size):
    return [([(r, (r + 1) % n, _whole(size / n)) for r in range(n)], n - 1)]


def bidirectional_ring_allreduce(n, size):
    """Two rings in opposite directions, each all-reducing S/2."""
    block = _whole(size / (2 * n))
    flows = [(r, (r + 1) % n, block) for r in range(n)] + [(r, (r - 1) % n, block) for r in range(n)]
    return [(flows, 2 * (n - 1))]


def _exchange(n, dist, nbytes):
    # recursive doubling/halving step: rank r and r XOR dist swap nbytes
    return [(r, r ^ dist, _whole(nbytes)) for r in range(n)]


def recursive_doubling_allreduce(n, size):
    """log2 n exchanges of the full buffer with partner r XOR 2^i (Thakur et al. 2005)."""
    return [(_exchange(n, 2**i, size), 1) for i in range(int(math.log2(n)))]


def recursive_doubling_allgather(n, size):
    """Step i exchanges the 2^i blocks of S/n gathered so far."""
    return [(_exchange(n, 2**i, 2**i * size / n), 1) for i in range(int(math.log2(n)))]


def recursive_halving_reduce_scatter(n, size):
    return recursive_doubling_allgather(n, size)[::-1]


def rabenseifner_allreduce(n, size):
    return recursive_halving_reduce_scatter(n, size) + recursive_doubling_allgather(n, size)


def direct_alltoall(n, size):
    """Every rank sends its n-1 blocks of S/n to everybody at once."""
    return [([(r, s, _whole(size / n)) for r in range(n) for s in range(n) if r != s], 1)]


def two_shot_allreduce(n, size):
    """Direct reduce-scatter then direct all-gather, blocks of S/n."""
    return direct_alltoall(n, size) * 2


def one_shot_allreduce(n, size):
    """Every rank sends its whole buffer to every other rank at once."""
    return [([(r, s, _whole(size)) for r in range(n) for s in range(n) if r != s], 1)]


def pairwise_alltoall(n, size):
    """n-1 steps, step k sends one S/n block to rank r+k (Thakur et al. 2005)."""
    return [([(r, (r + k) % n, _whole(size / n)) for r in range(n)], 1) for k in range(1, n)]


def binomial_broadcast(n, size):
    """Round i: ranks below 2^i send the full message to rank + 2^i."""
    return [([(r, r + 2**i, _whole(size)) for r in range(2**i)], 1) for i in range(int(math.log2(n)))]


def pipelined_chain_broadcast(n, size, n_chunks):
    """Chain 0 -> 1 -> ... -> n-1, c chunks of S/c; step t: rank i forwards chunk t - i."""
    chunk = _whole(size / n_chunks)
    phases = []
    for t in range(n + n_chunks - 2):
        flows = [(i, i + 1, chunk) for i in range(n - 1) if 0 <= t - i < n_chunks]
        phases.append((flows, 1))
    return phases


def hierarchical_allreduce(n_nodes, d, size):
    """Intra-node ring reduce-scatter, d concurrent inter-node ring all-reduces of S/d (one per
    local index), intra-node ring all-gather. Rank a*d + i is device i of node a."""
    intra = [(a * d + i, a * d + (i + 1) % d, _whole(size / d)) for a in range(n_nodes) for i in range(d)]
    inter = [(a * d + i, ((a + 1) % n_nodes) * d + i, _whole(size / d / n_nodes))
             for a in range(n_nodes) for i in range(d)]
    return [(intra, d - 1), (inter, 2 * (n_nodes - 1)), (intra, d - 1)]


def to_memory(n_devices, size):
    """Every device writes S bytes to host memory (rank 0) at once (D2H DMA)."""
    return [([(g, 0, _whole(size)) for g in range(1, n_devices + 1)], 1)]


# --- job -----------------------------------------------------------------------------------------


def build_job(topology, phases, order=None):
    """Map ranks to hosts with ``order`` and attach the route of every (src, dst) pair used."""
    order = list(range(topology.n_hosts)) if order is None else list(order)
    host_phases, routes = [], {}
    for flows, repeat in phases:
        host_flows = []
        for src, dst, nbytes in flows:
            hs, hd = order[src], order[dst]
            if (hs, hd) not in routes:
                routes[(hs, hd)] = topology.route(hs, hd)
            host_flows.append((hs, hd, nbytes))
        host_phases.append((host_flows, repeat))
    used = {link for route in routes.values() for link, _ in route}
    links = {name: spec for name, spec in topology.links.items() if name in used}
    return Job(topology.n_hosts, links, routes, host_phases)
