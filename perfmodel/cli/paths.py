"""Checks of the files a command will write (``--out``), made before anything is computed."""

from __future__ import annotations

import os
from pathlib import Path

PARTIAL_SUFFIX = 24  # bytes the ".NAME.partial-PID" temporary file adds to the file name


def check_output_file(out: Path, flag: str = "--out") -> None:
    """A one-line PlanError unless ``out`` can be written: its folder exists, is a folder and is writable,
    ``out`` is not a folder, and its name (and the temporary name beside it) fits the filesystem."""
    from perfmodel.errors import PlanError

    folder = out.parent
    size, limit = len(os.fsencode(out.name)), name_max(folder)
    if size + PARTIAL_SUFFIX > limit:
        raise PlanError(f"{flag}: the file name '{out.name}' is {size} bytes, expected at most "
                        f"{limit - PARTIAL_SUFFIX} (the filesystem allows {limit})")
    try:
        if not folder.exists():
            raise PlanError(f"{flag}: folder '{folder}' does not exist")
        if not folder.is_dir():
            raise PlanError(f"{flag}: '{folder}' is not a folder")
        if out.is_dir():
            raise PlanError(f"{flag}: '{out}' is a directory, expected a file name")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PlanError(f"{flag}: folder '{folder}' is not writable")
    except OSError as exc:
        raise PlanError(f"{flag}: cannot write '{out}': {exc.strerror or exc}") from None


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the filesystem of ``folder`` takes (255 when it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_plot(plot: Path) -> None:
    """``--plot FILE`` checked before anything is computed (see :func:`perfmodel.plots.check_plot_path`)."""
    from perfmodel.plots import PlotError, check_plot_path

    try:
        check_plot_path(plot)
    except PlotError as exc:
        raise PlotError(f"--plot: {exc}") from None
