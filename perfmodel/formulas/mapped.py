r"""Collectives mapped onto direct networks: multi-port, bidirectional-ring and all-to-all forms.

What the algorithm modules leave out when an algorithm runs on a given topology: the per-step
latency of a message that crosses h links (:func:`step_latency_time`), the forms that drive
several links of a rank at once (a fully connected network, a bidirectional ring), the ring
all-to-all, and direct all-to-all bounded by a rank's ports and the network's bisection, which
applies to every topology. Trees of switches, fat trees and two-level systems are in
:mod:`perfmodel.formulas.treecoll`; tori and meshes in :mod:`perfmodel.formulas.gridcoll`; the
textbook single-port forms in :mod:`perfmodel.formulas.collectives` and
:mod:`perfmodel.formulas.logtree`.

Model: Hockney's alpha-beta with the k-port model of Bruck et al. (1997): a rank with k links
(ports) sends and receives up to k messages at once, one per link, each costing ``alpha`` to
start and ``size/beta`` to move at ``beta`` per link per direction. A fully connected network has
k = n - 1 ports, a bidirectional ring 2, a hypercube log2 n, a torus twice its dimensions, every
switched network 1. A message that crosses h links adds h ``hop_latency`` (cut-through: the data
pays the bandwidth once). ``alpha`` in the forms below is the latency of one step; on a topology
pass :func:`step_latency_time` of the hops a step crosses. ``size`` is the full buffer per rank
as in :mod:`perfmodel.formulas.collectives`.

Sources: J. Bruck, C.-T. Ho, S. Kipnis, E. Upfal, D. Weathersby, "Efficient algorithms for
all-to-all communications in multiport message-passing systems", IEEE TPDS 8(11), 1997 (k-port
model); A. Grama, A. Gupta, G. Karypis, V. Kumar, *Introduction to Parallel Computing*, 2nd ed.,
2003, Sec. 4.1-4.5 (one-to-all, all-to-all broadcast and personalized communication on rings,
meshes, hypercubes and completely connected networks); R. Thakur, R. Rabenseifner, W. Gropp,
IJHPCA 19(1), 2005, Sec. 4; W. J. Dally and B. Towles, *Principles and Practices of
Interconnection Networks*, 2004, Ch. 3 (cut-through latency, bisection bound on throughput).
"""

from __future__ import annotations

from perfmodel.formulas._backend import const as _const, ceil, floor, log2, maximum

__all__ = [
    "step_latency_time",
    "direct_broadcast_time", "direct_scatter_allgather_broadcast_time",
    "bidirectional_ring_allgather_time", "bidirectional_ring_reduce_scatter_time",
    "bidirectional_pipelined_ring_broadcast_time",
    "unidirectional_ring_alltoall_time", "ring_alltoall_time",
    "scatter_recursive_doubling_broadcast_time",
    "direct_alltoall_bisection_time",
]



def step_latency_time(alpha, hop_latency, n_hops):
    r"""Latency of one algorithm step whose messages cross h links, cut-through.

    .. math:: \alpha_{step} = \alpha + h\,\delta

    alpha: per-message startup (s); hop_latency: delta, added per link crossed (s); n_hops: h,
    links the step's slowest message crosses (1). Pass the result as ``alpha`` of a textbook
    form when an algorithm's steps all cross h links and share none.
    Source: Dally & Towles (2004) Ch. 3 (cut-through: header latency per hop, serialization once).

    >>> step_latency_time(alpha=5e-6, hop_latency=1e-7, n_hops=2)  # doctest: +ELLIPSIS
    5.2...e-06
    """
    return alpha + n_hops * hop_latency


# --- fully connected (k = n - 1 ports) ----------------------------------------------------------

def direct_broadcast_time(n, size, alpha, beta):
    r"""Broadcast on a fully connected network: the root sends the buffer on all n - 1 links at once.

    .. math:: T = \alpha + \frac{S}{\beta}

    One step; each link carries S. n: ranks (1); size: S (B); alpha: per step (s);
    beta: per link per direction (B/s). Source: Grama et al. (2003) Sec. 4.1 (one-to-all
    broadcast), completely connected network in the (n-1)-port model of Bruck et al. (1997).

    >>> direct_broadcast_time(n=8, size=1e6, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    1.5...e-05
    """
    return _const(0, n) + alpha + size / beta


