r"""nccl-tests algorithm and bus bandwidth: algbw = S/t, busbw = algbw x a factor per collective.

The factor turns the measured algorithm bandwidth into the bandwidth one link would need to
give the same time under the bandwidth-optimal (ring) algorithm, so busbw can be compared with
the link's peak whatever the rank count. Each factor follows from the bandwidth-optimal form of
its collective with alpha = 0: a ring or pipelined-chain form of
:mod:`perfmodel.formulas.collectives` (all-reduce: :math:`2(n-1)/n` from
``ring_allreduce_time``), and for all-to-all the pairwise exchange of
:mod:`perfmodel.formulas.logtree`. ``size`` S is counted as nccl-tests counts it: the full buffer
per rank, as in :mod:`perfmodel.formulas.collectives`.

Sources: NVIDIA/nccl-tests doc/PERFORMANCE.md (algorithm bandwidth, bus bandwidth and the factor
of each collective); NVIDIA/nccl-tests src/alltoall.cu (AlltoAllGetBw) and src/sendrecv.cu
(SendRecvGetBw).
"""

from __future__ import annotations

from perfmodel.formulas.collectives import _const

__all__ = [
    "nccl_algbw", "nccl_busbw", "allreduce_busbw_factor", "reduce_scatter_busbw_factor",
    "allgather_busbw_factor", "broadcast_busbw_factor", "reduce_busbw_factor",
    "alltoall_busbw_factor", "sendrecv_busbw_factor",
]


# --- nccl-tests algorithm and bus bandwidth ------------------------------------------------------

def nccl_algbw(size, elapsed_time):
    r"""nccl-tests algorithm bandwidth.

    .. math:: \mathrm{algbw} = \frac{S}{t}

    size: S as nccl-tests counts it (B); elapsed_time: t (s).
    Source: NVIDIA/nccl-tests doc/PERFORMANCE.md ('Algorithm bandwidth').

    >>> nccl_algbw(size=1e9, elapsed_time=0.01)
    100000000000.0
    """
    return size / elapsed_time


def nccl_busbw(algbw, busbw_factor):
    r"""nccl-tests bus bandwidth: algbw times the collective's correction factor.

    .. math:: \mathrm{busbw} = \mathrm{algbw}\cdot f

    algbw (B/s); busbw_factor: f (1). Source: NVIDIA/nccl-tests doc/PERFORMANCE.md.

    >>> nccl_busbw(algbw=100e9, busbw_factor=1.75)
    175000000000.0
    """
    return algbw * busbw_factor


def allreduce_busbw_factor(n):
    r"""nccl-tests busbw factor of all-reduce (follows from :func:`ring_allreduce_time`).

    .. math:: f = \frac{2(n-1)}{n}

    n: ranks (1). Source: NVIDIA/nccl-tests doc/PERFORMANCE.md ('AllReduce').

    >>> allreduce_busbw_factor(n=8)
    1.75
    """
    return 2 * (n - 1) / n


def reduce_scatter_busbw_factor(n):
    r"""nccl-tests busbw factor of reduce-scatter (S = full input buffer).

    .. math:: f = \frac{n-1}{n}

    n: ranks (1). Source: NVIDIA/nccl-tests doc/PERFORMANCE.md ('ReduceScatter').

    >>> reduce_scatter_busbw_factor(n=8)
    0.875
    """
    return (n - 1) / n


def allgather_busbw_factor(n):
    r"""nccl-tests busbw factor of all-gather (S = full output buffer).

    .. math:: f = \frac{n-1}{n}

    n: ranks (1). Source: NVIDIA/nccl-tests doc/PERFORMANCE.md ('AllGather').

    >>> allgather_busbw_factor(n=8)
    0.875
    """
    return (n - 1) / n


def broadcast_busbw_factor(n):
    r"""nccl-tests busbw factor of broadcast.

    .. math:: f = 1

    n: ranks (1). Source: NVIDIA/nccl-tests doc/PERFORMANCE.md ('Broadcast').

    >>> broadcast_busbw_factor(n=8)
    1
    """
    return _const(1, n)


def reduce_busbw_factor(n):
    r"""nccl-tests busbw factor of reduce.

    .. math:: f = 1

    n: ranks (1). Source: NVIDIA/nccl-tests doc/PERFORMANCE.md ('Reduce').

    >>> reduce_busbw_factor(n=8)
    1
    """
    return _const(1, n)


def alltoall_busbw_factor(n):
    r"""nccl-tests busbw factor of all-to-all (S = whole send buffer, own block included).

    .. math:: f = \frac{n-1}{n}

    n: ranks (1). Source: NVIDIA/nccl-tests src/alltoall.cu (AlltoAllGetBw).

    >>> alltoall_busbw_factor(n=8)
    0.875
    """
    return (n - 1) / n


def sendrecv_busbw_factor(n):
    r"""nccl-tests busbw factor of send/recv.

    .. math:: f = 1

    n: ranks (1). Source: NVIDIA/nccl-tests src/sendrecv.cu (SendRecvGetBw).

    >>> sendrecv_busbw_factor(n=8)
    1
    """
    return _const(1, n)
