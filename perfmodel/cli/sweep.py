"""``perfmodel sweep --model M --system S --grid "tp=1,2,4;pp=1,2"``: every configuration of a grid."""

from __future__ import annotations

import enum
import sys
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
from perfmodel.cli.paths import check_output_file
from perfmodel.cli.render import Format, emit_json
from perfmodel.sweeps.output import MAX_CONFIGS

FIXED = "Fixed plan fields (every row)"
SHOWN = 20  # rows of the table view
PROGRESS_ROWS = 100_000  # the progress bar appears for grids this large (on a terminal; it is transient)
OUT_SUFFIXES = (".csv", ".parquet")


class Engine(str, enum.Enum):
    local = "local"
    dask = "dask"


def _count(flag: str, help: str, panel: str = FIXED, maximum: int = MAX_DEVICES):
    return count(flag, help, panel, maximum)


GRID_HELP = ("the grid: 'key=v1,v2,...;key=...' (';' between keys, ',' between values). Keys: plan fields "
             "(devices, tp, pp, dp, micro_batch, global_batch, virtual_stages, seq, recompute, sequence_parallel, "
             "schedule, zero, dtype, grad_sync, overlap, optimizer, stack) and hardware numbers by dotted name "
             "(device.peak, device.memory.bandwidth, device.memory.capacity, fabric.link.bandwidth, "
             "fabric.link.latency, network.link.bandwidth, network.link.latency, network.nics_per_node, ...), "
             "with units: 'network.link.bandwidth=100 Gb/s,400 Gb/s'")
FORMAT_HELP = ("table (default: counts and the fastest configurations), json ({evaluated, valid, fit, rows}) or csv "
               "(every row: grid keys, derived devices/dp/global_batch/n_microbatches, step_time_s, "
               "breakdown_<part>_s, comm_total_s, memory_<part>_bytes, fits_in_memory, mfu, tokens_per_s, bound, "
               "reason). With --out the rows go to the file and this prints the summary")


def sweep(
    model: str = typer.Option(..., "--model", help="a preset, a Hugging Face config.json or a TOML model file"),
    system: str = typer.Option(..., "--system", help="a bundled system or device name, or a system TOML file"),
    grid: str = typer.Option(..., "--grid", help=GRID_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="write every row to FILE.csv or FILE.parquet (parquet "
                                       "needs pyarrow); nothing is written when the sweep fails"),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local (numpy in this process) or dask (blocks of "
                                  "the grid on a dask.distributed cluster)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler address (tcp://host:8786); "
                                            "implies --engine dask; default a local cluster"),
    devices: Optional[int] = _count("--devices", "total devices (default tp x pp x dp)"),
    tp: Optional[int] = _count("--tp", "tensor-parallel degree"),
    pp: Optional[int] = _count("--pp", "pipeline stages"),
    dp: Optional[int] = _count("--dp", "data-parallel degree (default devices / (tp x pp))"),
    micro_batch: Optional[int] = _count("--micro-batch", "sequences per micro-batch", maximum=MAX_SIZE),
    global_batch: Optional[int] = _count("--global-batch", "sequences per optimizer step", maximum=MAX_SIZE),
    seq: Optional[int] = _count("--seq", "sequence length (also resizes the model's position table)",
                                maximum=MAX_SIZE),
    virtual_stages: Optional[int] = _count("--virtual-stages", "model chunks per device (interleaved schedule)"),
    dtype: Optional[Dtype] = plan_option("dtype", FIXED),
    recompute: Optional[Recompute] = plan_option("recompute", FIXED),
    sequence_parallel: Optional[bool] = plan_option("sequence_parallel", FIXED),
    schedule: Optional[Schedule] = plan_option("schedule", FIXED),
    zero: Optional[int] = plan_option("zero", FIXED),
    grad_sync: Optional[GradSync] = plan_option("grad_sync", FIXED),
    overlap: Optional[bool] = plan_option("overlap", FIXED),
    stack: Optional[str] = plan_option("stack", FIXED, "software-stack profile: megatron, megatron-core, pytorch-eager (`perfmodel stacks list`) or a stack TOML file; default by device generation"),
    optimizer: Optional[Optimizer] = plan_option("optimizer", FIXED),
    layers: Optional[int] = _count("--layers", "number of transformer layers", MODEL, MAX_SIZE),
    hidden: Optional[int] = _count("--hidden", "hidden size", MODEL, MAX_SIZE),
    heads: Optional[int] = _count("--heads", "attention heads", MODEL, MAX_SIZE),
    kv_heads: Optional[int] = _count("--kv-heads", "key/value heads", MODEL, MAX_SIZE),
    ffn_hidden: Optional[int] = _count("--ffn-hidden", "MLP width", MODEL, MAX_SIZE),
    vocab: Optional[int] = _count("--vocab", "vocabulary size", MODEL, MAX_SIZE),
    fits_only: bool = typer.Option(False, "--fits-only", help="keep only the valid configurations that fit in "
                                   "memory (in the table, the file and the csv/json rows)"),
    max_configs: int = typer.Option(MAX_CONFIGS, "--max-configs", min=1, help="refuse grids of more configurations "
                                    "than this (about 260 bytes of memory each, plus the output)"),
    format: Format = format_option(FORMAT_HELP),
) -> None:
    """Evaluate every configuration of a grid of plan and hardware values at once (numpy; millions of
    configurations per second): step time, breakdown, memory, fit, MFU, and for impossible
    configurations the reason instead. The table lists the runnable configurations first (valid and
    fitting, fastest first); files keep the grid order.

    Example: perfmodel sweep --model gpt3-175b --system dgx-a100 --devices 1024 --global-batch 1536 --grid "tp=1,2,4,8;pp=1,2,4,8,16;micro_batch=1,2;recompute=none,selective" --out sweep.csv
    """
    from perfmodel.sweeps import evaluate, make_spec
    from perfmodel.sweeps.output import check_size
    from perfmodel.sweeps.progress import ProgressBar
    from perfmodel.workloads import load_model

    if out is not None:
        _check_out(out)
    fixed = plan_fields(devices=devices, tp=tp, pp=pp, dp=dp, micro_batch=micro_batch, global_batch=global_batch,
                        seq=seq, virtual_stages=virtual_stages, dtype=dtype, recompute=recompute,
                        sequence_parallel=sequence_parallel, schedule=schedule, zero=zero, grad_sync=grad_sync,
                        overlap=overlap, stack=stack, optimizer=optimizer)
    n_rows = make_spec(grid, {}).n_rows  # checks the grid before anything is loaded
    shown = out.suffix.lower().lstrip(".") if out is not None else format.value
    check_size(n_rows, shown, max_configs)
    overrides = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads,
                 "ffn_hidden": ffn_hidden, "vocab": vocab, "seq": seq}
    chosen = Engine.dask if scheduler is not None else engine
    with ProgressBar(n_rows >= PROGRESS_ROWS and sys.stderr.isatty()) as bar:
        ev = evaluate(load_model(model, **overrides), system, grid, engine=chosen.value, scheduler=scheduler,
                      progress=bar, **fixed)
        _emit(ev, format, out, fits_only, bar)


