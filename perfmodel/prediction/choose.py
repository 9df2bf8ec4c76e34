"""The defaults ``predict`` chooses for a plan, and the hint when a plan does not fit.

- **Stack**: a plan without ``stack`` runs the device generation's default
  (:func:`perfmodel.specs.default_stack.default_stack`); the note says which and why.
- **Micro-batch**: a plan with a global batch and no micro-batch runs the fastest power-of-two
  micro-batch that divides the per-replica batch (global batch / dp) and fits in memory; on a tie
  the larger. "Fastest" and not "largest": with pipeline stages a larger micro-batch means fewer
  micro-batches per step and a longer pipeline bubble, so the largest is not always best; without
  pipeline stages the two agree whenever a larger GEMM is not slower. When none fits, the smallest
  (1) is shown, with the memory hint. Without a global batch the micro-batch is 1 (the global batch
  is then micro-batch x dp, so there is nothing to choose).
- **Memory hint** (:func:`memory_hint`): which part of the per-device memory dominates, and the
  flags that shrink it.
"""

from __future__ import annotations

from dataclasses import replace

from perfmodel.errors import PlanError
from perfmodel.frozen import FrozenDict, replaced
from perfmodel.prediction.stages import layout
from perfmodel.specs.capabilities import with_default_advice
from perfmodel.units import format_quantity

__all__ = ["predict_with_defaults", "memory_hint", "micro_batch_candidates"]

# the per-replica batch may be large (10^9); powers of two up to it: at most 30 candidates
_MAX_CANDIDATES = 31


def micro_batch_candidates(per_replica: int) -> list[int]:
    """Powers of two dividing ``per_replica``, largest first."""
    out = [1]
    while len(out) < _MAX_CANDIDATES and per_replica % (out[-1] * 2) == 0:
        out.append(out[-1] * 2)
    return out[::-1]


def predict_with_defaults(model, system, plan, run, resolve):
    """``run(model, system, resolve(plan))`` with the stack and micro-batch defaults chosen and said."""
    chosen: dict[str, str] = {}
    if plan.stack is None:
        from perfmodel.specs.stack import default_stack

        name, why = default_stack(system.device, model)
        plan = replaced(plan, stack=name)
        chosen["stack"] = f"{name}: {why} (--stack to set it; `perfmodel stacks list`)"
    try:
        result, why = _run_with_micro_batch(model, system, plan, run, resolve)
    except PlanError as e:  # a refusal by a stack the user did not name says it was the default
        if "stack" not in chosen or with_default_advice(str(e), plan.stack) == str(e):
            raise
        raise PlanError(with_default_advice(str(e), plan.stack)) from None
    if why is not None:
        chosen["micro_batch"] = why
    return _annotate(result, chosen, model, getattr(getattr(system, "device", None), "kind", "") == "gpu")


def _run_with_micro_batch(model, system, plan, run, resolve):
    """The result and why its micro-batch (None: the one given)."""
    if plan.micro_batch is None and plan.global_batch is not None:
        return _fastest_fitting(model, system, plan, run, resolve)
    why = None
    if plan.micro_batch is None:
        why = "1: the default without --global-batch (give --global-batch to have the fastest that fits chosen)"
    return run(model, system, resolve(plan, model, system)), why


def _fastest_fitting(model, system, plan, run, resolve):
    probe = resolve(replace(plan, micro_batch=1), model, system)  # every other rule is checked here
    per_replica = probe.global_batch // probe.dp
    best, smallest = None, None
    for b in micro_batch_candidates(per_replica):
        try:
            r = run(model, system, resolve(replace(plan, micro_batch=b), model, system))
        except PlanError:  # e.g. the interleaved schedule's micro-batch count rule
            continue
        smallest = r
        if r.fits_in_memory and (best is None or r.step_time_s < best.step_time_s * (1 - 1e-9)):
            best = r
    if best is not None:
        b = best.plan.micro_batch
        return best, (f"{b}: chosen, the fastest power of two dividing the {per_replica} samples per "
                      f"data-parallel replica that fits in memory (--micro-batch to set it)")
    result = smallest if smallest is not None else run(model, system, probe)
    return result, (f"{result.plan.micro_batch}: no power-of-two micro-batch dividing the {per_replica} "
                    f"samples per replica fits in memory; showing the smallest")


