r"""Time of collectives whose flows share links: hops, congestion and placement on a topology.

Covered: one flow over h links sharing its busiest link, and ring all-reduce / all-gather made
of such steps (the general ``contended_*`` forms); recursive doubling / halving and Rabenseifner
laid on a bidirectional ring in rank order (``*_on_ring_*``); flows behind one shared uplink;
ring all-reduce on a leaf-spine fat tree with strided or contiguous rank placement
(``*_fat_tree_*``); ring all-reduce and all-to-all through a switch with a blocking backplane
(``blocking_switch_*``). The contention-free forms are in :mod:`perfmodel.formulas.collectives`
and :mod:`perfmodel.formulas.logtree`; the topologies themselves in
:mod:`perfmodel.formulas.topology` and :mod:`perfmodel.formulas.switched`.

Model: as in :mod:`perfmodel.formulas.collectives` (full-duplex links, ``beta`` per direction,
``size`` the full buffer per rank), and a step costs ``alpha`` (per message) plus
``hop_latency`` per link crossed (a flow simulator adds up the link latencies of a route; set
alpha = 0 to compare with one), and each flow moves at the max-min fair share of its busiest
link. The flows of one step start together, steps are synchronous, and step times are summed in
closed form (geometric series over the log2 n steps).

Sources: W. J. Dally and B. Towles, *Principles and Practices of Interconnection Networks*,
Morgan Kaufmann 2004, Ch. 3 (cut-through latency) and Ch. 6 (blocking switches); D. Bertsekas
and R. Gallager, *Data Networks*, 2nd ed., 1992, Sec. 6.5.2 (max-min fair sharing); the
algorithms' steps from R. Thakur, R. Rabenseifner, W. Gropp, IJHPCA 19(1), 2005, Sec. 4, and
P. Patarasuk and X. Yuan, JPDC 69(2), 2009. The placed forms are derived here; the tests check
each against a max-min flow simulator run on the actual links (tests/formulas/flowsim.py).
"""

from __future__ import annotations

from perfmodel.formulas._backend import log2, maximum, minimum

__all__ = [
    "contended_transfer_time", "contended_ring_allreduce_time", "contended_ring_allgather_time",
    "recursive_doubling_allgather_on_ring_time", "recursive_halving_reduce_scatter_on_ring_time",
    "recursive_doubling_allreduce_on_ring_time", "rabenseifner_allreduce_on_ring_time",
    "shared_uplink_transfer_time", "strided_ring_allreduce_fat_tree_time",
    "contiguous_ring_allreduce_fat_tree_time", "blocking_switch_flow_bandwidth",
    "blocking_switch_ring_allreduce_time", "blocking_switch_direct_alltoall_time",
]


# --- contention: hops and shared links ---------------------------------------------------------

def contended_transfer_time(size, alpha, beta, n_hops, hop_latency, congestion):
    r"""One flow over h links whose busiest link it shares with kappa - 1 equal flows.

    .. math:: T = \alpha + h\,\delta + \kappa\,\frac{S}{\beta}

    Max-min share of the busiest link: beta / kappa (flows of equal size start together).
    size: bytes of this flow (B); alpha: per-message startup (s); beta: link bandwidth per
    direction (B/s); n_hops: h (1); hop_latency: delta, per link (s); congestion: kappa (1).
    Source: cut-through latency (Dally & Towles 2004, Ch. 3) + max-min fair sharing
    (Bertsekas & Gallager, Data Networks, 2nd ed., Sec. 6.5.2).

    >>> contended_transfer_time(1e6, 0.0, 25e9, n_hops=4, hop_latency=1e-6, congestion=2)  # doctest: +ELLIPSIS
    8.4...e-05
    """
    return alpha + n_hops * hop_latency + congestion * size / beta


