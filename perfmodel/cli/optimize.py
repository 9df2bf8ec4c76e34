"""``perfmodel optimize --model M --system S --devices N --global-batch B [--top K]``: the fastest plans."""

from __future__ import annotations

from dataclasses import asdict
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

FIXED = "Fixed instead of searched"

FORMAT_HELP = ("table (default), json ({plans: [...], evaluated, valid, fit, ...}; each plan as `predict --format "
               "json` shows it, with its rank) or csv (one flat row per plan)")


def _count(flag: str, help: str, panel: str = FIXED, maximum: int = MAX_DEVICES):
    return count(flag, help, panel, maximum)


def optimize(
    model: str = typer.Option(..., "--model", help="a preset, a Hugging Face config.json or a TOML model file"),
    system: str = typer.Option(..., "--system", help="a bundled system or device name, or a system TOML file"),
    devices: int = typer.Option(..., "--devices", min=1, max=MAX_DEVICES, help="total devices N"),
    global_batch: int = typer.Option(..., "--global-batch", min=1, max=MAX_SIZE, help="sequences (samples) per "
                                     "optimizer step"),
    top: int = typer.Option(5, "--top", min=1, max=1000, help="how many plans to show"),
    seq: Optional[int] = _count("--seq", "sequence length (also resizes the model's position table)",
                                maximum=MAX_SIZE),
    dtype: Optional[Dtype] = plan_option("dtype", FIXED, "compute dtype (default bf16)"),
    stack: Optional[str] = plan_option("stack", FIXED, "software-stack profile: megatron, megatron-core, pytorch-eager (`perfmodel stacks list`) or a stack TOML file; default by device generation"),
    optimizer: Optional[Optimizer] = plan_option("optimizer", FIXED),
    grad_sync: Optional[GradSync] = plan_option("grad_sync", FIXED),
    tp: Optional[int] = _count("--tp", "tensor-parallel degree"),
    pp: Optional[int] = _count("--pp", "pipeline stages"),
    micro_batch: Optional[int] = _count("--micro-batch", "sequences per micro-batch", maximum=MAX_SIZE),
    schedule: Optional[Schedule] = plan_option("schedule", FIXED),
    virtual_stages: Optional[int] = _count("--virtual-stages", "model chunks per device"),
    recompute: Optional[Recompute] = plan_option("recompute", FIXED),
    sequence_parallel: Optional[bool] = plan_option("sequence_parallel", FIXED),
    zero: Optional[int] = plan_option("zero", FIXED),
    overlap: Optional[bool] = plan_option("overlap", FIXED),
    layers: Optional[int] = _count("--layers", "number of transformer layers", MODEL, MAX_SIZE),
    hidden: Optional[int] = _count("--hidden", "hidden size", MODEL, MAX_SIZE),
    heads: Optional[int] = _count("--heads", "attention heads", MODEL, MAX_SIZE),
    kv_heads: Optional[int] = _count("--kv-heads", "key/value heads", MODEL, MAX_SIZE),
    ffn_hidden: Optional[int] = _count("--ffn-hidden", "MLP width", MODEL, MAX_SIZE),
    vocab: Optional[int] = _count("--vocab", "vocabulary size", MODEL, MAX_SIZE),
    format: Format = format_option(FORMAT_HELP),
) -> None:
    """Search every valid plan (tp, pp, dp, micro-batch, schedule and virtual stages, recompute, sequence
    parallelism, ZeRO stage, overlap) of a model on N devices and show the fastest that fit in memory.

    Example: perfmodel optimize --model gpt3-175b --system dgx-a100 --devices 1024 --global-batch 1536
    """
    from perfmodel.sweeps.search import optimize as run
    from perfmodel.workloads import load_model

    fixed = plan_fields(seq=seq, dtype=dtype, stack=stack, optimizer=optimizer, grad_sync=grad_sync, tp=tp, pp=pp,
                        micro_batch=micro_batch, schedule=schedule, virtual_stages=virtual_stages,
                        recompute=recompute, sequence_parallel=sequence_parallel, zero=zero, overlap=overlap)
    overrides = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads,
                 "ffn_hidden": ffn_hidden, "vocab": vocab, "seq": seq}
    import sys

    result = run(load_model(model, **overrides), system, devices, global_batch, top, progress=sys.stderr.isatty(),
                 **fixed)
    if format == Format.json:
        emit_json(result.to_dict())
    elif format == Format.csv:
        rows = []
        for plan in result.to_dict()["plans"]:
            row = {"rank": plan["rank"], **plan["plan"]}
            row.update({k: v for k, v in plan.items() if k not in ("rank", "plan", "breakdown_s",
                                                                    "memory_bytes_per_device")})
            row.update({f"breakdown_{k}_s": v for k, v in plan["breakdown_s"].items()})
            row.update({f"memory_{k}_bytes": v for k, v in plan["memory_bytes_per_device"].items()})
            rows.append(row)
        emit_rows(rows, format, columns=list(rows[0]) if rows else list(asdict(result.plans[0])))
    else:
        from rich.console import Console

        Console().print(result)
