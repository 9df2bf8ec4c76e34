"""``perfmodel sweep --model M --system S --grid "tp=1,2,4;pp=1,2"``: every configuration of a grid."""

from __future__ import annotations

import contextlib
import enum
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from perfmodel.cli.options import (
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
    OptimizerOpt,
    Out,
    Overlap,
    Pp,
    RecomputeOpt,
    ScheduleOpt,
    Seq,
    SequenceParallel,
    Stack,
    System,
    Tp,
    VirtualStages,
    Vocab,
    Zero,
    plan_and_overrides,
)
from perfmodel.cli.paths import check_output_file
from perfmodel.cli.render import Format, show

PROGRESS_ROWS = 2_000_000  # the progress bar appears for grids this large (on a terminal)
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


def sweep(model: Model = ..., system: System = ..., grid: GridOpt = ..., out: Out = None,
          engine: EngineOpt = Engine.local, scheduler: Scheduler = None, devices: Devices = None, tp: Tp = None,
          pp: Pp = None, dp: Dp = None, micro_batch: MicroBatch = None, global_batch: GlobalBatch = None,
          seq: Seq = None, virtual_stages: VirtualStages = None, dtype: DtypeOpt = None,
          recompute: RecomputeOpt = None, sequence_parallel: SequenceParallel = None, schedule: ScheduleOpt = None,
          zero: Zero = None, grad_sync: GradSyncOpt = None, overlap: Overlap = None, stack: Stack = None,
          optimizer: OptimizerOpt = None, layers: Layers = None, hidden: Hidden = None, heads: Heads = None,
          kv_heads: KvHeads = None, ffn_hidden: FfnHidden = None, vocab: Vocab = None,
          format: FormatOpt = Format.table) -> None:
    """Evaluate every configuration of a grid of plan and hardware values at once (numpy; millions of
    configurations per second): step time, breakdown, memory, fit, MFU, and for impossible
    configurations the reason instead. A plan flag fixes that field for every row.

    Formats: table (counts and the fastest configurations); json ({evaluated, valid, fit, rows});
    csv (every row: grid keys, derived devices/dp/global_batch/n_microbatches, step_time_s,
    breakdown_<part>_s, comm_total_s, memory_<part>_bytes, fits_in_memory, mfu, tokens_per_s, bound,
    reason). With --out the rows go to the file and this prints the summary.

    Example: perfmodel sweep --model gpt3-175b --system dgx-a100 --devices 1024 --global-batch 1536 --grid "tp=1,2,4,8;pp=1,2,4,8,16;micro_batch=1,2;recompute=none,selective" --out sweep.csv
    """
    from perfmodel.sweeps import evaluate, make_spec
    from perfmodel.sweeps.summary import SweepSummary
    from perfmodel.workloads import load_model

    fixed, overrides = plan_and_overrides(locals())
    if out is not None:
        _check_out(out)
    n_rows = make_spec(grid, {}).n_rows  # checks the grid before anything is loaded
    chosen = Engine.dask if scheduler is not None else engine
    progress = n_rows >= PROGRESS_ROWS and sys.stderr.isatty()
    ev = evaluate(load_model(model, **overrides), system, grid, engine=chosen.value, scheduler=scheduler,
                  progress=progress, **fixed)
    df = ev.to_frame()
    if out is not None:
        _write(df, out)
    summary = SweepSummary(df, tuple(ev.spec.keys), None if out is None else str(out))
    if format == Format.csv:
        sys.stdout.write(summary.summary_csv() if out is not None else df.to_csv(index=False))
    else:
        show(summary, format)


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


def _write(df, out: Path) -> None:
    """Write to a temporary file beside ``out`` and rename it: ``out`` appears complete or not at all."""
    from perfmodel.errors import PlanError

    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        if out.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    except OSError as exc:
        raise PlanError(f"--out: cannot write '{out}': {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
