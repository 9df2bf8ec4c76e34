"""``perfmodel predict --model M --system S [plan flags]``: one training step, where the time goes."""

from __future__ import annotations

import enum
from typing import Optional

import typer

from perfmodel.cli.render import Format, emit_json, emit_rows
from perfmodel.plan import (
    DTYPES,
    GRAD_SYNC,
    MAX_DEVICES,
    OPTIMIZERS,
    RECOMPUTE,
    SCHEDULES,
)

# choices come from perfmodel.plan, so --help and the library agree on them
Dtype = enum.Enum("Dtype", {d: d for d in DTYPES}, type=str)
Recompute = enum.Enum("Recompute", {r: r for r in RECOMPUTE}, type=str)
Schedule = enum.Enum("Schedule", {s: s for s in SCHEDULES}, type=str)
GradSync = enum.Enum("GradSync", {g: g for g in GRAD_SYNC}, type=str)
Optimizer = enum.Enum("Optimizer", {o: o for o in OPTIMIZERS}, type=str)

MAX_SIZE = 10**9  # model sizes (layers, hidden, vocab, ...) and batch sizes
PLAN = "Plan"
MODEL = "Model overrides (what-if)"

FORMAT_HELP = ("table (default), json (one object with every DESIGN.md key: step_time_s, breakdown_s, "
               "comm_total_s, bound, memory_bytes_per_device, fits_in_memory, mfu, tokens_per_s or "
               "samples_per_s, plus model, system, plan, details) or csv (a header and ONE flat row: "
               "model, system, every plan field, step_time_s, one breakdown_<part>_s column per part, "
               "comm_total_s, bound, memory_<part>_bytes, fits_in_memory, mfu, throughput; flat so that "
               "rows of several runs append into one table)")


def _count(default, flag: str, help: str, panel: str = PLAN, maximum: int = MAX_DEVICES):
    return typer.Option(default, flag, min=1, max=maximum, help=help, rich_help_panel=panel)


