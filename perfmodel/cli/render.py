"""Print results as a rich table, JSON or CSV: the one place the CLI writes results.

A result renders itself: ``to_dict()`` is its JSON, ``to_rows()`` its flat CSV rows (``CSV_COLUMNS``
when the columns are fixed), ``__rich__`` its tables. Tables go through :func:`perfmodel.cli.text.console`
(markup off, control characters removed); CSV cells lose control characters too.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import math
import sys
from typing import Any

from perfmodel.cli.text import console, printable


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; never emit invalid JSON
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_plain(obj), indent=2) + "\n")


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as CSV with a header (missing keys empty, control characters removed from text)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(_plain(row.get(k))) for k in columns})
    return buf.getvalue()


def _cell(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


def emit_rows(rows: list[dict], fmt: Format, *, title: str | None = None, columns: list[str] | None = None,
              json_obj: Any = None) -> None:
    """Print ``rows`` in ``fmt``; ``json_obj`` replaces the plain list of rows for JSON output."""
    columns = columns or (list(rows[0]) if rows else [])
    if fmt == Format.json:
        emit_json(rows if json_obj is None else json_obj)
    elif fmt == Format.csv:
        sys.stdout.write(csv_text(rows, columns))
    else:
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        console().print(table)


def show(result: Any, fmt: Format, *, table: Any = None) -> None:
    """Print a library result: ``to_dict()`` as JSON, ``to_rows()`` (or ``to_row()``) as CSV, itself (or
    ``table``) on the console."""
    if fmt == Format.json:
        emit_json(result.to_dict())
    elif fmt == Format.csv:
        rows = list(result.to_rows()) if hasattr(result, "to_rows") else [result.to_row()]
        columns = getattr(result, "CSV_COLUMNS", None) or (list(rows[0]) if rows else [])
        sys.stdout.write(csv_text(rows, list(columns)))
    else:
        console().print(result if table is None else table)


def emit_text(text: str, fmt: Format, json_obj: Any = None) -> None:
    if fmt == Format.json:
        emit_json(json_obj if json_obj is not None else {"text": text})
    else:
        sys.stdout.write(printable(text.rstrip("\n")) + "\n")
