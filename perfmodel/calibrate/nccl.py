r"""Calibrate one collective level of a system from nccl-tests ``all_reduce_perf`` output.

**Which level.** A run of n GPUs on a system with d devices per node spans the intra-node fabric
when n <= d, and the inter-node network when n > d (then n must be a whole number of nodes). Only
that level is calibrated; the other keeps its spec values.

**The model** is the one :mod:`perfmodel.predict` uses for a data-parallel group of n GPUs
(tp = pp = 1; ranks fill a node first): :func:`allreduce_time`, the two-level ring
:func:`perfmodel.formulas.collectives.hierarchical_allreduce_time` with (alpha, beta) of
each level from :func:`perfmodel.predict.hardware.intra_node_level` and
:func:`~perfmodel.predict.hardware.inter_node_level` (for n <= d the inter-node terms vanish and
it is the ring all-reduce over the fabric).

**What is fitted.** Two numbers of the spanned level, from the out-of-place times:

* its latency :math:`\alpha` (s per ring step): the level's *link latency*;
* its ``efficiency`` :math:`\eta` (0 < eta <= 1): the achieved fraction of link bandwidth, so
  the level's per-device bandwidth is (datasheet link bandwidth) x (links or NIC share) x eta.

The *link bandwidth* is kept at its datasheet value: in the model only the product bandwidth x
efficiency appears, so fitting the bandwidth and the efficiency separately would be fitting one
number twice; the fitted per-device bandwidth is reported. The predicted time is affine in
alpha and 1/eta, so the fit is a linear least-squares problem, solved exactly with the bounds
alpha >= 1 ns and eta <= 1. The residual of a message size is its relative time error
(predicted / measured - 1, i.e. minus the relative busbw error), so a 64 KiB point and a 16 GiB
point weigh the same.

**Which sizes.** By default those of at least 16 MiB (``min_size``): below that NCCL runs its
low-latency protocols and kernel-launch costs dominate, which one alpha-beta ring does not
describe (fitting them too pulls the large-message bandwidth off by 15-20 % on the AWS p4de
sweep), while the smallest all-reduce perfmodel's data-parallel sync issues is the 25 MiB DDP
bucket (perfmodel.predict.step.DDP_BUCKET_BYTES). Every size is still reported with its error.
Consequently the fitted alpha is an *effective* per-step latency of the bandwidth regime (it
includes NCCL's pipeline fill), not the small-message latency.

**The written files.** A system file that copies the named system with the level's
``efficiency`` replaced, and a link file next to it that copies the level's link with its
``latency`` replaced (the system grammar has no latency of its own: hardware/README.md); the
system refers to that link by its file name, everything else by the names it had. Each replaced
value's ``source`` names the nccl-tests file and the fit; its ``note`` keeps the old value.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from perfmodel.calibrate._common import MeasurementError, check_out_path, dump_toml, raw_spec, write_checked
from perfmodel.calibrate.nccl_table import NcclRow, NcclTable, parse_nccl, read_nccl
from perfmodel.errors import PlanError, SpecError

__all__ = ["parse_nccl", "read_nccl", "NcclTable", "NcclRow", "allreduce_time", "ranks_from_busbw",
           "FitPoint", "AllReduceFit", "fit_allreduce", "NcclCalibration", "calibrate_nccl", "DEFAULT_MIN_SIZE"]

DEFAULT_MIN_SIZE = 16 * 2**20
MIN_LATENCY = 1e-9  # a link file's latency must be positive (hardware/README.md)
_LEVEL_FIELDS = {"fabric": ("fabric_latency", "fabric_efficiency"),
                 "network": ("network_latency", "network_efficiency")}


def _hw(system):
    from perfmodel.predict.hardware import hw_params

    peaks = system.device.peak_flops_per_s
    return hw_params(system, "bf16" if "bf16" in peaks else next(iter(peaks)))


def allreduce_time(hw, n_gpus, size):
    """One all-reduce of ``size`` bytes over a data-parallel group of ``n_gpus``, as perfmodel.predict
    times it (tp = 1: ranks fill a node first; perfmodel.predict.step ``_levels`` / ``_dp_allreduce``).

    ``hw`` is a :class:`perfmodel.predict.hardware.HwParams`; ``size`` may be a numpy array.
    """
    from perfmodel.formulas import collectives
    from perfmodel.predict.hardware import inter_node_level, intra_node_level

    per_node = hw.devices_per_node
    local = min(n_gpus, per_node)
    ia, ib = intra_node_level(hw, local, max(per_node / local, 1))
    ea, eb = inter_node_level(hw, per_node)
    return collectives.hierarchical_allreduce_time(n_gpus / local, local, size, ia, ib, ea, eb)


def ranks_from_busbw(rows) -> int | None:
    """The rank count n that the table's busbw / algbw = 2(n-1)/n implies, or None if it is ambiguous.

    Uses rows with algbw >= 1 GB/s (two decimals are then enough); n is accepted only if it, and
    neither n - 1 nor n + 1, matches every such row within the printing precision.
    """
    usable = [r for r in rows if r.algbw >= 1e9]
    if not usable:
        return None
    ratio = statistics.median(r.busbw / r.algbw for r in usable)
    if not 0 < ratio < 2:
        return None

    def fits(n):
        f = 2 * (n - 1) / n
        return all(abs(r.busbw - r.algbw * f) <= 0.005e9 * (1 + f) * 1.01 for r in usable)

    n = round(2 / (2 - ratio))
    if n < 2 or not fits(n) or fits(n - 1) or fits(n + 1):
        return None
    return n


@dataclass(frozen=True)
class FitPoint:
    """One message size: measured and predicted out-of-place time and bus bandwidth."""

    size_bytes: int
    measured_time_s: float
    predicted_time_s: float
    measured_busbw: float   # B/s, S / t x 2(n-1)/n (nccl-tests' definition)
    predicted_busbw: float
    in_fit: bool

    @property
    def error(self) -> float:
        """predicted / measured bus bandwidth - 1."""
        return self.predicted_busbw / self.measured_busbw - 1

    def to_dict(self) -> dict:
        return {"size_bytes": self.size_bytes, "measured_time_s": self.measured_time_s,
                "predicted_time_s": self.predicted_time_s, "measured_busbw_Bps": self.measured_busbw,
                "predicted_busbw_Bps": self.predicted_busbw, "error": self.error, "in_fit": self.in_fit}


@dataclass(frozen=True)
class AllReduceFit:
    """The fitted latency and efficiency of one level, and the fit's error at every size."""

    system: str
    level: str                  # "fabric" or "network"
    link: str                   # the level's link spec name
    n_gpus: int
    n_nodes: int
    devices_per_node: int
    latency_s: float
    efficiency: float
    link_bandwidth: float       # datasheet, per direction, B/s (kept)
    bandwidth_per_device: float  # the level's beta in the model after efficiency and sharing, B/s
    min_size: float
    max_size: float
    points: tuple[FitPoint, ...]
    warnings: tuple[str, ...] = ()

    @property
    def fitted(self) -> tuple[FitPoint, ...]:
        return tuple(p for p in self.points if p.in_fit)

    @property
    def mean_abs_error(self) -> float:
        return sum(abs(p.error) for p in self.fitted) / len(self.fitted)

    @property
    def max_abs_error(self) -> float:
        return max(abs(p.error) for p in self.fitted)


