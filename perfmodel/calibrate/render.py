"""The tables ``perfmodel calibrate nccl | gemm`` prints: each calibration result renders itself through here."""

from __future__ import annotations

import math

__all__ = ["nccl_view", "gemm_view"]


def nccl_view(result):
    """The rich view of a nccl calibration: its tables and notes, in order."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from perfmodel.units import format_quantity as q

    f = result.fit
    parts = []
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
    parts.append(head)
    table = Table(caption="error = predicted / measured bus bandwidth - 1; * = fitted; (in parentheses) = outside "
                          "the fitted sizes, where the written file does not hold", caption_justify="left")
    for col in ("size", "measured", "predicted", "busbw measured", "busbw predicted", "error"):
        table.add_column(col, justify="right")
    for p in result.points:
        table.add_row(q(p.size_bytes, "bytes", binary=True), q(p.measured_time_s, "time"),
                      q(p.predicted_time_s, "time"), q(p.measured_busbw, "bandwidth"),
                      q(p.predicted_busbw, "bandwidth"),
                      f"{p.error * 100:+.1f} % *" if p.in_fit else f"({p.error * 100:+.1f} %)")
    parts.append(table)
    for w in f.warnings:
        parts.append(Text(f"warning: {w}"))
    if f.out_of_range:
        parts.append(Text(f"note: {f.out_of_range}"))
    return Group(*parts)


def gemm_view(result):
    """The rich view of a gemm calibration: its tables and notes, in order."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = []
    table = Table(title=f"GEMM curve of {result.device} vs {result.source_file}",
                  caption="error = curve / measured - 1; before: the device as it was, after: the written file; "
                          "excluded: at the sweep's timing floor (launch-bound), left out of the curve and of the "
                          "mean errors",
                  caption_justify="left")
    for col in ("dtype", "m", "n", "k", "measured", "of peak", "before", "error", "after", "error"):
        table.add_column(col, justify="right")
    for p in result.points:
        before, after = ((f"{p.error_before * 100:+.1f} %", f"{p.error_after * 100:+.1f} %") if p.in_curve
                         else ("excluded", "excluded"))
        table.add_row(p.dtype, str(p.m), str(p.n), str(p.k), f"{p.measured / 1e12:.4g} TFLOP/s",
                      f"{p.measured / p.peak * 100:.1f} %", f"{p.before / 1e12:.4g}", before,
                      f"{p.after / 1e12:.4g}", after)
    parts.append(table)
    summary = Table(title="mean |error|")
    for col in ("dtype", "points", "before", "after", "max after"):
        summary.add_column(col, justify="right")
    for row in result.summary():
        summary.add_row(row["dtype"], str(row["n_points"]), f"{row['mean_abs_error_before'] * 100:.1f} %",
                        f"{row['mean_abs_error_after'] * 100:.1f} %", f"{row['max_abs_error_after'] * 100:.1f} %")
    parts.append(summary)
    parts.append(Text(f"wrote {result.device_file}"))
    return Group(*parts)
