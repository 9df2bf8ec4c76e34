"""How fast one device runs its kernels: measured rate curves (GEMM, fused attention) where the
spec has them, else the GEMM shape model (:mod:`perfmodel.formulas.gemm`) from the device's compute
units, tile and measured maximum achievable matmul rate. Measured wins; a dtype without points
scales a measured 16-bit curve by the ratio of the two MAMFs. Used by :mod:`.hardware`.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, field

from perfmodel.formulas import gemm as gemm_f
from perfmodel.formulas._backend import maximum, minimum, where
from perfmodel.frozen import remember

__all__ = ["RateCurve", "GemmShapeModel", "gemm_shape_model", "gemm_model", "gemm_curve", "attention_curves", "dtype_candidates",
           "is_aligned", "gemm_alignment", "alignment_elements", "ALIGNMENT", "timing_floor_time", "TIMING_FLOOR_FACTOR", "misaligned_model"]

_SIXTEEN_BIT = ("bf16", "fp16")
_PLAIN = (int, float)
_FLAGS = (bool, int, float, type(None))  # what a GEMM's alignment argument is on the float path


@dataclass(frozen=True)
class RateCurve:
    """A measured throughput curve: a kernel's time (and so its FLOP/s) as a function of its FLOPs.

    Through the measured points (points with the same FLOPs averaged) the time is interpolated
    linearly in log(time) over log(FLOPs), after a running maximum over the points: a kernel with
    more FLOPs never takes less time (a measurement where a bigger GEMM ran faster, e.g. the
    launch-bound H100 512^3 vs 1024^3 fp16, would otherwise make a model's step shorter as it
    grows). Below the smallest point the rate of that point holds, above the largest the rate of
    the largest. Floats and numpy arrays run the same arithmetic, so scalar predictions and
    vectorised sweeps agree.
    """

    log_flops: tuple[float, ...]
    log_times: tuple[float, ...]
    source: str
    # float results by FLOPs, bounded, outside equality and hashing, fresh in a replaced copy
    _memo: dict = field(default_factory=dict, init=False, compare=False, hash=False, repr=False)

    @property
    def n_points(self) -> int:
        return len(self.log_flops)

    @property
    def rates(self) -> tuple[float, ...]:
        """FLOP/s at the (monotone) points."""
        return tuple(math.exp(x - t) for x, t in zip(self.log_flops, self.log_times))

    def _log_time(self, x):
        xs, ts = self.log_flops, self.log_times
        if isinstance(x, float):
            if x <= xs[0]:
                return ts[0] + (x - xs[0])
            if x >= xs[-1]:
                return ts[-1] + (x - xs[-1])
            i = bisect.bisect_right(xs, x) - 1
            w = (x - xs[i]) / (xs[i + 1] - xs[i])
            return ts[i] + w * (ts[i + 1] - ts[i])
        import numpy as np

        inside = np.interp(x, xs, ts)
        return np.where(x < xs[0], ts[0] + (x - xs[0]), np.where(x > xs[-1], ts[-1] + (x - xs[-1]), inside))

    def time(self, flops):
        """Seconds of a kernel of ``flops`` FLOP (float or array)."""
        if isinstance(flops, (int, float)):
            return remember(self._memo, flops, self._float_time, flops)
        import numpy as np

        f = np.asarray(flops, dtype=float)
        positive = f > 0
        x = np.log(np.where(positive, f, 1.0))
        return np.where(positive, np.exp(self._log_time(x)), 0.0)

    def _float_time(self, flops):
        return math.exp(self._log_time(math.log(flops))) if flops > 0 else 0.0

    def rate(self, flops):
        """FLOP/s of a kernel of ``flops`` FLOP."""
        if isinstance(flops, (int, float)):
            return flops / self.time(flops) if flops > 0 else self.rates[0]
        import numpy as np

        f = np.asarray(flops, dtype=float)
        t = self.time(f)
        return np.where(f > 0, f / np.where(t > 0, t, 1.0), self.rates[0])

    def scaled(self, factor: float) -> RateCurve:
        """The same curve on a device ``factor`` times faster."""
        return RateCurve(self.log_flops, tuple(t - math.log(factor) for t in self.log_times), self.source)


def _curve(pairs: list[tuple[float, float]], source: str) -> RateCurve:
    groups: dict[float, list[float]] = {}
    for flops, rate in pairs:
        groups.setdefault(flops, []).append(rate)
    keys = sorted(groups)
    log_times, slowest = [], -math.inf
    for k in keys:
        rate = sum(groups[k]) / len(groups[k])
        slowest = max(slowest, math.log(k / rate))  # running maximum: time never falls with FLOPs
        log_times.append(slowest)
    return RateCurve(tuple(math.log(k) for k in keys), tuple(log_times), source)


# Tensor cores need 16-bit GEMM dimensions that are multiples of 8 (NVIDIA, "Matrix Multiplication
# Background User's Guide"); others run slower kernels (H100 LM head, vocab 50257: ~130 TFLOP/s).
ALIGNMENT = 8


def dtype_candidates(dtype: str) -> list[str]:
    """``dtype``, then the other 16-bit dtype when ``dtype`` is one: fp16 and bf16 run on the same
    tensor cores, so a measurement of one stands for the other (by the ratio of their peaks)."""
    return [dtype] + [d for d in _SIXTEEN_BIT if d != dtype and dtype in _SIXTEEN_BIT]


def is_aligned(*dims) -> bool:
    return all(d % ALIGNMENT == 0 for d in dims)


def gemm_alignment(*dims):
    """Elements all of ``dims`` are multiples of, as a power of two: what a GEMM's unaligned bound
    scales with (:func:`perfmodel.formulas.gemm.unaligned_gemm_rate`). Multiples of 8 (the tensor
    cores' rule for 16-bit inputs, :data:`ALIGNMENT`) count as aligned: True for plain numbers (the
    fast path of a predict), 16 in an array. Floats and numpy arrays alike."""
    if all(type(d) in _PLAIN for d in dims):
        if all(d % ALIGNMENT == 0 for d in dims):
            return True
        return float(min(4 if d % 4 == 0 else 2 if d % 2 == 0 else 1 for d in dims))
    out = 16.0
    for d in dims:
        out = minimum(out, where(d % 8 == 0, 16.0, where(d % 4 == 0, 4.0, where(d % 2 == 0, 2.0, 1.0))))
    return out


def alignment_elements(aligned):
    """The ``aligned`` argument of a GEMM as elements: Python True / False are 16 / 1 (aligned, or
    no alignment known), a number or an array is the alignment itself (:func:`gemm_alignment`)."""
    if aligned is True:
        return 16.0
    if aligned is False:
        return 1.0
    return aligned


def gemm_curve(device, dtype: str, aligned: bool = True) -> RateCurve:
    """The GEMM curve for ``dtype``: from that dtype's measured points, or from the other 16-bit
    dtype's points scaled by the ratio of peaks (fp16 and bf16 run on the same tensor cores);
    with no points at all, the dense datasheet peak (an upper bound, said in ``source``).

    ``aligned`` selects points whose dimensions are all multiples of 8 (or, with False, those
    with one that is not); when the device has no point of the kind asked for, all its points.

    Points at the timing floor of the sweep are left out: a sweep timed one call at a time
    bottoms out at the harness's fixed cost (the H100 sweep times 256^3 ... 2048^3 all at
    30-43 us), so such a point says how long a lone call takes, not how fast a kernel runs
    inside a queued training step (whose launch cost the stack's launch overhead models). The
    rule: with four or more points, drop those within 1.5x of the sweep's fastest time."""
    peak = device.peak(dtype)
    for cand in dtype_candidates(dtype):
        points = device.gemm.get(cand)
        if points:
            ratio = peak / device.peak(cand) if cand != dtype else 1.0
            return _gemm_curve_of(tuple(points), aligned, ratio, peak, f"{cand} GEMM points of {device.name}")
    return _curve([(1.0, peak)], f"no measured GEMM data for {dtype} on {device.name}: datasheet peak, "
                                     "so this is an upper bound")


@functools.lru_cache(maxsize=256)
def _gemm_curve_of(points: tuple, aligned: bool, ratio: float, peak: float, what: str) -> RateCurve:
    # cached on the (frozen, hashable) points: every predict builds its HwParams afresh
    kind = [p for p in points if is_aligned(p.m, p.n, p.k) == aligned] or list(points)
    label = "" if len(kind) == len(points) else (" aligned" if aligned else " misaligned")
    used = _above_timing_floor(kind)
    pairs = [(2.0 * p.m * p.n * p.k, min(p.flops_per_s * ratio, peak)) for p in used]
    floor = f", {len(kind) - len(used)} at the timing floor left out" if len(used) < len(kind) else ""
    return _curve(pairs, f"{len(kind)} measured{label} {what}{floor}")


TIMING_FLOOR_FACTOR = 1.5


def timing_floor_time(points) -> float:
    """Seconds at or below which a GEMM sweep's point is at its timing floor (0: no floor)."""
    if len(points) < 4:
        return 0.0
    return min(2.0 * p.m * p.n * p.k / p.flops_per_s for p in points) * TIMING_FLOOR_FACTOR


def _above_timing_floor(points):
    floor = timing_floor_time(points)
    kept = [p for p in points if 2.0 * p.m * p.n * p.k / p.flops_per_s > floor]
    return kept or list(points)


# bytes per element of a GEMM's inputs and output by compute dtype (fp8 GEMMs write bf16)
GEMM_BYTES = {"fp64": (8, 8), "fp32": (4, 4), "tf32": (4, 4), "bf16": (2, 2), "fp16": (2, 2), "fp8": (1, 2),
              "int8": (1, 4)}
FILL_STEPS = 1  # k steps of pipeline prologue per tile (formulas.gemm.gemm_compute_time)


@dataclass(frozen=True)
class GemmShapeModel:
    """Per-device constants of the GEMM shape model (:mod:`perfmodel.formulas.gemm`), built once.

    ``achievable_flops_per_s`` is R, from the device's measured MAMF at its shape
    (:func:`perfmodel.formulas.gemm.gemm_achievable_rate`), or the datasheet peak when the spec
    has no measurement (then ``source`` says it is an upper bound). Without a ``[matmul]``
    section the tile is 1 x 1 x 1 on one unit: no quantization, the plain roofline.
    """

    units: int
    tile_m: int
    tile_n: int
    tile_k: int
    fill_steps: int
    achievable_flops_per_s: float
    unaligned_flops_per_s: float
    vector_flops_per_s: float
    in_bytes: int
    out_bytes: int
    source: str
    # float-path results by argument (shapes recur within a predict and across a search's predicts)
    _memo: dict = field(default_factory=dict, init=False, compare=False, hash=False, repr=False)

    def time(self, m, n, k, aligned, memory_bandwidth, scale):
        """Seconds of C[m,n] = A[m,k] B[k,n]; ``scale`` multiplies the compute rates (a stack's
        factor, a swept peak), not the memory bandwidth. Floats and numpy arrays alike."""
        if type(m) in _PLAIN and type(n) in _PLAIN and type(k) in _PLAIN and type(memory_bandwidth) in _PLAIN \
                and type(scale) in _PLAIN and type(aligned) in _FLAGS:
            key = (m, n, k, aligned, type(aligned) is bool, memory_bandwidth, scale)  # True == 1.0
            return remember(self._memo, key, self._float_time, m, n, k, aligned, memory_bandwidth, scale)
        t = gemm_f.gemm_time(m, n, k, self.tile_m, self.tile_n, self.tile_k, self.units, self.fill_steps,
                             self.achievable_flops_per_s * scale, self.in_bytes, self.in_bytes, self.out_bytes,
                             memory_bandwidth, 0.0)
        if aligned is True:
            return t
        a = alignment_elements(aligned)
        slow = 2.0 * m * n * k / (self.unaligned_flops_per_s * minimum(a, 16.0 / self.in_bytes) * scale)
        return where(a >= ALIGNMENT, t, maximum(t, slow))  # multiples of 8: aligned, as the float path

    def _float_time(self, m, n, k, aligned, memory_bandwidth, scale):
        """:meth:`time` of plain floats: formulas.gemm.gemm_time's arithmetic without its backend
        dispatch (tests check both give the same number)."""
        u = self.units
        tiles = math.ceil(m / self.tile_m) * math.ceil(n / self.tile_n)
        k_steps = math.ceil(k / self.tile_k)
        split = max(min(math.floor(u / tiles), k_steps), 1)  # formulas.gemm.gemm_split_k
        tile = self.tile_m * self.tile_n
        comp = (math.ceil(tiles * split / u) * (math.ceil(k_steps / split) + self.fill_steps) * 2 * tile
                * self.tile_k * u / (self.achievable_flops_per_s * scale)
                + math.ceil(tiles / u) * u * tile * self.out_bytes / memory_bandwidth)
        mem = ((m * k + k * n) * self.in_bytes + m * n * self.out_bytes) / memory_bandwidth
        t = comp if comp >= mem else mem
        a = alignment_elements(aligned)
        if a >= ALIGNMENT:  # multiples of 8: aligned (the tensor cores' rule, is_aligned)
            return t
        slow = 2.0 * m * n * k / (self.unaligned_flops_per_s * min(a, 16.0 / self.in_bytes) * scale)
        return t if t >= slow else slow

    def attention_time(self, flops, bytes_moved, softmax_flops, memory_bandwidth, scale, backward, key_blocks):
        return gemm_f.flash_attention_time(flops, bytes_moved, self.achievable_flops_per_s * scale,
                                           gemm_f.FUSED_ATTENTION_EFFICIENCY["bwd" if backward else "fwd"], softmax_flops,
                                           self.vector_flops_per_s * scale, memory_bandwidth, key_blocks, gemm_f.ATTENTION_ROW_OVERHEAD_BLOCKS)


def gemm_shape_model(device, dtype: str) -> GemmShapeModel:
    """The shape model of ``device`` for ``dtype`` (cached per device and dtype)."""
    hit = _SHAPE_MODELS.get((id(device), dtype))
    if hit is not None and hit[0] is device:  # the same frozen spec object: its constants are built
        return hit[1]
    model = _shape_model_of(device, dtype)
    if len(_SHAPE_MODELS) > 1024:
        _SHAPE_MODELS.clear()
    _SHAPE_MODELS[(id(device), dtype)] = (device, model)  # the device is held, so its id is not reused
    return model


_SHAPE_MODELS: dict = {}  # per-device constants, built once (a predict must stay cheap)


def _shape_model_of(device, dtype: str) -> GemmShapeModel:
    peak = device.peak(dtype)
    e_in, e_out = GEMM_BYTES.get(dtype, (2, 2))
    vector = device.peak_flops_per_s.get("fp32", peak)
    mm = device.matmul
    if mm is None:
        units, tm, tn, tk = 1, 1, 1, 1
        fill = 0
        what = "no [matmul] units/tile in the spec: no quantization"
    else:
        units, (tm, tn, tk) = mm.units, mm.tile
        tk = max(1, tk * 2 // e_in)  # the tile's k step is for 16-bit inputs: same bytes per stage
        fill = FILL_STEPS
        what = f"{units} units, {tm}x{tn}x{tk} tiles"
    # a measured MAMF for this dtype, or for the other 16-bit dtype (same tensor cores) by peak ratio
    rate = None
    for cand in dtype_candidates(dtype):
        m = mm.achievable.get(cand) if mm is not None else None
        if m is not None:
            mamf = m.flops_per_s * (peak / device.peak(cand))
            if m.shape is None:
                r = mamf
            else:
                r = gemm_f.gemm_achievable_rate(mamf, *m.shape, tm, tn, tk, units, fill, peak)
            rate = r
            src = device.sources.get(f"matmul.achievable.{cand}", "").split(" (")[0]
            label = f"shape model ({what}) with MAMF {m.flops_per_s / 1e12:.1f} TFLOP/s ({cand}) from {src}"
            break
    if rate is None:
        rate = peak
        label = (f"shape model ({what}) at the datasheet peak of {device.name} for {dtype}: no measured maximum "
                 f"achievable matmul rate in the spec, so this is an upper bound")
    unaligned = gemm_f.unaligned_gemm_rate(peak, e_in)
    return GemmShapeModel(units, tm, tn, tk, fill, rate, unaligned, vector, e_in, e_out, label)


def gemm_model(device, dtype: str):
    """What times the device's GEMMs for ``dtype``: its measured curve where the spec has one
    (measured GEMM points of that dtype, or of the other 16-bit dtype, spanning two or more
    shapes) -- measured wins -- else the shape model."""
    if any(device.gemm.get(c) for c in dtype_candidates(dtype)):
        return gemm_curve(device, dtype)
    scaled = _curve_scaled_by_mamf(device, dtype)
    return scaled if scaled is not None else gemm_shape_model(device, dtype)


def _curve_scaled_by_mamf(device, dtype: str):
    """A dtype without measured GEMM points (FP8 on the H100) on a device whose 16-bit GEMMs were
    measured: the measured 16-bit curve times the ratio of the two dtypes' measured maximum
    achievable matmul rates (both from the same MAMF sweep), so both dtypes are timed from
    measurements rather than one from a curve and the other from the shape model. None when
    either MAMF is missing."""
    matmul = device.matmul
    if matmul is None or dtype not in matmul.achievable:
        return None
    for base in _SIXTEEN_BIT:
        if device.gemm.get(base) and base in matmul.achievable:
            ratio = matmul.achievable[dtype].flops_per_s / matmul.achievable[base].flops_per_s
            curve = gemm_curve(device, base).scaled(ratio)
            return RateCurve(curve.log_flops, curve.log_times, f"{curve.source}, x {ratio:.3f} (MAMF {dtype} / {base})")
    return None


def attention_curves(device, dtype: str, kernel: str | None = None) -> tuple[RateCurve, RateCurve] | None:
    """(forward, backward) curves of the device's measured fused attention, or None; with
    ``kernel``, of that named kernel (``[attention_kernels.<kernel>]`` of the device file)."""
    tables = device.attention if kernel is None else device.attention_kernels.get(kernel, {})
    points = tables.get(dtype)
    if not points and dtype in _SIXTEEN_BIT:
        other = [d for d in _SIXTEEN_BIT if d != dtype][0]
        points = tables.get(other)
    if not points:
        return None
    return _attention_curves_of(tuple(points), device.name if kernel is None else f"{device.name} ({kernel})")


@functools.lru_cache(maxsize=64)
def _attention_curves_of(points: tuple, device_name: str) -> tuple[RateCurve, RateCurve]:
    fwd, bwd = [], []
    for p in points:
        w = 4 * (0.5 if p.causal else 1.0) * p.batch * p.seq**2 * p.heads * p.head_dim
        t_fwd = w / p.forward_flops_per_s
        t_both = 3.5 * w / p.forward_backward_flops_per_s
        fwd.append((w, p.forward_flops_per_s))
        bwd.append((2.5 * w, 2.5 * w / (t_both - t_fwd)))
    src = f"{len(points)} measured attention points of {device_name}"
    return _curve(fwd, src), _curve(bwd, src)


# --- hardware numbers of one system, for one dtype and stack ---------------------------------




def misaligned_model(device, dtype):
    """What times a GEMM with a dimension that is not a multiple of 8 (an LM head over vocab 50257):
    the device's measured misaligned points where it has some, else the shape model, whose
    unaligned bound (:func:`perfmodel.formulas.gemm.unaligned_gemm_rate`) holds for it. A curve
    of aligned points alone says nothing about such a GEMM (the H200's aligned points reach 800
    TFLOP/s, its LM head GEMMs 95-147). The rule is the tensor cores' (16-byte operand vectors), so
    a CPU's curve keeps standing for all its GEMMs."""
    model = gemm_model(device, dtype)
    if not isinstance(model, RateCurve):
        return model
    points = next((device.gemm[c] for c in dtype_candidates(dtype) if device.gemm.get(c)), ())
    if device.kind == "gpu" and all(is_aligned(p.m, p.n, p.k) for p in points):
        return gemm_shape_model(device, dtype)
    return gemm_curve(device, dtype, aligned=False)
