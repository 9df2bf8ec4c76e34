"""What ``perfmodel sweep`` shows of a sweep: the counts, the fastest valid rows and why the others are
invalid; as JSON, as a CSV summary line and as rich tables (hardware values with their units)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from perfmodel.prediction.hardware import SWEEPABLE
from perfmodel.sweeps.grid import _hw_dimension
from perfmodel.sweeps.output import records

__all__ = ["SweepSummary", "SHOWN"]

SHOWN = 20  # rows of the table view
REASONS = 10  # reasons of the table view


@dataclass(frozen=True)
class SweepSummary:
    """A sweep's frame (``df``, :meth:`perfmodel.sweeps.Evaluation.to_frame`), its grid keys and where its rows
    were written (``out``, or None)."""

    df: object
    keys: tuple[str, ...]
    out: str | None = None
    # when ``df`` holds only the rows to show (a large sweep): the whole sweep's counts and the
    # number of configurations per invalid reason
    totals: dict | None = None
    reasons: object = None
    fits_only: bool = False

    @property
    def valid(self):
        return self.df["reason"].isna()

    @property
    def counts(self) -> dict:
        if self.totals is not None:
            return dict(self.totals)
        valid = self.valid
        return {"evaluated": len(self.df), "valid": int(valid.sum()),
                "fit": int((valid & self.df["fits_in_memory"]).sum())}

    def fastest(self, n: int | None = None):
        """The valid rows, those that fit in memory first (then the rest), each fastest first."""
        rows = self.df[self.valid]
        if self.fits_only:
            rows = rows[rows["fits_in_memory"].astype(bool)]
        order = (~rows["fits_in_memory"].astype(bool)).astype(int) * 1.0
        rows = rows.assign(_fits_last=order).sort_values(["_fits_last", "step_time_s"], kind="stable")
        rows = rows.drop(columns="_fits_last")
        return rows if n is None else rows.head(n)

    def to_dict(self) -> dict:
        """``{evaluated, valid, fit, rows}``, or with ``out``: ``{evaluated, valid, fit, out, best}``."""
        if self.out is None:
            return {**self.counts, "rows": records(self.df)}
        best = records(self.fastest(1))
        return {**self.counts, "out": self.out, "best": best[0] if best else None}

    def summary_csv(self) -> str:
        """The CSV summary printed when the rows went to ``out`` (header and one row, the name quoted as
        CSV needs: a comma or newline in it does not break the line)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        c = self.counts
        writer.writerows([("evaluated", "valid", "fit", "out"), (c["evaluated"], c["valid"], c["fit"], self.out)])
        return buf.getvalue()

    def caption(self) -> str:
        c = self.counts
        return (f"{c['evaluated']:,} configurations, {c['valid']:,} valid, {c['fit']:,} fit in memory"
                + (f"; every row is in {self.out}" if self.out is not None else ""))

    def __rich_console__(self, console, options):
        from rich.text import Text

        if self.counts["valid"]:
            yield _fastest_table(self, options.max_width)
        else:
            yield Text(f"no valid configuration ({self.caption()})")
        reasons = self.reasons if self.reasons is not None else self.df["reason"].value_counts()
        reasons = reasons[reasons > 0]
        if len(reasons):
            yield _reasons_table(reasons)


def show_value(key: str, value) -> str:
    """A grid value as the table shows it: hardware numbers with their unit (``50 GB/s``, not 5e10)."""
    if key in SWEEPABLE and isinstance(value, (int, float)) and not isinstance(value, bool):
        from perfmodel.units import format_quantity

        dim = _hw_dimension(key)
        return f"{value:g}" if dim == "number" else format_quantity(float(value), dim)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _fastest_table(summary: SweepSummary, width: int):
    from perfmodel.tables import Column, packed
    from perfmodel.units import format_quantity

    df = summary.df
    fastest = summary.fastest(SHOWN)
    shown = [k for k in (*summary.keys, "dp") if k in df.columns]
    columns = [Column("#", tuple(str(i) for i in range(1, len(fastest) + 1)))]
    columns += [Column(k, tuple(show_value(k, v) for v in fastest[k])) for k in shown]
    results = {"step time": [format_quantity(v, "time") for v in fastest["step_time_s"]],
               "MFU": [f"{v * 100:.1f} %" for v in fastest["mfu"]],
               "memory": [format_quantity(v, "bytes") for v in fastest["memory_total_bytes"]],
               "fits": ["yes" if v else "NO" for v in fastest["fits_in_memory"]],
               "bound": [str(v) for v in fastest["bound"]]}
    columns += [Column(h, tuple(v), "left" if h in ("fits", "bound") else "right") for h, v in results.items()]
    which = "that fit in memory" if summary.fits_only else "(those that fit in memory first)"
    return packed(columns, width, title=f"the {len(fastest)} fastest configurations {which}", caption=summary.caption())


def _reasons_table(reasons):
    from rich.table import Table

    t = Table(title="why the other configurations are invalid")
    t.add_column("configurations", justify="right", no_wrap=True)
    t.add_column("reason")
    for text, n in reasons.head(REASONS).items():
        t.add_row(f"{n:,}", str(text))
    if len(reasons) > REASONS:
        t.add_row("", f"... and {len(reasons) - REASONS} more reasons")
    return t
