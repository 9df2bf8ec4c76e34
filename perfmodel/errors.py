"""The error hierarchy of perfmodel.

Every error is a :class:`PerfModelError` and also a builtin (``ValueError``, ``KeyError``,
``FileNotFoundError``, ``RuntimeError``), so callers that already catch builtins keep working. Messages name the
thing, the value, the constraint and the place, and suggest a fix when one is known; the CLI
prints ``str(error)`` as its one line on stderr and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "PerfModelError",
    "UnitError",
    "SpecError",
    "UnknownNameError",
    "PlanError",
    "ModelError",
    "InputFileError",
    "MissingSpecError",
    "SweepError",
    "NoCrossoverError",
    "did_you_mean",
    "OUT_OF_RANGE",
]

# why a result comes out as inf or NaN: what predict's and sweep's refusals of such a result say
OUT_OF_RANGE = ("a hardware or stack value is outside the range the model computes with (e.g. a bandwidth of "
                "1e-320 B/s, a peak of 1e-300 FLOP/s or a launch overhead of 1e307 s)")


class PerfModelError(Exception):
    """Base class of every error perfmodel raises on purpose."""

    def __str__(self) -> str:  # KeyError quotes its message; keep one plain line everywhere
        return str(self.args[0]) if self.args else self.__class__.__name__


class UnitError(PerfModelError, ValueError):
    """A quantity string that does not parse, or has the wrong dimension."""


class SpecError(PerfModelError, ValueError):
    """A hardware (or other) spec file that is malformed: file, key, expected kind and value."""


class MissingSpecError(PerfModelError, KeyError):
    """A value a formula needs is absent from the spec (the datasheet does not give it)."""


class UnknownNameError(PerfModelError, KeyError):
    """A name (hardware, model, stack, formula, dataset) that is not known."""


class PlanError(PerfModelError, ValueError):
    """An impossible or inconsistent parallel plan."""


class ModelError(PerfModelError, ValueError):
    """A malformed model description."""


class InputFileError(PerfModelError, FileNotFoundError):
    """A file that is missing or cannot be read."""


class SweepError(PerfModelError, RuntimeError):
    """A sweep that cannot run as asked: its engine is not installed or cannot reach its scheduler,
    or its grid is too large (or sweeps hardware) for a model that has no vectorised path."""


class NoCrossoverError(PerfModelError, ValueError):
    """The scheme does not turn communication-bound (or is already) anywhere in the range."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
