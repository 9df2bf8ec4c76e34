r"""Collectives on trees of switches: a binary tree, a leaf-spine fat tree, a two-level system.

Placement is in rank order (consecutive ranks on the same leaf or in the same subtree), each rank
has one port, and every step lasts as long as its slowest flow: hops (``hop_latency`` per link)
and the max-min share of its busiest link. On a thin (binary) tree the upper links are shared by
every flow that leaves a subtree; on a fat tree the leaf uplinks, :math:`p\beta/o` for p nodes
per leaf and oversubscription o, are shared by the flows leaving the leaf. Ring and
recursive-halving/doubling forms for a single switch and a plain ring are in
:mod:`perfmodel.formulas.collectives`, :mod:`perfmodel.formulas.logtree` and
:mod:`perfmodel.formulas.contention` (which also has the ring all-reduce on a fat tree); the
topologies' static properties in :mod:`perfmodel.formulas.switched`.

Model as in :mod:`perfmodel.formulas.contention`: a step costs ``alpha`` plus ``hop_latency``
per link crossed plus its bytes over the max-min share of the busiest link; steps are synchronous
and summed in closed form. Recursive doubling needs n (and p) powers of two. ``size`` is the
full buffer per rank.

Sources: R. Thakur, R. Rabenseifner, W. Gropp, IJHPCA 19(1), 2005, Sec. 4 (the algorithms'
steps); C. E. Leiserson, "Fat-trees", IEEE Trans. Computers C-34(10), 1985; D. Bertsekas and
R. Gallager, *Data Networks*, 2nd ed., 1992, Sec. 6.5.2 (max-min fair sharing); W. J. Dally and
B. Towles, *Principles and Practices of Interconnection Networks*, 2004, Ch. 3; X. Jia et al.,
"Highly scalable deep learning training system with mixed-precision", arXiv:1807.11205, 2018
(two-level collectives). The placed forms are derived here; tests/formulas/test_treecoll.py
checks them against a max-min flow simulator on the actual links.
"""

from __future__ import annotations

from perfmodel.formulas._backend import ceil, log2, maximum, minimum

__all__ = [
    "recursive_doubling_allgather_binary_tree_time", "recursive_halving_reduce_scatter_binary_tree_time",
    "rabenseifner_allreduce_binary_tree_time", "recursive_doubling_allreduce_binary_tree_time",
    "binomial_broadcast_binary_tree_time",
    "contiguous_ring_allgather_fat_tree_time", "contiguous_pipelined_broadcast_fat_tree_time",
    "recursive_doubling_allgather_fat_tree_time", "recursive_halving_reduce_scatter_fat_tree_time",
    "rabenseifner_allreduce_fat_tree_time", "recursive_doubling_allreduce_fat_tree_time",
    "binomial_broadcast_fat_tree_time",
    "hierarchical_allgather_time", "hierarchical_reduce_scatter_time", "hierarchical_broadcast_time",
    "hierarchical_pipelined_broadcast_time",
]


# --- binary tree of switches (n = 2^L leaves, every link beta) ----------------------------------

def recursive_doubling_allgather_binary_tree_time(n, size, alpha, beta, hop_latency):
    r"""Recursive-doubling all-gather on a binary tree of switches, ranks in leaf order.

    .. math:: T = \log_2 n\,\alpha + \log_2 n\,(\log_2 n + 1)\,\delta + \frac{n^2-1}{3n}\,\frac{S}{\beta}

    Step i (i = 0..L-1, L = log2 n) pairs the two halves of every subtree of :math:`2^{i+1}`
    leaves: 2(i+1) hops, and the :math:`2^i` flows of a half share the one link above it, each
    moving :math:`2^i S/n`. Sums: :math:`\sum 2(i+1) = L(L+1)`, :math:`\sum 4^i = (n^2-1)/3`.
    The bandwidth term is (n+1)/3 times the textbook one: a thin tree's root link is its
    bisection. n: ranks (1), a power of two; size: full output buffer (B); alpha (s);
    beta: per link per direction (B/s); hop_latency: delta (s).
    Source: derived here from Thakur et al. (2005) Sec. 4, allgather, with max-min sharing.

    >>> recursive_doubling_allgather_binary_tree_time(8, 1e9, 0.0, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.02625...
    """
    levels = log2(n)
    return levels * alpha + levels * (levels + 1) * hop_latency + (n**2 - 1) / (3 * n) * size / beta