def direct_scatter_allgather_broadcast_time(n, size, alpha, beta):
    r"""Broadcast on a fully connected network as a direct scatter then a direct all-gather.

    .. math:: T = 2\alpha + \frac{2S}{n\,\beta}

    The root sends block j (S/n) to rank j on its n - 1 links at once; then every rank sends
    its block to all others at once. n: ranks (1); size (B); alpha: per step (s);
    beta: per link per direction (B/s). Source: van de Geijn's scatter + all-gather broadcast
    (Thakur et al. 2005, Sec. 4, broadcast) with each phase in one step of the (n-1)-port model.

    >>> direct_scatter_allgather_broadcast_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.00251...
    """
    return 2 * alpha + 2 * size / (n * beta)


# --- rings -------------------------------------------------------------------------------------

def bidirectional_ring_allgather_time(n, size, alpha, beta):
    r"""All-gather over two rings in opposite directions, each gathering half of every block.

    .. math:: T = (n-1)\,\alpha + \frac{n-1}{n}\,\frac{S}{2\beta}

    Every link carries one ring per direction. n: ranks (1); size: S, the full output buffer
    (B); alpha: per step (s); beta: per link per direction (B/s).
    Source: ring all-gather (Thakur et al. 2005, Sec. 4) on S/2 per ring, as the bidirectional
    ring all-reduce of :func:`perfmodel.formulas.collectives.bidirectional_ring_allreduce_time`.

    >>> bidirectional_ring_allgather_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.004410...
    """
    return (n - 1) * alpha + (n - 1) / n * size / (2 * beta)


def bidirectional_ring_reduce_scatter_time(n, size, alpha, beta):
    r"""Reduce-scatter over two rings in opposite directions, each reducing half of every block.

    .. math:: T = (n-1)\,\alpha + \frac{n-1}{n}\,\frac{S}{2\beta}

    Add :func:`perfmodel.formulas.collectives.reduce_scatter_compute_time`. n: ranks (1);
    size: S, the full input buffer (B); alpha: per step (s); beta (B/s). Source: as
    :func:`bidirectional_ring_allgather_time` (the same steps in reverse).

    >>> bidirectional_ring_reduce_scatter_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.004410...
    """
    return bidirectional_ring_allgather_time(n, size, alpha, beta)


def bidirectional_pipelined_ring_broadcast_time(n, size, alpha, beta, n_chunks):
    r"""Broadcast as two pipelined chains leaving the root in opposite directions, S/2 each.

    .. math:: T = (n + c - 2)\left(\alpha + \frac{S}{2c\,\beta}\right)

    Each chain visits all n ranks and carries half the buffer in c chunks; each link direction
    carries one chain. n: ranks (1), n >= 2; size (B); alpha: per step (s); beta (B/s);
    n_chunks: c (1). Source: pipelined chain broadcast (Sanders, Speck & Träff 2009, Sec. 1)
    on S/2 per direction.

    >>> bidirectional_pipelined_ring_broadcast_time(8, 1e9, 5e-6, 100e9, n_chunks=100)  # doctest: +ELLIPSIS
    0.00583...
    """
    return (n + n_chunks - 2) * (alpha + size / (2 * n_chunks * beta))


def unidirectional_ring_alltoall_time(n, size, alpha, beta):
    r"""All-to-all on a unidirectional ring: n - 1 store-and-forward steps of shrinking messages.

    .. math:: T = (n-1)\,\alpha + \frac{n-1}{2}\,\frac{S}{\beta}

    In step i every rank passes on the n - i blocks (S/n each) not yet at their destination:
    :math:`\sum_{i=1}^{n-1} (n-i) S/n = (n-1) S/2`. n: ranks (1); size: S, the whole send
    buffer per rank (B); alpha: per step (s); beta (B/s). Source: Grama et al. (2003)
    Sec. 4.5.1 (all-to-all personalized communication on a ring).

    >>> unidirectional_ring_alltoall_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.035035...
    """
    return (n - 1) * alpha + (n - 1) / 2 * size / beta


