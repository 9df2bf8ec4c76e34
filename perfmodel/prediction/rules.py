"""The rules every training step shares, whatever the model: gradient bytes, model-state memory,
optimizer time, gradient synchronisation, exposed tensor-parallel communication, the pipeline
bubble and the bound. The transformer step (:mod:`.step`), the CNN/MLP step (:mod:`.dense`) and
the crossover equations (:mod:`perfmodel.crossover.equations`) all call these, so the step is
modelled in one place.

Numbers may be floats, numpy arrays or sympy expressions; categorical choices (dtype, ZeRO
stage, gradient-sync scheme, stack flags) are plain Python values and select a branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from perfmodel.formulas import collectives as coll
from perfmodel.formulas import compute as cf
from perfmodel.formulas import dataparallel as dpf
from perfmodel.formulas import gemm_overlap as gov
from perfmodel.formulas import memory as mem
from perfmodel.formulas import pipeline as pipe
from perfmodel.formulas._backend import ceil, maximum, minimum, where
from perfmodel.plan import DTYPE_BYTES, FP8_WEIGHT_CAST_BYTES, precision_of
from perfmodel.prediction.state_bytes import (FP8_TRANSPOSE_BYTES, MASTER_BYTES, STATE_BYTES, fp8_params,
                                             master_bytes_per_param, weight_bytes_per_param)
from perfmodel.prediction.placement import DpLevels, Level, flat_level, ring_level, two_level_allreduce_time
from perfmodel.prediction.zero3_tensorwise import tensorwise_sync_times

__all__ = ["Choices", "BOUNDS", "DDP_BUCKET_BYTES", "OPTIMIZER_STATE_BYTES", "is_mixed", "grad_bytes_per_param",
           "optimizer_state_bytes_per_param", "model_state_bytes", "optimizer_time", "zero3_gather_time",
           "ShardUnits", "GradBuckets", "grad_buckets", "bucketed_allreduce_times", "zero01_sync_times", "gradient_sync_times",
           "sharded_sync_times", "waited_sync_time",
           "hybrid_sync_times", "shard_ranks", "tp_exposed_time", "effective_virtual_stages", "pipeline_bubble_time",
           "inflight_microbatches",
           "bound_index"]

DDP_BUCKET_BYTES = 25 * 2**20  # PyTorch DDP bucket_cap_mb default (Li et al. VLDB 2020, Sec. 3.2.3)
BOUNDS = ("compute", "communication", "memory")  # bound_index -> name
# optimizer state per parameter (Rajbhandari et al., ZeRO, SC'20, Section 3.1: K = 12 for
# mixed-precision Adam): an fp32 master copy when the weights are 16-bit, plus fp32 moments
# (two for Adam, one -- momentum -- for SGD); adamw-bf16 keeps bf16 moments and, on the device, the
# master :func:`~perfmodel.prediction.state_bytes.master_bytes_per_param` says. This table is the
# host's (ZeRO-Offload): a host step updates a copy of the weights, so a 16-bit plan keeps a bf16
# master there too
_MOMENT_BYTES = 4
_N_MOMENTS = {"adamw": 2, "sgd": 1, "adamw-bf16": 2}
OPTIMIZER_STATE_BYTES = {(opt, mixed): (STATE_BYTES.get(opt, MASTER_BYTES) if mixed else 0)
                         + STATE_BYTES.get(opt, _MOMENT_BYTES) * n
                         for opt, n in _N_MOMENTS.items() for mixed in (True, False)}


@dataclass(frozen=True)
class Choices:
    """The categorical part of a plan (everything that selects a formula rather than feeds one)."""

    dtype: str
    recompute: str
    sequence_parallel: bool
    schedule: str
    zero: int
    grad_sync: str
    overlap: bool
    optimizer: str
    offload: str = "none"  # plan.OFFLOAD (perfmodel.prediction.offload)
    shard_group: int | None = None  # hybrid sharding: ZeRO shards over this many ranks (None: dp)
    first_stage_layers: int | None = None  # uneven pipeline stages (prediction.stages); None: even
    last_stage_layers: int | None = None

    @classmethod
    def of(cls, plan) -> Choices:
        return cls(plan.dtype, plan.recompute, plan.sequence_parallel, plan.schedule, plan.zero,
                   plan.grad_sync, plan.overlap, plan.optimizer, getattr(plan, "offload", "none"),
                   getattr(plan, "shard_group", None), getattr(plan, "first_stage_layers", None),
                   getattr(plan, "last_stage_layers", None))


def shard_ranks(c: Choices, dp):
    """Ranks ZeRO shards the model states over: the shard group of a hybrid plan (FSDP
    HYBRID_SHARD, MiCS: states / N, replicated across dp / N groups), else the whole dp group."""
    return dp if c.shard_group is None else c.shard_group


def is_mixed(dtype: str) -> bool:
    """Whether ``dtype`` trains in mixed precision (16-bit or 8-bit weights, fp32 master copy)."""
    return DTYPE_BYTES[dtype] < 4


def grad_bytes_per_param(stack, dtype: str) -> int:
    """Bytes per gradient element held and reduced: the stack's reduce dtype under mixed
    precision, which may depend on the dtype (Megatron-LM accumulates and all-reduces fp32 main
    gradients under bf16, fp16 ones under fp16: :meth:`Stack.grad_bytes`), 4 in fp32 training."""
    return stack.grad_bytes(dtype) if is_mixed(dtype) else 4


def optimizer_state_bytes_per_param(optimizer: str, dtype: str) -> int:
    """K of the ZeRO paper for ``optimizer`` and ``dtype`` (:data:`OPTIMIZER_STATE_BYTES`)."""
    return OPTIMIZER_STATE_BYTES[(optimizer, is_mixed(dtype))]


def model_state_bytes(params, c: Choices, stack, dp) -> tuple:
    """(weights, gradients, optimizer state) bytes per device of ``params`` parameters with ZeRO
    stage ``c.zero`` over ``dp`` ranks: stage 1 shards the optimizer state, 2 also the gradients,
    3 also the weights (Rajbhandari et al., SC'20, Figure 1), through the formulas of
    :mod:`perfmodel.formulas.memory` (their sum is ``zero{1,2,3}_model_state_bytes``). Under an
    autocast stack (``stack.autocast``) a 16-bit plan keeps fp32 parameters, which are their own
    master copy: 4 + 4 (fp32 gradients, whatever dtype the stack reduces them in) + 8 (AdamW moments) = 16 B
    per parameter (PyTorch AMP recipe: the model stays fp32, autocast casts per op). The weights'
    and the master copy's bytes follow the stack (:func:`weight_bytes_per_param`,
    :func:`master_bytes_per_param`)."""
    mixed = is_mixed(c.dtype)
    weight_bytes, grad_bytes = weight_bytes_per_param(stack, c.dtype), grad_bytes_per_param(stack, c.dtype)
    if mixed and getattr(stack, "autocast", False):  # autocast: the fp32 parameters are the master copy
        mixed, weight_bytes, grad_bytes = False, MASTER_BYTES, MASTER_BYTES
    shard = {part: (shard_ranks(c, dp) if c.zero >= stage else 1) for part, stage in (("o", 1), ("g", 2), ("w", 3))}
    weights = mem.weight_bytes(params / shard["w"], weight_bytes)
    grads = mem.gradient_bytes(params / shard["g"], grad_bytes)
    master = master_bytes_per_param(stack, c.dtype, c.optimizer) if mixed else 0
    optimizer = mem.optimizer_state_bytes(params / shard["o"], master, STATE_BYTES.get(c.optimizer, _MOMENT_BYTES),
                                          _N_MOMENTS[c.optimizer])
    return weights, grads, optimizer


def _step_bytes_scale(stack, c: Choices) -> float:
    """The optimizer step's HBM bytes (:func:`perfmodel.formulas.compute.optimizer_update_bytes`)
    relative to the fp32-state AdamW the stacks measured (28 B a parameter): 1, or for adamw-bf16
    its bf16 moments with w the bytes of the weight it updates (2 in bf16 or a bf16 master, 4 for
    fp32 parameters) and the gradient's bytes."""
    if c.optimizer not in STATE_BYTES:
        return 1.0
    w = 4 if not is_mixed(c.dtype) or getattr(stack, "autocast", False) else 2
    moments = _N_MOMENTS[c.optimizer]
    return (cf.optimizer_update_bytes(1, w, grad_bytes_per_param(stack, c.dtype), STATE_BYTES[c.optimizer], moments, 0)
            / cf.optimizer_update_bytes(1, MASTER_BYTES, 4, _MOMENT_BYTES, moments, 0))


