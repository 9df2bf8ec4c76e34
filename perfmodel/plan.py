"""A parallel training plan and its consistency checks.

``Plan`` holds what the user chose (any field may be left ``None`` to be derived); ``resolve``
checks it against a model and a system and returns a plan with every field set, or raises a
one-line :class:`~perfmodel.errors.PlanError` naming the constraint that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from perfmodel.errors import PlanError, did_you_mean

__all__ = ["Plan", "DTYPES", "RECOMPUTE", "SCHEDULES", "GRAD_SYNC", "OPTIMIZERS", "MAX_DEVICES", "MAX_SIZE", "resolve"]

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
RECOMPUTE = ("none", "selective", "full")
SCHEDULES = ("gpipe", "1f1b", "interleaved")
GRAD_SYNC = ("allreduce", "parameter-server", "broadcast")
OPTIMIZERS = ("adamw", "sgd")

# bytes per element of activations and weights for each compute dtype (mixed precision keeps
# fp32 master weights in the optimizer; tf32 is an fp32 storage format; fp8 training keeps
# bf16 activations and weights, as Transformer Engine does)
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 2}
# Bounds of the plan's counts (the CLI flags take the same): devices and the parallel degrees tp, pp,
# dp at most MAX_DEVICES; micro-batch, global batch, sequence length and virtual stages at most
# MAX_SIZE (the bound of every model size, perfmodel.workloads._fields.MAX_SIZE).
MAX_DEVICES = 10**7
MAX_SIZE = 10**9
_COUNTS = {"devices": MAX_DEVICES, "tp": MAX_DEVICES, "pp": MAX_DEVICES, "dp": MAX_DEVICES,
           "micro_batch": MAX_SIZE, "global_batch": MAX_SIZE, "seq": MAX_SIZE, "virtual_stages": MAX_SIZE}
_FLAGS = ("sequence_parallel", "overlap")


@dataclass(frozen=True)
class Plan:
    """How one training step is parallelised. ``None`` fields are derived by :func:`resolve`.

    ``micro_batch`` left ``None`` is 1 here; :func:`perfmodel.predict` instead picks the fastest
    power-of-two micro-batch that fits (see ``perfmodel.prediction.choose``). ``stack`` left ``None``
    is the system's default stack for its device generation (``perfmodel.specs.stack.default_stack``).

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

    @property
    def n_microbatches(self) -> int:
        """Micro-batches per pipeline per step (global batch / (micro-batch x dp))."""
        return self.global_batch // (self.micro_batch * self.dp)

    def replace(self, **changes) -> Plan:
        return replace(self, **changes)


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


