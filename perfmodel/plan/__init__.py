"""A parallel training plan and its consistency checks.

``Plan`` holds what the user chose (any field may be left ``None`` to be derived); ``resolve``
checks it against a model and a system and returns a plan with every field set, or raises a
one-line :class:`~perfmodel.errors.PlanError` naming the constraint that failed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import NamedTuple

from perfmodel.errors import PlanError, did_you_mean
from perfmodel.frozen import replaced
from perfmodel.plan.rules import RULES, Rule, RuleContext

__all__ = ["Plan", "DTYPES", "RECOMPUTE", "SCHEDULES", "GRAD_SYNC", "OPTIMIZERS", "OFFLOAD", "MAX_DEVICES", "MAX_SIZE", "COUNT_BOUNDS", "resolve",
           "RULES", "Rule", "RuleContext", "Precision", "precision_of", "FP8_WEIGHT_CAST_BYTES"]

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
RECOMPUTE = ("none", "selective", "full")
SCHEDULES = ("gpipe", "1f1b", "interleaved")
GRAD_SYNC = ("allreduce", "parameter-server", "broadcast")
# adamw-bf16: AdamW whose moments are bf16 and whose bf16 weights are their own master (NeMo's
# distributed_fused_adam with optim.dtype bf16: Apex keeps no fp32 copy of bf16 parameters)
OPTIMIZERS = ("adamw", "sgd", "adamw-bf16")
# what lives in host memory (perfmodel.prediction.offload): the optimizer step (ZeRO-Offload),
# the saved activations, or both
OFFLOAD = ("none", "optimizer", "activations", "both")

# bytes per element of activations and weights for each compute dtype (mixed precision keeps
# fp32 master weights in the optimizer; tf32 is an fp32 storage format; fp8 training keeps
# bf16 activations and weights, as Transformer Engine does)
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 2}


class Precision(NamedTuple):
    """The precision of each operation class for a plan's ``--dtype`` (mixed precision as it is
    run): the linear layers' GEMM inputs, everything else that computes (attention, norms,
    elementwise, the LM head and loss inputs, collectives), and the bytes per parameter of the
    weights a device holds (the fp32 master copy belongs to the optimizer state)."""

    linear: str
    compute: str
    weight_bytes: int


# bytes moved per parameter when TE re-casts a BF16 weight to its cached FP8 copy and transpose
FP8_WEIGHT_CAST_BYTES = 4


def precision_of(dtype: str) -> Precision:
    """``fp8`` is Transformer Engine's recipe: FP8 GEMM inputs of the transformer layers' linear
    layers only; attention, norms, softmax, the LM head and the loss in BF16; BF16 weights plus
    the FP8 copy of each weight and of its transpose that TE caches across micro-batches
    (2 + 1 + 1 B/param). Source: NVIDIA Transformer Engine docs, "Using FP8 with Transformer
    Engine" (which layers run in FP8; first/last layers kept in higher precision) and
    transformer_engine/pytorch/module/linear.py (fp8 weight and transpose cache, is_first_microbatch).
    Every other dtype runs everything in itself."""
    if dtype == "fp8":
        return Precision("fp8", "bf16", 4)
    return Precision(dtype, dtype, DTYPE_BYTES[dtype])


# Bounds of the plan's counts (the CLI flags take the same): devices and the parallel degrees tp, cp,
# pp, dp at most MAX_DEVICES; micro-batch, global batch, sequence length and virtual stages at most
# MAX_SIZE (the bound of every model size, perfmodel.workloads._fields.MAX_SIZE).
MAX_DEVICES = 10**7
MAX_SIZE = 10**9
_COUNTS = {"devices": MAX_DEVICES, "tp": MAX_DEVICES, "cp": MAX_DEVICES, "pp": MAX_DEVICES, "dp": MAX_DEVICES, "ep": MAX_DEVICES,
           "micro_batch": MAX_SIZE, "global_batch": MAX_SIZE, "seq": MAX_SIZE, "virtual_stages": MAX_SIZE}
COUNT_BOUNDS = _COUNTS  # the largest value of each count field (sweep grids take the same)
_FLAGS = ("sequence_parallel", "overlap")


@dataclass(frozen=True)
class Plan:
    """How one training step is parallelised. ``None`` fields are derived by :func:`resolve`.

    ``micro_batch`` left ``None`` is 1 here; :func:`perfmodel.predict` instead picks the fastest
    power-of-two micro-batch that fits (see ``perfmodel.prediction.choose``). ``stack`` left ``None``
    is the system's default stack for its device generation (``perfmodel.specs.default_stack.default_stack``).

    ``cp`` is Megatron-Core's context parallelism: each sequence split over cp ranks (ring
    attention, :mod:`perfmodel.prediction.context`); devices = tp x cp x pp x dp.

    >>> Plan(tp=8, pp=8, dp=16, micro_batch=1, global_batch=1536).devices is None
    True
    """

    devices: int | None = None
    tp: int = 1
    pp: int = 1
    dp: int | None = None
    micro_batch: int | None = None
    global_batch: int | None = None
    seq: int | None = None
    dtype: str = "bf16"
    recompute: str = "none"
    sequence_parallel: bool = False
    schedule: str = "1f1b"
    virtual_stages: int = 1
    zero: int = 0
    grad_sync: str = "allreduce"
    overlap: bool = True
    stack: str | None = None
    optimizer: str = "adamw"
    cp: int = 1
    offload: str = "none"
    shard_group: int | None = None  # ZeRO-2/3 shard over this many ranks (hybrid); None: all of dp
    ep: int = 1  # expert parallelism: carved out of the dp ranks (Megatron-Core r0.8), adds no devices
    # uneven pipeline stages (Megatron-Core --decoder-first/last-pipeline-num-layers): the first / last
    # stage's layers, the other stages splitting the rest evenly; None: every stage ceil(L / pp)
    first_stage_layers: int | None = None
    last_stage_layers: int | None = None

    @property
    def n_microbatches(self) -> int:
        """Micro-batches per pipeline per step (global batch / (micro-batch x dp))."""
        return self.global_batch // (self.micro_batch * self.dp)

    def replace(self, **changes) -> Plan:
        return replaced(self, **changes)


def _choice(name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise PlanError(f"{name}: expected one of {', '.join(choices)}, got {value!r}{did_you_mean(str(value), choices)}")


def _count(name: str, value, minimum: int = 1, maximum: int = MAX_DEVICES) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(f"{name}: expected an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise PlanError(f"{name}: expected an integer in [{minimum}, {maximum}], got {value}")


def _flag(name: str, value) -> None:
    if not isinstance(value, bool):  # a truthy string such as "no" must not mean True
        raise PlanError(f"{name}: expected True or False, got {value!r}")


def _check_fields(plan: Plan) -> None:
    """Each field's kind and range (one value at a time)."""
    for name, maximum in _COUNTS.items():
        value = getattr(plan, name)
        if value is not None or name in ("tp", "cp", "pp", "virtual_stages", "ep"):
            _count(name, value, maximum=maximum)
    for name in _FLAGS:
        _flag(name, getattr(plan, name))
    _choice("dtype", plan.dtype, DTYPES)
    _choice("recompute", plan.recompute, RECOMPUTE)
    _choice("schedule", plan.schedule, SCHEDULES)
    _choice("grad_sync", plan.grad_sync, GRAD_SYNC)
    _choice("optimizer", plan.optimizer, OPTIMIZERS)
    _choice("offload", plan.offload, OFFLOAD)
    if plan.shard_group is not None:
        _count("shard_group", plan.shard_group, maximum=MAX_DEVICES)
    for name in ("first_stage_layers", "last_stage_layers"):
        if getattr(plan, name) is not None:
            _count(name, getattr(plan, name), minimum=0, maximum=MAX_DEVICES)
    if isinstance(plan.zero, bool) or not isinstance(plan.zero, int) or plan.zero not in (0, 1, 2, 3):
        raise PlanError(f"zero: expected 0, 1, 2 or 3, got {plan.zero!r}")


