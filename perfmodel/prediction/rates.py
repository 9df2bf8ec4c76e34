"""What one device does per second for one dtype and software stack: each kernel's time from the
device's measured curves or the GEMM shape model (:mod:`.kernels`), the memory bandwidth, the
stack's launch cost and, where the device states them, its sustained rates under the power cap.
Used by :mod:`.layers` (a layer's kernels) and the eager inventories."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from perfmodel.formulas import compute as cf
from perfmodel.formulas import gemm as gf
from perfmodel.formulas._backend import maximum, where
from perfmodel.frozen import IdentityMemo, remember
from perfmodel.plan import DTYPE_BYTES
from perfmodel.prediction.kernels import ALIGNMENT, GemmShapeModel, RateCurve, alignment_elements

__all__ = ["DeviceRates", "device_rates", "pass_sums"]

_INF = float("inf")
_PLAIN = (int, float)
_FLAGS = (bool, int, float)  # a GEMM's alignment on the float path


@dataclass(frozen=True)
class DeviceRates:
    """What one device does per second, for one dtype and software stack."""

    gemm_curve: RateCurve | GemmShapeModel  # measured FLOP/s curve over FLOPs, or the shape model
    misaligned_curve: RateCurve | GemmShapeModel  # the same for GEMMs with a dimension not a multiple of 8
    attention_curves: tuple[RateCurve, RateCurve] | None  # fused attention fwd, bwd (measured)
    gemm_scale: object  # multiplies the GEMM and attention rates (the stack's factor; a swept peak's ratio)
    memory_bandwidth: object  # B/s, read + write
    launch_time: float  # s, CPU time to dispatch one kernel
    bytes_per_element: int  # activations
    # the linear layers' GEMMs when they run in another dtype (FP8 under Transformer Engine);
    # None: the same as gemm_curve
    linear_curve: RateCurve | GemmShapeModel | None = None
    # the fraction of the fused attention rate the stack's kernel reaches (Stack.attention_rate_scale)
    attention_scale: object = 1.0
    # under the power cap (HwParams.gemm_sustained and friends): the most FLOP/s a GEMM keeps in
    # gemm_curve's and linear_curve's dtypes, and the share of its rate fused attention keeps
    gemm_sustained: object = float("inf")
    linear_sustained: object = float("inf")
    attention_sustained: object = 1.0
    device_kind: str = ""  # gpu, cpu or xpu (Stack.kernel_efficiency's device-scoped entries)
    attention_dropout_time: object = 0.0  # s per score element of a fused attention forward with dropout
    # (aligned, misaligned) models of GEMMs with fp32 inputs (the LM head of a stack with
    # logits_matmul_fp32 under a 16-bit plan); None: as gemm_curve
    fp32_input_curve: tuple | None = None
    # float GEMM times by (m, n, k, alignment) and the linear layers' rates; outside equality and
    # hashing, fresh in a replaced copy (device_rates hands out one object per hw, dtype and stack)
    _memo: dict = field(default_factory=dict, init=False, compare=False, hash=False, repr=False)
    # every number a GEMM's time reads is a float (not a swept array or a symbol)
    _plain: bool = field(default=False, init=False, compare=False, hash=False, repr=False)

    def __post_init__(self):
        plain = all(type(x) in _PLAIN for x in (self.gemm_scale, self.memory_bandwidth, self.launch_time,
                                                 self.gemm_sustained, self.linear_sustained))
        object.__setattr__(self, "_plain", plain)

    @property
    def fp8_linear(self) -> bool:
        return self.linear_curve is not None

    def linear_gemms(self, shapes, count=1):
        """(forward, backward, forward FLOPs) of ``count`` copies of each linear-layer GEMM (m, k, n):
        the forward C[m,n] = X[m,k] W[k,n], the dgrad dX[m,k] = dY[m,n] W^T and the wgrad
        dW[k,n] = X^T[k,m] dY[m,n], each the forward's FLOPs (compute.linear_backward_flops)."""
        fwd, bwd = pass_sums(self.linear_gemm_triples(shapes))
        flops = 0.0
        for m_, k_, n_ in shapes:
            flops = flops + cf.linear_forward_flops(m_, k_, n_)
        return count * fwd, count * bwd, count * flops

    def linear_gemm_triples(self, shapes) -> tuple:
        """(forward, dgrad, wgrad) seconds of each linear-layer GEMM (m, k, n) (:meth:`linear_gemms`)."""
        return tuple((self.linear_gemm(m_, n_, k_), self.linear_gemm(m_, k_, n_), self.linear_gemm(k_, n_, m_))
                     for m_, k_, n_ in shapes)

    def linear_gemm(self, m, n, k):
        """One GEMM of a transformer layer's linear layers, in their dtype (:meth:`gemm` else)."""
        if self.linear_curve is None:
            return self.gemm(m, n, k)
        return remember(self._memo, "linear", self._linear_rates).gemm(m, n, k)

    def _linear_rates(self) -> DeviceRates:
        """These rates in the linear layers' dtype (built once, kept in the memo)."""
        return replace(self, gemm_curve=self.linear_curve, linear_curve=None, gemm_sustained=self.linear_sustained)

    def fp32_input_gemm(self, m, n, k, aligned=True):
        """One GEMM with fp32 inputs (:meth:`gemm` on ``fp32_input_curve``, or on the compute
        dtype's where there is none)."""
        if self.fp32_input_curve is None:
            return self.gemm(m, n, k, aligned)
        # no power cap measured for this dtype: the compute dtype's does not apply
        return remember(self._memo, "fp32_inputs", lambda: replace(
            self, gemm_curve=self.fp32_input_curve[0], misaligned_curve=self.fp32_input_curve[1], linear_curve=None,
            gemm_sustained=float("inf"), fp32_input_curve=None)).gemm(m, n, k, aligned)

    def gemm(self, m, n, k, aligned=True):
        """One GEMM C[m, n] = A[m, k] B[k, n]; ``aligned``: True, or the elements its dimensions are
        multiples of (:func:`perfmodel.prediction.kernels.gemm_alignment`; False: none known). A
        measured curve is read at the GEMM's FLOPs (a misaligned one from the device's misaligned
        points, which were timed at alignment 1, faster by the wider vector); the shape model
        uses the shape (floats or numpy arrays). Under a power cap no GEMM runs faster than the
        sustained rate (:func:`perfmodel.formulas.gemm.power_capped_time`). Float results are
        remembered per shape."""
        if self._plain and type(m) in _PLAIN and type(n) in _PLAIN and type(k) in _PLAIN and type(aligned) in _FLAGS:
            key = (m, n, k, aligned, type(aligned) is bool)  # True == 1.0 (one element: misaligned)
            return remember(self._memo, key, self._gemm, m, n, k, aligned)
        return self._gemm(m, n, k, aligned)

    def _gemm(self, m, n, k, aligned):
        flops = 2 * m * n * k
        if isinstance(self.gemm_curve, GemmShapeModel):
            t = self.gemm_curve.time(m, n, k, aligned, self.memory_bandwidth, self.gemm_scale)
        else:
            t = self.gemm_curve.time(flops) / self.gemm_scale
            if aligned is not True:
                mis, a = self.misaligned_curve, alignment_elements(aligned)
                slow = (mis.time(m, n, k, aligned, self.memory_bandwidth, self.gemm_scale)
                        if isinstance(mis, GemmShapeModel) else mis.time(flops) / (self.gemm_scale * a))
                t = where(a >= ALIGNMENT, t, maximum(t, slow))  # multiples of 8 run the aligned curve
        if self.gemm_sustained != _INF:
            t = gf.power_capped_time(t, flops, self.gemm_sustained * self.gemm_scale)
        return maximum(t, self.launch_time)

    def flash_attention(self, flops, backward: bool, bytes_moved=0.0, softmax_flops=0.0, key_blocks=_INF):
        """A fused attention kernel: its measured curve, else the shape model's fused attention
        (its share of the achievable rate for the matmuls plus the softmax on the vector units,
        stretched by each query block's fixed work over ``key_blocks``, or its memory traffic:
        :func:`perfmodel.formulas.gemm.flash_attention_time`); at the stack's fraction of it, and
        at the share of it the device keeps under its power cap."""
        scale = self.gemm_scale * self.attention_scale * self.attention_sustained
        if self.attention_curves is None:
            if isinstance(self.gemm_curve, GemmShapeModel):
                t = self.gemm_curve.attention_time(flops, bytes_moved, softmax_flops, self.memory_bandwidth, scale,
                                                   backward, key_blocks)
                return maximum(t, self.launch_time)
            return maximum(self.gemm_curve.time(flops) / scale, self.launch_time)
        curve = self.attention_curves[1 if backward else 0]
        return maximum(curve.time(flops) / scale, self.launch_time)

    def memory(self, bytes_moved):
        return maximum(bytes_moved / self.memory_bandwidth, self.launch_time)

    def attention_matmul(self, m, n, k, n_batch, bytes_moved):
        # n_batch batched score GEMMs (one per sequence and head), k = head_dim or s: timed as
        # one GEMM of n_batch * m rows (the batch fills the units as more tiles would), compute-
        # or memory-bound, whichever is slower
        return maximum(self.gemm(n_batch * m, n, k), self.memory(bytes_moved))