def predict(
    model: Optional[str] = typer.Option(None, "--model", help="a preset (see `perfmodel models list`), a Hugging "
                                        "Face config.json or a TOML model file (required unless --tasks)"),
    system: str = typer.Option(..., "--system", help="a bundled system or device name (a device means "
                               "that device alone), or a path to a system TOML file"),
    devices: Optional[int] = _count(None, "--devices", "total devices N (default tp x pp x dp)"),
    tp: Optional[int] = _count(None, "--tp", "tensor-parallel degree (default 1)"),
    pp: Optional[int] = _count(None, "--pp", "pipeline-parallel stages (default 1)"),
    dp: Optional[int] = _count(None, "--dp", "data-parallel degree (default devices / (tp x pp))"),
    micro_batch: Optional[int] = _count(None, "--micro-batch", "sequences (samples) per micro-batch (default 1)",
                                        maximum=MAX_SIZE),
    global_batch: Optional[int] = _count(None, "--global-batch", "sequences (samples) per optimizer step "
                                         "(default micro-batch x dp)", maximum=MAX_SIZE),
    seq: Optional[int] = _count(None, "--seq", "sequence length in tokens (also resizes the model's "
                                "position table); default the model's", maximum=MAX_SIZE),
    dtype: Optional[Dtype] = typer.Option(None, "--dtype", help="compute dtype (default bf16)", rich_help_panel=PLAN),
    recompute: Optional[Recompute] = typer.Option(None, "--recompute", help="activation recomputation (default none)",
                                                  rich_help_panel=PLAN),
    sequence_parallel: bool = typer.Option(False, "--sequence-parallel", help="Megatron sequence parallelism "
                                           "(needs --tp > 1)", rich_help_panel=PLAN),
    schedule: Optional[Schedule] = typer.Option(None, "--schedule", help="pipeline schedule (default 1f1b)",
                                                rich_help_panel=PLAN),
    virtual_stages: Optional[int] = _count(None, "--virtual-stages", "model chunks per device of the interleaved "
                                           "schedule (default 1)"),
    zero: Optional[int] = typer.Option(None, "--zero", min=0, max=3, help="ZeRO stage 0-3 (default 0)",
                                       rich_help_panel=PLAN),
    grad_sync: Optional[GradSync] = typer.Option(None, "--grad-sync", help="gradient synchronisation "
                                                 "(default allreduce)", rich_help_panel=PLAN),
    overlap: Optional[bool] = typer.Option(None, "--overlap/--no-overlap", help="overlap the gradient sync "
                                           "with the backward pass (default on)", rich_help_panel=PLAN),
    stack: Optional[str] = typer.Option(None, "--stack", help="software-stack profile: megatron (default), "
                                        "pytorch-eager, or a path to a stack TOML file", rich_help_panel=PLAN),
    optimizer: Optional[Optimizer] = typer.Option(None, "--optimizer", help="optimizer (default adamw)",
                                                  rich_help_panel=PLAN),
    layers: Optional[int] = _count(None, "--layers", "number of transformer layers", MODEL, MAX_SIZE),
    hidden: Optional[int] = _count(None, "--hidden", "hidden size", MODEL, MAX_SIZE),
    heads: Optional[int] = _count(None, "--heads", "attention heads", MODEL, MAX_SIZE),
    kv_heads: Optional[int] = _count(None, "--kv-heads", "key/value heads (grouped-query attention)", MODEL, MAX_SIZE),
    ffn_hidden: Optional[int] = _count(None, "--ffn-hidden", "MLP width", MODEL, MAX_SIZE),
    vocab: Optional[int] = _count(None, "--vocab", "vocabulary size", MODEL, MAX_SIZE),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="instead of a model: a task-graph TOML file "
                                        "(perfmodel/data/tasks/README.md) scheduled on --devices devices of the "
                                        "system (default one node) plus its host CPUs: bounds and a HEFT estimate"),
    format: Format = typer.Option(Format.table, "--format", help=FORMAT_HELP),
) -> None:
    """Predict one training step of a model on a system with a parallel plan: step time, where it goes
    (compute, recompute, optimizer, exposed TP/PP/DP communication, pipeline bubble), memory per device
    and whether it fits, MFU and throughput.

    Example (GPT-3 175B on 128 DGX A100 nodes):

    perfmodel predict --model gpt3-175b --system dgx-a100 --devices 1024 --tp 8 --pp 8 --global-batch 1536 --recompute selective --sequence-parallel --schedule interleaved --virtual-stages 2
    """
    if tasks is not None:  # task parallelism: a task graph instead of a model
        from perfmodel.cli.tasks import run_tasks

        return run_tasks(tasks, system, devices, format)
    if model is None:
        from perfmodel.errors import PlanError

        raise PlanError("--model is required (or --tasks FILE for a task graph)")
    from perfmodel.plan import Plan
    from perfmodel.prediction import predict as run
    from perfmodel.workloads import load_model

    chosen = {"devices": devices, "tp": tp, "pp": pp, "dp": dp, "micro_batch": micro_batch,
              "global_batch": global_batch, "seq": seq, "dtype": dtype, "recompute": recompute,
              "schedule": schedule, "virtual_stages": virtual_stages, "zero": zero, "grad_sync": grad_sync,
              "overlap": overlap, "stack": stack, "optimizer": optimizer}
    fields = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in chosen.items() if v is not None}
    if sequence_parallel:
        fields["sequence_parallel"] = True
    overrides = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads,
                 "ffn_hidden": ffn_hidden, "vocab": vocab, "seq": seq}
    result = run(load_model(model, **overrides), system, Plan(**fields))
    _render(result, format)


def _render(result, fmt: Format) -> None:
    if fmt == Format.json:
        emit_json(result.to_dict())
    elif fmt == Format.csv:
        row = flat_row(result.to_dict())
        emit_rows([row], fmt, columns=list(row))
    else:
        from rich.console import Console

        Console().print(result)


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
    return row