def recursive_halving_reduce_scatter_binary_tree_time(n, size, alpha, beta, hop_latency):
    r"""Recursive-halving reduce-scatter on a binary tree of switches (the all-gather reversed).

    .. math:: T = \log_2 n\,\alpha + \log_2 n\,(\log_2 n + 1)\,\delta + \frac{n^2-1}{3n}\,\frac{S}{\beta}

    Add :func:`perfmodel.formulas.collectives.reduce_scatter_compute_time`. Units as
    :func:`recursive_doubling_allgather_binary_tree_time`. Source: derived here from Thakur et
    al. (2005) Sec. 4, reduce-scatter.

    >>> recursive_halving_reduce_scatter_binary_tree_time(8, 1e9, 0.0, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.02625...
    """
    return recursive_doubling_allgather_binary_tree_time(n, size, alpha, beta, hop_latency)


def rabenseifner_allreduce_binary_tree_time(n, size, alpha, beta, hop_latency):
    r"""Rabenseifner all-reduce on a binary tree of switches (halving reduce-scatter + doubling all-gather).

    .. math:: T = 2\log_2 n\,\alpha + 2\log_2 n\,(\log_2 n + 1)\,\delta + 2\,\frac{n^2-1}{3n}\,\frac{S}{\beta}

    Units as :func:`recursive_doubling_allgather_binary_tree_time`. Source: derived here from
    Thakur et al. (2005) Sec. 4, allreduce.

    >>> rabenseifner_allreduce_binary_tree_time(8, 1e9, 0.0, 100e9, 1e-7)  # doctest: +ELLIPSIS
    0.0525...
    """
    return 2 * recursive_doubling_allgather_binary_tree_time(n, size, alpha, beta, hop_latency)


def recursive_doubling_allreduce_binary_tree_time(n, size, alpha, beta, hop_latency):
    r"""Recursive-doubling all-reduce on a binary tree of switches: the full buffer every step.

    .. math:: T = \log_2 n\,\alpha + \log_2 n\,(\log_2 n + 1)\,\delta + (n-1)\,\frac{S}{\beta}

    Step i: 2(i+1) hops, :math:`2^i` flows of S on the link above each half. n: ranks (1), a
    power of two; size (B); alpha (s); beta (B/s); hop_latency (s). Source: derived here from
    Thakur et al. (2005) Sec. 4, allreduce (short messages), with max-min sharing.

    >>> recursive_doubling_allreduce_binary_tree_time(8, 1e6, 0.0, 100e9, 1e-7)  # doctest: +ELLIPSIS
    7.12e-05
    """
    levels = log2(n)
    return levels * alpha + levels * (levels + 1) * hop_latency + (n - 1) * size / beta


def binomial_broadcast_binary_tree_time(n, size, alpha, beta, hop_latency):
    r"""Binomial-tree broadcast on a binary tree of switches, ranks in leaf order.

    .. math:: T = \log_2 n\left(\alpha + \frac{S}{\beta}\right) + \log_2 n\,(\log_2 n + 1)\,\delta

    Step j (j = 1..L) sends across the halves of subtrees of :math:`n/2^{j-1}` leaves:
    2(L - j + 1) hops, one flow per subtree, so no link is shared. n: ranks (1), a power of two;
    size (B); alpha (s); beta (B/s); hop_latency (s). Source: derived here from Thakur et al.
    (2005) Sec. 4, broadcast (binomial tree).

    >>> binomial_broadcast_binary_tree_time(8, 1e6, 5e-6, 100e9, 1e-7)  # doctest: +ELLIPSIS
    4.62...e-05
    """
    levels = log2(n)
    return levels * (alpha + size / beta) + levels * (levels + 1) * hop_latency


# --- leaf-spine fat tree (p nodes per leaf, oversubscription o, contiguous ranks) ----------------

