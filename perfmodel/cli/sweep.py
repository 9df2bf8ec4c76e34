"""``perfmodel sweep --model M --system S --grid "tp=1,2,4;pp=1,2"``: every configuration of a grid."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from perfmodel.cli.options import (
    Cp,
    Ep,
    Devices,
    Dp,
    DtypeOpt,
    FfnHidden,
    FormatOpt,
    GlobalBatch,
    GradSyncOpt,
    Heads,
    Hidden,
    KvHeads,
    Layers,
    MicroBatch,
    Model,
    OffloadOpt,
    OptimizerOpt,
    Out,
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
from perfmodel.cli.paths import check_output_file
from perfmodel.cli.render import Format, emit_json, show
from perfmodel.sweeps.output import MAX_CONFIGS

PROGRESS_ROWS = 100_000  # the progress bar appears for grids this large (on a terminal; it is transient)
OUT_SUFFIXES = (".csv", ".parquet")


class Engine(str, enum.Enum):
    local = "local"
    dask = "dask"


GRID_HELP = ("the grid: 'key=v1,v2,...;key=...' (';' between keys, ',' between values). Keys: plan fields "
             "(devices, tp, pp, dp, micro_batch, global_batch, virtual_stages, seq, recompute, sequence_parallel, "
             "schedule, zero, dtype, grad_sync, overlap, optimizer, stack) and hardware numbers by dotted name "
             "(device.peak, device.memory.bandwidth, device.memory.capacity, fabric.link.bandwidth, "
             "fabric.link.latency, network.link.bandwidth, network.link.latency, network.nics_per_node, ...), "
             "with units: 'network.link.bandwidth=100 Gb/s,400 Gb/s'")
GridOpt = Annotated[str, typer.Option("--grid", help=GRID_HELP)]
EngineOpt = Annotated[Engine, typer.Option("--engine", help="local (numpy in this process) or dask (blocks of the "
                                           "grid on a dask.distributed cluster)")]
Scheduler = Annotated[Optional[str], typer.Option("--scheduler", help="dask scheduler address (tcp://host:8786); "
                                                  "implies --engine dask; default a local cluster")]
FitsOnly = Annotated[bool, typer.Option("--fits-only", help="keep only the valid configurations that fit in memory "
                                        "(in the table, the file and the csv/json rows)")]
MaxConfigs = Annotated[int, typer.Option("--max-configs", min=1, help="refuse grids of more configurations than "
                                         "this (about 260 bytes of memory each, plus the output)")]


def sweep(model: Model = ..., system: System = ..., grid: GridOpt = ..., out: Out = None,
          engine: EngineOpt = Engine.local, scheduler: Scheduler = None, devices: Devices = None, tp: Tp = None,
          pp: Pp = None, dp: Dp = None, micro_batch: MicroBatch = None, global_batch: GlobalBatch = None,
          seq: Seq = None, virtual_stages: VirtualStages = None, dtype: DtypeOpt = None,
          recompute: RecomputeOpt = None, sequence_parallel: SequenceParallel = None, schedule: ScheduleOpt = None,
          zero: Zero = None, grad_sync: GradSyncOpt = None, overlap: Overlap = None, stack: Stack = None,
          optimizer: OptimizerOpt = None, offload: OffloadOpt = None,
          shard_group: ShardGroup = None, layers: Layers = None, hidden: Hidden = None, heads: Heads = None,
          kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None,
          fits_only: FitsOnly = False, max_configs: MaxConfigs = MAX_CONFIGS,
          format: FormatOpt = Format.table, cp: Cp = None, ep: Ep = None) -> None:
    """Evaluate every configuration of a grid of plan and hardware values at once (numpy; millions of
    configurations per second): step time, breakdown, memory, fit, MFU, and for impossible
    configurations the reason instead. A plan flag fixes that field for every row. The table lists
    the runnable configurations first (valid and fitting, fastest first); files keep the grid order.
    Grids above --max-configs are refused before anything runs; rows are written in blocks.

    Formats: table (counts and the fastest configurations); json ({evaluated, valid, fit, rows});
    csv (every row: grid keys, derived devices/dp/global_batch/n_microbatches, step_time_s,
    breakdown_<part>_s, comm_total_s, memory_<part>_bytes, fits_in_memory, mfu, tokens_per_s, bound,
    reason). With --out the rows go to the file and this prints the summary.

    Example: perfmodel sweep --model gpt3-175b --system dgx-a100 --devices 1024 --global-batch 1536 --grid "tp=1,2,4,8;pp=1,2,4,8,16;micro_batch=1,2;recompute=none,selective" --out sweep.csv
    """
    from perfmodel.sweeps import evaluate, make_spec
    from perfmodel.sweeps.output import check_size
    from perfmodel.sweeps.progress import ProgressBar
    from perfmodel.workloads import load_model

    fixed, overrides = plan_and_overrides({k: v for k, v in locals().items() if k not in ("fits_only", "max_configs")})
    if out is not None:
        _check_out(out)
    n_rows = make_spec(grid, {}).n_rows  # checks the grid before anything is loaded
    check_size(n_rows, out.suffix.lower().lstrip(".") if out is not None else format.value, max_configs)
    chosen = Engine.dask if scheduler is not None else engine
    with ProgressBar(n_rows >= PROGRESS_ROWS and sys.stderr.isatty()) as bar:
        ev = evaluate(load_model(model, **overrides), system, grid, engine=chosen.value, scheduler=scheduler,
                      progress=bar, **fixed)
        _emit(ev, format, out, fits_only, bar)


def _emit(ev, fmt: Format, out: Optional[Path], fits_only: bool, bar) -> None:
    """The rows to the file (streamed in blocks), and the summary or the rows to stdout."""
    from perfmodel.sweeps.output import records, runnable_first, selected_rows, summary, write_file, write_rows
    from perfmodel.sweeps.summary import SHOWN, SweepSummary

    counts = summary(ev)
    rows = selected_rows(ev, fits_only)
    n_out = ev.n_rows if rows is None else len(rows)
    if out is not None:
        write_file(ev, out, rows, bar.phase("write", n_out))
    if fmt == Format.json and out is None:
        write_rows(ev, sys.stdout, "json", rows, head=counts, advance=bar.phase("write", n_out))
    elif fmt == Format.json:
        best = records(ev.to_frame(runnable_first(ev, 1, fits_only=True)))
        emit_json({**counts, "out": str(out), "best": best[0] if best else None})
    elif fmt == Format.csv and out is None:
        write_rows(ev, sys.stdout, "csv", rows, advance=bar.phase("write", n_out))
    else:
        bar.__exit__()  # the table or summary line is printed on stdout; the bar is done
        top = ev.to_frame(runnable_first(ev, SHOWN, fits_only))
        shown = SweepSummary(top, tuple(ev.spec.keys), None if out is None else str(out), totals=counts,
                             reasons=_reason_counts(ev), fits_only=fits_only)
        if fmt == Format.csv:
            sys.stdout.write(shown.summary_csv())
        else:
            show(shown, fmt)


def _reason_counts(ev):
    import numpy as np
    import pandas as pd

    codes = ev.arrays["reason"]
    counts = np.bincount(codes[codes >= 0], minlength=len(ev.messages))
    return pd.Series(counts, index=list(ev.messages)).sort_values(ascending=False, kind="stable")


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
