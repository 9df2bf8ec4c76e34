"""The rules between a plan's fields (:data:`RULES`): each checks one constraint among tp, cp, pp,
dp, ep, devices, batches, sequence and the categorical choices against a model and a system, on
ints and on numpy arrays alike (a sweep evaluates them on whole grids, :mod:`perfmodel.sweeps.validity`);
:func:`perfmodel.plan.resolve` raises the first that fails as a one-line PlanError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RULES", "Rule", "RuleContext"]


@dataclass(frozen=True)
class RuleContext:
    """What a rule reads besides the numbers: the model, the system, the categorical fields and which
    of devices, dp and global_batch the user gave (the others are derived)."""

    model: object
    system: object
    schedule: str
    sequence_parallel: bool
    zero: int
    grad_sync: str
    given: frozenset
    shard_group: int | None = None
    stage_layers: tuple = (None, None)  # the first / last stage's layers when given (uneven stages)


@dataclass(frozen=True)
class Rule:
    """One consistency rule between a plan's fields, on ints and on numpy arrays alike.

    ``applies(ctx)`` says whether the rule concerns this model, system and choices; ``fails(ctx, n)``
    (``n``: tp, cp, pp, dp, ep, devices, micro_batch, global_batch, n_microbatches, virtual_stages, seq) is a
    bool or a bool array, written with ``%``, comparisons, ``&`` and ``|`` only; ``message(ctx, *ints)``
    is the error for the values of ``args``. ``stage`` tells a sweep when it can evaluate the rule:
    ``numbers`` and ``model`` once per block, ``choice`` per schedule and sequence-parallel choice,
    ``zero`` per ZeRO and gradient-sync choice (perfmodel.sweeps.validity)."""

    stage: str
    applies: Callable
    fails: Callable
    args: tuple[str, ...]
    message: Callable


def _uneven(c) -> int:
    """How many of the first / last stage's layer counts the plan gives (0: even stages)."""
    return sum(x is not None for x in c.stage_layers)


def _given(layers) -> str:
    return "(not given)" if layers is None else str(layers)


def _rest(c) -> int:
    """The layers left for the stages between a given first / last stage."""
    return c.model.n_layers - sum(x or 0 for x in c.stage_layers)


def _uneven_split_message(c, pp) -> str:
    given = f"{_given(c.stage_layers[0])} / {_given(c.stage_layers[1])}"
    if pp - _uneven(c) <= 0:  # no stage between them: the two given ends hold every layer
        return (f"with pp = {pp} the first / last stage's {given} layers are all the stages: together they must hold "
                f"{c.model.name}'s {c.model.n_layers} layers, not {c.model.n_layers - _rest(c)}")
    return (f"{c.model.n_layers} layers of {c.model.name} minus the first / last stage's {given} leave {_rest(c)}, "
            f"which the other {pp - _uneven(c)} stages cannot split evenly (Megatron-Core asserts it)")


def _uneven_split_fails(rest, middle_stages) -> bool:
    """The layers between a given first / last stage do not split evenly over the stages between
    (a plan gives these in predict only, so plain ints)."""
    if rest < 0:
        return True
    return rest % middle_stages != 0 if middle_stages > 0 else rest != 0


def _heads(ctx) -> int | None:
    return getattr(ctx.model, "n_heads", None)


def _per_node(ctx) -> int:
    return ctx.system.devices_per_node


def _cap(ctx) -> int | None:
    max_nodes = ctx.system.network.max_nodes if ctx.system.network is not None else 1
    return None if max_nodes is None else _per_node(ctx) * max_nodes


def _layers_message(ctx, p, v) -> str:
    what = f"pp x virtual stages = {p} x {v} = {p * v}" if v > 1 else f"pp = {p}"
    return f"{ctx.model.name} has {ctx.model.n_layers} layers, not divisible by {what}"


def _max_positions(ctx):
    return getattr(ctx.model, "max_positions", None)


def _degrees(t, x, p, d=None) -> str:
    """``tp x cp x pp [x dp] = 8 x 2 x 4 [x 2]``; without context parallelism (cp = 1) ``tp x pp ...``."""
    names, values = ("tp", "cp", "pp", "dp"), (t, x, p, d)
    keep = [i for i in range(4) if values[i] is not None and (i != 1 or x != 1)]
    return f"{' x '.join(names[i] for i in keep)} = {' x '.join(str(values[i]) for i in keep)}"


def _experts(ctx) -> int:
    return getattr(ctx.model, "n_experts", 1)


def _always(ctx) -> bool:
    return True