def _resolve_ranks(table: NcclTable, system, n_gpus: int | None) -> int:
    from_busbw = ranks_from_busbw(table.rows)
    n = n_gpus or table.n_ranks or from_busbw
    if n is None:
        raise MeasurementError(f"{table.file}: cannot tell how many GPUs the run used (no '#  Rank' lines, and "
                               f"busbw/algbw does not settle it); pass --gpus N")
    if table.n_ranks and n != table.n_ranks:
        raise PlanError(f"--gpus {n}, but {table.file} lists {table.n_ranks} ranks in its '#  Rank' lines")
    if from_busbw and n != from_busbw:
        raise PlanError(f"{n} GPUs, but the busbw/algbw columns of {table.file} imply {from_busbw} "
                        f"(all-reduce busbw = algbw x 2(n-1)/n)")
    d = system.devices_per_node
    if n < 2:
        raise PlanError(f"an all-reduce over {n} GPU has no communication to calibrate")
    if n > d:
        if system.network is None:
            raise PlanError(f"{n} GPUs span {math.ceil(n / d)} nodes, but system '{system.name}' is one node of "
                            f"{d} devices with no [network]")
        if n % d:
            raise PlanError(f"{n} GPUs is not a whole number of nodes of {d} devices ('{system.name}'); the "
                            f"two-level model needs full nodes")
    elif system.fabric.kind == "none":
        raise PlanError(f"'{system.name}' is a single device with no fabric to calibrate")
    hosts = table.hosts
    if len(hosts) > 1:
        per_host = {h: table.rank_hosts.count(h) for h in hosts}
        if set(per_host.values()) != {d}:
            raise PlanError(f"{table.file} ran {sorted(set(per_host.values()))} ranks per host, but '{system.name}' "
                            f"has {d} devices per node; calibrate against a system with the same node size")
    return n


