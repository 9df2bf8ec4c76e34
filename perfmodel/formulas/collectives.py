r"""Time of collective operations in the alpha-beta(-gamma) model: ring, direct and two-level.

Collectives: all-reduce, reduce-scatter, all-gather, broadcast, reduce, all-to-all and
point-to-point, for the ring (and the pipelined chain), direct (fully connected) and
hierarchical two-level algorithms; and the reduction compute terms. In the same model:
:mod:`perfmodel.formulas.logtree` holds the binomial / binary / double binary tree and recursive
halving / doubling (Rabenseifner) algorithms; :mod:`perfmodel.formulas.contention` the forms with
link sharing laid on a ring, a fat tree and a blocking switch; :mod:`perfmodel.formulas.busbw`
the nccl-tests bus-bandwidth factors, which follow from the ring forms here.

Model (Hockney): a message of m bytes costs :math:`\alpha + m/\beta`. Links are full duplex
(``beta`` per direction); unless a function says otherwise a rank has one port (it sends one
and receives one message at a time at full ``beta``). ``size`` S is the full buffer per rank:
the input of all-reduce / reduce-scatter / reduce / broadcast, the output of all-gather, the
whole send buffer (own block included) of all-to-all -- as in nccl-tests. Logarithmic
algorithms assume n is a power of two. The reduction compute term :math:`\gamma` (s/B) is kept
in separate ``*_compute_time`` functions to add where the algorithm reduces.

Sources: R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 19(1), 2005 (Sec. 4, costs per algorithm); P. Sanders, J. Speck,
J. L. Träff, "Two-tree algorithms for full bandwidth broadcast, reduction and scan", Parallel
Computing 35(12), 2009 (pipelined chain); P. Patarasuk and X. Yuan, "Bandwidth optimal
all-reduce algorithms for clusters of workstations", JPDC 69(2), 2009; A. Grama et al.,
*Introduction to Parallel Computing*, 2nd ed., 2003, Sec. 4.2 and 4.5 (direct exchange);
NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/customAllReduceKernels.cu (one-shot, two-shot);
NVIDIA/nccl-tests doc/PERFORMANCE.md.
"""

from __future__ import annotations

from perfmodel.formulas._backend import const as _const, log2, maximum, sqrt

__all__ = [
    "point_to_point_time",
    "ring_allreduce_time", "ring_reduce_scatter_time", "ring_allgather_time",
    "bidirectional_ring_allreduce_time", "pipelined_ring_broadcast_time",
    "pipelined_ring_broadcast_optimal_time", "pipelined_ring_reduce_optimal_time",
    "reduce_scatter_compute_time", "recursive_doubling_compute_time",
    "one_shot_allreduce_compute_time",
    "direct_alltoall_time", "direct_allgather_time", "direct_reduce_scatter_time",
    "one_shot_allreduce_time", "two_shot_allreduce_time",
    "hierarchical_allreduce_time", "pipelined_hierarchical_allreduce_time", "in_network_allreduce_time",
]



def point_to_point_time(size, alpha, beta):
    r"""One message between two ranks.

    .. math:: T = \alpha + \frac{S}{\beta}

    size: S (B); alpha: latency (s); beta: bandwidth per direction (B/s).
    Source: Hockney model, as used in the cost model of Thakur et al. (2005).

    >>> point_to_point_time(size=1e6, alpha=5e-6, beta=25e9)
    4.5e-05
    """
    return alpha + size / beta


# --- ring ------------------------------------------------------------------------------------

def ring_allreduce_time(n, size, alpha, beta):
    r"""Ring all-reduce: reduce-scatter then all-gather around a ring of n ranks.

    .. math:: T = 2(n-1)\,\alpha + 2\frac{n-1}{n}\,\frac{S}{\beta}

    2(n - 1) steps, each moving one S/n block to the next rank. Add
    :func:`reduce_scatter_compute_time` for the reduction. n: ranks (1); size: S (B);
    alpha: latency per step (s); beta: bandwidth per direction (B/s).
    Source: Patarasuk & Yuan (2009) Sec. 3; Thakur et al. (2005) Sec. 4, allreduce; nccl-tests
    doc/PERFORMANCE.md ('AllReduce').

    >>> ring_allreduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.0175...
    """
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / beta


