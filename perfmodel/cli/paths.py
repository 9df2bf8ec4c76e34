"""Checks of the files a command will write (``--out``, ``--plot``), made before anything is computed,
and the line that says where a figure went."""

from __future__ import annotations

import sys
from pathlib import Path

PARTIAL_SUFFIX = 24  # bytes the ".NAME.partial-PID" temporary file adds to the file name


def check_output_file(out: Path, flag: str = "--out") -> None:
    """A one-line PlanError unless ``out`` can be written: its folder exists, is a folder and is writable,
    ``out`` is not a folder, and its name (and the temporary name beside it) fits the filesystem."""
    from perfmodel._io import check_writable
    from perfmodel.errors import PlanError

    check_writable(out, PlanError, f"{flag}: ", reserve=PARTIAL_SUFFIX,
                   too_long=f"{flag}: the file name '{{name}}' is {{size}} bytes, expected at most {{allowed}} "
                            "(the filesystem allows {limit})",
                   is_dir=f"{flag}: '{{path}}' is a directory, expected a file name",
                   os_error=f"{flag}: cannot write '{{path}}': {{reason}}")


def check_plot(plot: Path | None) -> None:
    """``--plot FILE`` checked before anything is computed (see :func:`perfmodel.plots.check_plot_path`)."""
    if plot is None:
        return
    from perfmodel.plots import PlotError, check_plot_path

    try:
        check_plot_path(plot)
    except PlotError as exc:
        raise PlotError(f"--plot: {exc}") from None


def plotted(draw, result, plot: Path) -> None:
    """``draw(result, plot)``, then one line on stderr saying where the figure is (stdout stays the result)."""
    from perfmodel.cli.text import one_line

    draw(result, plot)
    print(one_line(f"wrote the figure to {plot}"), file=sys.stderr)
