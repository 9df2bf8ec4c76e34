r"""Data parallelism: gradient synchronisation by parameter server or delta-W broadcast, and how
much of it a bucketed all-reduce hides behind the backward pass.

The all-reduce forms themselves are in :mod:`perfmodel.formulas.collectives`. Data parallelism
communicates once per mini-batch (per optimizer step), after the gradients of all its
micro-batches are accumulated; only the last micro-batch's backward can hide it.

Sources: M. Li et al., "Scaling Distributed Machine Learning with the Parameter Server",
OSDI 2014; J. Dean et al., "Large Scale Distributed Deep Networks" (DistBelief), NeurIPS 2012
(workers push gradients / delta-W and pull parameters); S. Li et al., "PyTorch Distributed:
Experiences on Accelerating Data Parallel Training", VLDB 2020, Section 3.2.3 (gradient
bucketing, default bucket 25 MB, overlap of all-reduce with backward).
"""

from __future__ import annotations

from perfmodel.formulas._backend import maximum, minimum


def parameter_server_time(n, size, alpha, beta):
    r"""One push of gradients and one pull of parameters through a single parameter server.

    .. math:: T = 2\left(\alpha + \frac{n\,S}{\beta}\right)

    n (1, workers), size S (B, the gradient = parameter bytes), alpha (s), beta (B/s, the
    server's link per direction). The server receives n S and sends n S over its one link, which
    is the bottleneck (workers' links carry only S each way); pushes and pulls do not overlap.
    Source: Li et al. OSDI 2014, Section 3 (push/pull); the server-link bottleneck is the
    classic argument for sharded servers and all-reduce (Sergeev & Del Balso, "Horovod", 2018,
    Section 2).

    >>> parameter_server_time(n=8, size=1e9, alpha=1e-5, beta=25e9)
    0.64002
    """
    return 2 * (alpha + n * size / beta)


def sharded_parameter_server_time(n, size, alpha, beta, n_servers):
    r"""Push and pull with the parameters sharded over n_servers servers (one link each).

    .. math:: T = 2\left(\alpha + \max\left(\frac{S}{\beta},\ \frac{n\,S}{n_{srv}\,\beta}\right)\right)

    Each worker sends and receives S; each server moves n S / n_srv. n (1), size S (B), alpha
    (s), beta (B/s per link per direction), n_servers (1).
    Source: Li et al. OSDI 2014, Section 4 (key-range partitioning over servers).

    >>> parameter_server_time(n=8, size=1e9, alpha=0, beta=25e9) > sharded_parameter_server_time(
    ...     n=8, size=1e9, alpha=0, beta=25e9, n_servers=8)
    True
    """
    return 2 * (alpha + maximum(size / beta, n * size / (n_servers * beta)))


def delta_w_broadcast_time(n, size, alpha, beta):
    r"""Every worker broadcasts its weight update (delta-W) to all others, directly.

    .. math:: T = (n - 1)\left(\alpha + \frac{S}{\beta}\right)

    Each worker receives n - 1 updates of S bytes over its link (and sends its own n - 1 times,
    in the other direction). n (1), size S (B), alpha (s), beta (B/s per direction).
    Source: Dean et al. NeurIPS 2012 (asynchronous delta-W exchange), as the all-to-all
    broadcast of Thakur, Rabenseifner & Gropp 2005, Section 4 (direct algorithm).

    >>> delta_w_broadcast_time(n=4, size=1e9, alpha=0, beta=25e9)
    0.12
    """
    return (n - 1) * (alpha + size / beta)


def overlapped_sync_exposed_time(sync_time, overlap_window_time, last_bucket_time):
    r"""The part of a bucketed gradient sync that the backward pass cannot hide.

    .. math:: T_{exposed} = \max\left(T_{sync} - T_{window},\ \min(T_{bucket}, T_{sync})\right)

    sync_time T_sync (s, the whole gradient all-reduce), overlap_window_time T_window (s, the
    backward compute it can run under: the last micro-batch's backward), last_bucket_time
    T_bucket (s, the all-reduce of the last bucket, which starts only when backward ends).
    Source: Li et al. VLDB 2020, Section 3.2.3 and Figure 2 (buckets launched as their
    gradients become ready; the last one cannot overlap).

    >>> overlapped_sync_exposed_time(sync_time=0.05, overlap_window_time=0.2, last_bucket_time=0.004)
    0.004
    """
    return maximum(sync_time - overlap_window_time, minimum(last_bucket_time, sync_time))


def prefetched_exposed_time(comm_time, compute_time, n_units):
    r"""Communication left exposed when each of n units fetches its data under the previous
    unit's compute (FSDP / ZeRO-3 prefetching of the next layer's parameters).

    .. math:: T_{exposed} = T_c + (L - 1)\,\max(0,\ T_c - T_x)

    comm_time T_c (s, one unit's collective: the all-gather of a layer's parameter shard, plus
    its gradient reduce-scatter in the backward), compute_time T_x (s, one unit's compute),
    n_units L (1, layers). The first unit's collective has nothing to run under; each later one
    runs under the previous unit's compute and delays it only by what that compute cannot cover.
    Assumes uniform units and one collective stream (FSDP issues them in order on one NCCL
    stream). Source: Zhao et al., "PyTorch FSDP: Experiences on Scaling Fully Sharded Data
    Parallel", VLDB 2023, Section 3.3 (overlapping communication and computation, backward and
    forward prefetching); Rajbhandari et al., ZeRO, SC'20, Section 7.2.2 (pre-fetching).

    >>> prefetched_exposed_time(comm_time=0.002, compute_time=0.005, n_units=32)
    0.002
    >>> round(prefetched_exposed_time(comm_time=0.008, compute_time=0.005, n_units=32), 6)
    0.101
    """
    return comm_time + (n_units - 1) * maximum(comm_time - compute_time, 0)