def contiguous_ring_allgather_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                            n_nodes_per_leaf):
    r"""Ring all-gather (or reduce-scatter) on a leaf-spine fat tree, consecutive ranks per leaf.

    .. math:: T = (n-1)\left(\alpha + 4\delta + \max(1, o/p)\,\frac{S}{n\,\beta}\right)

    One ring edge per leaf leaves it, alone on the leaf's uplink :math:`p\beta/o`. Half of
    :func:`perfmodel.formulas.contention.contiguous_ring_allreduce_fat_tree_time`.
    n: ranks (1), two leaves or more; size (B); alpha (s); beta: node link (B/s); hop_latency (s);
    oversubscription: o (1); n_nodes_per_leaf: p (1). Source: derived here (ring steps of
    Thakur et al. 2005 + max-min sharing).

    >>> contiguous_ring_allgather_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-7, 2, 4)  # doctest: +ELLIPSIS
    0.03750...
    """
    share = maximum(1, oversubscription / n_nodes_per_leaf)
    return (n - 1) * (alpha + 4 * hop_latency + share * size / (n * beta))


def contiguous_pipelined_broadcast_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                                 n_nodes_per_leaf, n_chunks):
    r"""Pipelined chain broadcast in rank order on a leaf-spine fat tree, c chunks.

    .. math:: T = (n + c - 2)\left(\alpha + 4\delta + \max(1, o/p)\,\frac{S}{c\,\beta}\right)

    One chain edge per leaf leaves it (alone on its uplink); a step lasts as long as its
    4-hop edge. n: ranks (1); size (B); alpha (s); beta: node link (B/s); hop_latency (s);
    oversubscription: o (1); n_nodes_per_leaf: p (1); n_chunks: c (1). Source: pipelined chain
    (Sanders, Speck & Träff 2009, Sec. 1) laid on the fat tree, derived here.

    >>> contiguous_pipelined_broadcast_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-7, 2, 4, 64)  # doctest: +ELLIPSIS
    0.04878...
    """
    share = maximum(1, oversubscription / n_nodes_per_leaf)
    return (n + n_chunks - 2) * (alpha + 4 * hop_latency + share * size / (n_chunks * beta))


def recursive_doubling_allgather_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                               n_nodes_per_leaf):
    r"""Recursive-doubling all-gather on a leaf-spine fat tree, consecutive ranks per leaf.

    .. math:: T = \log_2 n\,\alpha + \left(2\log_2 p + 4\log_2\frac{n}{p}\right)\delta
              + \left[(p - 1) + \max(1, o)\,(n - p)\right]\frac{S}{n\,\beta}

    Steps at distance :math:`2^i < p` stay in a leaf (2 hops, no sharing); from distance p on
    all p ranks of a leaf send through its uplink :math:`p\beta/o`, :math:`\beta/o` each. Sums:
    :math:`\sum_{i<\log_2 p} 2^i = p - 1` and the rest n - p. n, p: powers of two, n > p;
    size: full output buffer (B); alpha (s); beta: node link (B/s); hop_latency (s);
    oversubscription: o (1); n_nodes_per_leaf: p (1). Source: derived here from Thakur et al.
    (2005) Sec. 4, allgather, with max-min sharing of the leaf uplinks.

    >>> recursive_doubling_allgather_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-7, 4, 4)  # doctest: +ELLIPSIS
    0.12750...
    """
    local = log2(n_nodes_per_leaf)
    remote = log2(n / n_nodes_per_leaf)
    moved = (n_nodes_per_leaf - 1) + maximum(1, oversubscription) * (n - n_nodes_per_leaf)
    return log2(n) * alpha + (2 * local + 4 * remote) * hop_latency + moved * size / (n * beta)


def recursive_halving_reduce_scatter_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                                   n_nodes_per_leaf):
    r"""Recursive-halving reduce-scatter on a leaf-spine fat tree (the all-gather's steps reversed).

    .. math:: T = \log_2 n\,\alpha + \left(2\log_2 p + 4\log_2\frac{n}{p}\right)\delta
              + \left[(p - 1) + \max(1, o)\,(n - p)\right]\frac{S}{n\,\beta}

    Units as :func:`recursive_doubling_allgather_fat_tree_time`. Source: derived here from
    Thakur et al. (2005) Sec. 4, reduce-scatter.

    >>> recursive_halving_reduce_scatter_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-7, 4, 4)  # doctest: +ELLIPSIS
    0.12750...
    """
    return recursive_doubling_allgather_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                                      n_nodes_per_leaf)