def contended_ring_allreduce_time(n, size, alpha, beta, n_hops, hop_latency, congestion):
    r"""Ring all-reduce whose every step crosses h links and shares its busiest link kappa ways.

    .. math:: T = 2(n-1)\left(\alpha + h\,\delta + \kappa\,\frac{S}{n\,\beta}\right)

    n: ranks (1); size (B); alpha: per step (s); beta (B/s); n_hops: h (1); hop_latency:
    delta (s); congestion: kappa (1). h = kappa = 1, delta = 0 gives
    :func:`ring_allreduce_time`. Source: ring steps (Patarasuk & Yuan 2009) with
    :func:`contended_transfer_time`.

    >>> contended_ring_allreduce_time(8, 1e9, 0.0, 100e9, 4, 1e-6, 2)  # doctest: +ELLIPSIS
    0.035056...
    """
    return 2 * (n - 1) * contended_transfer_time(size / n, alpha, beta, n_hops, hop_latency,
                                                 congestion)


def contended_ring_allgather_time(n, size, alpha, beta, n_hops, hop_latency, congestion):
    r"""Ring all-gather (or reduce-scatter) with h hops per step and a kappa-shared busiest link.

    .. math:: T = (n-1)\left(\alpha + h\,\delta + \kappa\,\frac{S}{n\,\beta}\right)

    n: ranks (1); size: full buffer (B); alpha: per step (s); beta (B/s); n_hops: h (1);
    hop_latency: delta (s); congestion: kappa (1). Source: as
    :func:`contended_ring_allreduce_time`.

    >>> contended_ring_allgather_time(8, 1e9, 0.0, 100e9, 4, 1e-6, 2)  # doctest: +ELLIPSIS
    0.017528...
    """
    return (n - 1) * contended_transfer_time(size / n, alpha, beta, n_hops, hop_latency,
                                             congestion)


def recursive_doubling_allgather_on_ring_time(n, size, alpha, beta, hop_latency):
    r"""Recursive-doubling all-gather laid on a bidirectional ring (ranks in ring order).

    .. math:: T = \sum_{i=0}^{\log_2 n - 1}\left(\alpha + 2^i\delta + 2^i\,\frac{2^i S}{n\beta}
              \right) = \log_2 n\,\alpha + (n-1)\,\delta + \frac{n^2-1}{3n}\,\frac{S}{\beta}

    Step i pairs rank r with :math:`r \oplus 2^i` (distance :math:`2^i`) and moves
    :math:`2^i S/n` bytes. Each flow crosses :math:`2^i` links, and all :math:`2^i` flows from
    one half-block to the other cross the same link in the same direction (at distance n/2
    either way round gives n/2 flows per link), so each gets :math:`\beta/2^i`. Geometric sums:
    :math:`\sum 2^i = n - 1`, :math:`\sum 4^i = (n^2-1)/3`. The bandwidth term is (n+1)/3
    times the textbook one (21.7x at n = 64). n: ranks (1), a power of two; size (B);
    alpha: per step (s); beta: per link per direction (B/s); hop_latency: delta (s).
    Source: derived here from Thakur et al. (2005) Sec. 4, allgather with max-min link sharing.

    >>> recursive_doubling_allgather_on_ring_time(8, 1e9, 0.0, 100e9, hop_latency=1e-6)  # doctest: +ELLIPSIS
    0.026257...
    """
    return log2(n) * alpha + (n - 1) * hop_latency + (n**2 - 1) / (3 * n) * size / beta


def recursive_halving_reduce_scatter_on_ring_time(n, size, alpha, beta, hop_latency):
    r"""Recursive-halving reduce-scatter laid on a bidirectional ring (ranks in ring order).

    .. math:: T = \log_2 n\,\alpha + (n-1)\,\delta + \frac{n^2-1}{3n}\,\frac{S}{\beta}

    The steps of :func:`recursive_doubling_allgather_on_ring_time` in reverse order (distance
    n/2 with S/2 bytes first). Add :func:`reduce_scatter_compute_time`. n: ranks (1), a power
    of two; size (B); alpha: per step (s); beta (B/s); hop_latency: delta (s).
    Source: derived here from Thakur et al. (2005) Sec. 4, reduce-scatter with max-min link sharing.

    >>> recursive_halving_reduce_scatter_on_ring_time(8, 1e9, 0.0, 100e9, 1e-6)  # doctest: +ELLIPSIS
    0.026257...
    """
    return recursive_doubling_allgather_on_ring_time(n, size, alpha, beta, hop_latency)