def _check_out(out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise typer.BadParameter(f"expected a .csv or .parquet file, got {str(out)!r}", param_hint="--out")
    check_output_file(out, "--out")
    if suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise typer.BadParameter("writing .parquet needs pyarrow (pip install pyarrow); or write a .csv file",
                                     param_hint="--out")


def _emit(ev, fmt: Format, out: Path | None, fits_only: bool, bar) -> None:
    from perfmodel.sweeps.output import records, runnable_first, selected_rows, summary, write_file, write_rows

    counts = summary(ev)
    rows = selected_rows(ev, fits_only)
    n_out = ev.n_rows if rows is None else len(rows)
    if out is not None:
        write_file(ev, out, rows, bar.phase("write", n_out))
    if fmt == Format.json:
        if out is not None:
            best = records(ev.to_frame(runnable_first(ev, 1, fits_only=True)))
            emit_json({**counts, "out": str(out), "best": best[0] if best else None})
        else:
            write_rows(ev, sys.stdout, "json", rows, head=counts, advance=bar.phase("write", n_out))
    elif fmt == Format.csv:
        if out is not None:
            sys.stdout.write("evaluated,valid,fit,out\n" + f"{counts['evaluated']},{counts['valid']},{counts['fit']},"
                             f"{out}\n")
        else:
            write_rows(ev, sys.stdout, "csv", rows, advance=bar.phase("write", n_out))
    else:
        bar.__exit__()  # the table is printed on stdout; the bar is done
        _table(ev, runnable_first(ev, SHOWN, fits_only), counts, out, fits_only)


def _table(ev, top, summary, out, fits_only: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from perfmodel.units import format_quantity

    console = Console()
    keys = list(ev.spec.keys)
    fastest = ev.to_frame(top)
    fastest = fastest[fastest["reason"].isna()]
    df = ev.to_frame(top[:0])
    stack = "" if "stack" in keys else f"; stack {dict(ev.spec.fixed).get('stack') or ev.default_stack}"
    caption = (f"{summary['evaluated']:,} configurations, {summary['valid']:,} valid, {summary['fit']:,} fit in "
               f"memory{stack}" + (f"; every row is in {out}" if out is not None else ""))
    if len(fastest):
        shown = [k for k in (*keys, "dp") if k in df.columns]
        which = "that fit in memory" if fits_only else "(those that fit in memory first)"
        t = Table(title=f"the {min(SHOWN, len(fastest))} fastest configurations {which}", caption=caption)
        for c in (*shown, "step time", "MFU", "memory", "fits", "bound"):
            t.add_column(c, justify="left" if c in ("bound", "fits") else "right")
        for _, row in fastest.head(SHOWN).iterrows():
            t.add_row(*(str(row[k]) for k in shown), format_quantity(row["step_time_s"], "time"),
                      f"{row['mfu'] * 100:.1f} %", format_quantity(row["memory_total_bytes"], "bytes"),
                      "yes" if row["fits_in_memory"] else "NO", str(row["bound"]))
        console.print(t)
    else:
        console.print(f"no {'valid configuration that fits' if fits_only else 'valid configuration'} ({caption})")
    import numpy as np
    import pandas as pd

    counts = np.bincount(ev.arrays["reason"][ev.arrays["reason"] >= 0], minlength=len(ev.messages))
    reasons = pd.Series(counts, index=ev.messages).sort_values(ascending=False, kind="stable")
    reasons = reasons[reasons > 0]
    if len(reasons):
        t = Table(title="why the other configurations are invalid")
        t.add_column("configurations", justify="right")
        t.add_column("reason")
        for text, n in reasons.head(10).items():
            t.add_row(f"{n:,}", str(text))
        if len(reasons) > 10:
            t.add_row("", f"... and {len(reasons) - 10} more reasons")
        console.print(t)