def optimizer_time(params, c: Choices, dp, stack, rates):
    """Seconds of the optimizer step on one device: the stack's measured HBM bytes per parameter
    over the parameters this device updates (1/dp of them with ZeRO >= 1), at least one launch;
    under FP8 also the cast of every updated BF16 weight to its cached FP8 copy and transpose
    (read 2 B, write 1 + 1 B per parameter, on the step's first micro-batch), or, with FP8
    parameters, only the transpose Transformer Engine refills from each FP8 weight (1 + 1 B)."""
    updated = params / (shard_ranks(c, dp) if c.zero >= 1 else 1)
    per_param = stack.optimizer_bytes_per_param * _step_bytes_scale(stack, c)
    step = maximum(updated * per_param / rates.memory_bandwidth, rates.launch_time)
    if precision_of(c.dtype).linear == "fp8":
        cast = FP8_TRANSPOSE_BYTES if fp8_params(stack, c.dtype) else FP8_WEIGHT_CAST_BYTES
        step = step + params * cast / rates.memory_bandwidth
    return step


def zero3_gather_time(n_microbatches, dp, param_bytes, alpha, beta):
    """ZeRO-3 parameter all-gathers fully exposed: before every micro-batch's forward and again
    before its backward (Rajbhandari et al., SC'20, Section 7.2.2: 2 Psi of all-gather per step
    and batch). Used where nothing overlaps them (a flat parameter-server or broadcast sync)."""
    return 2 * n_microbatches * coll.ring_allgather_time(dp, param_bytes, alpha, beta)