def pass_sums(triples):
    """(forward, dgrad + wgrad) seconds of GEMMs given as (forward, dgrad, wgrad) triples."""
    fwd = bwd = 0.0
    for f, d, w in triples:
        fwd, bwd = fwd + f, bwd + (d + w)
    return fwd, bwd


# one DeviceRates per (hw object, dtype, stack object): its memo of GEMM times lives across predicts
_RATES = IdentityMemo(limit=64)


def device_rates(hw, dtype: str, stack) -> DeviceRates:
    """Kernel rates of the device in ``hw`` (:class:`perfmodel.prediction.hardware.HwParams`)
    running ``stack`` (remembered per hw and stack object)."""
    return _RATES.get(hw, dtype, lambda: IdentityMemo(limit=16)).get(stack, None, lambda: _device_rates(hw, dtype, stack))


def _device_rates(hw, dtype: str, stack) -> DeviceRates:
    attention = hw.attention_kernels.get(stack.attention_kernel, hw.attention)  # the stack's kernel, if measured
    return DeviceRates(hw.gemm, hw.gemm_misaligned, attention, hw.gemm_scale, hw.memory_bandwidth,
                       stack.launch_overhead_time, DTYPE_BYTES[dtype], hw.gemm_linear, stack.attention_rate_scale,
                       hw.gemm_sustained, hw.linear_sustained, hw.attention_sustained, hw.device_kind,
                       hw.attention_dropout_time,
                       fp32_input_curve=hw.gemm_fp32_inputs if stack.logits_matmul_fp32 and DTYPE_BYTES[dtype] < 4 else None)
