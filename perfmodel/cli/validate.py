"""``perfmodel validate [--dataset NAME]``: predicted vs published step times, with the error."""

from __future__ import annotations

from typing import Optional

import typer

from perfmodel.cli.options import FormatOpt
from perfmodel.cli.text import console as text_console
from perfmodel.cli.render import Format, emit_json, emit_rows

COLUMNS = ["case", "group", "measured_s", "predicted_s", "error", "calibration"]


def validate(dataset: Optional[str] = typer.Option(None, "--dataset", help="in-sample: narayanan2021-table1, "
                                                   "megatron2020, megatron-core-h100, h200-eager-profiled; held-out: "
                                                   "heldout-2022-2024, heldout-cpu, h200-eager, narayanan2021-table2 (default: all)"),
             format: FormatOpt = Format.table) -> None:
    """Run the bundled published cases: measured vs predicted time per step and the signed relative error
    (predicted / measured - 1), with the mean and max |error| per dataset and per hardware group. Each
    dataset is in-sample (the model was fitted or developed on it: it says what) or held-out (used for
    nothing else); runs the model cannot express yet are listed as skipped with the reason. The
    calibration case, if a dataset has one, is shown but left out of the mean and max.

    Formats: table; json (one object per dataset: dataset, kind, cases, mean_abs_error, max_abs_error,
    groups, skipped; a list of them without --dataset); csv (one row per case, with its dataset and kind).
    Without --dataset the table ends with every held-out run pooled, then every in-sample one.
    """
    from perfmodel.validation import validate as run

    result = run(dataset)
    results = (result,) if dataset is not None else result
    if format == Format.json:
        emit_json(result.to_dict() if dataset is not None else [r.to_dict() for r in results])
    elif format == Format.csv:
        rows = [{"dataset": r.dataset, "kind": r.kind, **c.to_dict()} for r in results for c in r.cases]
        emit_rows(rows, format, columns=["dataset", "kind", *COLUMNS])
    else:
        for r in results:
            _table(r)
        if dataset is None:
            from rich.text import Text

            from perfmodel.validation.results import pooled_lines

            for line in pooled_lines(results):
                text_console().print(Text(line))


def _table(result) -> None:
    text_console().print(result)
