"""What a software stack can run: ZeRO stages (with and without pipeline parallelism), dtypes,
context and expert parallelism, offload, hybrid sharding (a stack file's ``[capabilities]`` table),
and the one-line refusals of a plan that asks for more (:func:`refusals`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from perfmodel.errors import PlanError
from perfmodel.specs.reader import Table

if TYPE_CHECKING:
    from perfmodel.specs.stack import Stack

__all__ = ["Capabilities", "refusals", "check_capabilities", "read_capabilities", "with_default_advice", "ALL_ZERO", "ALL_DTYPES",
           "ALL_OFFLOAD"]

ALL_ZERO = (0, 1, 2, 3)
ALL_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
ALL_OFFLOAD = ("optimizer", "activations")


@dataclass(frozen=True)
class Capabilities:
    """What a stack can run (a stack file's optional ``[capabilities]`` table; a file without one
    runs everything). ``zero_with_pp``: the ZeRO stages it runs together with pipeline parallelism;
    ``cp``: whether it runs context parallelism (a table that does not say: no)."""

    zero: tuple[int, ...] = ALL_ZERO
    zero_with_pp: tuple[int, ...] = ALL_ZERO
    dtypes: tuple[str, ...] = ALL_DTYPES
    source: str = ""
    cp: bool = True
    # what it keeps in host memory (plan.OFFLOAD without "none"; "both" needs both) and whether it
    # shards ZeRO-2/3 states within groups smaller than the data-parallel group (hybrid sharding)
    offload: tuple[str, ...] = ALL_OFFLOAD
    hybrid_shard: bool = True
    ep: bool = True  # expert parallelism (ep > 1); a MoE model with ep = 1 runs on every stack
    # first / last pipeline stages with their own layer counts (--first-stage-layers,
    # --last-stage-layers; a table that does not say: no)
    uneven_stages: bool = True


def refusals(stack: Stack, zero: int, dtype: str, pp, cp=1, offload: str = "none", hybrid: bool = False, ep=1,
             uneven: bool = False):
    """What ``stack`` cannot run of a plan, as (mask, one-line reason) pairs: ``mask`` is True, or
    where ``pp``, ``cp`` or ``ep`` (numbers or numpy arrays) make the plan unsupported; ``offload`` the
    plan's offload choice, ``hybrid`` whether it names a shard group."""
    caps, name = stack.capabilities, stack.name
    why = f" (`perfmodel stacks show {name}` says why)"
    out = []
    if zero not in caps.zero:
        out.append((True, f"stack '{name}' does not run ZeRO stage {zero}: it runs ZeRO "
                          f"{', '.join(map(str, caps.zero))}{why}"))
    elif zero not in caps.zero_with_pp:
        out.append((pp > 1, f"stack '{name}' does not run ZeRO stage {zero} with pipeline parallelism "
                            f"(pp > 1){why}"))
    if dtype not in caps.dtypes:
        out.append((True, f"stack '{name}' does not train in {dtype}: it runs {', '.join(caps.dtypes)}{why}"))
    if not caps.cp:
        out.append((cp > 1, f"stack '{name}' does not run context parallelism (cp > 1){why}"))
    needed = {"none": (), "both": ALL_OFFLOAD}.get(offload, (offload,))
    missing = [part for part in needed if part not in caps.offload]
    if missing:
        runs = ", ".join(caps.offload) or "nothing"
        out.append((True, f"stack '{name}' does not offload {' and '.join(missing)} to host memory (--offload "
                          f"{offload}): it offloads {runs}{why}"))
    if offload in ("optimizer", "both") and zero == 0:  # Ren et al. ATC'21 Sec. 4; DeepSpeed: ZeRO stages 1-3 only
        out.append((True, f"--offload {offload} offloads the ZeRO-partitioned optimizer state: it needs --zero 1, "
                          f"2 or 3 (DeepSpeed offload_optimizer, ZeRO-Offload)"))
    if hybrid and not caps.hybrid_shard:
        out.append((True, f"stack '{name}' does not run hybrid sharding (--shard-group){why}"))
    elif hybrid and zero >= 3 and stack.zero3.gather == "tensor":
        out.append((True, f"stack '{name}' sends ZeRO-3 tensor by tensor ([zero3] gather = \"tensor\"), which "
                          f"perfmodel models without hybrid sharding (--shard-group)"))
    if not caps.ep:
        out.append((ep > 1, f"stack '{name}' does not run expert parallelism (ep > 1){why}"))
    if uneven and not caps.uneven_stages:
        out.append((True, f"stack '{name}' does not run uneven pipeline stages (--first-stage-layers / "
                          f"--last-stage-layers: Megatron-Core's --decoder-first/last-pipeline-num-layers){why}"))
    return out


def with_default_advice(reason: str, name: str) -> str:
    """``reason``, and when it is a refusal by stack ``name`` that the caller did not choose (the
    default), the advice to choose one that runs the plan."""
    if f"stack '{name}' " not in reason:
        return reason
    return f"{reason}; '{name}' is the default stack here: choose one that runs it with --stack (`perfmodel stacks list`)"


def check_capabilities(stack: Stack, plan) -> None:
    """Raise a one-line :class:`PlanError` when ``stack`` cannot run ``plan`` (resolved)."""
    uneven = getattr(plan, "first_stage_layers", None) is not None or getattr(plan, "last_stage_layers", None) is not None
    for mask, reason in refusals(stack, plan.zero, plan.dtype, plan.pp, plan.cp, getattr(plan, "offload", "none"),
                                 getattr(plan, "shard_group", None) is not None, getattr(plan, "ep", 1), uneven):
        if mask:
            raise PlanError(reason)


def read_capabilities(top: Table) -> Capabilities:
    table = top.table("capabilities", required=False)
    if table is None:
        return Capabilities()
    zero = table.int_list("zero", minimum=0)
    dtypes = table.raw("dtypes", list(ALL_DTYPES))
    if not isinstance(dtypes, list) or not dtypes or not all(isinstance(d, str) for d in dtypes):
        raise table.fail("dtypes", f"expected a non-empty list of dtype names, got {dtypes!r}")
    offload = table.raw("offload", list(ALL_OFFLOAD))
    if not isinstance(offload, list) or not all(isinstance(o, str) and o in ALL_OFFLOAD for o in offload):
        raise table.fail("offload", f"expected a list of {', '.join(ALL_OFFLOAD)} (or []), got {offload!r}")
    caps = Capabilities(zero=zero, zero_with_pp=table.int_list("zero_with_pp", default=zero, minimum=0),
                        dtypes=tuple(dtypes), source=table.string("source"), cp=table.boolean("cp", False),
                        offload=tuple(offload), hybrid_shard=table.boolean("hybrid_shard", True), ep=table.boolean("ep", False),
                        uneven_stages=table.boolean("uneven_stages", False))
    bad = [d for d in caps.dtypes if d not in ALL_DTYPES] + [str(z) for z in caps.zero + caps.zero_with_pp
                                                              if z not in ALL_ZERO]
    if bad:
        raise table.fail("zero" if bad[0].isdigit() else "dtypes", f"unknown value {bad[0]!r}")
    table.finish()
    return caps
