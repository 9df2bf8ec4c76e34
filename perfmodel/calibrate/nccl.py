r"""Calibrate one collective level of a system from nccl-tests ``all_reduce_perf`` output.

**Which level.** A run of n GPUs on a system with d devices per node spans the intra-node fabric
when n <= d, and the inter-node network when n > d (then n must be a whole number of nodes). Only
that level is calibrated; the other keeps its spec values.

**The model** is the predictor's own, with no copy here: an all-reduce of S bytes over the run's
n GPUs takes :func:`perfmodel.prediction.step.data_parallel_allreduce_time` ``(hw, S, n)`` (a
data-parallel group, tp = pp = 1, ranks filling a node first). For n > d that is the *pipelined*
two-level all-reduce (:func:`perfmodel.formulas.collectives.pipelined_hierarchical_allreduce_time`):
the latencies of both levels add, and the slower level's bandwidth term sets the rate, since NCCL
pipelines chunks through every level at once; for n <= d it is the ring over the fabric. On a
fabric that reduces in the switch (``[fabric] in_network_reduction``, NVLink SHARP) the intra-node
bandwidth is the faster of the ring and the in-switch reduction
(:func:`perfmodel.prediction.hardware.allreduce_beta`).

**What is fitted.** Two numbers of the spanned level, from the out-of-place times:

* its latency :math:`\alpha` (s per ring step): the level's *link latency*;
* its ``efficiency`` :math:`\eta` (0 < eta <= 1): the achieved fraction of link bandwidth, so
  the level's per-device bandwidth is (datasheet link bandwidth) x (links or NIC share) x eta.

The *link bandwidth* is kept at its datasheet value: in the model only the product bandwidth x
efficiency appears, so fitting the bandwidth and the efficiency separately would be fitting one
number twice; the fitted per-device bandwidth is reported. The residual of a message size is its
relative time error (predicted / measured - 1, i.e. minus the relative busbw error), so a 64 KiB
point and a 16 GiB point weigh the same; the fit minimises their sum of squares.

**How.** The predicted time is affine in alpha (latencies add) but not in 1/eta: the slower of
two levels, or the faster of ring and in-switch reduction, makes it piecewise. So the fit is a
bounded 1-D search over eta with alpha solved in closed form for each candidate (one-variable
least squares, clipped at alpha >= 1 ns): the squared error of 400 efficiencies spaced
geometrically over [0.1 %, 100 %], then golden-section refinement in 1/eta between the best grid
value's neighbours (within one regime the profiled error is convex in 1/eta). No random starts:
the same table always gives the same numbers.

**When the efficiency is not identifiable.** If, at the optimum, another part of the model sets
the rate -- the intra-node level when the network is calibrated (its bandwidth term is the larger
one), or the in-switch reduction when the fabric is -- every efficiency in an interval predicts the
same times and the run cannot tell them apart. The fit then says so instead of returning an
arbitrary point of that interval: ``efficiency_identifiable`` is False, ``efficiency_range`` is the
interval, a warning names the level that sets the rate, and the efficiency written is the system's
own value if it lies in the interval (the file then keeps that value and its source), else the
nearest end of the interval (the smallest change that fits as well). The latency is still fitted.

**Which sizes.** By default those of at least 16 MiB (``min_size``): below that NCCL runs its
low-latency protocols and kernel-launch costs dominate, which one alpha-beta model does not
describe (fitting every size from 8 B pulls the predicted busbw of the largest message 18 % low on
the AWS p4de sweep and 17 % low on the p5 one), while the smallest all-reduce perfmodel's
data-parallel sync issues is the 25 MiB DDP bucket (perfmodel.prediction.step.DDP_BUCKET_BYTES).
Every size is still reported with its error.
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

from perfmodel.calibrate._common import MeasurementError
from perfmodel.calibrate.nccl_range import out_of_range
from perfmodel.calibrate.lsq import (
    MIN_EFFICIENCY,
    MIN_LATENCY,
    equivalent_efficiency_range,
    profile_latency,
    search_efficiency,
)
from perfmodel.calibrate.nccl_table import NcclRow, NcclTable, parse_nccl, read_nccl
from perfmodel.errors import PlanError

__all__ = ["parse_nccl", "read_nccl", "NcclTable", "NcclRow", "run_allreduce_time", "ranks_from_busbw",
           "FitPoint", "AllReduceFit", "fit_allreduce", "DEFAULT_MIN_SIZE"]

DEFAULT_MIN_SIZE = 16 * 2**20
_LEVEL_FIELDS = {"fabric": ("fabric_latency", "fabric_efficiency"),
                 "network": ("network_latency", "network_efficiency")}


def _hw(system):
    from perfmodel.prediction.hardware import hw_params

    peaks = system.device.peak_flops_per_s
    return hw_params(system, "bf16" if "bf16" in peaks else next(iter(peaks)))


def run_allreduce_time(hw, n_gpus, size):
    """The predictor's time of one all-reduce of ``size`` bytes over the run's ``n_gpus``: exactly
    :func:`perfmodel.prediction.step.data_parallel_allreduce_time` for a data-parallel group of
    ``n_gpus`` (tp = pp = 1). ``hw`` is a :class:`perfmodel.prediction.hardware.HwParams`; ``size``
    may be a numpy array.
    """
    from perfmodel.prediction.step import data_parallel_allreduce_time

    return data_parallel_allreduce_time(hw, size, n_gpus)


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
    # False when every efficiency in efficiency_range predicts the same times (another level, or the
    # in-switch reduction, sets the rate): ``efficiency`` is then not a fitted value (module docstring)
    efficiency_identifiable: bool = True
    efficiency_range: tuple[float, float] | None = None
    # where the written file does not hold: the worst unfitted size, said in one sentence (None: all fine)
    out_of_range: str | None = None

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
    _check_busbw(table, n)
    hosts = table.hosts
    if len(hosts) > 1:
        per_host = {h: table.rank_hosts.count(h) for h in hosts}
        if set(per_host.values()) != {d}:
            raise PlanError(f"{table.file} ran {sorted(set(per_host.values()))} ranks per host, but '{system.name}' "
                            f"has {d} devices per node; calibrate against a system with the same node size")
    return n


def _check_busbw(table: NcclTable, n: int) -> None:
    """Every row's busbw must be its algbw x 2(n-1)/n, within the rounding both are printed with (nccl-tests
    computes busbw from the unrounded algbw, so |busbw - algbw x f| <= d(busbw) + f x d(algbw))."""
    from perfmodel.calibrate.nccl_table import _show
    from perfmodel.formulas.busbw import allreduce_busbw_factor

    f = allreduce_busbw_factor(n)
    for r in table.rows:
        da, db, ida, idb = r.bw_rounding
        for half, algbw, busbw, d_alg, d_bus in (("out-of-place", r.algbw, r.busbw, da, db),
                                                 ("in-place", r.in_place_algbw, r.in_place_busbw, ida, idb)):
            if abs(busbw - algbw * f) > (d_bus + f * d_alg) * (1 + 1e-9):
                raise MeasurementError(
                    f"{table.file}:{r.line}: {half} busbw {busbw / 1e9:g} GB/s contradicts algbw {algbw / 1e9:g} "
                    f"GB/s for size {r.size_bytes} B: an all-reduce over {n} GPUs has busbw = algbw x 2(n-1)/n = "
                    f"{algbw * f / 1e9:.4g} GB/s: {_show(r.text)}")


def _points(hw, n, rows, min_size, max_size) -> tuple[FitPoint, ...]:
    from perfmodel.formulas.busbw import allreduce_busbw_factor, nccl_algbw, nccl_busbw

    factor = allreduce_busbw_factor(n)
    out = []
    for r in sorted(rows, key=lambda r: r.size_bytes):
        if r.size_bytes <= 0:
            continue
        t = float(run_allreduce_time(hw, n, float(r.size_bytes)))
        out.append(FitPoint(r.size_bytes, r.time_s, t, nccl_busbw(nccl_algbw(r.size_bytes, r.time_s), factor),
                            nccl_busbw(nccl_algbw(r.size_bytes, t), factor), min_size <= r.size_bytes <= max_size))
    return tuple(out)


def fit_allreduce(table: NcclTable, system, *, n_gpus: int | None = None, min_size: float = DEFAULT_MIN_SIZE,
                  max_size: float = math.inf) -> AllReduceFit:
    """Fit latency and efficiency of the level the run spans (see the module docstring).

    Long on purpose: the fit's steps (ranks, fitted sizes, the latency profile, the efficiency search, the identifiability check, warnings) read in order; each is a helper already.
    """
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
        return np.asarray(run_allreduce_time(
            dataclasses.replace(hw, **{lat_field: alpha, eff_field: efficiency}), n, size), dtype=float)

    eta = search_efficiency(model, t)
    alpha = profile_latency(model, t, eta)[1]
    fitted = model(alpha, eta)
    t0 = model(0.0, eta)
    if not np.allclose(fitted, t0 + (model(1e-6, eta) - t0) * alpha / 1e-6, rtol=1e-9, atol=0):
        raise RuntimeError("perfmodel.calibrate.nccl: the all-reduce time is no longer affine in the latency; "
                           "the closed-form latency of the fit does not apply")  # pragma: no cover

    from perfmodel.units import format_quantity

    warnings = []
    lo, hi = equivalent_efficiency_range(model, alpha, eta)
    identifiable = hi / lo - 1 <= 1e-6
    efficiency, eff_range = eta, None
    if not identifiable:
        eff_range = (lo, hi)
        spec_eff = getattr(system, level).efficiency
        efficiency = min(max(spec_eff, lo), hi)
        if level == "network":
            why = (f"the intra-node level ({system.fabric.kind} fabric"
                   + (", with in-switch reduction" if hw.fabric_reduction_efficiency else "")
                   + ") is the slower level of the pipelined all-reduce, so it sets the rate")
        elif hw.fabric_reduction_efficiency:
            why = ("the in-switch reduction ([fabric] in_network_reduction) is faster than the ring, so the ring's "
                   "efficiency does not enter the time")
        else:  # pragma: no cover - a one-level ring always depends on its efficiency
            why = "the time does not depend on it there"
        what = (f"kept {system.name}'s {spec_eff * 100:.4g} %" if efficiency == spec_eff else
                f"wrote {efficiency * 100:.4g} %, the value nearest {system.name}'s {spec_eff * 100:.4g} % that fits "
                f"as well")
        warnings.append(
            f"the {level} efficiency is not identifiable from this run: every efficiency in "
            f"[{lo * 100:.4g} %, {hi * 100:.4g} %] predicts the same times at every fitted size, because {why}; "
            f"the run bounds the {level} efficiency only to that interval. Not fitted: {what}; the latency is fitted")
    elif eta >= 1.0 - 1e-9:
        i = int(np.argmax(size))
        ceiling = float(model(MIN_LATENCY, 1.0)[i])
        warnings.append(
            f"the efficiency reached its bound of 100 %: at {format_quantity(size[i], 'bytes', binary=True)} the run "
            f"took {format_quantity(t[i], 'time')}, the model of '{system.name}' needs at least "
            f"{format_quantity(ceiling, 'time')} ({level} efficiency 100 %, latency 0). "
            f"The run is faster than this model can be: the measured system has more {level} bandwidth than "
            f"'{system.name}', or NCCL used an algorithm the system file does not declare (e.g. in-switch "
            f"reduction, [fabric] in_network_reduction)")
    elif eta <= MIN_EFFICIENCY * (1 + 1e-9):
        warnings.append(f"the efficiency reached the lower end of the search ({MIN_EFFICIENCY * 100:.4g} %): the run "
                        f"is far slower than '{system.name}'; check --system and the number of GPUs")
    if alpha <= MIN_LATENCY * (1 + 1e-9):
        warnings.append("the latency reached its bound (1 ns): the times grow faster than linearly with size")
    wrong = sum(1 for r in table.rows if (r.wrong or 0) > 0 or (r.in_place_wrong or 0) > 0)
    if wrong:
        warnings.append(f"{wrong} row(s) report wrong results (#wrong > 0); their times were used anyway")

    calibrated = dataclasses.replace(hw, **{lat_field: alpha, eff_field: efficiency})
    link = system.network.link if level == "network" else system.fabric.link
    from perfmodel.prediction.hardware import inter_node_level, intra_node_level

    beta = (inter_node_level(calibrated, d)[1] if level == "network"
            else intra_node_level(calibrated, n, max(d / n, 1))[1])
    points = _points(calibrated, n, table.rows, min_size, max_size)
    return AllReduceFit(system=system.name, level=level, link=link.name, n_gpus=n, n_nodes=max(n // d, 1),
                        devices_per_node=d, latency_s=alpha, efficiency=efficiency,
                        link_bandwidth=link.bandwidth, bandwidth_per_device=float(beta),
                        min_size=min_size, max_size=max_size, points=points, warnings=tuple(warnings),
                        out_of_range=out_of_range(points, min_size, max_size),
                        efficiency_identifiable=identifiable, efficiency_range=eff_range)


# --- writing the calibrated system ---------------------------------------------------------------