def ring_reduce_scatter_time(n, size, alpha, beta):
    r"""Ring reduce-scatter of an S-byte buffer: each rank ends with one reduced S/n block.

    .. math:: T = (n-1)\,\alpha + \frac{n-1}{n}\,\frac{S}{\beta}

    n: ranks (1); size: S, the full input buffer (B); alpha (s); beta (B/s).
    Source: Thakur et al. (2005) Sec. 4, reduce-scatter (pairwise exchange: same cost as the
    ring); nccl-tests doc/PERFORMANCE.md ('ReduceScatter').

    >>> ring_reduce_scatter_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.008785...
    """
    return (n - 1) * alpha + (n - 1) / n * size / beta


def ring_allgather_time(n, size, alpha, beta):
    r"""Ring all-gather: each rank ends with the S-byte buffer made of n blocks of S/n.

    .. math:: T = (n-1)\,\alpha + \frac{n-1}{n}\,\frac{S}{\beta}

    n: ranks (1); size: S, the full output buffer (B); alpha (s); beta (B/s).
    Source: Thakur et al. (2005) Sec. 4, allgather (ring).

    >>> ring_allgather_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.008785...
    """
    return (n - 1) * alpha + (n - 1) / n * size / beta


def bidirectional_ring_allreduce_time(n, size, alpha, beta):
    r"""All-reduce over two rings in opposite directions, each carrying half the buffer.

    .. math:: T = 2(n-1)\,\alpha + \frac{n-1}{n}\,\frac{S}{\beta}

    Needs two links per rank (a bidirectional ring): each direction of each link carries one
    ring. On a single port it is no faster than :func:`ring_allreduce_time`.
    n: ranks (1); size: S (B); alpha (s); beta: per link per direction (B/s).
    Source: Patarasuk & Yuan (2009) (ring all-reduce), applied to S/2 per ring.

    >>> bidirectional_ring_allreduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.00882...
    """
    return 2 * (n - 1) * alpha + (n - 1) / n * size / beta


def pipelined_ring_broadcast_time(n, size, alpha, beta, n_chunks):
    r"""Broadcast pipelined along a chain of n ranks in c chunks.

    .. math:: T = (n + c - 2)\left(\alpha + \frac{S}{c\,\beta}\right)

    The first chunk needs n - 1 steps to reach the last rank, each further chunk one more.
    n: ranks (1), n >= 2; size: S (B); alpha (s); beta (B/s); n_chunks: c (1).
    Source: Sanders, Speck & Träff (2009) Sec. 1 (pipelined linear-array broadcast);
    Patarasuk & Yuan (2009) (pipelined ring).

    >>> pipelined_ring_broadcast_time(n=8, size=1e9, alpha=5e-6, beta=100e9, n_chunks=100)  # doctest: +ELLIPSIS
    0.01113...
    """
    return (n + n_chunks - 2) * (alpha + size / (n_chunks * beta))


def pipelined_ring_broadcast_optimal_time(n, size, alpha, beta):
    r"""Pipelined chain broadcast with the best number of chunks.

    .. math:: T^* = \left(\sqrt{(n-2)\,\alpha} + \sqrt{S/\beta}\right)^2,
              \qquad c^* = \sqrt{\frac{(n-2)\,S}{\alpha\,\beta}}

    Minimum over a continuous c of :func:`pipelined_ring_broadcast_time`; tends to S/beta for
    large S (busbw factor 1). n: ranks (1), n >= 2; size (B); alpha (s); beta (B/s).
    Source: Sanders, Speck & Träff (2009) Sec. 1 (pipelining with the best chunk size).

    >>> pipelined_ring_broadcast_optimal_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.011125...
    """
    return (sqrt((n - 2) * alpha) + sqrt(size / beta)) ** 2


def pipelined_ring_reduce_optimal_time(n, size, alpha, beta):
    r"""Reduce pipelined along a chain (broadcast in reverse), with the best chunk count.

    .. math:: T^* = \left(\sqrt{(n-2)\,\alpha} + \sqrt{S/\beta}\right)^2

    Reduction compute not included (overlapped in the pipeline). n: ranks (1), n >= 2;
    size (B); alpha (s); beta (B/s). Source: as :func:`pipelined_ring_broadcast_optimal_time`.

    >>> pipelined_ring_reduce_optimal_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.011125...
    """
    return pipelined_ring_broadcast_optimal_time(n, size, alpha, beta)


# --- reduction compute (gamma) -------------------------------------------------------------------