def recursive_doubling_allreduce_on_ring_time(n, size, alpha, beta, hop_latency):
    r"""Recursive-doubling all-reduce laid on a bidirectional ring (ranks in ring order).

    .. math:: T = \sum_{i=0}^{\log_2 n - 1}\left(\alpha + 2^i\delta + 2^i\frac{S}{\beta}\right)
              = \log_2 n\,\alpha + (n-1)\left(\delta + \frac{S}{\beta}\right)

    Full buffer every step, :math:`2^i` hops and :math:`2^i` flows per link at step i; the
    bandwidth term is (n-1)/log2 n times the textbook one (10.5x at n = 64). n: ranks (1), a
    power of two; size (B); alpha: per step (s); beta (B/s); hop_latency: delta (s).
    Source: derived here from Thakur et al. (2005) Sec. 4, allreduce with max-min link sharing.

    >>> recursive_doubling_allreduce_on_ring_time(8, 1e6, 0.0, 100e9, 1e-6)  # doctest: +ELLIPSIS
    7.7...e-05
    """
    return log2(n) * alpha + (n - 1) * (hop_latency + size / beta)


def rabenseifner_allreduce_on_ring_time(n, size, alpha, beta, hop_latency):
    r"""Rabenseifner all-reduce laid on a bidirectional ring (ranks in ring order).

    .. math:: T = 2\log_2 n\,\alpha + 2(n-1)\,\delta + 2\,\frac{n^2-1}{3n}\,\frac{S}{\beta}

    Recursive-halving reduce-scatter then recursive-doubling all-gather, both as above.
    n: ranks (1), a power of two; size (B); alpha: per step (s); beta (B/s);
    hop_latency: delta (s). Source: derived here from Thakur et al. (2005) Sec. 4, allreduce.

    >>> rabenseifner_allreduce_on_ring_time(8, 1e9, 0.0, 100e9, 1e-6)  # doctest: +ELLIPSIS
    0.052514...
    """
    return 2 * recursive_doubling_allgather_on_ring_time(n, size, alpha, beta, hop_latency)


def shared_uplink_transfer_time(size, alpha, beta, uplink_bandwidth, n_flows, n_hops,
                                hop_latency):
    r"""One of k equal concurrent flows that leave through the same uplink.

    .. math:: T = \alpha + h\,\delta + \frac{S}{\min(\beta,\; B_{up}/k)}

    Each flow has its own access link (beta) and shares the uplink (max-min share
    :math:`B_{up}/k`). size (B); alpha: per message (s); beta: access link (B/s);
    uplink_bandwidth: :math:`B_{up}` (B/s); n_flows: k (1); n_hops: h (1); hop_latency (s).
    Source: max-min fair sharing (Bertsekas & Gallager, Data Networks, Sec. 6.5.2).

    >>> shared_uplink_transfer_time(1e9, 0.0, 25e9, 50e9, n_flows=4, n_hops=3, hop_latency=1e-6)
    0.080003
    """
    return alpha + n_hops * hop_latency + size / minimum(beta, uplink_bandwidth / n_flows)


def strided_ring_allreduce_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription):
    r"""Ring all-reduce on a leaf-spine fat tree, ranks placed round-robin over the leaves.

    .. math:: T = 2(n-1)\left(\alpha + 4\delta + \max(1, o)\,\frac{S}{n\,\beta}\right)

    Rank r sits on leaf r mod L (L >= 2 leaves of p nodes), so every ring edge goes node ->
    leaf -> spine -> leaf -> node (4 hops) and the p flows of a leaf share its uplink of
    :math:`p\beta/o`: :math:`\beta/o` each (:math:`\beta` if o < 1). Assumes balanced uplinks
    (one aggregate link per leaf) and non-blocking spines. n: ranks (1); size (B); alpha:
    per step (s); beta: node link (B/s); hop_latency (s); oversubscription: o (1).
    Source: derived here (ring steps + max-min sharing of the leaf uplink).

    >>> strided_ring_allreduce_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-6, oversubscription=2)  # doctest: +ELLIPSIS
    0.15012...
    """
    return 2 * (n - 1) * (alpha + 4 * hop_latency
                          + maximum(1, oversubscription) * size / (n * beta))