def _box_lstsq(M, y, lower):
    """min |M p - y|^2 subject to p >= lower (two unknowns: interior, each face, the corner)."""
    import numpy as np

    lower = np.asarray(lower, dtype=float)
    candidates = [np.linalg.lstsq(M, y, rcond=None)[0], lower.copy()]
    for fixed in (0, 1):
        free = 1 - fixed
        col = M[:, free]
        rhs = y - M[:, fixed] * lower[fixed]
        p = lower.copy()
        p[free] = max(float(col @ rhs / (col @ col)), lower[free]) if col @ col > 0 else lower[free]
        candidates.append(p)
    feasible = [p for p in candidates if np.all(p >= lower * (1 - 1e-12))]
    return min(feasible, key=lambda p: float(np.sum((M @ p - y) ** 2)))


def _points(hw, n, rows, min_size, max_size) -> tuple[FitPoint, ...]:
    from perfmodel.formulas.busbw import allreduce_busbw_factor, nccl_algbw, nccl_busbw

    factor = allreduce_busbw_factor(n)
    out = []
    for r in sorted(rows, key=lambda r: r.size_bytes):
        if r.size_bytes <= 0:
            continue
        t = float(allreduce_time(hw, n, float(r.size_bytes)))
        out.append(FitPoint(r.size_bytes, r.time_s, t, nccl_busbw(nccl_algbw(r.size_bytes, r.time_s), factor),
                            nccl_busbw(nccl_algbw(r.size_bytes, t), factor), min_size <= r.size_bytes <= max_size))
    return tuple(out)