def reduce_scatter_compute_time(n, size, gamma):
    r"""Reduction compute of a bandwidth-optimal reduce-scatter (ring, recursive halving).

    .. math:: T_\gamma = \frac{n-1}{n}\, S\, \gamma

    Each rank combines (n-1) blocks of S/n. Also the compute term of ring / Rabenseifner
    all-reduce and Rabenseifner reduce. n: ranks (1); size (B); gamma: s per byte reduced.
    Source: Thakur et al. (2005) Sec. 4 (reduce-scatter, allreduce, reduce).

    >>> reduce_scatter_compute_time(n=8, size=1e9, gamma=1e-11)  # doctest: +ELLIPSIS
    0.008749...
    """
    return (n - 1) / n * size * gamma


def recursive_doubling_compute_time(n, size, gamma):
    r"""Reduction compute of recursive-doubling all-reduce and binomial-tree reduce.

    .. math:: T_\gamma = \log_2 n\, S\, \gamma

    n: ranks (1), a power of two; size (B); gamma (s/B). Source: Thakur et al. (2005)
    Sec. 4 (allreduce, reduce).

    >>> recursive_doubling_compute_time(n=8, size=1e9, gamma=1e-11)  # doctest: +ELLIPSIS
    0.03...
    """
    return log2(n) * size * gamma


def one_shot_allreduce_compute_time(n, size, gamma):
    r"""Reduction compute of one-shot all-reduce: every rank sums all n full buffers.

    .. math:: T_\gamma = (n-1)\, S\, \gamma

    n: ranks (1); size (B); gamma (s/B). Source: the ONESHOT strategy of NVIDIA/TensorRT-LLM
    cpp/tensorrt_llm/kernels/customAllReduceKernels.cu (every rank reads all n buffers).

    >>> one_shot_allreduce_compute_time(n=8, size=1e9, gamma=1e-11)  # doctest: +ELLIPSIS
    0.069999...
    """
    return (n - 1) * size * gamma


# --- direct exchange on a fully connected network ----------------------------------------------

def direct_alltoall_time(n, size, alpha, beta):
    r"""All-to-all on a fully connected network: all n - 1 blocks sent at once, one per link.

    .. math:: T = \alpha + \frac{S}{n\,\beta}

    Every pair has its own link (beta per direction), so one step. n: ranks (1); size: S,
    whole send buffer per rank (B); alpha (s); beta (B/s). Source: Grama et al. (2003)
    Sec. 4.5 (all-to-all personalized, completely connected network); Thakur et al. (2005)
    Sec. 4, alltoall (post all sends at once).

    >>> direct_alltoall_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.001255...
    """
    return alpha + size / (n * beta)


def direct_allgather_time(n, size, alpha, beta):
    r"""All-gather on a fully connected network: each rank sends its S/n block to all at once.

    .. math:: T = \alpha + \frac{S}{n\,\beta}

    n: ranks (1); size: S, full output buffer (B); alpha (s); beta: per link (B/s).
    Source: direct all-to-all broadcast on a completely connected network (Grama et al.
    2003, Sec. 4.2).

    >>> direct_allgather_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.001255...
    """
    return alpha + size / (n * beta)


def direct_reduce_scatter_time(n, size, alpha, beta):
    r"""Reduce-scatter on a fully connected network: block j goes straight to rank j.

    .. math:: T = \alpha + \frac{S}{n\,\beta}

    Add :func:`reduce_scatter_compute_time`. n: ranks (1); size: S, full input buffer (B);
    alpha (s); beta: per link (B/s). Source: direct exchange on a fully connected topology.

    >>> direct_reduce_scatter_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.001255...
    """
    return alpha + size / (n * beta)


def one_shot_allreduce_time(n, size, alpha, beta):
    r"""One-shot all-reduce: every rank sends its whole buffer to every other rank at once.

    .. math:: T = \alpha + \frac{S}{\beta}

    One step on a fully connected network; add :func:`one_shot_allreduce_compute_time`.
    n: ranks (1); size (B); alpha (s); beta: per link (B/s). Lowest latency of all: one step.
    Source: ONESHOT strategy of NVIDIA/TensorRT-LLM customAllReduceKernels.cu, costed on a
    fully connected topology.

    >>> one_shot_allreduce_time(n=8, size=1e6, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    1.50...e-05
    """
    return _const(0, n) + alpha + size / beta


def two_shot_allreduce_time(n, size, alpha, beta):
    r"""Two-shot all-reduce: direct reduce-scatter then direct all-gather.

    .. math:: T = 2\alpha + \frac{2S}{n\,\beta}

    Add :func:`reduce_scatter_compute_time`. n: ranks (1); size (B); alpha (s);
    beta: per link (B/s). Source: TWOSHOT strategy of NVIDIA/TensorRT-LLM
    customAllReduceKernels.cu, costed on a fully connected topology.

    >>> two_shot_allreduce_time(n=8, size=1e9, alpha=5e-6, beta=100e9)  # doctest: +ELLIPSIS
    0.00251...
    """
    return 2 * alpha + 2 * size / (n * beta)


