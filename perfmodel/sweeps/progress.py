"""One progress bar on stderr for the phases of a long sweep or search (evaluate, gather, write).

Whether to show it is the caller's choice (the CLI: only when stderr is a terminal); a disabled bar
costs nothing. Each phase is one line of the bar, so the whole run is covered, not only its start.
"""

from __future__ import annotations

__all__ = ["ProgressBar", "as_bar"]


class ProgressBar:
    """``with ProgressBar(enabled) as bar: advance = bar.phase("evaluate", total); advance(n)``."""

    def __init__(self, enabled: bool = True):
        self.enabled, self._bar = bool(enabled), None

    def __enter__(self) -> ProgressBar:
        if self.enabled and self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
        return self

    def phase(self, name: str, total: int):
        """A new line of the bar; returns ``advance(n)`` (a no-op when disabled)."""
        if self._bar is None:
            return lambda n: None
        task = self._bar.add_task(name, total=total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc) -> bool:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        return False


class _Borrowed:
    """A bar owned by the caller: entering and leaving it does nothing."""

    def __init__(self, bar: ProgressBar):
        self.bar = bar

    def __enter__(self) -> ProgressBar:
        return self.bar

    def __exit__(self, *exc) -> bool:
        return False


def as_bar(progress):
    """A context manager giving a :class:`ProgressBar`: ``progress`` is a bool (a bar of our own) or a
    caller's bar (used as is, left running)."""
    if isinstance(progress, ProgressBar):
        return _Borrowed(progress)
    return ProgressBar(bool(progress))
