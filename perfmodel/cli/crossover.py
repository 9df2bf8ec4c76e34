"""``perfmodel crossover --model M --system S --scheme dp|tp|pp --solve-for devices|bandwidth|micro-batch``."""

from __future__ import annotations

import enum
from pathlib import Path
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

PLAN = "Operating point (plan)"


class Scheme(str, enum.Enum):
    dp = "dp"
    tp = "tp"
    pp = "pp"


class SolveFor(str, enum.Enum):
    devices = "devices"
    bandwidth = "bandwidth"
    micro_batch = "micro-batch"


def _count(flag: str, help: str, panel: str = PLAN, maximum: int = MAX_DEVICES):
    return count(flag, help, panel, maximum)


FORMAT_HELP = ("table (default), json (one object: solve_for, value, t_compute_s, t_comm_s, closed_form_latex "
               "(null when none), then model, system, scheme, unit, direction, scope, numeric_value, "
               "symbolic_value, closed_form, equation_latex, integer_value, at_discontinuity, sensitivity, "
               "operating_point, parameters, notes) or csv (a header and one row)")
CSV_COLUMNS = ["model", "system", "scheme", "solve_for", "value", "unit", "t_compute_s", "t_comm_s", "numeric_value",
               "symbolic_value", "integer_value", "at_discontinuity", "sensitivity_level", "sensitivity_bandwidth",
               "sensitivity_latency", "closed_form_latex"]


def crossover(
    model: str = typer.Option(..., "--model", help="a preset, a Hugging Face config.json or a TOML model file"),
    system: str = typer.Option(..., "--system", help="a bundled system or device name, or a system TOML file"),
    scheme: Scheme = typer.Option(..., "--scheme", help="dp: gradient sync vs backward compute; tp: per-layer "
                                  "all-reduces vs layer compute; pp: point-to-point + bubble vs stage compute"),
    solve_for: SolveFor = typer.Option(..., "--solve-for", help="the unknown: devices (strong scaling at a fixed "
                                       "global batch for dp; the tp degree; the pp stages), bandwidth (the link of "
                                       "the level the scheme's messages cross, per direction) or micro-batch"),
    symbolic: bool = typer.Option(False, "--symbolic", help="also print the equation, the closed form (LaTeX and "
                                  "sympy) and every parameter's symbol and value"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write step time and its parts vs the unknown, with "
                                        "the crossover marked, to FILE.png or FILE.svg"),
    devices: Optional[int] = _count("--devices", "total devices N at the operating point (default tp x pp x dp)"),
    tp: Optional[int] = _count("--tp", "tensor-parallel degree (default 1)"),
    pp: Optional[int] = _count("--pp", "pipeline stages (default 1)"),
    dp: Optional[int] = _count("--dp", "data-parallel degree (default devices / (tp x pp))"),
    micro_batch: Optional[int] = _count("--micro-batch", "sequences (samples) per micro-batch (default 1)",
                                        maximum=MAX_SIZE),
    global_batch: Optional[int] = _count("--global-batch", "sequences (samples) per step (default the model "
                                         "family's published batch: 512 sequences, 256 images)", maximum=MAX_SIZE),
    seq: Optional[int] = _count("--seq", "sequence length in tokens (default the model's)", maximum=MAX_SIZE),
    dtype: Optional[Dtype] = plan_option("dtype", PLAN, "compute dtype (default bf16)"),
    recompute: Optional[Recompute] = plan_option("recompute", PLAN, "activation recomputation (default none)"),
    sequence_parallel: bool = plan_option("sequence_parallel", PLAN, "Megatron sequence parallelism (needs --tp > 1)",
                                          default=False, decls=("--sequence-parallel",)),
    schedule: Optional[Schedule] = plan_option("schedule", PLAN, "pipeline schedule (default 1f1b)"),
    virtual_stages: Optional[int] = _count("--virtual-stages", "model chunks per device (interleaved schedule)"),
    zero: Optional[int] = plan_option("zero", PLAN, "ZeRO stage 0-3 (default 0)"),
    grad_sync: Optional[GradSync] = plan_option("grad_sync", PLAN, "gradient synchronisation (default allreduce)"),
    overlap: Optional[bool] = plan_option("overlap", PLAN, "overlap the gradient sync with the backward pass "
                                          "(default on)"),
    stack: Optional[str] = plan_option("stack", PLAN, "software-stack profile: megatron, megatron-core, pytorch-eager (`perfmodel stacks list`) or a stack TOML file; default by device generation"),
    optimizer: Optional[Optimizer] = plan_option("optimizer", PLAN, "optimizer (default adamw)"),
    layers: Optional[int] = _count("--layers", "number of transformer layers", MODEL, MAX_SIZE),
    hidden: Optional[int] = _count("--hidden", "hidden size", MODEL, MAX_SIZE),
    heads: Optional[int] = _count("--heads", "attention heads", MODEL, MAX_SIZE),
    kv_heads: Optional[int] = _count("--kv-heads", "key/value heads", MODEL, MAX_SIZE),
    ffn_hidden: Optional[int] = _count("--ffn-hidden", "MLP width", MODEL, MAX_SIZE),
    vocab: Optional[int] = _count("--vocab", "vocabulary size", MODEL, MAX_SIZE),
    format: Format = format_option(FORMAT_HELP),
) -> None:
    """Find where a parallel scheme turns communication-bound: the devices, link bandwidth or
    micro-batch at which its communication equals the compute it competes with. Numeric root and
    sympy closed form from the same formulas, the full prediction's first communication-bound
    integer, and the step time's sensitivity to bandwidth and latency at the operating point.

    Example: perfmodel crossover --model gpt2-1.5b --system dgx-h100 --scheme dp --solve-for devices --symbolic
    """
    from perfmodel.crossover.find import find_crossover
    from perfmodel.plan import Plan
    from perfmodel.workloads import load_model

    if plot is not None:
        from perfmodel.cli.paths import check_plot

        check_plot(plot)
    fields = plan_fields(devices=devices, tp=tp, pp=pp, dp=dp, micro_batch=micro_batch, global_batch=global_batch,
                         seq=seq, dtype=dtype, recompute=recompute, schedule=schedule, virtual_stages=virtual_stages,
                         zero=zero, grad_sync=grad_sync, overlap=overlap, stack=stack, optimizer=optimizer)
    if sequence_parallel:
        fields["sequence_parallel"] = True
    overrides = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads,
                 "ffn_hidden": ffn_hidden, "vocab": vocab, "seq": seq}
    result = find_crossover(load_model(model, **overrides), system, scheme.value, solve_for.value, Plan(**fields))
    if plot is not None:
        from perfmodel.plots import plot_crossover

        plot_crossover(result, plot)
    if format == Format.json:
        emit_json(result.to_dict())
    elif format == Format.csv:
        d = result.to_dict()
        row = {k: d.get(k) for k in CSV_COLUMNS}
        row.update({f"sensitivity_{k}": v for k, v in d["sensitivity"].items()})
        emit_rows([row], format, columns=CSV_COLUMNS)
    else:
        from rich.console import Console

        Console().print(result.render(symbolic))
