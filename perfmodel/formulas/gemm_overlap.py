r"""A collective run under a GEMM on the same device: the three ways Transformer Engine does it.

Tensor-parallel training with sequence parallelism all-gathers a layer's input before each
column-parallel GEMM and reduce-scatters the output of each row-parallel GEMM. Transformer Engine
(TE) hides these collectives under GEMMs with its userbuffers backend, in one of three ways per
GEMM, and the hiding is not free: the collective's kernels take streaming multiprocessors (SMs)
from the GEMM, a chunked GEMM leaves its last chunk's collective exposed, and a collective longer
than the GEMM still waits.

* **bulk**: the collective is independent of the GEMM (in the backward: the all-gather of the
  layer input the weight gradient needs, under the input-gradient GEMM; the reduce-scatter of the
  input gradient, under the weight-gradient GEMM). Both are launched together; the collective's
  kernel holds n of the U SMs while it runs.
* **pipeline**: the GEMM is split into k chunks along the tokens; each chunk's output is
  reduce-scattered while the next chunk computes; the last chunk's collective is exposed.
* **ring exchange**: an all-gather feeding the GEMM as t steps: each rank multiplies the chunk it
  holds while the copy engines pass the chunks on around the ring (one transfer per step).

Each function returns the seconds from the start of the GEMM to the end of both, given the GEMM
alone on the whole device (``gemm_time``) and the collective alone (``collective_time``).

Sources: NVIDIA/TransformerEngine transformer_engine/pytorch/module/base.py
``initialize_ub`` (methods "bulk", "pipeline" with ``num_splits``, "ring_exchange"; ``num_sm``
SMs for the communication kernels; ``set_sm_margin`` launches the GEMM on the SMs left over) and
transformer_engine/common/comm_gemm_overlap/comm_gemm_overlap.cpp (``split_overlap_rs``: GEMM
chunk i + 1 while chunk i is reduce-scattered; ``split_overlap_ag_p2p``: t - 1 ring steps of
send/receive beside the chunk GEMMs); Wang et al., "Overlap Communication with Dependent
Computation via Decomposition in Large Deep Learning Models", ASPLOS 2023, Section 3
(decomposing a collective and its GEMM into per-shard steps).
"""

from __future__ import annotations

from perfmodel.formulas._backend import maximum, minimum

__all__ = ["sm_shared_gemm_time", "bulk_overlap_time", "pipelined_overlap_time", "ring_exchange_overlap_time",
           "hidden_collective_slowdown_time"]


def sm_shared_gemm_time(gemm_time, collective_time, collective_units, n_units, margin):
    r"""A GEMM's seconds when a collective's kernels hold ``collective_units`` of the device's SMs.

    With a margin (TE ``set_sm_margin``) the GEMM is launched on the U - n SMs left for its whole
    run; without, it loses them only while the collective runs, then runs on all U:

    .. math:: T' = T\,\frac{U}{U - n} \quad\text{(margin)}, \qquad
              T' = T + \min\!\left(T_c,\ T\,\frac{U}{U - n}\right)\frac{n}{U} \quad\text{(no margin)}

    gemm_time T (s, on all U SMs), collective_time T_c (s), collective_units n (SMs of the collective), n_units
    U (SMs of the device, U > n), margin (1 with a margin, 0 without). The GEMM's work is T U
    SM-seconds; while the collective holds n SMs it advances at (U - n) / U. Source: TE
    ``CommOverlapCore`` (``_math_sms`` = SMs - ``num_comm_sm`` when ``set_sm_margin``, passed to
    cuBLAS as the GEMM's SM count; the communication kernels launched on ``num_comm_sm`` SMs).

    >>> sm_shared_gemm_time(gemm_time=1e-3, collective_time=0.5e-3, collective_units=24, n_units=132, margin=1)  # doctest: +ELLIPSIS
    0.0012222...
    >>> sm_shared_gemm_time(gemm_time=1e-3, collective_time=0.5e-3, collective_units=24, n_units=132, margin=0)  # doctest: +ELLIPSIS
    0.0010909...
    """
    slowed = gemm_time * n_units / (n_units - collective_units)
    during = gemm_time + minimum(collective_time, slowed) * collective_units / n_units
    return margin * slowed + (1 - margin) * during


