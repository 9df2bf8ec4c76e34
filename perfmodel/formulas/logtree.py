r"""Time of tree and recursive halving / doubling collectives in the alpha-beta(-gamma) model.

The algorithms with about log2 n steps: binomial-tree broadcast and reduce; one pipelined binary
tree and NCCL's double binary tree (broadcast, all-reduce, chunked all-reduce); recursive
doubling all-gather and all-reduce, recursive halving reduce-scatter, Rabenseifner all-reduce
and reduce; and, costed beside them by Thakur, Rabenseifner & Gropp, scatter + all-gather
broadcast and the pairwise-exchange (n - 1 steps) and Bruck all-to-all. The ring, direct and
hierarchical algorithms are in :mod:`perfmodel.formulas.collectives`; these algorithms laid on a
ring, with the links they share, in :mod:`perfmodel.formulas.contention`.

Model as in :mod:`perfmodel.formulas.collectives`: a message of m bytes costs
:math:`\alpha + m/\beta`, a rank has one full-duplex port, ``size`` S is the full buffer per
rank as nccl-tests counts it, and n is a power of two. The reduction compute is not included:
add the ``*_compute_time`` function of :mod:`perfmodel.formulas.collectives` that a docstring
names.

Sources: R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 19(1), 2005 (Sec. 4, costs per algorithm); P. Sanders, J. Speck,
J. L. Träff, "Two-tree algorithms for full bandwidth broadcast, reduction and scan", Parallel
Computing 35(12), 2009; S. Jeaugey, "Massively Scale Your Deep Learning Training with NCCL 2.4",
NVIDIA blog 2019, and NVIDIA/nccl src/graph/tuning.cc; J. Bruck et al., "Efficient algorithms
for all-to-all communications in multiport message-passing systems", IEEE TPDS 8(11), 1997.
"""

from __future__ import annotations

from perfmodel.formulas._backend import log2, maximum

__all__ = [
    "binomial_tree_broadcast_time", "binomial_tree_reduce_time",
    "binary_tree_broadcast_time", "double_binary_tree_broadcast_time",
    "binary_tree_allreduce_time", "double_binary_tree_allreduce_time",
    "double_binary_tree_allreduce_chunked_time",
    "recursive_doubling_allgather_time", "recursive_halving_reduce_scatter_time",
    "recursive_doubling_allreduce_time", "rabenseifner_allreduce_time", "rabenseifner_reduce_time",
    "scatter_allgather_broadcast_time", "pairwise_alltoall_time", "hierarchical_alltoall_time",
    "bruck_alltoall_time",
]


# --- trees -----------------------------------------------------------------------------------

def binomial_tree_broadcast_time(n, size, alpha, beta):
    r"""Binomial-tree broadcast (MPICH short messages): log2 n rounds of the full message.

    .. math:: T = \log_2 n\,\left(\alpha + \frac{S}{\beta}\right)

    n: ranks (1), a power of two; size (B); alpha (s); beta (B/s).
    Source: Thakur et al. (2005) Sec. 4, broadcast.

    >>> binomial_tree_broadcast_time(n=8, size=1e6, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    4.5...e-05
    """
    return log2(n) * (alpha + size / beta)


def binomial_tree_reduce_time(n, size, alpha, beta):
    r"""Binomial-tree reduce: log2 n rounds of the full message (plus log2 n S gamma compute).

    .. math:: T = \log_2 n\,\left(\alpha + \frac{S}{\beta}\right)

    Add :func:`recursive_doubling_compute_time` for the reduction. n: ranks (1), a power of
    two; size (B); alpha (s); beta (B/s). Source: Thakur et al. (2005) Sec. 4, reduce.

    >>> binomial_tree_reduce_time(n=8, size=1e6, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    4.5...e-05
    """
    return log2(n) * (alpha + size / beta)


def binary_tree_broadcast_time(n, size, alpha, beta):
    r"""Pipelined broadcast down one binary tree, in the limit of many small chunks.

    .. math:: T = \log_2 n\,\alpha + \frac{2S}{\beta}

    Latency: the depth of the tree. Bandwidth: an inner rank sends every chunk to two children
    through its one port, 2S in all, while the leaves' outgoing bandwidth stays unused -- what the
    two-tree algorithm fixes. n: ranks (1); size (B); alpha (s); beta (B/s).
    Source: Sanders, Speck & Träff (2009) Sec. 1-2 (single pipelined binary tree).

    >>> binary_tree_broadcast_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.020015...
    """
    return log2(n) * alpha + 2 * size / beta


def double_binary_tree_broadcast_time(n, size, alpha, beta):
    r"""Two-tree broadcast: two complementary binary trees, each pipelining half the data.

    .. math:: T = \log_2 n\,\alpha + \frac{S}{\beta}

    Every rank is inner in one tree (sends S/2 to each of two children) and a leaf in the
    other, so it sends and receives S in all: full bandwidth, logarithmic latency.
    n: ranks (1); size (B); alpha (s); beta (B/s).
    Source: Sanders, Speck & Träff (2009) Sec. 2-3 (:math:`T \approx \beta m + O(\alpha\log p)`).

    >>> double_binary_tree_broadcast_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.010015...
    """
    return log2(n) * alpha + size / beta