def rabenseifner_allreduce_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                         n_nodes_per_leaf):
    r"""Rabenseifner all-reduce on a leaf-spine fat tree, consecutive ranks per leaf.

    .. math:: T = 2\log_2 n\,\alpha + 2\left(2\log_2 p + 4\log_2\frac{n}{p}\right)\delta
              + 2\left[(p - 1) + \max(1, o)\,(n - p)\right]\frac{S}{n\,\beta}

    Units as :func:`recursive_doubling_allgather_fat_tree_time`. Source: derived here from
    Thakur et al. (2005) Sec. 4, allreduce.

    >>> rabenseifner_allreduce_fat_tree_time(16, 1e9, 0.0, 25e9, 1e-7, 1, 4)  # doctest: +ELLIPSIS
    0.07500...
    """
    return 2 * recursive_doubling_allgather_fat_tree_time(n, size, alpha, beta, hop_latency,
                                                          oversubscription, n_nodes_per_leaf)


def recursive_doubling_allreduce_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription,
                                               n_nodes_per_leaf):
    r"""Recursive-doubling all-reduce on a leaf-spine fat tree, consecutive ranks per leaf.

    .. math:: T = \log_2 n\,\alpha + \left(2\log_2 p + 4\log_2\frac{n}{p}\right)\delta
              + \left[\log_2 p + \max(1, o)\log_2\frac{n}{p}\right]\frac{S}{\beta}

    The full buffer every step; leaf-crossing steps get :math:`\beta/o` per flow. Units as
    :func:`recursive_doubling_allgather_fat_tree_time`. Source: derived here from Thakur et al.
    (2005) Sec. 4, allreduce (short messages).

    >>> recursive_doubling_allreduce_fat_tree_time(16, 1e6, 0.0, 25e9, 1e-7, 4, 4)  # doctest: +ELLIPSIS
    0.00040...
    """
    local = log2(n_nodes_per_leaf)
    remote = log2(n / n_nodes_per_leaf)
    return (log2(n) * alpha + (2 * local + 4 * remote) * hop_latency
            + (local + maximum(1, oversubscription) * remote) * size / beta)


def binomial_broadcast_fat_tree_time(n, size, alpha, beta, hop_latency, oversubscription, n_nodes_per_leaf):
    r"""Binomial-tree broadcast on a leaf-spine fat tree, consecutive ranks per leaf.

    .. math:: T = \log_2 n\,\alpha + \left(2\log_2 p + 4\log_2\frac{n}{p}\right)\delta
              + \left[\log_2 p + \max(1, o/p)\log_2\frac{n}{p}\right]\frac{S}{\beta}

    The first :math:`\log_2(n/p)` steps cross leaves with at most one sender per leaf (alone on
    an uplink of :math:`p\beta/o`), the last :math:`\log_2 p` stay in the leaves. n, p: powers of
    two, n > p; size (B); alpha (s); beta (B/s); hop_latency (s); oversubscription: o (1);
    n_nodes_per_leaf: p (1). Source: derived here from Thakur et al. (2005) Sec. 4, broadcast.

    >>> binomial_broadcast_fat_tree_time(16, 1e6, 0.0, 25e9, 1e-7, 4, 4)  # doctest: +ELLIPSIS
    0.00016...
    """
    local = log2(n_nodes_per_leaf)
    remote = log2(n / n_nodes_per_leaf)
    share = maximum(1, oversubscription / n_nodes_per_leaf)
    return log2(n) * alpha + (2 * local + 4 * remote) * hop_latency + (local + share * remote) * size / beta


# --- two-level system: d devices per node switch, N nodes on a network switch -----------------

