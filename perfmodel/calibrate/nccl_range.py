"""Where a calibrated all-reduce file holds: a note on the message sizes the fit left out.

The fit of :mod:`perfmodel.calibrate.nccl` uses sizes from ``--min-size`` on (module docstring,
"Which sizes"); below, NCCL's low-latency protocols make the times flat in size, and the one-latency
model over-predicts them (the AWS p5 sample: ~270 us predicted for all-reduces measured at ~69 us).
The note says so with the worst case, so that nobody reads the written file below its range.
"""

from __future__ import annotations

import math

__all__ = ["out_of_range", "OUT_OF_RANGE_FACTOR"]

# an unfitted size whose predicted time is off by more than this factor is named in a warning
OUT_OF_RANGE_FACTOR = 1.25


def out_of_range(points, min_size: float, max_size: float) -> str | None:
    """A note when the sizes left out of the fit are predicted badly: the calibrated file holds from
    ``min_size`` on (module docstring, "Which sizes"), and the reader must not take it below."""
    from perfmodel.units import format_quantity as q

    outside = [p for p in points if not p.in_fit]
    if not outside:
        return None
    worst = max(outside, key=lambda p: max(p.predicted_time_s / p.measured_time_s,
                                           p.measured_time_s / p.predicted_time_s))
    ratio = worst.predicted_time_s / worst.measured_time_s
    if 1 / OUT_OF_RANGE_FACTOR <= ratio <= OUT_OF_RANGE_FACTOR:
        return None
    high = "" if math.isinf(max_size) else f" up to {q(max_size, 'bytes', binary=True)}"
    return (f"the calibrated file holds for all-reduces from {q(min_size, 'bytes', binary=True)}{high} (the fitted "
            f"sizes); outside them it is off by up to x{ratio:.2f}: it predicts {q(worst.predicted_time_s, 'time')} "
            f"for the {q(worst.size_bytes, 'bytes', binary=True)} all-reduce measured at "
            f"{q(worst.measured_time_s, 'time')}. Below ~16 MiB NCCL runs its low-latency protocols (LL, LL128), "
            f"which this one-latency model does not describe; perfmodel's own data-parallel all-reduces are "
            f">= 25 MiB buckets")