def binary_tree_allreduce_time(n, size, alpha, beta):
    r"""Pipelined all-reduce on one binary tree (reduce up, broadcast down), many chunks.

    .. math:: T = 2\log_2 n\,\alpha + \frac{3S}{\beta}

    An inner rank sends S up and S to each of two children: 3S through one port.
    n: ranks (1); size (B); alpha (s); beta (B/s).
    Source: Sanders, Speck & Träff (2009) Sec. 1; NCCL 2.4 blog (single tree vs double tree).

    >>> binary_tree_allreduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.03002...
    """
    return 2 * log2(n) * alpha + 3 * size / beta


def double_binary_tree_allreduce_time(n, size, alpha, beta):
    r"""NCCL double-binary-tree all-reduce in the pipelined limit.

    .. math:: T = 2\log_2 n\,\alpha + \frac{2S}{\beta}

    Two complementary trees carry S/2 each, reduce up and broadcast down concurrently. A rank
    is inner in one tree (sends S/2 up + S down) and a leaf in the other (S/2 up): 2S through
    its port, so algbw = beta/2 and busbw = algbw x 2(n-1)/n ~ beta ("full bandwidth").
    n: ranks (1); size (B); alpha: latency per tree level (s); beta (B/s).
    Source: NCCL 2.4 blog; NVIDIA/nccl src/graph/tuning.cc (tree: latency
    :math:`2\log_2(n_{nodes})` x interLat, algBw = busBw x 0.5); Sanders et al. (2009).

    >>> double_binary_tree_allreduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.02003...
    """
    return 2 * log2(n) * alpha + 2 * size / beta


def double_binary_tree_allreduce_chunked_time(n, size, alpha, beta, n_chunks):
    r"""Double-binary-tree all-reduce with c pipeline chunks.

    .. math:: T = (2\log_2 n + c - 1)\left(\alpha + \frac{2S}{c\,\beta}\right)

    A chunk needs :math:`2\log_2 n` steps up and down; each step a rank moves 2S/c bytes
    through its port (steady state, used for every step: an upper bound in fill and drain).
    Optimum :math:`c^* = \sqrt{(2\log_2 n - 1)\,2S/(\alpha\beta)}`.
    n: ranks (1); size (B); alpha (s); beta (B/s); n_chunks: c (1). Source: as
    :func:`double_binary_tree_allreduce_time`.

    >>> double_binary_tree_allreduce_chunked_time(8, 1e9, 5e-6, 100e9, n_chunks=64)  # doctest: +ELLIPSIS
    0.021907...
    """
    return (2 * log2(n) + n_chunks - 1) * (alpha + 2 * size / (n_chunks * beta))


# --- recursive halving / doubling (Thakur, Rabenseifner & Gropp 2005) --------------------------

def recursive_doubling_allgather_time(n, size, alpha, beta):
    r"""Recursive-doubling all-gather: log2 n exchanges of doubling size.

    .. math:: T = \log_2 n\,\alpha + \frac{n-1}{n}\,\frac{S}{\beta}

    n: ranks (1), a power of two; size: S, the full output buffer (B); alpha (s); beta (B/s).
    Source: Thakur et al. (2005) Sec. 4, allgather.

    >>> recursive_doubling_allgather_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.008765...
    """
    return log2(n) * alpha + (n - 1) / n * size / beta


def recursive_halving_reduce_scatter_time(n, size, alpha, beta):
    r"""Recursive-halving reduce-scatter (commutative op): log2 n exchanges of halving size.

    .. math:: T = \log_2 n\,\alpha + \frac{n-1}{n}\,\frac{S}{\beta}

    Add :func:`reduce_scatter_compute_time`. n: ranks (1), a power of two; size: S, the full
    input buffer (B); alpha (s); beta (B/s). Source: Thakur et al. (2005) Sec. 4, reduce-scatter.

    >>> recursive_halving_reduce_scatter_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.008765...
    """
    return log2(n) * alpha + (n - 1) / n * size / beta


def recursive_doubling_allreduce_time(n, size, alpha, beta):
    r"""Recursive-doubling all-reduce: log2 n exchanges of the full buffer.

    .. math:: T = \log_2 n\,\alpha + \log_2 n\,\frac{S}{\beta}

    Add :func:`recursive_doubling_compute_time`. n: ranks (1), a power of two; size (B);
    alpha (s); beta (B/s). Source: Thakur et al. (2005) Sec. 4, allreduce (short messages).

    >>> recursive_doubling_allreduce_time(n=8, size=1e6, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    4.5...e-05
    """
    return log2(n) * alpha + log2(n) * size / beta