# --- hierarchical ----------------------------------------------------------------------------

def hierarchical_allreduce_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra,
                                alpha_inter, beta_inter):
    r"""Two-level all-reduce: intra-node reduce-scatter, inter-node all-reduce, intra all-gather.

    .. math:: T = 2(d-1)\alpha_{intra} + 2\frac{d-1}{d}\frac{S}{\beta_{intra}}
              + 2(N-1)\alpha_{inter} + 2\frac{N-1}{N}\frac{S/d}{\beta_{inter}}

    Rings at both levels; the d local ranks run d inter-node rings concurrently, each on its
    S/d shard with bandwidth :math:`\beta_{inter}` (one NIC per device; use node NIC
    bandwidth / d when they share). n_nodes: N (1); n_devices_per_node: d (1); size (B);
    alpha_intra, alpha_inter (s); beta_intra, beta_inter (B/s).
    Source: Jia et al., "Highly scalable deep learning training system with mixed-precision",
    2018 (hierarchical all-reduce); ring costs of Patarasuk & Yuan (2009).

    >>> hierarchical_allreduce_time(4, 8, 1e9, 1e-6, 300e9, 5e-6, 25e9)  # doctest: +ELLIPSIS
    0.013377...
    """
    d, nodes = n_devices_per_node, n_nodes
    intra = 2 * (d - 1) * alpha_intra + 2 * (d - 1) / d * size / beta_intra
    inter = 2 * (nodes - 1) * alpha_inter + 2 * (nodes - 1) / nodes * (size / d) / beta_inter
    return intra + inter


def pipelined_hierarchical_allreduce_time(n_nodes, n_devices_per_node, size, alpha_intra, beta_intra,
                                          alpha_inter, beta_inter):
    r"""Two-level all-reduce whose levels move data at the same time, chunk by chunk.

    .. math:: T = 2(d-1)\alpha_{intra} + 2(N-1)\alpha_{inter}
              + \max\left(2\frac{d-1}{d}\frac{S}{\beta_{intra}},\
                          2\frac{N-1}{N}\frac{S/d}{\beta_{inter}}\right)

    The same traffic as :func:`hierarchical_allreduce_time`, but a chunk crosses the network
    while the next one is reduced inside the node, so the slower level sets the rate and the
    latencies add. This is how NCCL runs a collective over nodes: its rings and trees span
    every GPU and pipeline chunks through all links at once. n_nodes N (1),
    n_devices_per_node d (1), size S (B), alpha_intra, alpha_inter (s), beta_intra,
    beta_inter (B/s per device).
    Source: Patarasuk & Yuan, JPDC 69(2), 2009 (pipelined ring: data / bottleneck bandwidth);
    S. Jeaugey, "Massively Scale Your Deep Learning Training with NCCL 2.4", NVIDIA blog 2019
    (chunked pipelining of rings and trees across nodes).

    >>> pipelined_hierarchical_allreduce_time(4, 8, 1e9, 1e-6, 300e9, 5e-6, 25e9)  # doctest: +ELLIPSIS
    0.007543...
    """
    d, nodes = n_devices_per_node, n_nodes
    latency = 2 * (d - 1) * alpha_intra + 2 * (nodes - 1) * alpha_inter
    intra = 2 * (d - 1) / d * size / beta_intra
    inter = 2 * (nodes - 1) / nodes * (size / d) / beta_inter
    return latency + maximum(intra, inter)


def in_network_allreduce_time(size, alpha, beta):
    r"""All-reduce reduced inside the switch: every device sends its buffer once, receives once.

    .. math:: T = 2\alpha + \frac{S}{\beta}

    The switch adds the contributions and multicasts the sum (NVLink SHARP, InfiniBand SHArP), so
    a device moves S each way at the same time instead of :math:`2(n-1)/n\,S` through a ring;
    independent of n. size S (B), alpha (s), beta (B/s per device per direction, as achieved).
    Source: R. Graham et al., "Scalable Hierarchical Aggregation Protocol (SHArP)", COMHPC 2016;
    NVIDIA NVLink SHARP (NVLS) in NCCL 2.17+.

    >>> in_network_allreduce_time(size=1e9, alpha=1e-6, beta=250e9)
    0.004002
    """
    return 2 * alpha + size / beta
