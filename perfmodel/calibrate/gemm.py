r"""Calibrate a device's GEMM curves from a measured GEMM sweep (CSV), and report the curve's fit error.

**Input**: a CSV with a header and one row per measured GEMM C[m, n] = A[m, k] B[k, n], like the
project's ``perfmodel/data/validation/h100/gemm.csv``. Required columns ``dtype`` (fp64 fp32 tf32
bf16 fp16 fp8 int8), ``m``, ``n``, ``k`` (positive integers) and ``tflops_median`` (TFLOP/s,
1e12 FLOP/s, with FLOPs = 2 m n k); ``ms_median``, if present, must agree with it within 5 %
(catches a column in the wrong unit). Other columns (``ms_min``, ``source``, ...) are ignored. A
rate above the device's dense datasheet peak is refused: no dense GEMM exceeds it, so such a row
is a unit or dtype mistake.

**Output**: a copy of the device spec whose ``[gemm.<dtype>]`` tables, for the dtypes in the
sweep, hold exactly the sweep's points (``source`` = the CSV); other dtypes' tables are kept.

**The fit error** is that of :func:`perfmodel.prediction.hardware.gemm_curve`, the curve predictions
use: piecewise linear in log FLOPs through the points (points of equal FLOPs averaged), capped at
the dense peak. Per sweep point: curve rate / measured rate - 1, for the device as it was
(``before``: its own points, or the datasheet peak) and for the written copy (``after``: nonzero
only where shapes of equal FLOPs run at different rates, which a FLOPs-only curve cannot tell
apart).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from perfmodel.calibrate._common import (
    MeasurementError,
    check_out_path,
    dump_toml,
    raw_spec,
    read_text,
    write_checked,
)
from perfmodel.specs.schema import DTYPES

__all__ = ["GemmMeasurement", "GemmFitPoint", "GemmCalibration", "read_gemm_sweep", "calibrate_gemm", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("dtype", "m", "n", "k", "tflops_median")
TIME_TOLERANCE = 0.05  # ms_median vs tflops_median: rounding of the printed values is far below this


@dataclass(frozen=True)
class GemmMeasurement:
    line: int
    dtype: str
    m: int
    n: int
    k: int
    flops_per_s: float
    rate_text: str  # the TFLOP/s as written in the CSV, copied into the spec unchanged

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k


@dataclass(frozen=True)
class GemmFitPoint:
    dtype: str
    m: int
    n: int
    k: int
    measured: float    # FLOP/s
    peak: float        # dense datasheet FLOP/s
    before: float      # the device's curve as it was
    after: float       # the calibrated curve
    in_curve: bool = True  # False: at the sweep's timing floor, left out of the curve (gemm_curve)

    @property
    def error_before(self) -> float:
        return self.before / self.measured - 1

    @property
    def error_after(self) -> float:
        return self.after / self.measured - 1

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "m": self.m, "n": self.n, "k": self.k, "flops": 2.0 * self.m * self.n * self.k,
                "measured_flops_per_s": self.measured, "fraction_of_peak": self.measured / self.peak,
                "before_flops_per_s": self.before, "error_before": self.error_before,
                "after_flops_per_s": self.after, "error_after": self.error_after, "in_curve": self.in_curve}


def _mean_abs(values) -> float:
    values = list(values)
    return sum(abs(v) for v in values) / len(values)


@dataclass(frozen=True)
class GemmCalibration:
    device: str
    source_file: str
    device_file: str
    points: tuple[GemmFitPoint, ...]

    CSV_COLUMNS = ("dtype", "m", "n", "k", "flops", "measured_flops_per_s", "fraction_of_peak", "before_flops_per_s",
                   "error_before", "after_flops_per_s", "error_after")

    def to_rows(self) -> list[dict]:
        """One CSV row per measured point (:attr:`CSV_COLUMNS`)."""
        return [p.to_dict() for p in self.points]

    def __rich__(self):
        from perfmodel.calibrate.render import gemm_view

        return gemm_view(self)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.dtype for p in self.points))

    def summary(self) -> list[dict]:
        rows = []
        for dtype in (*self.dtypes, "all"):
            every = [p for p in self.points if dtype in ("all", p.dtype)]
            pts = [p for p in every if p.in_curve] or every
            rows.append({"dtype": dtype, "n_points": len(pts), "n_at_timing_floor": len(every) - len(pts),
                         "mean_abs_error_before": _mean_abs(p.error_before for p in pts),
                         "mean_abs_error_after": _mean_abs(p.error_after for p in pts),
                         "max_abs_error_after": max(abs(p.error_after) for p in pts)})
        return rows

    def to_dict(self) -> dict:
        return {"source_file": self.source_file, "device": self.device, "written": [self.device_file],
                "error_definition": "curve rate / measured rate - 1 (perfmodel.prediction.hardware.gemm_curve)",
                "summary": self.summary(), "points": [p.to_dict() for p in self.points]}


def read_gemm_sweep(path: Path | str) -> tuple[tuple[GemmMeasurement, ...], tuple[str, ...]]:
    """(measurements, distinct values of the optional ``source`` column) of a GEMM sweep CSV."""
    file = str(path)
    text = read_text(path, "a GEMM sweep CSV")
    reader = csv.reader(io.StringIO(text))
    header = None
    out, sources = [], {}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a field over csv.field_size_limit() (128 KiB), a NUL byte, ...
            raise MeasurementError(f"{file}:{reader.line_num}: not a readable CSV line ({exc})") from None
        no = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if header is None:
            header = [f.strip() for f in fields]
            twice = sorted({c for c in header if header.count(c) > 1})
            if twice:
                raise MeasurementError(f"{file}:{no}: column(s) {', '.join(twice)} given twice; which one is "
                                       f"meant? (got {', '.join(header)})")
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise MeasurementError(f"{file}:{no}: missing column(s) {', '.join(missing)}; a GEMM sweep needs "
                                       f"{', '.join(REQUIRED_COLUMNS)} (got {', '.join(header)})")
            continue
        if len(fields) != len(header):
            raise MeasurementError(f"{file}:{no}: expected {len(header)} fields ({','.join(header)}), got "
                                   f"{len(fields)}: {_content(fields)}")
        row = dict(zip(header, (f.strip() for f in fields)))
        out.append(_measurement(row, file, no, fields))
        if row.get("source"):
            sources[row["source"]] = None
    if header is None:
        raise MeasurementError(f"{file}: is empty; expected a CSV with columns {', '.join(REQUIRED_COLUMNS)}")
    if not out:
        raise MeasurementError(f"{file}: has a header but no data rows")
    return tuple(out), tuple(sources)


def _content(fields) -> str:
    """The row for an error message: quoted, and cut to 160 characters."""
    line = ",".join(fields)
    return repr(line if len(line) <= 160 else line[:157] + "...")


# the largest GEMM dimension accepted (a 10^9 x 10^9 matrix is already 10^18 elements)
MAX_DIM = 10**9


def _measurement(row: dict, file: str, no: int, fields) -> GemmMeasurement:
    content = _content(fields)
    if row["dtype"] not in DTYPES:
        raise MeasurementError(f"{file}:{no}: dtype {_content([row['dtype']])} is not one of {', '.join(DTYPES)}: {content}")
    dims = []
    for col in ("m", "n", "k"):
        # at most MAX_DIM: longer digit strings are refused before int() (over 4300 digits it raises)
        if not re.fullmatch(r"\d{1,12}", row[col]) or not 0 < int(row[col]) <= MAX_DIM:
            raise MeasurementError(f"{file}:{no}: column '{col}' must be a positive integer up to {MAX_DIM}, got "
                                   f"{_content([row[col]])}: {content}")
        dims.append(int(row[col]))
    rate = _positive(row, "tflops_median", file, no, content)
    flops = 2.0 * dims[0] * dims[1] * dims[2]
    if row.get("ms_median"):
        ms = _positive(row, "ms_median", file, no, content)
        implied = flops / (ms * 1e-3) / 1e12
        if abs(implied / rate - 1) > TIME_TOLERANCE:
            raise MeasurementError(f"{file}:{no}: tflops_median {rate:g} disagrees with 2 m n k / ms_median = "
                                   f"{implied:.4g} TFLOP/s (more than {TIME_TOLERANCE:.0%}): {content}")
    return GemmMeasurement(no, row["dtype"], *dims, rate * 1e12, row["tflops_median"])


def _positive(row, col, file, no, content) -> float:
    try:
        value = float(row[col])
    except ValueError:
        raise MeasurementError(f"{file}:{no}: column '{col}' is not a number ({row[col]!r}): {content}") from None
    if not math.isfinite(value) or value <= 0:
        raise MeasurementError(f"{file}:{no}: column '{col}' must be a positive number, got {row[col]!r}: {content}")
    return value


def calibrate_gemm(file: Path | str, device: str, out: Path | str) -> GemmCalibration:
    """Write a copy of ``device`` with the sweep's GEMM points; report the curve error before and after."""
    from perfmodel.errors import MissingSpecError
    from perfmodel.prediction.hardware import gemm_curve, timing_floor_time

    measurements, csv_sources = read_gemm_sweep(file)
    data, _, spec = raw_spec(device, ("cpu", "gpu", "xpu"))
    out = check_out_path(out)
    for g in measurements:
        if g.dtype not in spec.peak_flops_per_s:
            raise MissingSpecError(f"{file}:{g.line}: device '{spec.name}' has no dense peak for {g.dtype} "
                                   f"(has {', '.join(spec.peak_flops_per_s)}); the GEMM curve is capped at that peak")
        if g.flops_per_s > spec.peak(g.dtype) * 1.0005:
            raise MeasurementError(f"{file}:{g.line}: {g.rate_text} TFLOP/s {g.dtype} is above the dense peak "
                                   f"{spec.peak(g.dtype) / 1e12:g} TFLOP/s of '{spec.name}' (wrong unit, dtype or device?)")

    gemm = data.setdefault("gemm", {})
    said = f"; the file's source column: {'; '.join(csv_sources)}" if csv_sources else ""
    for dtype in dict.fromkeys(g.dtype for g in measurements):
        rows = [g for g in measurements if g.dtype == dtype]
        gemm[dtype] = {
            "source": f"{file}: {len(rows)} {dtype} GEMMs (columns m, n, k, tflops_median), written by "
                      f"perfmodel calibrate gemm{said}",
            "points": [[g.m, g.n, g.k, f"{g.rate_text} TFLOP/s"] for g in rows],
        }
    data["name"] = out.stem
    data["description"] = f"{data['description']} -- GEMM curves calibrated from {Path(file).name}"
    header = f"# Written by `perfmodel calibrate gemm {file} --device {device}`; see each value's source.\n"
    loaded = write_checked({out.name: dump_toml(data, header)}, out.name, out.parent)

    curves = {}
    points = []
    for g in measurements:
        if g.dtype not in curves:
            curves[g.dtype] = (gemm_curve(spec, g.dtype), gemm_curve(loaded, g.dtype),
                               timing_floor_time(loaded.gemm.get(g.dtype, ())))
        before, after, floor = curves[g.dtype]
        points.append(GemmFitPoint(g.dtype, g.m, g.n, g.k, g.flops_per_s, spec.peak(g.dtype),
                                   float(before.rate(g.flops)), float(after.rate(g.flops)),
                                   in_curve=g.flops / g.flops_per_s > floor))
    return GemmCalibration(device=spec.name, source_file=str(file), device_file=str(out), points=tuple(points))
