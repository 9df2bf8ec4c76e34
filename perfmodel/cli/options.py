"""Option plumbing shared by the command modules: the choice enums, the bounded-count option, the
``--format`` option, the plan-flag options and the helper that turns the given plan flags into
:class:`perfmodel.plan.Plan` keyword arguments.

Each command keeps its own help text and panel; only how the options are built lives here.
"""

from __future__ import annotations

import enum

import typer

from perfmodel.cli.render import Format
from perfmodel.plan import (
    DTYPES,
    GRAD_SYNC,
    MAX_DEVICES,
    OPTIMIZERS,
    RECOMPUTE,
    SCHEDULES,
)

__all__ = ["MAX_DEVICES", "MAX_SIZE", "MODEL", "Dtype", "GradSync", "Optimizer", "Recompute", "Schedule", "count",
           "format_option", "plan_fields", "plan_option"]

# choices come from perfmodel.plan, so --help and the library agree on them
Dtype = enum.Enum("Dtype", {d: d for d in DTYPES}, type=str)
Recompute = enum.Enum("Recompute", {r: r for r in RECOMPUTE}, type=str)
Schedule = enum.Enum("Schedule", {s: s for s in SCHEDULES}, type=str)
GradSync = enum.Enum("GradSync", {g: g for g in GRAD_SYNC}, type=str)
Optimizer = enum.Enum("Optimizer", {o: o for o in OPTIMIZERS}, type=str)

MAX_SIZE = 10**9  # model sizes (layers, hidden, vocab, ...) and batch sizes
MODEL = "Model overrides (what-if)"

# the plan flags that are not counts: flag declaration and any bounds
_PLAN_FLAGS = {
    "dtype": ("--dtype",),
    "recompute": ("--recompute",),
    "schedule": ("--schedule",),
    "grad_sync": ("--grad-sync",),
    "optimizer": ("--optimizer",),
    "stack": ("--stack",),
    "zero": ("--zero",),
    "overlap": ("--overlap/--no-overlap",),
    "sequence_parallel": ("--sequence-parallel/--no-sequence-parallel",),
}
_BOUNDS = {"zero": {"min": 0, "max": 3}}


def count(flag: str, help: str, panel: str | None = None, maximum: int = MAX_DEVICES, default=None):
    """An optional integer option in [1, ``maximum``] (devices by default; ``MAX_SIZE`` for sizes)."""
    return typer.Option(default, flag, min=1, max=maximum, help=help, rich_help_panel=panel)


def plan_option(field: str, panel: str | None = None, help: str | None = None, default=None, **extra):
    """The option of the non-count plan field ``field`` (``dtype``, ``zero``, ``overlap``, ...): unset
    (None) unless ``default`` is given; ``extra`` overrides the declaration (e.g. ``"--sequence-parallel"``
    alone as a plain on-flag)."""
    decls = extra.pop("decls", _PLAN_FLAGS[field])
    return typer.Option(default, *decls, **_BOUNDS.get(field, {}), help=help, rich_help_panel=panel, **extra)


def format_option(help: str):
    """``--format table|json|csv`` (default table) with the command's description of each format."""
    return typer.Option(Format.table, "--format", help=help)


def plan_fields(**chosen) -> dict:
    """The plan keywords the user gave (enums to their values, unset flags dropped)."""
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in chosen.items() if v is not None}