def resolve(plan: Plan, model, system) -> Plan:
    """Check ``plan`` against ``model`` and ``system``; derive devices, dp (devices / (tp x cp x pp)),
    global batch and seq.

    The fields are checked one by one, then the :data:`RULES` between them in order; the first
    rule that fails is the one-line :class:`PlanError`."""
    if not isinstance(plan, Plan):
        raise PlanError(f"plan: expected a perfmodel.Plan (e.g. Plan(tp=2, devices=8)), got {type(plan).__name__}")
    _check_fields(plan)
    # a system object names its device generation's default stack (perfmodel.specs.schema.System);
    # micro-batch left None is 1 here (perfmodel.predict chooses one that fits: prediction.choose)
    chooser = getattr(system, "default_stack_for", None)  # a System: its device generation's, per model kind
    stack = plan.stack if plan.stack is not None else chooser(model) if chooser is not None else "megatron"
    ctx = RuleContext(model, system, plan.schedule, plan.sequence_parallel, plan.zero, plan.grad_sync,
                      frozenset(k for k in ("devices", "dp", "global_batch") if getattr(plan, k) is not None),
                      plan.shard_group, (plan.first_stage_layers, plan.last_stage_layers))
    tp, cp, pp, mb = plan.tp, plan.cp, plan.pp, 1 if plan.micro_batch is None else plan.micro_batch
    dp = plan.dp if plan.dp is not None else (1 if plan.devices is None else plan.devices // (tp * cp * pp))
    devices = plan.devices if plan.devices is not None else tp * cp * pp * dp
    global_batch = plan.global_batch if plan.global_batch is not None else mb * dp
    seq = plan.seq if plan.seq is not None else getattr(model, "seq_len", 1)
    n = {"tp": tp, "cp": cp, "pp": pp, "dp": dp, "ep": plan.ep, "devices": devices, "micro_batch": mb, "global_batch": global_batch,
         "n_microbatches": global_batch // (mb * dp) if dp else 0, "virtual_stages": plan.virtual_stages, "seq": seq}
    for rule in RULES:
        if rule.applies(ctx) and rule.fails(ctx, n):
            raise PlanError(rule.message(ctx, *(n[a] for a in rule.args)))
    return replaced(plan, stack=stack, micro_batch=mb, devices=devices, dp=dp, global_batch=global_batch, seq=seq)


@functools.cache
def plan_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Plan))
