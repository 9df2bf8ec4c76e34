"""``perfmodel calibrate nccl | gemm``: calibrated hardware files from your own measurements."""

from __future__ import annotations

import math
from typing import Optional

import typer

from perfmodel.cli.render import Format, emit_json, emit_rows

app = typer.Typer(help="Write calibrated hardware files from your own measurements (nccl-tests output, GEMM "
                  "sweeps) and report the fit error.", no_args_is_help=True)

FORMAT = typer.Option(Format.table, "--format", help="table (default), json (one object: fitted values, files "
                      "written, summary, every point) or csv (one row per point)")
NCCL_COLUMNS = ["size_bytes", "measured_time_s", "predicted_time_s", "measured_busbw_Bps", "predicted_busbw_Bps",
                "error", "in_fit"]
GEMM_COLUMNS = ["dtype", "m", "n", "k", "flops", "measured_flops_per_s", "fraction_of_peak", "before_flops_per_s",
                "error_before", "after_flops_per_s", "error_after"]


def _size(text: str, flag: str) -> float:
    from perfmodel.errors import UnitError
    from perfmodel.units import parse_quantity

    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        return parse_quantity(text, "bytes")
    except UnitError as exc:
        raise UnitError(f"{flag}: {exc}") from None


@app.command("nccl")
def nccl(file: str = typer.Argument(..., help="a saved nccl-tests all_reduce_perf output (text)"),
         system: str = typer.Option(..., "--system", help="the bundled system (or system file) the run is closest "
                                    "to; the calibrated file is a copy of it"),
         out: str = typer.Option(..., "--out", help="the calibrated system file to write (.toml; its stem is the "
                                 "system's name); the level's link goes next to it as <stem>-<link>.toml"),
         gpus: Optional[int] = typer.Option(None, "--gpus", min=2, max=10**7, help="GPUs (ranks) in the run; "
                                            "default: the '#  Rank' lines, else implied by busbw / algbw"),
         min_size: str = typer.Option("16MiB", "--min-size", help="smallest message size fitted (e.g. 64MiB)"),
         max_size: Optional[str] = typer.Option(None, "--max-size", help="largest message size fitted "
                                                "(default: no limit)"),
         format: Format = FORMAT) -> None:
    """Fit latency and collective efficiency of the system level the all-reduce run spans (the fabric
    within a node, the network across nodes) and write a calibrated copy of the system. Every message size
    is reported: measured vs predicted bus bandwidth and the error (predicted / measured - 1)."""
    from perfmodel.calibrate.nccl import calibrate_nccl
    from perfmodel.errors import UnitError

    low = _size(min_size, "--min-size")
    high = _size(max_size, "--max-size") if max_size is not None else math.inf
    if high < low:
        raise UnitError(f"--max-size {max_size} is below --min-size {min_size}")
    result = calibrate_nccl(file, system, out, n_gpus=gpus, min_size=low, max_size=high)
    if format == Format.json:
        emit_json(result.to_dict())
    elif format == Format.csv:
        emit_rows([p.to_dict() for p in result.points], format, columns=NCCL_COLUMNS)
    else:
        _nccl_table(result)