class ShardUnits(NamedTuple):
    """What a sharded data-parallel step (ZeRO-2/3, FSDP) works on, per device and micro-batch:
    ``n_units`` layers of ``unit_param_bytes`` parameters (``unit_grad_bytes`` of gradients) with
    ``unit_forward_s`` / ``unit_backward_s`` of compute each (backward includes recompute), and
    the parameters outside the layers (embedding, LM head, final norm), gathered and reduced
    without a layer's compute to hide behind."""

    n_units: object
    unit_param_bytes: object
    unit_grad_bytes: object
    unit_forward_s: object
    unit_backward_s: object
    rest_param_bytes: object
    rest_grad_bytes: object
    # ZeRO-3 tensor by tensor (a stack's [zero3] gather = "tensor"; prediction.zero3_tensorwise)
    tensorwise: object = None
    per_unit: bool = False  # FSDP's wrapped units: ZeRO-2 unit by unit, the root kept after forward


class GradBuckets(NamedTuple):
    """How a stack reduces the gradients of ZeRO 0/1: in buckets of ``bytes`` (float('inf'): the
    whole buffer in one call), overlapped with the backward or not (``overlap``)."""

    overlap: bool = True
    bytes: object = DDP_BUCKET_BYTES


def grad_buckets(stack, dp, grad_bytes_per_param) -> GradBuckets:
    """The stack's gradient buckets (its ``[grad_sync]`` table) at ``dp`` ranks."""
    return GradBuckets(stack.grad_sync_overlap, stack.grad_bucket_size(dp, grad_bytes_per_param))


def bucketed_allreduce_times(grad_size, dp, levels: DpLevels, bucket_bytes):
    """(whole sync, one bucket) of the gradient all-reduce run bucket by bucket: ceil(S / bucket)
    calls of S / n bytes each, so every call pays the collective's latency again. Sources:
    Li et al. VLDB 2020, Section 3.2.3 (PyTorch DDP buckets); Megatron-Core
    DistributedDataParallelConfig.bucket_size (one call per bucket, one bucket without overlap)."""
    n_buckets = maximum(ceil(grad_size / bucket_bytes), 1)
    one = two_level_allreduce_time(grad_size / n_buckets, dp, levels)
    return n_buckets * one, one


