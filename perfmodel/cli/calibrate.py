"""``perfmodel calibrate nccl | gemm``: calibrated hardware files from your own measurements."""

from __future__ import annotations

import math
from typing import Annotated, Optional

import typer

from perfmodel.cli.options import FormatOpt, System
from perfmodel.cli.render import Format, show

app = typer.Typer(help="Write calibrated hardware files from your own measurements (nccl-tests output, GEMM "
                  "sweeps) and report the fit error.", no_args_is_help=True)

CalibratedOut = Annotated[str, typer.Option("--out", help="the calibrated file to write (.toml; its stem is the "
                                            "spec's name)")]
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
         system: System = ..., out: CalibratedOut = ...,
         gpus: Optional[int] = typer.Option(None, "--gpus", min=2, max=10**7, help="GPUs (ranks) in the run; "
                                            "default: the '#  Rank' lines, else implied by busbw / algbw"),
         min_size: str = typer.Option("16MiB", "--min-size", help="smallest message size fitted (e.g. 64MiB)"),
         max_size: Optional[str] = typer.Option(None, "--max-size", help="largest message size fitted "
                                                "(default: no limit)"),
         format: FormatOpt = Format.table) -> None:
    """Fit latency and collective efficiency of the system level the all-reduce run spans (the fabric
    within a node, the network across nodes) and write a calibrated copy of the system. Every message size
    is reported: measured vs predicted bus bandwidth and the error (predicted / measured - 1). --system is
    the system the run is closest to; the calibrated file is a copy of it, and the level's link goes next
    to it as <stem>-<link>.toml.

    Formats: table; json (one object: fitted values, files written, summary, every point); csv (one row
    per point).
    """
    from perfmodel.calibrate.nccl_write import calibrate_nccl
    from perfmodel.errors import UnitError

    low = _size(min_size, "--min-size")
    high = _size(max_size, "--max-size") if max_size is not None else math.inf
    if high < low:
        raise UnitError(f"--max-size {max_size} is below --min-size {min_size}")
    result = calibrate_nccl(file, system, out, n_gpus=gpus, min_size=low, max_size=high)
    show(result, format)


@app.command("gemm")
def gemm(file: str = typer.Argument(..., help="a GEMM sweep CSV: dtype,m,n,k,tflops_median[,ms_median,...]"),
         device: str = typer.Option(..., "--device", help="the bundled device (or device file) that was measured; "
                                    "the calibrated file is a copy of it"),
         out: CalibratedOut = ...,
         format: FormatOpt = Format.table) -> None:
    """Write a copy of the device whose GEMM curves are the sweep's points, and report the error of the
    device's GEMM curve (interpolated in log FLOPs) against every point, before and after.

    Formats: table; json (one object: fitted values, files written, summary, every point); csv (one row
    per point).
    """
    from perfmodel.calibrate.gemm import calibrate_gemm

    result = calibrate_gemm(file, device, out)
    show(result, format)
