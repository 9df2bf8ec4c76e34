"""``perfmodel validate [--dataset NAME]``: predicted vs published step times, with the error."""

from __future__ import annotations

from typing import Optional

import typer

from perfmodel.cli.options import FormatOpt
from perfmodel.cli.text import console as text_console
from perfmodel.cli.render import Format, emit_json, emit_rows

COLUMNS = ["case", "measured_s", "predicted_s", "error", "calibration"]


def validate(dataset: Optional[str] = typer.Option(None, "--dataset", help="narayanan2021-table1, megatron2020 "
                                                   "or megatron-core-h100 (default: all)"),
             format: FormatOpt = Format.table) -> None:
    """Run the bundled published cases: measured vs predicted time per step and the signed relative error
    (predicted / measured - 1), with the mean and max |error| per dataset. The calibration case, if a
    dataset has one, is shown but left out of the mean and max.

    Formats: table; json (one object per dataset: dataset, cases, mean_abs_error, max_abs_error; a list
    of them without --dataset); csv (one row per case, with its dataset).
    """
    from perfmodel.validation import validate as run

    result = run(dataset)
    results = (result,) if dataset is not None else result
    if format == Format.json:
        emit_json(result.to_dict() if dataset is not None else [r.to_dict() for r in results])
    elif format == Format.csv:
        rows = [{"dataset": r.dataset, **c.to_dict()} for r in results for c in r.cases]
        emit_rows(rows, format, columns=["dataset", *COLUMNS])
    else:
        for r in results:
            _table(r)


def _table(result) -> None:
    from rich.table import Table

    from perfmodel.units import format_quantity

    table = Table(title=f"{result.dataset}: {result.description}", caption=f"source: {result.source}",
                  caption_justify="left")
    for col, justify in (("case", "left"), ("measured", "right"), ("predicted", "right"), ("error", "right")):
        table.add_column(col, justify=justify)
    for c in result.cases:
        error = f"{c.error * 100:+.1f} %" + (" (calibration)" if c.calibration else "")
        table.add_row(c.case, format_quantity(c.measured_s, "time"), format_quantity(c.predicted_s, "time"), error)
    console = text_console()
    console.print(table)
    n_cal = len(result.cases) - len(result.scored)
    excluded = f" over {len(result.scored)} cases ({n_cal} calibration case excluded)" if n_cal else \
        f" over {len(result.scored)} cases"
    console.print(f"mean |error| {result.mean_abs_error * 100:.1f} %, max |error| "
                  f"{result.max_abs_error * 100:.1f} %{excluded}", highlight=False)
    for note in result.notes:
        console.print(f"  note: {note}", highlight=False, markup=False)
    console.print()