def _nccl_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from perfmodel.units import format_quantity as q

    f = result.fit
    console = Console()
    head = Table(title=f"calibrated {f.level} of {f.system} from {result.source_file}", show_header=False)
    head.add_column("", style="bold")
    head.add_column("")
    head.add_row("run", f"{f.n_gpus} GPUs = {f.n_nodes} node(s) x {min(f.n_gpus, f.devices_per_node)}")
    head.add_row("fitted latency", f"{q(f.latency_s, 'time', digits=4)} per ring step ({f.link} link latency)")
    head.add_row("fitted efficiency", f"{f.efficiency * 100:.4g} % of the {f.link} bandwidth")
    head.add_row("bandwidth per device", f"{q(f.bandwidth_per_device, 'bandwidth', digits=4)} (kept: {f.link} "
                 f"{q(f.link_bandwidth, 'bandwidth', digits=4)} per direction)")
    high = "" if math.isinf(f.max_size) else f"..{q(f.max_size, 'bytes', binary=True)}"
    head.add_row("fitted sizes", f">= {q(f.min_size, 'bytes', binary=True)}{high}: {len(f.fitted)} points, mean "
                 f"|error| {result.mean_abs_error * 100:.1f} %")
    head.add_row("written", f"{result.system_file}, {result.link_file}")
    console.print(head)
    table = Table(caption="error = predicted / measured bus bandwidth - 1; * = fitted; (in parentheses) = outside "
                          "the fitted sizes, where the written file does not hold", caption_justify="left")
    for col in ("size", "measured", "predicted", "busbw measured", "busbw predicted", "error"):
        table.add_column(col, justify="right")
    for p in result.points:
        table.add_row(q(p.size_bytes, "bytes", binary=True), q(p.measured_time_s, "time"),
                      q(p.predicted_time_s, "time"), q(p.measured_busbw, "bandwidth"),
                      q(p.predicted_busbw, "bandwidth"),
                      f"{p.error * 100:+.1f} % *" if p.in_fit else f"({p.error * 100:+.1f} %)")
    console.print(table)
    for w in f.warnings:
        console.print(f"warning: {w}", highlight=False, markup=False)
    if f.out_of_range:
        console.print(f"note: {f.out_of_range}", highlight=False, markup=False)


@app.command("gemm")
def gemm(file: str = typer.Argument(..., help="a GEMM sweep CSV: dtype,m,n,k,tflops_median[,ms_median,...]"),
         device: str = typer.Option(..., "--device", help="the bundled device (or device file) that was measured; "
                                    "the calibrated file is a copy of it"),
         out: str = typer.Option(..., "--out", help="the calibrated device file to write (.toml; its stem is the "
                                 "device's name)"),
         format: Format = FORMAT) -> None:
    """Write a copy of the device whose GEMM curves are the sweep's points, and report the error of the
    device's GEMM curve (interpolated in log FLOPs) against every point, before and after."""
    from perfmodel.calibrate.gemm import calibrate_gemm

    result = calibrate_gemm(file, device, out)
    if format == Format.json:
        emit_json(result.to_dict())
    elif format == Format.csv:
        emit_rows([p.to_dict() for p in result.points], format, columns=GEMM_COLUMNS)
    else:
        _gemm_table(result)


def _gemm_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"GEMM curve of {result.device} vs {result.source_file}",
                  caption="error = curve / measured - 1; before: the device as it was, after: the written file; "
                          "excluded: at the sweep's timing floor (launch-bound), left out of the curve and of the "
                          "mean errors", caption_justify="left")
    for col in ("dtype", "m", "n", "k", "measured", "of peak", "before", "error", "after", "error"):
        table.add_column(col, justify="right")
    for p in result.points:
        before, after = ((f"{p.error_before * 100:+.1f} %", f"{p.error_after * 100:+.1f} %") if p.in_curve
                         else ("excluded", "excluded"))
        table.add_row(p.dtype, str(p.m), str(p.n), str(p.k), f"{p.measured / 1e12:.4g} TFLOP/s",
                      f"{p.measured / p.peak * 100:.1f} %", f"{p.before / 1e12:.4g}", before,
                      f"{p.after / 1e12:.4g}", after)
    console.print(table)
    summary = Table(title="mean |error|")
    for col in ("dtype", "points", "before", "after", "max after"):
        summary.add_column(col, justify="right")
    for row in result.summary():
        summary.add_row(row["dtype"], str(row["n_points"]), f"{row['mean_abs_error_before'] * 100:.1f} %",
                        f"{row['mean_abs_error_after'] * 100:.1f} %", f"{row['max_abs_error_after'] * 100:.1f} %")
    console.print(summary)
    console.print(f"wrote {result.device_file}", highlight=False, markup=False)
