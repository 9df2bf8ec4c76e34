"""What a sweep gives back beyond the arrays: the size check before it runs, the order of its rows
(runnable first), and its rows written out in blocks (csv, json, parquet), never as one string.

Size. A sweep holds about :data:`BYTES_PER_CONFIG` bytes per configuration while it runs (the
arrays, then the DataFrame's columns; README "When to use --engine dask"), and its output takes
about :data:`OUTPUT_BYTES_PER_ROW` bytes a row per format (measured on gpt3-175b grids, 9 keys).
:func:`check_size` refuses a grid above ``max_configs`` (default :data:`MAX_CONFIGS`, ~5 GB in
memory) before anything is allocated, with the numbers and the override.

Order. :func:`runnable_first` lists the valid rows that fit in memory (fastest first), then the
valid rows that do not fit (fastest first), then the invalid ones: what a reader can run comes
first. Files keep the grid order (so that rows of slices line up); ``fits_only`` keeps only the
valid rows that fit.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

from perfmodel.errors import SweepError

__all__ = ["MAX_CONFIGS", "BLOCK_ROWS", "check_size", "runnable_first", "selected_rows", "write_rows", "write_file",
           "records", "summary"]

BYTES_PER_CONFIG = 260
OUTPUT_BYTES_PER_ROW = {"csv": 370, "json": 720, "parquet": 120, "table": 0}
MAX_CONFIGS = 20_000_000
BLOCK_ROWS = 100_000  # rows per block of a streamed write (a block's DataFrame: ~25 MB)


def _size(n: float) -> str:
    from perfmodel.units import format_quantity

    return format_quantity(float(n), "bytes")


def check_size(n_rows: int, fmt: str = "table", max_configs: int | None = MAX_CONFIGS) -> None:
    """Refuse a grid of more than ``max_configs`` configurations (None: no limit) in one line."""
    if max_configs is None or n_rows <= max_configs:
        return
    out = OUTPUT_BYTES_PER_ROW.get(fmt, 0) * n_rows
    said = f", ~{_size(out)} of {fmt} output" if out else ""
    raise SweepError(f"the grid has {n_rows:,} configurations (~{_size(BYTES_PER_CONFIG * n_rows)} of memory{said}), "
                     f"above the limit of {max_configs:,}; pass --max-configs {n_rows} (max_configs={n_rows}) to "
                     f"run it anyway, or sweep it in slices (fix one key per run)")


def summary(ev) -> dict:
    """``{"evaluated", "valid", "fit"}`` counts of an evaluation."""
    valid = ev.arrays["reason"] < 0
    return {"evaluated": ev.n_rows, "valid": int(valid.sum()), "fit": int((valid & ev.arrays["fits_in_memory"]).sum())}


def runnable_first(ev, limit: int | None = None, fits_only: bool = False):
    """Row indices: valid and fitting (fastest first), then valid not fitting, then invalid."""
    import numpy as np

    a = ev.arrays
    valid = a["reason"] < 0
    fits = valid & a["fits_in_memory"]
    step = a["step_time_s"]
    out = []
    for group in ([fits] if fits_only else [fits, valid & ~fits]):
        g = np.flatnonzero(group)
        out.append(g[np.argsort(step[g], kind="stable")])
        if limit is not None and sum(len(x) for x in out) >= limit:
            break
    else:
        if not fits_only:
            out.append(np.flatnonzero(~valid))
    rows = np.concatenate(out)
    return rows if limit is None else rows[:limit]


def selected_rows(ev, fits_only: bool = False):
    """The rows a file or a full listing holds, in grid order: all, or only the valid rows that fit."""
    import numpy as np

    if not fits_only:
        return None  # every row, as ranges (no index array of the whole grid)
    a = ev.arrays
    return np.flatnonzero((a["reason"] < 0) & a["fits_in_memory"])


def _blocks(ev, rows):
    import numpy as np

    n = ev.n_rows if rows is None else len(rows)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        yield stop - start, ev.to_frame(np.arange(start, stop) if rows is None else rows[start:stop])


def records(df) -> list[dict]:
    """Rows as JSON-ready dicts (missing values -> None, numpy scalars -> Python)."""
    rows = df.astype(object).to_dict("records")
    for row in rows:
        for k, v in row.items():
            if v is None or (isinstance(v, float) and not math.isfinite(v)) or repr(v) in ("<NA>", "nan"):
                row[k] = None
            elif hasattr(v, "item"):
                row[k] = v.item()
    return rows


def _columns(df) -> list[list]:
    """Each column as a list of plain Python values, missing and non-finite values as None."""
    import numpy as np

    out = []
    for name in df.columns:
        col = df[name]
        plain = isinstance(col.dtype, np.dtype)  # not a categorical or a nullable integer
        if plain and col.dtype.kind == "f":
            values = col.to_numpy()
            lst = values.tolist()
            for i in np.flatnonzero(~np.isfinite(values)).tolist():
                lst[i] = None
        elif plain:
            lst = col.to_numpy().tolist()
        else:  # categoricals and nullable integers
            missing = col.isna().to_numpy()
            lst = col.astype(object).to_numpy().tolist()
            for i in np.flatnonzero(missing).tolist():
                lst[i] = None
            lst = [v.item() if hasattr(v, "item") else v for v in lst]
        out.append(lst)
    return out


def write_rows(ev, stream, fmt: str, rows=None, head: dict | None = None, advance=None) -> None:
    """Write ``rows`` (None: all, in grid order) to the text ``stream`` as csv or json, a block at a
    time; json is ``{**head, "rows": [...]}`` with one row per line."""
    advance = advance or (lambda n: None)
    if fmt == "json":
        text = json.dumps(head or {})[:-1]
        stream.write(text + (", " if len(text) > 1 else "") + '"rows": [')
    first = True
    for n, df in _blocks(ev, rows):
        if fmt == "csv":
            df.to_csv(stream, index=False, header=first)
        elif n:
            names, encode = list(df.columns), json.JSONEncoder().encode
            text = ",\n".join(encode(dict(zip(names, r))) for r in zip(*_columns(df)))
            stream.write(("\n" if first else ",\n") + text)
        first = False
        advance(n)
    if fmt == "json":
        stream.write("\n]}\n")


def write_file(ev, path, rows=None, advance=None) -> None:
    """Write ``rows`` to ``path`` (.csv or .parquet) through a temporary file renamed at the end:
    the file appears complete or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        if path.suffix.lower() == ".csv":
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                write_rows(ev, f, "csv", rows, advance=advance)
        else:
            _write_parquet(ev, tmp, rows, advance or (lambda n: None))
        os.replace(tmp, path)
    except OSError as exc:
        raise SweepError(f"--out: cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_parquet(ev, tmp, rows, advance) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for n, df in _blocks(ev, rows):
            table = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), table.schema)
            writer.write_table(table.cast(writer.schema))
            advance(n)
        if writer is None:  # no rows: an empty file with the columns
            import numpy as np

            empty = ev.to_frame(np.empty(0, dtype=np.int64))
            pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), str(tmp))
    finally:
        if writer is not None:
            writer.close()
