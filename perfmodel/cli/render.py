"""Render rows as a rich table, JSON or CSV: the one place the CLI writes results."""

from __future__ import annotations

import csv
import enum
import io
import json
import math
import sys
from typing import Any


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


def emit_rows(rows: list[dict], fmt: Format, *, title: str | None = None, columns: list[str] | None = None,
              json_obj: Any = None) -> None:
    """Print ``rows`` in ``fmt``; ``json_obj`` replaces the plain list of rows for JSON output."""
    columns = columns or (list(rows[0]) if rows else [])
    if fmt == Format.json:
        emit_json(rows if json_obj is None else json_obj)
    elif fmt == Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(row.get(k)) for k in columns})
        sys.stdout.write(buf.getvalue())
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        Console().print(table)


def emit_text(text: str, fmt: Format, json_obj: Any = None) -> None:
    if fmt == Format.json:
        emit_json(json_obj if json_obj is not None else {"text": text})
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")
