"""``perfmodel predict --tasks FILE --system S``: a task graph on a system's workers (bounds + HEFT)."""

from __future__ import annotations

from perfmodel.cli.render import Format, emit_rows, show

SCHEDULE_COLUMNS = ["task", "worker", "start_s", "finish_s", "duration_s", "ready_s"]


def run_tasks(tasks: str, system: str, devices: int | None, fmt: Format) -> None:
    """Schedule the task graph ``tasks`` on ``system`` and print it in ``fmt``."""
    from perfmodel.tasks.schedule import schedule_tasks

    _check_not_a_folder(tasks)
    result = schedule_tasks(tasks, system, devices)
    if fmt == Format.csv:
        emit_rows([p.to_dict() for p in result.placements], fmt, columns=SCHEDULE_COLUMNS)
    else:
        show(result, fmt)


def _check_not_a_folder(tasks: str) -> None:
    """A folder given as --tasks: say so (the library's reader only says the file is not there)."""
    from pathlib import Path

    from perfmodel.errors import InputFileError
    from perfmodel.tasks.graph import bundled_task_graphs

    try:
        folder = Path(tasks).is_dir()
    except (OSError, ValueError):  # a name the OS cannot take as a path: the library reports it
        return
    if folder and tasks not in bundled_task_graphs():
        raise InputFileError(f"--tasks: '{tasks}' is a directory, expected a task-graph TOML file")
