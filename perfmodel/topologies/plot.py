"""Plot of a topology comparison (matplotlib, Agg backend; PNG or SVG by extension).

Left: per topology, the latency and the bandwidth term of its fastest algorithm at the compared
size (log axis: they differ by orders of magnitude). Right: the time of each topology's fastest
algorithm against the message size, the compared size marked. matplotlib is imported inside the
function, never by ``import perfmodel``.
"""

from __future__ import annotations

import math
from pathlib import Path

from perfmodel.plots import check_plot_path, save_figure
from perfmodel.units import format_quantity

__all__ = ["plot_topologies", "size_sweep"]


def size_sweep(comparison, n_points: int = 61, low: float = 1.0, high: float = float(2**34)):
    """{topology: (sizes, best times)} of the comparison's algorithms over a log grid of sizes."""
    net = comparison.networks["net"]
    sizes = [math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (n_points - 1)) for i in range(n_points)]
    out = {}
    for topology, (_nodes, algorithms) in comparison.algorithms.items():
        out[topology] = (sizes, [min(a.evaluate(s, net)[0] for a in algorithms) for s in sizes])
    return out


def plot_topologies(comparison, path) -> Path:
    """Draw ``comparison`` (a :class:`~perfmodel.topologies.compare.TopologyComparison`) to ``path``."""
    path = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison.rows
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [1, 1.25]})
    ys = list(range(len(rows)))[::-1]
    height = 0.38
    left.barh([y + height / 2 for y in ys], [r.latency_s for r in rows], height, color="#d62728",
              label="latency term (beta = inf)")
    left.barh([y - height / 2 for y in ys], [r.bandwidth_s for r in rows], height, color="#1f77b4",
              label="bandwidth term (alpha = 0, hop = 0)")
    left.scatter([r.time_s for r in rows], ys, marker="|", s=250, color="black", zorder=3, label="total time")
    left.set_yticks(ys)
    left.set_yticklabels([f"{r.topology} ({r.algorithm})" for r in rows], fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("time (s), log scale", labelpad=2)
    size = format_quantity(comparison.size_bytes, "bytes", binary=True)
    left.set_title(f"time split at {size} per rank")
    left.grid(axis="x", which="both", alpha=0.3)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=8, frameon=False)

    sweep = size_sweep(comparison)
    styles = ["-", "--", "-.", ":"]
    cmap = plt.get_cmap("tab20")
    for i, (topology, (sizes, times)) in enumerate(sweep.items()):
        right.plot(sizes, times, styles[i % len(styles)], color=cmap(i % 20), linewidth=1.6, label=topology)
    right.axvline(comparison.size_bytes, color="grey", linestyle=":", linewidth=1.2)
    right.text(comparison.size_bytes, 0.02, f" {size}", transform=right.get_xaxis_transform(), fontsize=8,
               color="dimgrey")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("message size per rank (bytes, log2 scale)")
    right.set_ylabel("time of the fastest algorithm (s)")
    right.set_title("time vs message size (each topology's fastest algorithm)")
    right.grid(which="both", alpha=0.3)
    right.legend(fontsize=8, ncol=2, loc="upper left")
    fig.suptitle(f"{comparison.collective} on {comparison.nodes} nodes, {comparison.link} links "
                 f"(alpha {format_quantity(comparison.alpha_s, 'time')}, beta "
                 f"{format_quantity(comparison.beta, 'bandwidth')} per direction, hop "
                 f"{format_quantity(comparison.hop_latency_s, 'time')})")
    fig.tight_layout()
    return save_figure(fig, path)