def bulk_overlap_time(gemm_time, collective_time):
    r"""A collective launched beside an independent GEMM.

    .. math:: T = \max(T', T_c)

    gemm_time T' (s, already slowed by the collective's SMs, :func:`sm_shared_gemm_time`),
    collective_time T_c (s). Source: TE ``CommOverlapBase::bulk_overlap`` (communication and GEMM on
    separate streams, joined after both).

    >>> bulk_overlap_time(gemm_time=1e-3, collective_time=0.4e-3)
    0.001
    """
    return maximum(gemm_time, collective_time)


def pipelined_overlap_time(gemm_time, collective_time, n_splits):
    r"""A GEMM in k chunks, each chunk's output reduce-scattered under the next chunk's GEMM.

    .. math:: T = \max\!\left(T' + \frac{T_c}{k},\ \frac{T'}{k} + T_c\right)

    gemm_time T' (s, the whole GEMM, slowed by the collective's SMs), collective_time T_c (s, the whole
    collective), n_splits k (1). The first term: the GEMM chunks run back to back and the last
    chunk's collective follows; the second: the collectives run back to back after the first
    chunk (a collective longer than a GEMM chunk). Source: TE ``split_overlap_rs``.

    >>> pipelined_overlap_time(gemm_time=1e-3, collective_time=0.4e-3, n_splits=4)
    0.0011
    >>> pipelined_overlap_time(gemm_time=1e-3, collective_time=2e-3, n_splits=4)  # doctest: +ELLIPSIS
    0.002250...
    """
    return maximum(gemm_time + collective_time / n_splits, gemm_time / n_splits + collective_time)


def ring_exchange_overlap_time(gemm_time, collective_time, tp):
    r"""An all-gather feeding a GEMM as t ring steps (copy engines), each beside a chunk GEMM.

    .. math:: T = T' + \max\!\left(0,\ T_c - \frac{t - 1}{t}\,T'\right)

    gemm_time T' (s, the whole GEMM), collective_time T_c (s, the whole all-gather: t - 1 transfers of
    one chunk each), tp t (1, the tensor-parallel size). The rank starts on the chunk it holds;
    each of the t - 1 transfers runs beside one chunk GEMM of T' / t and waits where it is longer.
    Source: TE ``split_overlap_ag_p2p``.

    >>> ring_exchange_overlap_time(gemm_time=1e-3, collective_time=0.5e-3, tp=4)
    0.001
    >>> ring_exchange_overlap_time(gemm_time=1e-3, collective_time=1e-3, tp=4)
    0.00125
    """
    return gemm_time + maximum(collective_time - (tp - 1) / tp * gemm_time, 0.0)


def hidden_collective_slowdown_time(hidden_time, collective_units, n_units):
    r"""Seconds a hidden collective adds to the compute it runs under, by the SMs its kernel holds.

    .. math:: \Delta T = T_h\,\frac{n}{U}

    hidden_time T_h (s, the part of the collective that runs while the device computes),
    collective_units n (SMs its kernel holds: NCCL runs one CTA per channel), n_units U (SMs of the
    device, U > n). While the collective runs the compute advances at (U - n) / U; the work left
    behind, T_h n / U seconds of the whole device, is done after. The no-margin case of
    :func:`sm_shared_gemm_time` for a collective shorter than the compute hiding it, which is
    what a hidden data-parallel or FSDP collective is. A lower bound: a GEMM launched while the
    collective holds its SMs runs its waves on U - n units, and one of about a wave then needs a
    second (the forum post's case, where the GEMM's time nearly doubles); that wave tail is not
    modelled here. Sources: NVIDIA developer forum,
    "Compute-Communication Overlap Causes Severe GEMM Performance Degradation because of Tail
    Effect" (2025, H100 with FSDP prefetch: the concurrent ncclAllGather kernel launches 24 blocks
    beside the GEMM's 132); NCCL ``ncclConfig_t`` ``minCTAs`` / ``maxCTAs`` (CTAs a collective
    uses, one per channel).

    >>> hidden_collective_slowdown_time(hidden_time=0.1, collective_units=24, n_units=132)  # doctest: +ELLIPSIS
    0.01818...
    """
    return hidden_time * collective_units / n_units