def _annotate(result, chosen: dict, model=None, gpu=False):
    notes = list(getattr(model, "notes", ()))
    notes += [f"{k.replace('_', '-')} {v}" for k, v in chosen.items()]
    hint = memory_hint(result, runtime_note=gpu)
    if hint:
        notes.append(hint)
    notes += _empty_stage_notes(result.plan, getattr(model, "n_layers", None))
    return replaced(result, chosen=FrozenDict(chosen), notes=tuple(notes))


def _empty_stage_notes(plan, n_layers) -> list:
    """What an uneven layout with stages of no transformer layer means (Megatron-Core core_v0.9.0's
    first/last_pipeline_num_layers accept 0; from 0.11 TransformerConfig refuses a given 0)."""
    first, last = getattr(plan, "first_stage_layers", None), getattr(plan, "last_stage_layers", None)
    if n_layers is None or (first is None and last is None):
        return []
    out = []
    if 0 in (first, last):
        out.append("a first or last stage of 0 layers (the embedding, or the head and loss, alone) runs on "
                   "Megatron-Core 0.9-0.10; from 0.11 a given count must be at least 1")
    lay, middle = layout(n_layers, plan.pp, first, last), max(plan.pp - 2, 0)
    if middle and lay.middle == 0:
        out.append(f"the {middle} middle stage{'s hold' if middle > 1 else ' holds'} no transformer layer: "
                   f"{'they only pass' if middle > 1 else 'it only passes'} activations on")
    for end, given, held, alone in (("first", first, lay.first, "the embedding"),
                                    ("last", last, lay.last, "the LM head and loss")):
        if given is None and held == 0:  # the stages without a given count share what is left: none
            out.append(f"the {end} stage holds no transformer layer: {alone} alone")
    return out


_PART_WORDS = {"weights": "weights", "gradients": "gradients", "optimizer": "optimizer states",
               "activations": "activations"}


# what a GPU process's runtime holds beside the tensors the memory model counts, out of the
# capacity CUDA reports (the GPU files' capacities): the CUDA context, NCCL's channel buffers and
# library workspaces, about 1-2 GB
RUNTIME_RESERVE_BYTES = 2e9


def memory_hint(result, runtime_note: bool = False) -> str | None:
    """Why a plan does not fit (its largest memory part) and what to try; with ``runtime_note`` (a
    GPU, whose capacity is what CUDA reports) and less than :data:`RUNTIME_RESERVE_BYTES` to spare,
    that the runtime's own buffers may not fit; else None."""
    if result.fits_in_memory:
        cap, total = result.memory_capacity_bytes, result.memory_bytes_per_device["total"]
        if not runtime_note or cap is None or cap - total >= RUNTIME_RESERVE_BYTES:
            return None
        return (f"fits with {format_quantity(cap - total, 'bytes')} to spare: the runtime's own buffers (the CUDA "
                "context, NCCL's, library workspaces: about 1-2 GB, not counted) may not")
    mem, plan = result.memory_bytes_per_device, result.plan
    parts = {k: mem[k] for k in _PART_WORDS}
    top = max(parts, key=parts.get)
    share = parts[top] / mem["total"] if mem["total"] else 0.0
    states = parts["weights"] + parts["gradients"] + parts["optimizer"]
    cap = result.memory_capacity_bytes or float("inf")
    tries = []
    if states > cap or top != "activations":  # model states must shrink: shard or split them
        ranks = plan.dp * getattr(plan, "cp", 1)  # Megatron-Core shards over the data- and context-parallel ranks
        if ranks > 1 and plan.zero < 3:
            tries.append(f"--zero {plan.zero + 1}..3 (shards optimizer states, then gradients, then weights "
                         f"over the {ranks} data-parallel ranks)")
        tries.append("--tp or --pp (split the model over more devices)")
    if top == "activations" or states <= cap:
        if plan.recompute != "full":
            tries.append(f"--recompute {'selective or full' if plan.recompute == 'none' else 'full'}")
        if plan.micro_batch > 1:
            tries.append("a smaller --micro-batch")
        if plan.tp > 1 and not plan.sequence_parallel:
            tries.append("--sequence-parallel")
    why = (f"; weights, gradients and optimizer states alone take {format_quantity(states, 'bytes')}"
           if states > cap else "")
    return (f"does not fit: {_PART_WORDS[top]} take {format_quantity(parts[top], 'bytes')} "
            f"({share * 100:.0f} % of {format_quantity(mem['total'], 'bytes')} per device){why}; try "
            + ", ".join(dict.fromkeys(tries)))