def hierarchical_allgather_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra, alpha_inter,
                                beta_inter):
    r"""Two-level all-gather: d concurrent inter-node rings on S/d each, then an intra-node ring.

    .. math:: T = (N-1)\,\alpha_{inter} + \frac{N-1}{N}\,\frac{S/d}{\beta_{inter}}
              + (d-1)\,\alpha_{intra} + \frac{d-1}{d}\,\frac{S}{\beta_{intra}}

    Device j of every node gathers the blocks of the devices j of all nodes (S/d in all), one
    NIC per device; the node then all-gathers the d shards. Reduce-scatter runs the same steps
    in reverse. n_nodes: N (1); n_devices_per_node: d (1); size: full output buffer (B);
    alpha_intra, alpha_inter: per step, hops included (s); beta_intra, beta_inter (B/s).
    Source: two-level collectives of Jia et al. (2018); ring costs of Thakur et al. (2005).

    >>> hierarchical_allgather_time(4, 8, 1e9, 1e-6, 300e9, 5e-6, 25e9)  # doctest: +ELLIPSIS
    0.006688...
    """
    d, nodes = n_devices_per_node, n_nodes
    inter = (nodes - 1) * alpha_inter + (nodes - 1) / nodes * (size / d) / beta_inter
    intra = (d - 1) * alpha_intra + (d - 1) / d * size / beta_intra
    return inter + intra


def hierarchical_reduce_scatter_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra,
                                     alpha_inter, beta_inter):
    r"""Two-level reduce-scatter: intra-node ring, then d concurrent inter-node rings on S/d each.

    .. math:: T = (d-1)\,\alpha_{intra} + \frac{d-1}{d}\,\frac{S}{\beta_{intra}}
              + (N-1)\,\alpha_{inter} + \frac{N-1}{N}\,\frac{S/d}{\beta_{inter}}

    Units as :func:`hierarchical_allgather_time`; add the reduction compute. Source: as there.

    >>> hierarchical_reduce_scatter_time(4, 8, 1e9, 1e-6, 300e9, 5e-6, 25e9)  # doctest: +ELLIPSIS
    0.006688...
    """
    return hierarchical_allgather_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra,
                                       alpha_inter, beta_inter)


def hierarchical_broadcast_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra, alpha_inter,
                                beta_inter):
    r"""Two-level broadcast: binomial tree over the nodes, then a binomial tree in every node.

    .. math:: T = \lceil\log_2 N\rceil\left(\alpha_{inter} + \frac{S}{\beta_{inter}}\right)
              + \lceil\log_2 d\rceil\left(\alpha_{intra} + \frac{S}{\beta_{intra}}\right)

    The ceilings make it exact for any N and d (a binomial tree of m ranks needs
    :math:`\lceil\log_2 m\rceil` rounds). Units as :func:`hierarchical_allgather_time`.
    Source: binomial broadcast (Thakur et al. 2005, Sec. 4) at each level of Jia et al. (2018).

    >>> hierarchical_broadcast_time(4, 8, 1e6, 1e-6, 300e9, 5e-6, 25e9)  # doctest: +ELLIPSIS
    0.000103...
    """
    inter = ceil(log2(n_nodes)) * (alpha_inter + size / beta_inter)
    intra = ceil(log2(n_devices_per_node)) * (alpha_intra + size / beta_intra)
    return inter + intra


def hierarchical_pipelined_broadcast_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra,
                                          alpha_inter, beta_inter, n_chunks):
    r"""Pipelined chain broadcast over all N d devices of a two-level system, in rank order.

    .. math:: T = (N d + c - 2)\left(\max(\alpha_{intra}, \alpha_{inter})
              + \frac{S}{c\,\min(\beta_{intra}, \beta_{inter})}\right)

    The chain crosses the network once per node boundary (one flow per NIC, no sharing) and the
    node fabric elsewhere; every step lasts as long as its slowest edge. Units as
    :func:`hierarchical_allgather_time`; n_chunks: c (1). Source: pipelined chain (Sanders,
    Speck & Träff 2009, Sec. 1) laid on the two-level system, derived here.

    >>> hierarchical_pipelined_broadcast_time(4, 8, 1e9, 1e-6, 300e9, 5e-6, 25e9, 64)  # doctest: +ELLIPSIS
    0.05922...
    """
    total = n_nodes * n_devices_per_node
    step = maximum(alpha_intra, alpha_inter) + size / (n_chunks * minimum(beta_intra, beta_inter))
    return (total + n_chunks - 2) * step
