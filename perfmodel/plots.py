"""Plots of crossovers and device comparisons (matplotlib, Agg backend; PNG or SVG by extension).

matplotlib is imported inside each function, never by ``import perfmodel``. Each function takes a
result object and a path, draws the figure, saves it and returns the path.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from perfmodel._io import check_writable
from perfmodel.errors import PerfModelError

__all__ = ["PlotError", "check_plot_path", "plot_crossover", "plot_device_comparison", "save_figure",
           "PLOT_SUFFIXES"]

PLOT_SUFFIXES = (".png", ".svg")
_KIND_COLOURS = {"cpu": ("#1f77b4", "#6baed6", "#08519c"), "gpu": ("#d62728", "#fc9272", "#a50f15"),
                 "xpu": ("#2ca02c", "#74c476", "#006d2c")}


class PlotError(PerfModelError, ValueError):
    """A plot that cannot be written (an unsupported file type)."""


def check_plot_path(path) -> Path:
    """``path`` as a Path when a .png or .svg file can be written there, else a one-line PlotError.

    Checked before anything is computed: the extension, the folder (exists, is a folder, writable),
    the target (not a folder) and the length of the file name (the filesystem's limit)."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise PlotError(f"plot file '{p}': expected a .png or .svg file name, got '{p.suffix or 'no extension'}'")
    check_writable(p, PlotError, f"plot file '{p}': ", reserve=0,
                   too_long="plot file '{path}': the file name is {size} bytes, longer than the {limit} bytes the "
                            "filesystem allows",
                   is_dir="plot file '{path}' is a directory, expected a .png or .svg file name",
                   os_error="plot file '{path}': cannot write there: {reason}")
    return p


def save_figure(fig, path: Path) -> Path:
    """Save ``fig`` to ``path`` through a temporary file beside it: the plot appears whole or not at all;
    a failure to write is a one-line PlotError. The figure is closed either way."""
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem[:100]}.partial-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=120, format=path.suffix.lower().lstrip("."))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise PlotError(f"plot file '{path}': cannot write it: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _x_label(c) -> str:
    return {"devices": {"dp": "devices (data-parallel workers)", "tp": "tensor-parallel degree t (devices)",
                        "pp": "pipeline stages p (devices)"}[c.scheme],
            "bandwidth": f"{c.sensitivity['level']} link bandwidth per direction (GB/s)",
            "micro-batch": f"micro-batch ({c.unit})"}[c.solve_for]


def plot_crossover(c, path, sweep: list[dict] | None = None) -> Path:
    """Two panels, the crossover marked on both: left, the full prediction's step time and its
    parts as the unknown varies (valid integer plans; a grid of link bandwidths); right, the
    crossover equation's t_comm and t_compute (its scope) through the crossover."""
    import math

    path = check_plot_path(path)
    plt = _pyplot()
    rows = c.sweep() if sweep is None else sweep
    scale = 1e-9 if c.solve_for == "bandwidth" else 1.0  # bandwidth axis in GB/s
    value, x0 = c.value * scale, c.operating_point["x"] * scale
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))

    xs = [r["x"] * scale for r in rows]
    parts = (("step_time_s", "step time", "black", "-", "o"),
             ("compute_s", "compute (+ recompute)", "#1f77b4", "-", "s"),
             ("communication_s", "exposed communication (tp + pp + dp)", "#d62728", "-", "^"),
             ("communication_total_s", "all communication (hidden or exposed)", "#d62728", "--", None),
             ("pipeline_bubble_s", "pipeline bubble", "#ff7f0e", "-", "v"),
             ("optimizer_s", "optimizer step", "#7f7f7f", ":", "."))
    for key, label, colour, style, marker in parts:
        ys = [r[key] for r in rows]
        if any(y > 0 for y in ys):
            left.plot(xs, [y if y > 0 else math.nan for y in ys], style, color=colour, marker=marker, ms=4,
                      lw=2.2 if key == "step_time_s" else 1.4, label=label)
    left.set_title(f"Full prediction: {c.model} on {c.system}, {c.scheme}")
    left.set_ylabel("time per optimizer step (s)")

    lo = min([value, x0] + xs) / 2
    hi = max([value, x0] + xs) * 2
    if c.solve_for == "devices":
        lo = max(lo, c.equation.lo)
    grid = [lo * (hi / lo) ** (i / 299) for i in range(300)]
    comm, comp = c.curve([g / scale for g in grid])
    name = "t_comm + bubble" if c.scheme == "pp" else "t_comm"
    right.plot(grid, comm, color="#d62728", lw=2,
               label=name + (" (jumps where the group leaves its level)" if c.at_discontinuity else ""))
    right.plot(grid, comp, color="#1f77b4", lw=2, label="t_compute")
    right.plot([value], [c.t_comm_s], "o", color="black", ms=7, zorder=5)
    right.set_title(f"Crossover equation ({c.scheme}): {c.scope.split(':')[0]}")
    right.set_ylabel("time (s)")
    text = (f"crossover {c.value * scale:.4g}" + (" GB/s" if scale != 1 else f" {c.unit}"))
    for ax in (left, right):
        ax.set_xlim(lo, hi)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_x_label(c))
        ax.axvline(value, color="black", ls="--", lw=1.2, label=text)
        ax.axvline(x0, color="#9467bd", ls=":", lw=1.2, label=f"operating point {x0:.4g}")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, loc="best")
    side = "above" if "above" in c.direction else "below"
    fig.suptitle(f"{c.model} on {c.system}: {c.scheme} turns communication-bound {side} "
                 f"{c._value_text(c.value)}", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_device_comparison(result, path) -> Path:
    """Three panels over workers, one line per device (coloured by kind: cpu blue, gpu red,
    xpu green): step time, scaling efficiency, and exposed-communication share; each device's
    crossover is a dotted vertical line in its colour."""
    path = check_plot_path(path)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    used: dict[str, int] = {}
    for cross in result.crossovers:
        device, kind = cross["device"], cross["kind"]
        shade = used.get(kind, 0)
        used[kind] = shade + 1
        colour = _KIND_COLOURS.get(kind, ("#555555",) * 3)[shade % 3]
        rows = [r for r in result.rows if r["device"] == device]
        ws = [r["workers"] for r in rows]
        label = f"{device} ({kind})"
        axes[0].plot(ws, [r["step_time_s"] for r in rows], "o-", color=colour, label=label)
        axes[1].plot(ws, [r["efficiency"] * 100 for r in rows], "o-", color=colour, label=label)
        axes[2].plot(ws, [r["comm_fraction"] * 100 for r in rows], "o-", color=colour, label=label)
        if cross["crossover_workers"] is not None:
            for ax in axes:
                ax.axvline(cross["crossover_workers"], color=colour, ls=":", lw=1.5)
            axes[1].annotate(f"crossover {cross['crossover_workers']:.3g}", (cross["crossover_workers"], 103),
                             color=colour, fontsize=8, rotation=90, va="top", ha="right")
    titles = ("step time", "scaling efficiency T(1) / (n T(n))", "exposed communication share of the step")
    ylabels = ("time per optimizer step (s)", "efficiency (%)", "communication (% of step)")
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(list(result.workers)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FormatStrFormatter("%d"))
        ax.set_xlabel("workers (one device per node)")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.25)
    axes[0].set_yscale("log")
    axes[1].set_ylim(0, 105)
    axes[2].set_ylim(0, 100)
    axes[0].legend(fontsize=8, loc="upper right")
    mb = "global batch / workers" if result.micro_batch is None else str(result.micro_batch)
    fig.suptitle(f"{result.model}, {result.scheme} over {result.link} ({result.topology}): global batch "
                 f"{result.global_batch}, micro-batch {mb}, {result.dtype}; dotted: crossover", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)
