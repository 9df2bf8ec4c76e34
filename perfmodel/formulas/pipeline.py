r"""Pipeline parallelism: step time and bubble of GPipe, 1F1B and interleaved 1F1B schedules.

With p stages, m micro-batches per step and a per-micro-batch stage time :math:`t` (forward +
backward + whatever runs per micro-batch on the slowest stage), a synchronous pipeline takes
:math:`(m + p - 1)\,t` (GPipe and PipeDream-Flush/1F1B have the same bubble; 1F1B only bounds
the in-flight activations by p). The interleaved schedule of Narayanan et al. gives each device
v model chunks, which divides the bubble by v at the price of v times more point-to-point
messages.

Sources: Huang et al., "GPipe", NeurIPS 2019, Section 2.3; Narayanan et al., "Efficient
Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC'21, Section 2.2
(eq. 1 bubble (p-1)/m; Section 2.2.2 interleaved (p-1)/(v m); Section 4.1 the scatter/gather
transfer between stages).
"""

from __future__ import annotations

from perfmodel.formulas._backend import maximum, minimum, where


def pipeline_bubble_fraction(pp, n_microbatches, n_virtual_stages):
    r"""Idle fraction of a pipeline, relative to the ideal (bubble-free) time.

    .. math:: \frac{t_{bubble}}{t_{ideal}} = \frac{p - 1}{v\,m}

    pp p (1, stages), n_microbatches m (1, per step per pipeline), n_virtual_stages v (1; 1 for
    GPipe and 1F1B, the number of model chunks per device for the interleaved schedule).
    Source: Narayanan et al. SC'21, Section 2.2.1 eq. (1) and Section 2.2.2.

    >>> pipeline_bubble_fraction(pp=8, n_microbatches=64, n_virtual_stages=2)
    0.0546875
    """
    return (pp - 1) / (n_virtual_stages * n_microbatches)


def pipeline_step_time(stage_time, pp, n_microbatches, n_virtual_stages):
    r"""Time of one pipelined step: m micro-batches plus the fill and drain of the pipeline.

    .. math:: T = \left(m + \frac{p - 1}{v}\right) t_{stage}

    stage_time t_stage (s, one micro-batch's forward + backward on the slowest stage, all of its
    v chunks together), pp p (1), n_microbatches m (1), n_virtual_stages v (1).
    Assumes stages are balanced and point-to-point transfers are part of stage_time.
    Source: Narayanan et al. SC'21, Section 2.2 (ideal time m t, bubble (p-1) t / v).

    >>> pipeline_step_time(stage_time=0.1, pp=4, n_microbatches=8, n_virtual_stages=1)
    1.1
    """
    return (n_microbatches + (pp - 1) / n_virtual_stages) * stage_time


def pipeline_bubble_time(stage_time, pp, n_virtual_stages):
    r"""Idle time of one step spent filling and draining the pipeline.

    .. math:: T_{bubble} = \frac{p - 1}{v}\,t_{stage}

    stage_time t_stage (s), pp p (1), n_virtual_stages v (1).
    Source: Narayanan et al. SC'21, Section 2.2.

    >>> pipeline_bubble_time(stage_time=0.1, pp=4, n_virtual_stages=2)
    0.15000000000000002
    """
    return (pp - 1) / n_virtual_stages * stage_time


def pipeline_inflight_microbatches(pp, n_microbatches, n_virtual_stages):
    r"""Micro-batches whose activations the first stage holds at once under 1F1B (interleaved).

    .. math:: n_{inflight} = \min(p, m)\left(1 + \frac{p - 1}{p\,v}\right)^{[v > 1]}

    For 1F1B the first stage keeps at most p micro-batches in flight (at most m); the
    interleaved schedule keeps :math:`1 + (p-1)/(p v)` times more. GPipe holds all m (use m
    instead). pp p (1), n_microbatches m (1), n_virtual_stages v (1).
    Source: Korthikanti et al. 2022, Section 4.2.3; Narayanan et al. SC'21, Section 2.2.2.

    >>> pipeline_inflight_microbatches(pp=8, n_microbatches=64, n_virtual_stages=1)
    8
    """
    extra = where(n_virtual_stages > 1, 1 + (pp - 1) / (pp * n_virtual_stages), 1)
    return minimum(pp, n_microbatches) * extra


def overlapped_p2p_exposed_time(p2p_time, n_transfers, stage_time):
    r"""Point-to-point time per micro-batch left exposed when each transfer runs under the next
    model chunk's compute (the interleaved schedule with overlapped p2p).

    .. math:: T_{exposed} = n\,\max\left(0,\ T_{p2p} - \frac{T_{stage}}{n}\right)

    p2p_time T_p2p (s, one activation or gradient transfer), n_transfers n (1, per micro-batch
    per stage: 2v for v chunks, a send forward and one backward each), stage_time t_stage (s, the
    stage's compute of one micro-batch, so t_stage / n is one chunk's share under which a transfer
    runs). Source: Megatron-Core pipeline_parallel/schedules.py
    forward_backward_pipelining_with_interleaving with config.overlap_p2p_comm (the receive of
    the next chunk's input is posted before the current chunk computes and waited on after);
    megatron/training/arguments.py (--overlap-p2p-communication on by default, and off when the
    schedule is not interleaved).

    >>> overlapped_p2p_exposed_time(p2p_time=1e-3, n_transfers=24, stage_time=0.012)
    0.012
    >>> overlapped_p2p_exposed_time(p2p_time=1e-3, n_transfers=24, stage_time=0.048)
    0.0
    """
    return n_transfers * maximum(p2p_time - stage_time / n_transfers, 0.0)


def scatter_gather_p2p_time(size, n, alpha, beta, alpha_intra, beta_intra):
    r"""One activation (or its gradient) between two pipeline stages under the scatter/gather
    optimisation: each of the n tensor-parallel ranks sends a 1/n slice to its peer in the next
    stage, then the n receivers all-gather the slices over their own group (a ring).

    .. math:: T = \alpha + \frac{S}{n\,\beta} + (n-1)\,\alpha_{intra} + \frac{n-1}{n}\,\frac{S}{\beta_{intra}}

    size S (B, the whole tensor), n (tensor-parallel ranks), alpha / beta (s, B/s per direction:
    the link between the stages), alpha_intra / beta_intra (the tensor-parallel group's level: the
    node's fabric, where Megatron-LM places the group). Source: Narayanan et al. SC'21 Section 4.1
    and Figure 9; NVIDIA/Megatron-LM v2.6 megatron/p2p_communication.py ``_communicate`` (``split_tensor_into_1d_equal_chunks``
    before the send, ``mpu.gather_split_1d_tensor`` -- a torch.distributed.all_gather over the
    tensor-parallel group -- after every receive); microsoft/DeepSpeed
    deepspeed/runtime/pipe/engine.py (``pipe_partitioned``: ``PartitionedTensor.full()`` after a
    receive).

    >>> round(scatter_gather_p2p_time(8e7, 8, 5e-6, 25e9, 2e-6, 200e9), 6)
    0.000769
    """
    return alpha + size / (n * beta) + (n - 1) * alpha_intra + (n - 1) / n * size / beta_intra