def zero01_sync_times(zero: int, grad_size, param_bytes, dp, levels: DpLevels, bucket_bytes):
    """(whole sync, one bucket) of ZeRO 0 / 1 with all-reduce. ZeRO 0: the gradients all-reduced
    bucket by bucket. ZeRO 1 (Megatron's distributed optimizer, DeepSpeed stage 1): the gradients
    reduce-scattered in their reduce dtype, and after the sharded optimizer step the updated
    parameters all-gathered in theirs (16 bits under mixed precision), each half of an all-reduce
    of its own bytes, bucket by bucket (the same parameters per bucket). Sources: Megatron-LM
    docs/source/api-guide/distrib_optimizer.md (reduce-scatter of the fp32 main gradients, all-gather
    of the bf16 model parameters); Rajbhandari et al., SC'20, Section 5 (P_os: reduce-scatter +
    all-gather, the all-reduce's volume)."""
    sync, bucket = bucketed_allreduce_times(grad_size, dp, levels, bucket_bytes)
    if zero != 1:
        return sync, bucket
    params_sync, params_bucket = bucketed_allreduce_times(param_bytes, dp, levels,
                                                          bucket_bytes * param_bytes / grad_size)
    return (sync + params_sync) / 2, (bucket + params_bucket) / 2


def gradient_sync_times(c: Choices, levels: DpLevels, dp, m, grad_size, param_bytes, window, units=None,
                        param_gather_overlap=False, buckets: GradBuckets = GradBuckets()):
    """(whole sync, exposed part) of one step's data-parallel synchronisation over ``dp`` ranks.

    ZeRO 0/1 with all-reduce: the pipelined two-level all-reduce once per step (ZeRO 1, Megatron's
    distributed optimizer: a reduce-scatter of the gradients and an all-gather of the 16-bit
    parameters, :func:`zero01_sync_times`), of which a
    bucketed overlap hides what the backward ``window`` covers (all but the last bucket), where
    the plan asks for overlap and the stack does it (``buckets``: the stack's bucket size and
    overlap; each bucket pays the collective's latency).
    ZeRO-2/3 with all-reduce and ``units`` given: :func:`sharded_sync_times`. Parameter-server /
    broadcast: fully exposed; ZeRO-3 then adds :func:`zero3_gather_time`.
    """
    if c.grad_sync == "allreduce" and c.zero >= 2 and units is not None and c.shard_group is not None:
        return hybrid_sync_times(c, levels, dp, m, units, param_gather_overlap)
    if c.grad_sync == "allreduce" and c.zero >= 2 and units is not None:
        return sharded_sync_times(c, ring_level(levels, dp), dp, m, units, param_gather_overlap)
    if c.grad_sync == "allreduce":
        # without overlap the buffer goes in one call (Megatron-Core sets bucket_size None then;
        # Megatron-LM's local DDP all-reduces each contiguous buffer once)
        overlap = c.overlap and buckets.overlap
        sync, bucket = zero01_sync_times(c.zero, grad_size, param_bytes, dp, levels,
                                         buckets.bytes if overlap else float("inf"))
        exposed = dpf.overlapped_sync_exposed_time(sync, window, bucket) if overlap else sync
    else:
        alpha, beta = flat_level(levels, dp)
        scheme = dpf.parameter_server_time if c.grad_sync == "parameter-server" else dpf.delta_w_broadcast_time
        sync = where(dp > 1, scheme(dp, grad_size, alpha, beta), 0.0)
        exposed = sync
    if c.zero >= 3:
        alpha, beta = flat_level(levels, dp)
        gather = zero3_gather_time(m, dp, param_bytes, alpha, beta)
        sync, exposed = sync + gather, exposed + gather
    return sync, exposed


def waited_sync_time(sync, exposed, hw):
    """What a step pays for its data-parallel synchronisation (``sync`` in all, ``exposed`` of it
    waited for): the exposed part, plus what the hidden part takes from the compute it runs under,
    the SMs its collective's kernel holds (:func:`perfmodel.formulas.gemm_overlap.
    hidden_collective_slowdown_time`; ``hw.collective_units`` of ``hw.compute_units``, none where
    the system states none or the device is not a GPU)."""
    return exposed + gov.hidden_collective_slowdown_time(sync - exposed, hw.collective_units,
                                                         maximum(hw.compute_units, 1))