def fit_allreduce(table: NcclTable, system, *, n_gpus: int | None = None, min_size: float = DEFAULT_MIN_SIZE,
                  max_size: float = math.inf) -> AllReduceFit:
    """Fit latency and efficiency of the level the run spans (see the module docstring)."""
    import numpy as np

    n = _resolve_ranks(table, system, n_gpus)
    d = system.devices_per_node
    level = "network" if n > d else "fabric"
    lat_field, eff_field = _LEVEL_FIELDS[level]
    rows = [r for r in table.rows if r.size_bytes > 0 and min_size <= r.size_bytes <= max_size]
    if len({r.size_bytes for r in rows}) < 2:
        raise MeasurementError(f"{table.file}: {len(rows)} row(s) with sizes in [{min_size:.0f}, {max_size:.0f}] B; "
                               f"the fit needs at least 2 different sizes (widen --min-size / --max-size)")
    size = np.array([float(r.size_bytes) for r in rows])
    t = np.array([r.time_s for r in rows])
    hw = _hw(system)

    def model(alpha, efficiency):
        return allreduce_time(dataclasses.replace(hw, **{lat_field: alpha, eff_field: efficiency}), n, size)

    # T = A + k_alpha alpha + k_x / eta: affine in alpha and x = 1 / eta
    base = model(0.0, 1.0)
    k_alpha = model(1e-6, 1.0) - base
    k_x = model(0.0, 0.5) - base
    A = base - k_x
    M = np.stack([k_alpha / t, k_x / t], axis=1)
    alpha_us, x = _box_lstsq(M, (t - A) / t, (MIN_LATENCY * 1e6, 1.0))
    alpha, efficiency = float(alpha_us) * 1e-6, 1.0 / float(x)

    warnings = []
    if efficiency >= 1.0 - 1e-9:
        from perfmodel.units import format_quantity

        i = int(np.argmax(size))
        ceiling = float(model(MIN_LATENCY, 1.0)[i])
        warnings.append(
            f"the efficiency reached its bound of 100 %: at {format_quantity(size[i], 'bytes', binary=True)} the run "
            f"took {format_quantity(t[i], 'time')}, the model of '{system.name}' needs at least "
            f"{format_quantity(ceiling, 'time')} (efficiency 100 %, latency 0). "
            f"The run is faster than this model can be: e.g. NVLink SHARP (NVLS) in-switch reduction, or NCCL "
            f"overlapping the intra- and inter-node phases, which the serial two-level ring does not model; or "
            f"the system has less bandwidth than the measured one")
    if alpha_us <= MIN_LATENCY * 1e6 * (1 + 1e-9):
        warnings.append("the latency reached its bound (1 ns): the times grow faster than linearly with size")
    wrong = sum(1 for r in table.rows if (r.wrong or 0) > 0 or (r.in_place_wrong or 0) > 0)
    if wrong:
        warnings.append(f"{wrong} row(s) report wrong results (#wrong > 0); their times were used anyway")

    calibrated = dataclasses.replace(hw, **{lat_field: alpha, eff_field: efficiency})
    link = system.network.link if level == "network" else system.fabric.link
    from perfmodel.predict.hardware import inter_node_level, intra_node_level

    beta = (inter_node_level(calibrated, d)[1] if level == "network"
            else intra_node_level(calibrated, n, max(d / n, 1))[1])
    return AllReduceFit(system=system.name, level=level, link=link.name, n_gpus=n, n_nodes=max(n // d, 1),
                        devices_per_node=d, latency_s=alpha, efficiency=efficiency,
                        link_bandwidth=link.bandwidth, bandwidth_per_device=float(beta),
                        min_size=min_size, max_size=max_size,
                        points=_points(calibrated, n, table.rows, min_size, max_size), warnings=tuple(warnings))


# --- writing the calibrated system ---------------------------------------------------------------


@dataclass(frozen=True)
class NcclCalibration:
    """A fit and the files written; ``points`` are predictions of the written file itself."""

    fit: AllReduceFit
    source_file: str
    system_file: str
    link_file: str
    points: tuple[FitPoint, ...]

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
            "fit_min_size_bytes": f.min_size, "fit_max_size_bytes": None if math.isinf(f.max_size) else f.max_size,
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
           f"all-reduce model (perfmodel.calibrate.nccl) to {file} (nccl-tests all_reduce_perf, {fit.n_gpus} GPUs "
           f"= {fit.n_nodes} node(s) x {min(fit.n_gpus, fit.devices_per_node)}; {_fmt_sizes(fit)})")
    level = data[fit.level]
    link_data, _, _ = raw_spec(level["link"], ("link",))
    link_name = f"{out.stem}-{link_data['name']}"
    old_eff = level.get("efficiency")
    level["efficiency"] = {
        "value": f"{fit.efficiency * 100:.4g} %", "source": how,
        "note": (f"mean |busbw error| {fit.mean_abs_error * 100:.1f} % over the fitted sizes; before calibration "
                 + (f"{old_eff['value']} ({old_eff['source']})" if old_eff else "100 % (no efficiency given)")),
    }
    level["link"] = f"{link_name}.toml"
    data["name"] = out.stem
    data["description"] = (f"{data['description']} -- calibrated: {fit.level} efficiency and {fit.link} latency "
                           f"fitted to {Path(file).name}")
    old_lat = link_data["latency"]
    link_data["name"] = link_name
    link_data["description"] = f"{link_data['description']} -- latency calibrated from {Path(file).name}"
    link_data["latency"] = {
        "value": f"{fit.latency_s * 1e6:.4g} us", "source": how,
        "note": (f"an effective per-step latency of the {fit.level} in the fitted size range, not a wire delay; "
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