def rabenseifner_allreduce_time(n, size, alpha, beta):
    r"""Rabenseifner all-reduce: recursive-halving reduce-scatter + recursive-doubling all-gather.

    .. math:: T = 2\log_2 n\,\alpha + 2\frac{n-1}{n}\,\frac{S}{\beta}

    Add :func:`reduce_scatter_compute_time`. n: ranks (1), a power of two; size (B);
    alpha (s); beta (B/s). Source: Thakur et al. (2005) Sec. 4, allreduce.

    >>> rabenseifner_allreduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.01753...
    """
    return 2 * log2(n) * alpha + 2 * (n - 1) / n * size / beta


def rabenseifner_reduce_time(n, size, alpha, beta):
    r"""Rabenseifner reduce: recursive-halving reduce-scatter + binomial gather to the root.

    .. math:: T = 2\log_2 n\,\alpha + 2\frac{n-1}{n}\,\frac{S}{\beta}

    Add :func:`reduce_scatter_compute_time`. n: ranks (1), a power of two; size (B);
    alpha (s); beta (B/s). Source: Thakur et al. (2005) Sec. 4, reduce.

    >>> rabenseifner_reduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.01753...
    """
    return rabenseifner_allreduce_time(n, size, alpha, beta)


def scatter_allgather_broadcast_time(n, size, alpha, beta):
    r"""Broadcast as binomial scatter + ring all-gather (van de Geijn; MPICH long messages).

    .. math:: T = (\log_2 n + n - 1)\,\alpha + 2\frac{n-1}{n}\,\frac{S}{\beta}

    n: ranks (1), a power of two; size (B); alpha (s); beta (B/s).
    Source: Thakur et al. (2005) Sec. 4, broadcast.

    >>> scatter_allgather_broadcast_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.01755...
    """
    return (log2(n) + n - 1) * alpha + 2 * (n - 1) / n * size / beta


def pairwise_alltoall_time(n, size, alpha, beta):
    r"""Pairwise-exchange all-to-all: n - 1 steps, one S/n block to a different peer each.

    .. math:: T = (n-1)\,\alpha + \frac{n-1}{n}\,\frac{S}{\beta}

    size: S, the whole send buffer per rank including the block it keeps (nccl-tests);
    Thakur's "n" is the (n-1)/n S actually sent. n: ranks (1); alpha (s); beta (B/s).
    Source: Thakur et al. (2005) Sec. 4, alltoall (long messages).

    >>> pairwise_alltoall_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.008785...
    """
    return (n - 1) * alpha + (n - 1) / n * size / beta


def hierarchical_alltoall_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra, alpha_inter,
                               beta_inter):
    r"""Pairwise all-to-all over N nodes of d ranks each, the two levels sending at once.

    .. math:: T = (d-1)\,\alpha_{intra} + (N-1)\,d\,\alpha_{inter}
              + \max\left(\frac{d-1}{N d}\frac{S}{\beta_{intra}},\
                          \frac{N-1}{N}\frac{S}{\beta_{inter}}\right)

    Each rank sends an S/(N d) block to each of its N d - 1 peers: d - 1 of them on its own node
    (the fabric), (N - 1) d on the others (the network); NCCL posts every send and receive of an
    all-to-all at once (ncclGroupStart/End around ncclSend/ncclRecv pairs), so the two levels
    move their shares concurrently and the slower sets the time. N = 1 or d = 1 is
    :func:`pairwise_alltoall_time` on one level. n_nodes N (1), n_devices_per_node d (1): the
    group's ranks per node; size S (B); alpha_intra, alpha_inter (s); beta_intra, beta_inter
    (B/s per device). Source: Thakur et al. (2005) Sec. 4 (pairwise exchange), split over the
    levels as the hierarchical collectives of :mod:`perfmodel.formulas.collectives` are; NCCL
    src/collectives/all_to_all (grouped point-to-point operations).

    >>> hierarchical_alltoall_time(2, 4, 1e9, 1e-6, 300e9, 5e-6, 50e9)  # doctest: +ELLIPSIS
    0.010023...
    """
    d, nodes = n_devices_per_node, n_nodes
    latency = (d - 1) * alpha_intra + (nodes - 1) * d * alpha_inter
    intra = (d - 1) / (nodes * d) * size / beta_intra
    inter = (nodes - 1) / nodes * size / beta_inter
    return latency + maximum(intra, inter)


def bruck_alltoall_time(n, size, alpha, beta):
    r"""Bruck all-to-all (short messages): log2 n steps, each forwarding half the blocks.

    .. math:: T = \log_2 n\,\alpha + \frac{S}{2}\log_2 n\,\frac{1}{\beta}

    n: ranks (1), a power of two; size: S, the whole send buffer per rank (B); alpha (s);
    beta (B/s). Source: Thakur et al. (2005) Sec. 4, alltoall; Bruck et al., IEEE TPDS 8(11), 1997.

    >>> bruck_alltoall_time(n=8, size=1e6, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    3.0...e-05
    """
    return log2(n) * alpha + size / 2 * log2(n) / beta
