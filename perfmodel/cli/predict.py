"""``perfmodel predict --model M --system S [plan flags]``: one training step, where the time goes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from perfmodel.cli.options import (
    Cp,
    Devices,
    Dp,
    Ep,
    DtypeOpt,
    FfnHidden,
    FormatOpt,
    GlobalBatch,
    GradSyncOpt,
    Heads,
    FirstStageLayers,
    Hidden,
    KvHeads,
    LastStageLayers,
    Layers,
    MicroBatch,
    Model,
    OffloadOpt,
    OptimizerOpt,
    Overlap,
    Pp,
    RecomputeOpt,
    ScheduleOpt,
    Seq,
    SequenceParallel,
    ShardGroup,
    Stack,
    System,
    Tp,
    VirtualStages,
    Vocab,
    Zero,
    plan_and_overrides,
)
from perfmodel.cli.render import Format, emit_json, emit_rows, show

__all__ = ["flat_row", "predict"]

LayersDetail = Annotated[bool, typer.Option("--layers-detail", help="also show every kernel of one layer, forward "
                                            "and backward, for one micro-batch: time, bytes, FLOPs (to hold against "
                                            "a profiler trace; JSON: key layer_kernels)")]
Tasks = Annotated[Optional[str], typer.Option("--tasks", help="instead of a model: a task-graph TOML file "
                                              "(perfmodel/data/tasks/README.md) scheduled on --devices devices of "
                                              "the system (default one node) plus its host CPUs: bounds and a HEFT "
                                              "estimate")]


def predict(model: Model = None, system: System = ..., devices: Devices = None, tp: Tp = None, pp: Pp = None,
            dp: Dp = None, ep: Ep = None, micro_batch: MicroBatch = None, global_batch: GlobalBatch = None, seq: Seq = None,
            dtype: DtypeOpt = None, recompute: RecomputeOpt = None, sequence_parallel: SequenceParallel = None,
            schedule: ScheduleOpt = None, virtual_stages: VirtualStages = None, zero: Zero = None,
            grad_sync: GradSyncOpt = None, overlap: Overlap = None, stack: Stack = None,
            optimizer: OptimizerOpt = None, offload: OffloadOpt = None,
            shard_group: ShardGroup = None, layers: Layers = None, hidden: Hidden = None, heads: Heads = None,
            kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None, tasks: Tasks = None,
            format: FormatOpt = Format.table, layers_detail: LayersDetail = False, cp: Cp = None,
            first_stage_layers: FirstStageLayers = None, last_stage_layers: LastStageLayers = None) -> None:
    """Predict one training step of a model on a system with a parallel plan: step time, where it goes
    (compute, recompute, optimizer, exposed TP/PP/DP/CP communication with the SMs hidden collectives take,
    bubble), memory per device
    and whether it fits, MFU and throughput. --model is required unless --tasks is given.

    Formats: table; json (one object with every docs/interface.md key: step_time_s, breakdown_s,
    comm_total_s, bound, memory_bytes_per_device, fits_in_memory, mfu, tokens_per_s or samples_per_s,
    plus model, system, plan, details); csv (a header and ONE flat row: model, system, every plan field,
    step_time_s, one breakdown_<part>_s column per part, comm_total_s, bound, memory_<part>_bytes,
    fits_in_memory, mfu, throughput; flat so that rows of several runs append into one table).

    Example (GPT-3 175B on 128 DGX A100 nodes):

    perfmodel predict --model gpt3-175b --system dgx-a100 --devices 1024 --tp 8 --pp 8 --global-batch 1536 --recompute selective --sequence-parallel --schedule interleaved --virtual-stages 2
    """
    plan, overrides = plan_and_overrides(locals())
    if tasks is not None:  # task parallelism: a task graph instead of a model
        return _tasks(tasks, system, devices, format, plan, overrides, model, layers_detail)
    if model is None:
        from perfmodel.errors import PlanError

        raise PlanError("--model is required (or --tasks FILE for a task graph)")
    from perfmodel.plan import Plan
    from perfmodel.prediction import predict as run
    from perfmodel.workloads import load_model
    from perfmodel.workloads.transformer import TransformerModel

    loaded = load_model(model, **overrides)
    result = run(loaded, system, Plan(**plan))
    kernels = None
    if layers_detail:
        from perfmodel.prediction.detail import layer_kernel_table

        kernels = layer_kernel_table(loaded, system, result.plan)
    if format == Format.json:
        emit_json({**result.to_dict(), **({"layer_kernels": kernels} if kernels else {})})
        return
    if format == Format.csv:  # prediction/ is not this change's to edit: the flat row is built here
        row = flat_row(result.to_dict())
        emit_rows([row], format, columns=list(row))
    else:
        show(result, format)
    if kernels:
        one = "one layer" if isinstance(loaded, TransformerModel) else "every layer"
        emit_rows(kernels, format, title=f"kernels of {one}, one micro-batch")


def _tasks(tasks, system, devices, format, plan, overrides, model, layers_detail) -> None:
    """A task graph instead of a model: refuse the model and plan flags that cannot apply to it."""
    from perfmodel.cli.tasks import run_tasks
    from perfmodel.errors import PlanError

    ignored = ([k for k in plan if k != "devices"] + [k for k, v in overrides.items() if v is not None]
               + ["model"] * (model is not None) + ["layers_detail"] * layers_detail)
    if ignored:
        flags = ", ".join(dict.fromkeys("--" + k.replace("_", "-") for k in ignored))
        raise PlanError(f"--tasks FILE: the task graph gives the work, so {flags} cannot be applied (only --system, "
                        "--devices and --format go with it)")
    return run_tasks(tasks, system, devices, format)


def flat_row(obj: dict) -> dict:
    """One flat CSV row of a prediction's JSON object (nested objects become prefixed columns)."""
    row = {"model": obj["model"], "system": obj["system"]}
    row.update({f"plan_{k}": v for k, v in obj["plan"].items()})
    row["step_time_s"] = obj["step_time_s"]
    row.update({f"breakdown_{k}_s": v for k, v in obj["breakdown_s"].items()})
    row["comm_total_s"] = obj["comm_total_s"]
    row["bound"] = obj["bound"]
    row.update({f"memory_{k}_bytes": v for k, v in obj["memory_bytes_per_device"].items()})
    for key in ("memory_capacity_bytes", "fits_in_memory", "mfu", "tokens_per_s", "samples_per_s"):
        if key in obj:
            row[key] = obj[key]
    row["notes"] = "; ".join(obj.get("notes", ()))
    return row