def sharded_sync_times(c: Choices, level: Level, dp, m, u: ShardUnits, param_gather_overlap=False, across=None):
    """(whole sync, exposed part) of ZeRO-2 / ZeRO-3 (FSDP) over ``dp`` ranks, as the frameworks
    run them with gradient accumulation over ``m`` micro-batches.

    ZeRO-3 / FSDP FULL_SHARD, every micro-batch: each layer's parameters all-gathered before its
    forward and again before its backward, its gradients reduce-scattered after its backward; the
    next layer's gather prefetched under the current layer's compute (:func:`perfmodel.formulas.
    dataparallel.prefetched_exposed_time`); the parameters outside the layers gathered and reduced
    exposed (FSDP, ``u.per_unit``, keeps its root unit gathered from forward to backward:
    ``_post_forward_reshard``). The reduce-scatter runs every micro-batch (Zhao et al., VLDB 2023,
    Sections 3.2-3.3; Rajbhandari et al., SC'20, Section 5.3). Tensor by tensor (``u.tensorwise``):
    :func:`perfmodel.prediction.zero3_tensorwise.tensorwise_sync_times`.

    ZeRO-2 (DeepSpeed): the gradients reduce-scattered every micro-batch, bucketed under its
    backward (the last bucket exposed); the updated parameters all-gathered once per step, exposed
    unless the stack overlaps it with the next forward (Section 5.2). FSDP SHARD_GRAD_OP
    (``u.per_unit``) per wrapped unit, every micro-batch: its gather before its forward (prefetched
    where the stack overlaps gathers; no reshard after forward), its reduce-scatter after its
    backward; the root unit's (embedding, norm, head), gathered first and reduced last, wait.

    The collectives run on ``level`` (:func:`~perfmodel.prediction.placement.ring_level`).
    ``across(size)``, when given, is the time of the all-reduce of a reduce-scattered gradient
    shard of ``size`` bytes across the replicas of a hybrid plan (:func:`hybrid_sync_times`); it
    follows every reduce-scatter on the same stream.
    """
    alpha, beta = level
    several = dp > 1

    def gather(size):
        return where(several, coll.ring_allgather_time(dp, size, alpha, beta), 0.0)

    def scatter(size):
        rs = where(several, coll.ring_reduce_scatter_time(dp, size, alpha, beta), 0.0)
        return rs if across is None else rs + across(size / dp)

    layers_params, layers_grads = u.n_units * u.unit_param_bytes, u.n_units * u.unit_grad_bytes
    if c.zero >= 3 and u.tensorwise is not None:
        return tensorwise_sync_times(level, dp, m, u, u.tensorwise)
    if c.zero >= 3 or u.per_unit:  # unit by unit: ZeRO-3, FSDP's SHARD_GRAD_OP (no gather before the backward)
        zero3 = c.zero >= 3
        ag, rs = gather(u.unit_param_bytes), scatter(u.unit_grad_bytes)
        rest = (1 if u.per_unit else 2) * gather(u.rest_param_bytes) + scatter(u.rest_grad_bytes)  # FSDP: root kept
        back = (ag if zero3 else 0.0) + rs
        forward = (dpf.prefetched_exposed_time(ag, u.unit_forward_s, u.n_units) if zero3 or param_gather_overlap
                   else u.n_units * ag)
        backward = dpf.prefetched_exposed_time(back, u.unit_backward_s, u.n_units) if zero3 or c.overlap else u.n_units * back
        return m * (u.n_units * (ag + back) + rest), m * (forward + backward + rest)
    rs_all = scatter(layers_grads + u.rest_grad_bytes)
    bucket = scatter(minimum(layers_grads + u.rest_grad_bytes, DDP_BUCKET_BYTES))
    window = u.n_units * u.unit_backward_s
    rs_exposed = dpf.overlapped_sync_exposed_time(rs_all, window, bucket) if c.overlap else rs_all
    ag = gather(layers_params + u.rest_param_bytes)
    ag_exposed = (dpf.overlapped_sync_exposed_time(ag, u.n_units * u.unit_forward_s, gather(minimum(layers_params + u.rest_param_bytes, DDP_BUCKET_BYTES)))
                  if param_gather_overlap else ag)
    return m * rs_all + ag, m * rs_exposed + ag_exposed


