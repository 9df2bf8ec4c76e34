"""``perfmodel predict --model M --system S [plan flags]``: one training step, where the time goes."""

from __future__ import annotations

from typing import Optional

import typer

from perfmodel.cli.options import (
    MAX_DEVICES,
    MAX_SIZE,
    MODEL,
    Dtype,
    GradSync,
    Optimizer,
    Recompute,
    Schedule,
    count,
    format_option,
    plan_fields,
    plan_option,
)
from perfmodel.cli.render import Format, emit_json, emit_rows

__all__ = ["MAX_SIZE", "Dtype", "GradSync", "Optimizer", "Recompute", "Schedule", "flat_row", "predict"]

PLAN = "Plan"

FORMAT_HELP = ("table (default), json (one object with every docs/interface.md key: step_time_s, breakdown_s, "
               "comm_total_s, bound, memory_bytes_per_device, fits_in_memory, mfu, tokens_per_s or "
               "samples_per_s, plus model, system, plan, details) or csv (a header and ONE flat row: "
               "model, system, every plan field, step_time_s, one breakdown_<part>_s column per part, "
               "comm_total_s, bound, memory_<part>_bytes, fits_in_memory, mfu, throughput; flat so that "
               "rows of several runs append into one table)")


def _count(flag: str, help: str, panel: str = PLAN, maximum: int = MAX_DEVICES):
    return count(flag, help, panel, maximum)


def predict(
    model: Optional[str] = typer.Option(None, "--model", help="a preset (see `perfmodel models list`), a Hugging "
                                        "Face config.json or a TOML model file (required unless --tasks)"),
    system: str = typer.Option(..., "--system", help="a bundled system or device name (a device means "
                               "that device alone), or a path to a system TOML file"),
    devices: Optional[int] = _count("--devices", "total devices N (default tp x pp x dp)"),
    tp: Optional[int] = _count("--tp", "tensor-parallel degree (default 1)"),
    pp: Optional[int] = _count("--pp", "pipeline-parallel stages (default 1)"),
    dp: Optional[int] = _count("--dp", "data-parallel degree (default devices / (tp x pp))"),
    micro_batch: Optional[int] = _count("--micro-batch", "sequences (samples) per micro-batch (default 1)",
                                        maximum=MAX_SIZE),
    global_batch: Optional[int] = _count("--global-batch", "sequences (samples) per optimizer step "
                                         "(default micro-batch x dp)", maximum=MAX_SIZE),
    seq: Optional[int] = _count("--seq", "sequence length in tokens (also resizes the model's "
                                "position table); default the model's", maximum=MAX_SIZE),
    dtype: Optional[Dtype] = plan_option("dtype", PLAN, "compute dtype (default bf16)"),
    recompute: Optional[Recompute] = plan_option("recompute", PLAN, "activation recomputation (default none)"),
    sequence_parallel: bool = plan_option("sequence_parallel", PLAN, "Megatron sequence parallelism (needs --tp > 1)",
                                          default=False, decls=("--sequence-parallel",)),
    schedule: Optional[Schedule] = plan_option("schedule", PLAN, "pipeline schedule (default 1f1b)"),
    virtual_stages: Optional[int] = _count("--virtual-stages", "model chunks per device of the interleaved "
                                           "schedule (default 1)"),
    zero: Optional[int] = plan_option("zero", PLAN, "ZeRO stage 0-3 (default 0)"),
    grad_sync: Optional[GradSync] = plan_option("grad_sync", PLAN, "gradient synchronisation (default allreduce)"),
    overlap: Optional[bool] = plan_option("overlap", PLAN, "overlap the gradient sync with the backward pass "
                                          "(default on)"),
    stack: Optional[str] = plan_option("stack", PLAN, "software-stack profile: megatron (default), pytorch-eager, "
                                       "or a path to a stack TOML file"),
    optimizer: Optional[Optimizer] = plan_option("optimizer", PLAN, "optimizer (default adamw)"),
    layers: Optional[int] = _count("--layers", "number of transformer layers", MODEL, MAX_SIZE),
    hidden: Optional[int] = _count("--hidden", "hidden size", MODEL, MAX_SIZE),
    heads: Optional[int] = _count("--heads", "attention heads", MODEL, MAX_SIZE),
    kv_heads: Optional[int] = _count("--kv-heads", "key/value heads (grouped-query attention)", MODEL, MAX_SIZE),
    ffn_hidden: Optional[int] = _count("--ffn-hidden", "MLP width", MODEL, MAX_SIZE),
    vocab: Optional[int] = _count("--vocab", "vocabulary size", MODEL, MAX_SIZE),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="instead of a model: a task-graph TOML file "
                                        "(perfmodel/data/tasks/README.md) scheduled on --devices devices of the "
                                        "system (default one node) plus its host CPUs: bounds and a HEFT estimate"),
    format: Format = format_option(FORMAT_HELP),
    layers_detail: bool = typer.Option(False, "--layers-detail", help="also show every kernel of one layer, "
                                       "forward and backward, for one micro-batch: time, bytes, FLOPs (to hold "
                                       "against a profiler trace; JSON: key layer_kernels)"),
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

    fields = plan_fields(devices=devices, tp=tp, pp=pp, dp=dp, micro_batch=micro_batch, global_batch=global_batch,
                         seq=seq, dtype=dtype, recompute=recompute, schedule=schedule, virtual_stages=virtual_stages,
                         zero=zero, grad_sync=grad_sync, overlap=overlap, stack=stack, optimizer=optimizer)
    if sequence_parallel:
        fields["sequence_parallel"] = True
    overrides = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads,
                 "ffn_hidden": ffn_hidden, "vocab": vocab, "seq": seq}
    loaded = load_model(model, **overrides)
    result = run(loaded, system, Plan(**fields))
    kernels = None
    if layers_detail:
        from perfmodel.prediction.detail import layer_kernel_table

        kernels = layer_kernel_table(loaded, system, result.plan)
    _render(result, format, kernels)


def _render(result, fmt: Format, kernels=None) -> None:
    if fmt == Format.json:
        emit_json({**result.to_dict(), **({"layer_kernels": kernels} if kernels else {})})
        return
    if fmt == Format.csv:
        row = flat_row(result.to_dict())
        emit_rows([row], fmt, columns=list(row))
    else:
        from rich.console import Console

        Console().print(result)
    if kernels:
        emit_rows(kernels, fmt, title="kernels of one layer, one micro-batch")


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