def ring_alltoall_time(n, size, alpha, beta):
    r"""All-to-all on a bidirectional ring: every block takes the shorter way, store-and-forward.

    .. math:: T = \lfloor n/2 \rfloor\,\alpha + \frac{\lfloor n/2\rfloor (n - \lfloor n/2\rfloor)}{2n}
              \,\frac{S}{\beta}

    Each direction runs the steps of :func:`unidirectional_ring_alltoall_time` for distances up
    to n/2 (for even n the block at distance n/2 is split between the directions): the busiest
    link direction carries :math:`\lfloor n/2\rfloor\lceil n/2\rceil S/(2n)` (nS/8 for even n),
    the bisection bound. n: ranks (1); size: whole send buffer per rank (B); alpha: per step (s);
    beta: per link per direction (B/s). Source: derived here from Grama et al. (2003)
    Sec. 4.5.1, both directions used.

    >>> ring_alltoall_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.01002...
    """
    half = floor(n / 2)
    return half * alpha + half * (n - half) / (2 * n) * size / beta


def scatter_recursive_doubling_broadcast_time(n, size, alpha, beta):
    r"""Broadcast as binomial scatter + recursive-doubling all-gather (MPICH, medium messages).

    .. math:: T = 2\log_2 n\,\alpha + 2\frac{n-1}{n}\,\frac{S}{\beta}

    On a hypercube every step pairs neighbours. n: ranks (1), a power of two; size (B);
    alpha: per step (s); beta (B/s). Source: Thakur et al. (2005) Sec. 4, broadcast (scatter
    followed by a recursive-doubling all-gather for medium messages and power-of-two n).

    >>> scatter_recursive_doubling_broadcast_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.01753...
    """
    return 2 * log2(n) * alpha + 2 * (n - 1) / n * size / beta


# --- all-to-all on any topology ----------------------------------------------------------------

def direct_alltoall_bisection_time(n, size, alpha, beta, hop_latency, n_ports, n_hops,
                                   bisection_bandwidth):
    r"""Direct all-to-all limited by a rank's ports and by the bisection, on any topology.

    .. math:: T = \left\lceil\frac{n-1}{k}\right\rceil\alpha + D\,\delta
              + \max\left(\frac{n-1}{n}\,\frac{S}{k\,\beta},\ \frac{n\,S}{4\,B_{bis}}\right)

    Every rank sends its n - 1 blocks (S/n each) directly, k at a time (one per port, alpha
    each); routes are cut-through, the longest (the diameter D) adds D delta once. Bandwidth is
    the larger of two bounds: injection (a rank's (n-1)S/n through k links) and bisection (half
    the ranks send half their buffer across the cut: nS/4 each way through :math:`B_{bis}`). A
    lower bound for the bandwidth term that balanced (or adaptive) routing attains on the
    symmetric networks: fully connected (S/(n beta)), a switch ((n-1)S/(n beta)), a ring (nS/(8
    beta)), a hypercube (S/(2 beta)). n: ranks (1); size: whole send buffer per rank (B);
    alpha (s); beta: per link per direction (B/s); hop_latency: delta (s); n_ports: k (1);
    n_hops: D (1); bisection_bandwidth: one direction (B/s).
    Source: Bruck et al. (1997) Sec. 2 (k-port model, lower bounds for index operations);
    Dally & Towles (2004) Ch. 3 (throughput bounded by the bisection: uniform traffic sends
    half its load across the cut).

    >>> direct_alltoall_bisection_time(8, 1e9, 5e-6, 100e9, 1e-7, n_ports=1, n_hops=2,
    ...                                bisection_bandwidth=400e9)  # doctest: +ELLIPSIS
    0.008785...
    """
    injection = (n - 1) / n * size / (n_ports * beta)
    bisection = n * size / (4 * bisection_bandwidth)
    return ceil((n - 1) / n_ports) * alpha + n_hops * hop_latency + maximum(injection, bisection)
