"""Result tables that stay readable on a narrow terminal: no header cut short, no number split.

:func:`packed` lays out columns of already formatted cells: a header wraps at spaces and after dots
(``network.`` / ``link.`` / ``bandwidth``) instead of being cut to ``net…``; a number never wraps; and
when the columns do not fit the terminal they go to several tables side by side in the reader's
order, each repeating the first (index) column, instead of being squeezed. Text columns
(``wrap=True``) wrap at spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Column", "packed", "GAP"]

GAP = 3  # characters between two columns: padding either side and the divider of box.SIMPLE_HEAD
MAX_WORD = 24  # a text column is at least as wide as its longest word, up to this
_PIECES = re.compile(r"[^ .]+\.?|\S+")


@dataclass(frozen=True)
class Column:
    header: str
    cells: tuple[str, ...]
    justify: str = "right"
    wrap: bool = False  # a text column: its cells wrap at spaces

    def widths(self) -> tuple[int, int]:
        """(narrowest, widest) this column may be."""
        pieces = [len(p) for p in _PIECES.findall(self.header)] or [0]
        cells = [len(c) for c in self.cells] or [0]
        if self.wrap:
            words = [len(w) for c in self.cells for w in c.split()] or [0]
            low = max(max(pieces), min(max(words), MAX_WORD))
            return low, max(low, max(cells), len(self.header))
        low = max(max(pieces), max(cells))
        return low, max(low, len(self.header))

    def header_lines(self, width: int) -> str:
        lines: list[str] = []
        for piece in _PIECES.findall(self.header):
            joined = f"{lines[-1]}{'' if lines[-1].endswith('.') else ' '}{piece}" if lines else piece
            if lines and len(joined) <= width:
                lines[-1] = joined
            else:
                lines.append(piece)
        return "\n".join(lines)


def packed(columns: list[Column], width: int, *, title: str | None = None, caption: str | None = None):
    """One table of ``columns`` if they fit in ``width`` characters, else several (each with the first
    column again); a rich renderable."""
    from rich.console import Group

    first, rest = columns[0], columns[1:]
    groups, current, used = [], [], first.widths()[0]
    for col in rest:
        need = GAP + col.widths()[0]
        if current and used + need > width:
            groups.append(current)
            current, used = [], first.widths()[0]
        current.append(col)
        used += need
    groups.append(current)
    from rich.text import Text

    parts = [_table([first, *group], width, title if i == 0 else None) for i, group in enumerate(groups)]
    if caption:
        parts.append(Text(caption))
    return parts[0] if len(parts) == 1 else Group(*parts)


def _table(columns: list[Column], width: int, title: str | None):
    from rich import box
    from rich.table import Table

    lows = [c.widths()[0] for c in columns]
    highs = [c.widths()[1] for c in columns]
    spare = width - sum(lows) - GAP * (len(columns) - 1)
    wants = [high - low for low, high in zip(lows, highs)]
    share = min(1.0, max(spare, 0) / sum(wants)) if sum(wants) else 0.0  # spare characters, shared by want
    sizes = [low + int(want * share) for low, want in zip(lows, wants)]
    t = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col, size in zip(columns, sizes):
        t.add_column(col.header_lines(size), justify=col.justify, width=size, no_wrap=not col.wrap,
                     overflow="fold")
    for i in range(max((len(c.cells) for c in columns), default=0)):
        t.add_row(*(c.cells[i] if i < len(c.cells) else "" for c in columns))
    return t


def from_rows(rows: list[dict], *, text: tuple[str, ...] = (), left: tuple[str, ...] = ()) -> list[Column]:
    """Columns of ``rows`` (dicts of header -> cell): ``text`` columns wrap, ``left`` ones (and text) are
    left-aligned, the others (numbers) right-aligned and never wrapped."""
    if not rows:
        return []
    return [Column(h, tuple("" if r.get(h) is None else str(r[h]) for r in rows),
                   "left" if h in text or h in left else "right", h in text) for h in rows[0]]