# plan.resolve checks these in this order; a sweep keeps, per row, the first that fails
RULES = (
    Rule("numbers", lambda c: "dp" not in c.given and "devices" in c.given,
         lambda c, n: n["devices"] % (n["tp"] * n["cp"] * n["pp"]) != 0, ("devices", "tp", "cp", "pp"),
         lambda c, d, t, x, p: f"devices {d} is not divisible by {_degrees(t, x, p)} = {t * x * p}"),
    Rule("numbers", lambda c: "dp" in c.given and "devices" in c.given,
         lambda c, n: n["tp"] * n["cp"] * n["pp"] * n["dp"] != n["devices"], ("tp", "cp", "pp", "dp", "devices"),
         lambda c, t, x, p, d, m: f"{_degrees(t, x, p, d)} = {t * x * p * d}, but devices is {m}"),
    Rule("numbers", lambda c: c.system.network is None, lambda c, n: n["devices"] > _per_node(c), ("devices",),
         lambda c, d: f"{c.system.name} has {_per_node(c)} device{'s' if _per_node(c) > 1 else ''} and no "
                      f"network; the plan needs {d}"),
    Rule("numbers", lambda c: _cap(c) is not None, lambda c, n: n["devices"] > _cap(c), ("devices",),
         lambda c, d: f"{c.system.name} has at most {_cap(c)} devices; the plan needs {d}"),
    Rule("numbers", _always,
         lambda c, n: (n["devices"] > _per_node(c)) & (n["devices"] % _per_node(c) != 0) & (n["tp"] > 1),
         ("devices",), lambda c, d: f"devices {d} is not a whole number of {_per_node(c)}-device nodes of "
                                    f"{c.system.name}"),
    Rule("numbers", lambda c: "global_batch" in c.given,
         lambda c, n: n["global_batch"] % (n["micro_batch"] * n["dp"]) != 0, ("global_batch", "micro_batch", "dp"),
         lambda c, g, b, d: f"global batch {g} is not divisible by micro-batch x dp = {b} x {d} = {b * d}"),
    Rule("choice", lambda c: c.schedule != "interleaved", lambda c, n: n["virtual_stages"] > 1, ("virtual_stages",),
         lambda c, v: f"virtual stages {v} need --schedule interleaved (got {c.schedule})"),
    Rule("choice", lambda c: c.schedule == "interleaved", lambda c, n: n["pp"] < 2, (),
         lambda c: "the interleaved schedule needs pp >= 2"),
    Rule("choice", lambda c: c.schedule == "interleaved", lambda c, n: n["n_microbatches"] % n["pp"] != 0,
         ("n_microbatches", "pp"), lambda c, m, p: f"the interleaved schedule needs the number of micro-batches "
                                                   f"({m}) to be a multiple of pp ({p}) (Megatron-LM's constraint)"),
    Rule("choice", lambda c: c.sequence_parallel, lambda c, n: n["tp"] < 2, (),
         lambda c: "sequence parallelism needs tp > 1"),
    Rule("choice", lambda c: c.shard_group is not None, lambda c, n: n["dp"] % c.shard_group != 0, ("dp",),
         lambda c, d: f"--shard-group {c.shard_group} does not divide dp = {d} (hybrid sharding replicates "
                      f"shard groups of {c.shard_group} ranks across dp / {c.shard_group})"),
    Rule("model", lambda c: _heads(c) is not None, lambda c, n: _heads(c) % n["tp"] != 0, ("tp",),
         lambda c, t: f"tensor parallelism {t} does not divide the {_heads(c)} attention heads of {c.model.name}"),
    # Megatron-Core: num_query_groups a multiple or a divisor of tp (transformer_config.py @d98e8a64;
    # with more TP ranks than key/value heads each rank attends with one, prediction/shapes.py)
    Rule("model", lambda c: _heads(c) is not None,
         lambda c, n: ((c.model.n_kv_heads or _heads(c)) % n["tp"] != 0) & (n["tp"] % (c.model.n_kv_heads or _heads(c))
                                                                           != 0), ("tp",),
         lambda c, t: f"tensor parallelism {t} is neither a divisor nor a multiple of the "
                      f"{c.model.n_kv_heads or _heads(c)} key/value heads of {c.model.name}"),
    # pipeline stages: uneven ones are fine (the stage with ceil(L / pp) layers sets the pace;
    # DeepSpeed's pipeline engine and Megatron-LM's --decoder-first/last-pipeline-num-layers run
    # them), more stages than layers are not; the interleaved schedule splits every stage into v
    # equal chunks (Megatron-LM: num_layers divisible by pp x v; v > 1 only with that schedule)
    Rule("model", lambda c: _heads(c) is not None and _uneven(c) == 0, lambda c, n: n["pp"] > c.model.n_layers,
         ("pp",), lambda c, p: f"pp = {p} exceeds the {c.model.n_layers} layers of {c.model.name} (a stage holds at "
                               f"least one layer)"),
    Rule("model", lambda c: _uneven(c) > 0, lambda c, n: n["pp"] < 2, (),
         lambda c: "--first-stage-layers / --last-stage-layers need pp >= 2"),
    Rule("model", lambda c: _uneven(c) > 0 and c.schedule == "interleaved", lambda c, n: True, (),
         lambda c: "--first-stage-layers / --last-stage-layers run with the 1f1b or gpipe schedule (the "
                   "interleaved one splits every stage into v equal chunks)"),
    Rule("model", lambda c: _uneven(c) > 0 and _heads(c) is not None,
         lambda c, n: _uneven_split_fails(_rest(c), n["pp"] - _uneven(c)),
         ("pp",), lambda c, p: _uneven_split_message(c, p)),
    Rule("model", lambda c: _heads(c) is not None,
         lambda c, n: (n["virtual_stages"] > 1) & (c.model.n_layers % (n["pp"] * n["virtual_stages"]) != 0),
         ("pp", "virtual_stages"), _layers_message),
    Rule("model", lambda c: _heads(c) is not None and c.model.positions == "learned" and bool(_max_positions(c)),
         lambda c, n: n["seq"] > _max_positions(c), ("seq",),
         lambda c, q: f"seq {q} exceeds {c.model.name}'s {_max_positions(c)} learned positions"),
    Rule("model", lambda c: _heads(c) is None, lambda c, n: (n["tp"] > 1) | (n["pp"] > 1) | (n["cp"] > 1), (),
         lambda c: f"{c.model.name} is not a transformer: only data parallelism is modelled for it (tp = pp = 1, cp = 1)"),
    # context parallelism splits every sequence into 2 x cp chunks, rank i holding chunks i and
    # 2cp-1-i (Megatron-Core get_batch_on_this_cp_rank: load-balanced causal attention)
    Rule("model", lambda c: _heads(c) is not None, lambda c, n: (n["cp"] > 1) & (n["seq"] % (2 * n["cp"]) != 0),
         ("seq", "cp"), lambda c, q, x: f"seq {q} is not divisible by 2 x cp = {2 * x} (context parallelism splits "
                                        f"each sequence into 2 x cp chunks)"),
    # expert parallelism (Megatron-Core r0.8 megatron/core/parallel_state.py initialize_model_parallel,
    # rank order tp-cp-ep-dp-pp): the expert-parallel group is carved out of the data-parallel ranks,
    # so ep divides dp ("data_parallel_size is not divisible by expert_model_parallel_size"), and
    # each rank holds n_experts / ep whole experts
    Rule("numbers", _always, lambda c, n: n["dp"] % n["ep"] != 0, ("ep", "dp"),
         lambda c, e, d: f"expert parallelism ep = {e} does not divide dp = {d} (the expert-parallel group is "
                         f"carved out of the data-parallel ranks)"),
    Rule("model", lambda c: _heads(c) is not None and _experts(c) <= 1, lambda c, n: n["ep"] > 1, ("ep",),
         lambda c, e: f"ep = {e} needs a mixture-of-experts model; {c.model.name} is dense"),
    Rule("model", lambda c: _experts(c) > 1, lambda c, n: _experts(c) % n["ep"] != 0, ("ep",),
         lambda c, e: f"ep = {e} does not divide the {_experts(c)} experts of {c.model.name}"),
    Rule("model", lambda c: _heads(c) is None, lambda c, n: n["ep"] > 1, ("ep",),
         lambda c, e: f"{c.model.name} is not a transformer: expert parallelism (ep = {e}) needs a mixture of experts"),
    # Megatron-Core r0.8 MoELayer refuses to train a mixture of experts with tensor parallelism and no
    # sequence parallelism (megatron/core/transformer/moe/moe_layer.py; model_parallel_config.py
    # refuses ep > 1 with tp > 1 without it too): its token dispatcher takes each tp rank's
    # sequence-parallel shard
    Rule("choice", lambda c: _experts(c) > 1 and not c.sequence_parallel, lambda c, n: n["tp"] > 1, ("tp",),
         lambda c, t: f"a mixture of experts ({c.model.name}) with tensor parallelism (tp = {t}) needs "
                      f"--sequence-parallel (Megatron-Core's MoE layer requires it)"),
    Rule("zero", lambda c: bool(c.zero) and c.grad_sync != "allreduce", lambda c, n: True, (),
         lambda c: f"ZeRO stage {c.zero} shards over data-parallel ranks and needs --grad-sync allreduce"),
    # hybrid sharding (FSDP HYBRID_SHARD / _HYBRID_SHARD_ZERO2, DeepSpeed MiCS): ZeRO-2/3 states
    # sharded within groups of shard_group data-parallel ranks, replicated across dp / shard_group
    Rule("zero", lambda c: c.shard_group is not None and c.zero < 2, lambda c, n: True, (),
         lambda c: f"--shard-group {c.shard_group} (hybrid sharding) shards ZeRO-2/3 states and needs --zero 2 "
                   f"or 3, got ZeRO {c.zero}"),
)