def hybrid_sync_times(c: Choices, levels: DpLevels, dp, m, u: ShardUnits, param_gather_overlap=False):
    """(whole sync, exposed part) of hybrid sharding: ZeRO-2/3 within groups of N = ``c.shard_group``
    consecutive data-parallel ranks (typically one node), replicated across dp / N groups.

    Within the group: :func:`sharded_sync_times` over N ranks on the level the group spans (the
    fabric when N ranks share a node), prefetch overlap unchanged. Across groups: each rank
    all-reduces its reduce-scattered gradient shard (1/N of the gradient bytes) with the dp / N
    ranks holding the same shard (ranks N apart: over the network once a group fills a node;
    two-level when a node holds several groups), after every reduce-scatter. Parameters are
    gathered within the group only. Source: PyTorch torch/distributed/fsdp ShardingStrategy
    HYBRID_SHARD and _HYBRID_SHARD_ZERO2 ("shard within a node, replicate across nodes";
    _runtime_utils._post_backward_hook: reduce-scatter in the shard process group, then all-reduce
    in the inter-node replicate group); Zhang et al., "MiCS: Near-linear Scaling for Training
    Gigantic Model on Public Cloud", VLDB 2023, Section 3 (partition groups, hierarchical sync).
    """
    n = c.shard_group
    replicas = dp / n
    # replica peers sharing a node: a node of `local` data-parallel ranks holds local / N groups
    peers = DpLevels(minimum(maximum(levels.local / n, 1), replicas), levels.intra_alpha, levels.intra_beta,
                     levels.inter_alpha, levels.inter_beta)

    def across(size):
        return where(replicas > 1, two_level_allreduce_time(size, replicas, peers), 0.0)

    return sharded_sync_times(c, ring_level(levels, n), n, m, u, param_gather_overlap, across)


def tp_exposed_time(comm_forward, comm_backward, comm_recompute, recompute: str, overlapped=None):
    """Tensor-parallel communication left exposed in one layer for one micro-batch.

    Without overlap (``overlapped`` None) every collective waits. Under the stack's TP overlap,
    ``overlapped`` is the (forward, backward) exposed time of :func:`perfmodel.prediction.
    tp_overlap.exposed_times` (what the collectives add to the GEMMs they run under: the SMs they
    take, the last chunk of a pipelined one, any excess over its GEMM); a full recompute repeats
    the forward's.
    """
    if overlapped is None:
        return comm_forward + comm_backward + comm_recompute
    forward, backward = overlapped
    return forward + backward + (forward if recompute == "full" else 0.0)


def effective_virtual_stages(schedule: str, virtual_stages):
    """Model chunks per device that shrink the bubble: v for the interleaved schedule, else 1."""
    return virtual_stages if schedule == "interleaved" else 1


def pipeline_bubble_time(stage_time_per_microbatch, pp, schedule: str, virtual_stages, ends_high=0.0, ends_low=0.0):
    """Idle time of a stage per step: (p - 1)/v micro-batch slots
    (:func:`perfmodel.formulas.pipeline.pipeline_bubble_time`). Under 1F1B or GPipe, with the
    embedding on the first stage and the LM head on the last (``ends_high``: the slower end, part
    of the pacing stage's time; ``ends_low``: the other), the fill and drain pass through every
    stage once: p - 1 slots of a stage without its end, plus the faster end (the flow shop of
    :func:`perfmodel.prediction.stages.uneven_bubble` with equal layer counts)."""
    if schedule == "interleaved":
        return pipe.pipeline_bubble_time(stage_time_per_microbatch, pp, effective_virtual_stages(schedule, virtual_stages))
    return pipe.pipeline_bubble_time(stage_time_per_microbatch - ends_high, pp, 1) + where(pp > 1, ends_low, 0.0)


def inflight_microbatches(schedule: str, pp, m, virtual_stages):
    """Micro-batches whose activations the first stage holds at its peak: all m under GPipe, else
    the 1F1B / interleaved count (:func:`perfmodel.formulas.pipeline.pipeline_inflight_microbatches`)."""
    return m if schedule == "gpipe" else pipe.pipeline_inflight_microbatches(pp, m, virtual_stages)


def bound_index(exposed_comm, busy, memory_bound):
    """What limits the step, as an index into :data:`BOUNDS`: communication when the exposed
    communication exceeds the busy time (compute + recompute + optimizer), memory when
    memory-bound kernels take more than half of the busy time, else compute."""
    return where(exposed_comm > busy, 1, where(memory_bound > busy / 2, 2, 0))
