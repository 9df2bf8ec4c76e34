"""Validation cases and their results: measured vs predicted, signed error, statistics."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

from perfmodel.errors import InputFileError

__all__ = ["Dataset", "ValidationCase", "CaseResult", "SkippedCase", "ValidationResult", "read_rows", "IN_SAMPLE", "HELD_OUT"]

IN_SAMPLE = "in-sample"  # something of the model was fitted, or tuned by hand, on this dataset
HELD_OUT = "held-out"  # used for nothing but this report


@dataclass(frozen=True)
class ValidationCase:
    """One published run: what was measured and the model, system and plan that reproduce it."""

    case: str
    measured_s: float
    model: object
    system: str
    plan: object
    calibration: bool = False
    note: str = ""
    group: str = ""  # hardware / precision group (a100-bf16, h100-bf16, h100-fp8, xpu, cpu, ...)


@dataclass(frozen=True)
class CaseResult:
    case: str
    measured_s: float
    predicted_s: float
    calibration: bool = False
    note: str = ""
    group: str = ""

    @property
    def error(self) -> float:
        """Signed relative error, predicted / measured - 1."""
        return self.predicted_s / self.measured_s - 1

    def to_dict(self) -> dict:
        return {"case": self.case, "measured_s": self.measured_s, "predicted_s": self.predicted_s,
                "error": self.error, "calibration": self.calibration, "group": self.group}


@dataclass(frozen=True)
class SkippedCase:
    """A published run the model cannot express yet, with the reason (reported, never dropped)."""

    case: str
    reason: str
    group: str = ""

    def to_dict(self) -> dict:
        return {"case": self.case, "reason": self.reason, "group": self.group}


@dataclass(frozen=True)
class ValidationResult:
    """A dataset's cases with their errors; statistics leave the calibration case out."""

    dataset: str
    description: str
    source: str
    cases: tuple[CaseResult, ...]
    notes: tuple[str, ...] = field(default=())
    kind: str = IN_SAMPLE  # IN_SAMPLE or HELD_OUT
    fitted: str = ""  # what was fitted or tuned on it (in-sample datasets)
    skipped: tuple[SkippedCase, ...] = field(default=())

    @property
    def scored(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if not c.calibration)

    @property
    def mean_abs_error(self) -> float:
        scored = self.scored
        return sum(abs(c.error) for c in scored) / len(scored)

    @property
    def max_abs_error(self) -> float:
        return max(abs(c.error) for c in self.scored)

    @property
    def mean_signed_error(self) -> float:
        scored = self.scored
        return sum(c.error for c in scored) / len(scored)

    def groups(self) -> dict[str, dict[str, float]]:
        """Per hardware/precision group: number of runs, mean |error|, mean signed error."""
        out: dict[str, dict[str, float]] = {}
        for c in self.scored:
            g = out.setdefault(c.group or "-", {"runs": 0, "abs": 0.0, "signed": 0.0})
            g["runs"] += 1
            g["abs"] += abs(c.error)
            g["signed"] += c.error
        return {k: {"runs": v["runs"], "mean_abs_error": v["abs"] / v["runs"],
                    "mean_signed_error": v["signed"] / v["runs"]} for k, v in sorted(out.items())}

    def __rich__(self):
        """The dataset as the terminal shows it: one row per case, then the statistics, the
        per-group errors, what was fitted on it, skipped runs and notes."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from perfmodel.units import format_quantity

        # Text, not str: names and sources are data, never rich markup
        table = Table(title=Text(f"{self.dataset} [{self.kind}]: {self.description}"),
                      caption=Text(f"source: {self.source}"), caption_justify="left")
        for col, justify in (("case", "left"), ("group", "left"), ("measured", "right"), ("predicted", "right"),
                             ("error", "right")):
            table.add_column(col, justify=justify)
        for c in self.cases:
            error = f"{c.error * 100:+.1f} %" + (" (calibration)" if c.calibration else "")
            table.add_row(Text(c.case), c.group, format_quantity(c.measured_s, "time"),
                          format_quantity(c.predicted_s, "time"), error)
        n_cal = len(self.cases) - len(self.scored)
        over = f" over {len(self.scored)} cases" + (f" ({n_cal} calibration case excluded)" if n_cal else "")
        lines = [f"{self.kind}: mean |error| {self.mean_abs_error * 100:.1f} %, max |error| "
                 f"{self.max_abs_error * 100:.1f} %, mean signed {self.mean_signed_error * 100:+.1f} %{over}"]
        lines += [f"  {g}: {v['runs']} runs, mean |error| {v['mean_abs_error'] * 100:.1f} %, "
                  f"mean signed {v['mean_signed_error'] * 100:+.1f} %" for g, v in self.groups().items()]
        lines.append(f"  fitted on this dataset: {self.fitted}")
        by_reason: dict[str, list[str]] = {}
        for c in self.skipped:
            by_reason.setdefault(c.reason, []).append(c.case)
        lines += [f"  skipped {len(cases)} ({', '.join(cases)}): {reason}" for reason, cases in by_reason.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return Group(table, *(Text(line) for line in lines), Text(""))

    def to_dict(self) -> dict:
        """``{"dataset", "kind", "cases", "mean_abs_error", "max_abs_error", ...}`` (issue 3's JSON
        shape, plus whether the dataset is in-sample or held-out, per-group errors and the runs the
        model cannot express yet)."""
        return {"dataset": self.dataset, "kind": self.kind, "fitted": self.fitted,
                "cases": [c.to_dict() for c in self.cases],
                "mean_abs_error": self.mean_abs_error, "max_abs_error": self.max_abs_error,
                "mean_signed_error": self.mean_signed_error, "groups": self.groups(),
                "skipped": [c.to_dict() for c in self.skipped]}


def read_rows(filename: str) -> list[dict[str, str]]:
    resource = resources.files("perfmodel").joinpath("data", "validation", filename)
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise InputFileError(f"validation data perfmodel/data/validation/{filename}: cannot be read ({exc})") from None
    return list(csv.DictReader(text.splitlines()))




@dataclass(frozen=True)
class Dataset:
    """A bundled dataset: what it is, where it comes from, how its cases are built, and whether
    anything was fitted on it (``kind``)."""

    description: str
    source: str
    build: Callable[[], list]  # -> ValidationCase and SkippedCase items
    notes: tuple[str, ...] = ()
    kind: str = IN_SAMPLE
    fitted: str = ""


def pooled_lines(results) -> list[str]:
    """One summary per kind over every dataset of that kind (all held-out runs pooled, then all
    in-sample ones), with its hardware/precision groups: the figure a held-out bound is about."""
    lines = []
    for kind in (HELD_OUT, IN_SAMPLE):
        chosen = [r for r in results if r.kind == kind and r.scored]
        if not chosen:
            continue
        pooled = ValidationResult("all", "", "", tuple(c for r in chosen for c in r.cases), kind=kind)
        lines.append(f"all {kind} datasets ({len(chosen)}): {len(pooled.scored)} runs, mean |error| "
                     f"{pooled.mean_abs_error * 100:.1f} %, max |error| {pooled.max_abs_error * 100:.1f} %, "
                     f"mean signed {pooled.mean_signed_error * 100:+.1f} %")
        lines += [f"  {g}: {v['runs']} runs, mean |error| {v['mean_abs_error'] * 100:.1f} %, "
                  f"mean signed {v['mean_signed_error'] * 100:+.1f} %" for g, v in pooled.groups().items()]
    return lines

