"""Writing a calibrated system from nccl-tests output: :func:`calibrate_nccl` fits the level the
run spans (:func:`perfmodel.calibrate.nccl.fit_allreduce`), writes the system and link files, and
returns :class:`NcclCalibration` (the fit, the files, and the written file's own predictions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from perfmodel.calibrate._common import check_out_path, dump_toml, raw_spec, write_checked
from perfmodel.calibrate.nccl import (
    DEFAULT_MIN_SIZE,
    AllReduceFit,
    FitPoint,
    _hw,
    _points,
    fit_allreduce,
)
from perfmodel.calibrate.nccl_table import read_nccl
from perfmodel.errors import SpecError

__all__ = ["NcclCalibration", "calibrate_nccl"]


@dataclass(frozen=True)
class NcclCalibration:
    """A fit and the files written; ``points`` are predictions of the written file itself."""

    fit: AllReduceFit
    source_file: str
    system_file: str
    link_file: str
    points: tuple[FitPoint, ...]

    CSV_COLUMNS = ("size_bytes", "measured_time_s", "predicted_time_s", "measured_busbw_Bps", "predicted_busbw_Bps",
                   "error", "in_fit")

    def to_rows(self) -> list[dict]:
        """One CSV row per message size (:attr:`CSV_COLUMNS`)."""
        return [p.to_dict() for p in self.points]

    def __rich__(self):
        from perfmodel.calibrate.render import nccl_view

        return nccl_view(self)

    @property
    def mean_abs_error(self) -> float:
        fitted = [p for p in self.points if p.in_fit]
        return sum(abs(p.error) for p in fitted) / len(fitted)

    def to_dict(self) -> dict:
        f = self.fit
        return {
            "source_file": self.source_file, "system": f.system, "written": [self.system_file, self.link_file],
            "level": f.level, "link": f.link, "n_gpus": f.n_gpus, "n_nodes": f.n_nodes,
            "devices_per_node": f.devices_per_node,
            "fitted": {"latency_s": f.latency_s, "efficiency": f.efficiency,
                       "bandwidth_per_device_Bps": f.bandwidth_per_device},
            "kept": {"link_bandwidth_Bps": f.link_bandwidth},
            # False: "efficiency" was not fitted (any value in efficiency_range fits as well; see warnings)
            "efficiency_identifiable": f.efficiency_identifiable,
            "efficiency_range": list(f.efficiency_range) if f.efficiency_range else None,
            "fit_min_size_bytes": f.min_size, "fit_max_size_bytes": None if math.isinf(f.max_size) else f.max_size,
            # the written file holds for this size range only (the others are reported, not fitted)
            "valid_from_bytes": f.min_size, "valid_to_bytes": None if math.isinf(f.max_size) else f.max_size,
            "out_of_range": f.out_of_range,
            "n_fit_points": sum(p.in_fit for p in self.points),
            "mean_abs_error": self.mean_abs_error,
            "max_abs_error": max(abs(p.error) for p in self.points if p.in_fit),
            "error_definition": "predicted / measured all-reduce bus bandwidth - 1 (out-of-place)",
            "points": [p.to_dict() for p in self.points], "warnings": list(f.warnings),
        }


def _fmt_sizes(fit: AllReduceFit) -> str:
    from perfmodel.units import format_quantity

    sizes = [p.size_bytes for p in fit.fitted]
    return (f"{len(sizes)} sizes {format_quantity(min(sizes), 'bytes', binary=True)}.."
            f"{format_quantity(max(sizes), 'bytes', binary=True)}")


def calibrate_nccl(file: Path | str, system: str, out: Path | str, *, n_gpus: int | None = None,
                   min_size: float = DEFAULT_MIN_SIZE, max_size: float = math.inf) -> NcclCalibration:
    """Fit the level of ``system`` that the all_reduce_perf run in ``file`` spans; write ``out``.

    ``system`` is a bundled system name or a system file. Writes ``out`` (a system file whose name
    is the file's stem) and ``<stem>-<link>.toml`` next to it (the level's link with the fitted
    latency). Nothing is written when anything fails.
    """
    table = read_nccl(file)
    data, _, spec = raw_spec(system, ("system",))
    out = check_out_path(out)
    fit = fit_allreduce(table, spec, n_gpus=n_gpus, min_size=min_size, max_size=max_size)

    how = (f"perfmodel calibrate nccl: least-squares fit (relative error of the out-of-place time) of perfmodel's "
           f"data-parallel all-reduce (perfmodel.prediction.step.data_parallel_allreduce_time; the fit: "
           f"perfmodel.calibrate.nccl) to {file} (nccl-tests all_reduce_perf, {fit.n_gpus} GPUs "
           f"= {fit.n_nodes} node(s) x {min(fit.n_gpus, fit.devices_per_node)}; {_fmt_sizes(fit)})")
    level = data[fit.level]
    link_data, _, _ = raw_spec(level["link"], ("link",))
    link_name = f"{out.stem}-{link_data['name']}"
    old_eff = level.get("efficiency")
    before = f"{old_eff['value']} ({old_eff['source']})" if old_eff else "100 % (no efficiency given)"
    if fit.efficiency_identifiable:
        level["efficiency"] = {
            "value": f"{fit.efficiency * 100:.4g} %", "source": how,
            "note": f"mean |busbw error| {fit.mean_abs_error * 100:.1f} % over the fitted sizes; before calibration "
                    + before,
        }
    elif fit.efficiency != getattr(spec, fit.level).efficiency:
        lo, hi = fit.efficiency_range
        level["efficiency"] = {  # 6 digits: the rounded value stays inside the interval
            "value": f"{fit.efficiency * 100:.6g} %",
            "source": (f"{how}: not identifiable, every value in [{lo * 100:.4g} %, {hi * 100:.4g} %] predicts the "
                       f"same times; this is the end of that interval nearest the value before calibration"),
            "note": "before calibration " + before,
        }
    # else: not identifiable and the system's own value fits as well as any: left as it was
    level["link"] = f"{link_name}.toml"
    data["name"] = out.stem
    fitted_what = f"{fit.level} efficiency and {fit.link} latency" if fit.efficiency_identifiable else (
        f"{fit.link} latency ({fit.level} efficiency not identifiable)")
    data["description"] = f"{data['description']} -- calibrated: {fitted_what} fitted to {Path(file).name}"
    old_lat = link_data["latency"]
    link_data["name"] = link_name
    link_data["description"] = f"{link_data['description']} -- latency calibrated from {Path(file).name}"
    link_data["latency"] = {
        "value": f"{fit.latency_s * 1e6:.4g} us", "source": how,
        "note": (f"an effective per-step latency of the {fit.level} in the fitted size range (all-reduces of >= "
                 f"{fit.min_size:.0f} B), not a wire delay nor NCCL's small-message latency; "
                 f"before calibration {old_lat['value']} ({old_lat['source']})"),
    }
    header = f"# Written by `perfmodel calibrate nccl {file} --system {system}`; see each value's source.\n"
    link_file = f"{link_name}.toml"
    loaded = write_checked({out.name: dump_toml(data, header), link_file: dump_toml(link_data, header)},
                           out.name, out.parent)
    if loaded.kind != "system":  # pragma: no cover - the copy keeps kind = "system"
        raise SpecError(f"{out}: expected a system spec")
    points = _points(_hw(loaded), fit.n_gpus, table.rows, min_size, max_size)
    return NcclCalibration(fit=fit, source_file=str(file), system_file=str(out),
                           link_file=str(out.parent / link_file), points=points)
