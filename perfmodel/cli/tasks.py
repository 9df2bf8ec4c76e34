"""``perfmodel predict --tasks FILE --system S``: a task graph on a system's workers (bounds + HEFT)."""

from __future__ import annotations

from perfmodel.cli.render import Format, emit_json, emit_rows

SCHEDULE_COLUMNS = ["task", "worker", "start_s", "finish_s", "duration_s", "ready_s"]


def run_tasks(tasks: str, system: str, devices: int | None, fmt: Format) -> None:
    """Schedule the task graph ``tasks`` on ``system`` and print it in ``fmt``."""
    from perfmodel.tasks import schedule_tasks

    result = schedule_tasks(tasks, system, devices)
    if fmt == Format.json:
        emit_json(result.to_dict())
    elif fmt == Format.csv:
        emit_rows([p.to_dict() for p in result.placements], fmt, columns=SCHEDULE_COLUMNS)
    else:
        from rich.console import Console

        Console().print(result)