def contiguous_ring_allreduce_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                            n_nodes_per_leaf):
    r"""Ring all-reduce on a leaf-spine fat tree with consecutive ranks on the same leaf.

    .. math:: T = 2(n-1)\left(\alpha + 4\delta + \max(1, o/p)\,\frac{S}{n\,\beta}\right)

    One ring edge per leaf leaves it, alone on an uplink of :math:`p\beta/o`; the others stay
    in the leaf (2 hops, beta). Synchronous steps last as long as their slowest (4-hop) flow.
    n: ranks (1), two leaves or more; size (B); alpha: per step (s); beta: node link (B/s);
    hop_latency (s); oversubscription: o (1); n_nodes_per_leaf: p (1).
    Source: derived here (ring steps + max-min sharing).

    >>> contiguous_ring_allreduce_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-6, 2, 4)  # doctest: +ELLIPSIS
    0.07512...
    """
    share = maximum(1, oversubscription / n_nodes_per_leaf)
    return 2 * (n - 1) * (alpha + 4 * hop_latency + share * size / (n * beta))


def blocking_switch_flow_bandwidth(n, beta, backplane_bandwidth):
    r"""Bandwidth of each of n concurrent flows (one per port) through a blocking switch.

    .. math:: b = \min\left(\beta,\; \frac{B_{bp}}{n}\right)

    n: concurrent flows (1); beta: port bandwidth per direction (B/s); backplane_bandwidth:
    total switching capacity :math:`B_{bp}` (B/s). Source: max-min fair sharing of the
    backplane (Bertsekas & Gallager, Sec. 6.5.2); blocking switches, Dally & Towles Ch. 6.

    >>> blocking_switch_flow_bandwidth(n=8, beta=25e9, backplane_bandwidth=100e9)
    12500000000.0
    """
    return minimum(beta, backplane_bandwidth / n)


def blocking_switch_ring_allreduce_time(n, size, alpha, beta, hop_latency, backplane_bandwidth):
    r"""Ring all-reduce of n ranks on one switch whose backplane all n flows share.

    .. math:: T = 2(n-1)\left(\alpha + 2\delta + \frac{S/n}{\min(\beta,\, B_{bp}/n)}\right)

    Each step all n ranks send (n flows, node -> switch -> node: 2 hops). n: ranks (1);
    size (B); alpha: per step (s); beta: port (B/s); hop_latency (s); backplane_bandwidth
    (B/s). Source: derived here (ring steps + backplane sharing).

    >>> blocking_switch_ring_allreduce_time(8, 1e9, 0.0, 25e9, 1e-6, 100e9)  # doctest: +ELLIPSIS
    0.14002...
    """
    flow = blocking_switch_flow_bandwidth(n, beta, backplane_bandwidth)
    return 2 * (n - 1) * (alpha + 2 * hop_latency + size / n / flow)


def blocking_switch_direct_alltoall_time(n, size, alpha, beta, hop_latency, backplane_bandwidth):
    r"""Direct all-to-all on one blocking switch: all n(n-1) flows at once.

    .. math:: T = \alpha + 2\delta + (n-1)\,\frac{S/n}{\min(\beta,\, B_{bp}/n)}

    Each port carries n - 1 flows (share :math:`\beta/(n-1)`), the backplane n(n-1) (share
    :math:`B_{bp}/(n(n-1))`); the sends are posted together (one alpha). n: ranks (1); size:
    whole send buffer per rank (B); alpha (s); beta: port (B/s); hop_latency (s);
    backplane_bandwidth (B/s). Source: derived here (max-min sharing).

    >>> blocking_switch_direct_alltoall_time(8, 1e9, 0.0, 25e9, 1e-6, 100e9)  # doctest: +ELLIPSIS
    0.070002...
    """
    flow = blocking_switch_flow_bandwidth(n, beta, backplane_bandwidth)
    return alpha + 2 * hop_latency + (n - 1) * size / n / flow