def resolve(plan: Plan, model, system) -> Plan:
    """Check ``plan`` against ``model`` and ``system``; derive devices, dp, global batch and seq."""
    for name, maximum in _COUNTS.items():
        value = getattr(plan, name)
        if value is not None or name in ("tp", "pp", "virtual_stages"):
            _count(name, value, maximum=maximum)
    for name in _FLAGS:
        _flag(name, getattr(plan, name))
    _choice("dtype", plan.dtype, DTYPES)
    _choice("recompute", plan.recompute, RECOMPUTE)
    _choice("schedule", plan.schedule, SCHEDULES)
    _choice("grad_sync", plan.grad_sync, GRAD_SYNC)
    _choice("optimizer", plan.optimizer, OPTIMIZERS)
    if isinstance(plan.zero, bool) or not isinstance(plan.zero, int) or plan.zero not in (0, 1, 2, 3):
        raise PlanError(f"zero: expected 0, 1, 2 or 3, got {plan.zero!r}")
    # a system object names its device generation's default stack (perfmodel.specs.schema.System)
    stack = plan.stack if plan.stack is not None else getattr(system, "default_stack", "megatron")
    plan = replace(plan, stack=stack, micro_batch=1 if plan.micro_batch is None else plan.micro_batch)
    tp, pp = plan.tp, plan.pp
    devices, dp = plan.devices, plan.dp
    if dp is None:
        if devices is None:
            dp = 1
        elif devices % (tp * pp):
            raise PlanError(f"devices {devices} is not divisible by tp x pp = {tp} x {pp} = {tp * pp}")
        else:
            dp = devices // (tp * pp)
    if devices is None:
        devices = tp * pp * dp
    if tp * pp * dp != devices:
        raise PlanError(f"tp x pp x dp = {tp} x {pp} x {dp} = {tp * pp * dp}, but devices is {devices}")
    _check_system(devices, tp, system)
    seq = plan.seq if plan.seq is not None else _model_seq(model)
    global_batch = plan.global_batch if plan.global_batch is not None else plan.micro_batch * dp
    if global_batch % (plan.micro_batch * dp):
        raise PlanError(f"global batch {global_batch} is not divisible by micro-batch x dp = "
                        f"{plan.micro_batch} x {dp} = {plan.micro_batch * dp}")
    v = plan.virtual_stages
    if v > 1 and plan.schedule != "interleaved":
        raise PlanError(f"virtual stages {v} need --schedule interleaved (got {plan.schedule})")
    if plan.schedule == "interleaved":
        if pp < 2:
            raise PlanError("the interleaved schedule needs pp >= 2")
        m = global_batch // (plan.micro_batch * dp)
        if m % pp:
            raise PlanError(f"the interleaved schedule needs the number of micro-batches ({m}) to be a "
                            f"multiple of pp ({pp}) (Megatron-LM's constraint)")
    if plan.sequence_parallel and tp < 2:
        raise PlanError("sequence parallelism needs tp > 1")
    _check_model(model, tp, pp, v, seq)
    if plan.zero and plan.grad_sync != "allreduce":
        raise PlanError(f"ZeRO stage {plan.zero} shards over data-parallel ranks and needs --grad-sync allreduce")
    return replace(plan, devices=devices, dp=dp, global_batch=global_batch, seq=seq)


def _model_seq(model) -> int:
    return getattr(model, "seq_len", 1)


def _check_model(model, tp: int, pp: int, v: int, seq: int) -> None:
    heads = getattr(model, "n_heads", None)
    if heads is not None:
        if heads % tp:
            raise PlanError(f"tensor parallelism {tp} does not divide the {heads} attention heads of {model.name}")
        kv = model.n_kv_heads or heads
        if kv % tp:
            raise PlanError(f"tensor parallelism {tp} does not divide the {kv} key/value heads of {model.name}")
        layers = model.n_layers
        if layers % (pp * v):
            what = f"pp x virtual stages = {pp} x {v} = {pp * v}" if v > 1 else f"pp = {pp}"
            raise PlanError(f"{model.name} has {layers} layers, not divisible by {what}")
        max_pos = getattr(model, "max_positions", None) or seq
        if model.positions == "learned" and seq > max_pos:
            raise PlanError(f"seq {seq} exceeds {model.name}'s {max_pos} learned positions")
    elif tp > 1 or pp > 1:
        raise PlanError(f"{model.name} is not a transformer: only data parallelism is modelled for it (tp = pp = 1)")


def _check_system(devices: int, tp: int, system) -> None:
    per_node = system.devices_per_node
    if system.network is None and devices > per_node:
        raise PlanError(f"{system.name} has {per_node} device{'s' if per_node > 1 else ''} and no network; "
                        f"the plan needs {devices}")
    max_nodes = system.network.max_nodes if system.network is not None else 1
    if max_nodes is not None and devices > per_node * max_nodes:
        raise PlanError(f"{system.name} has at most {per_node * max_nodes} devices; the plan needs {devices}")
    if devices > per_node and devices % per_node and tp > 1:
        raise PlanError(f"devices {devices} is not a whole number of {per_node}-device nodes of {system.name}")


def plan_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Plan))
