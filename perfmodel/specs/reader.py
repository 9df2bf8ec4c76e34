"""Typed, located access to one parsed TOML table.

Every getter knows the file and the table it reads from, so a bad value is reported as
``hardware/gpu/h100.toml [memory] bandwidth: expected a bandwidth like '3.35 TB/s', got '3.35 TB'
(a size)``. Unknown keys are refused with a did-you-mean, so a typo never silently drops a value.
"""

from __future__ import annotations

import difflib

import math
from pathlib import Path
from typing import Any

import perfmodel._io as _io
from perfmodel.errors import SpecError, UnitError, did_you_mean
from perfmodel.specs.bounds import implausible
from perfmodel.units import DIMENSIONS, parse_quantity

__all__ = ["Table", "read_toml", "DIRECTIONS", "DENSITIES"]

# How a bandwidth was stated. "aggregate" is for memory bandwidth (reads and writes share it).
DIRECTIONS = ("per-direction", "bidirectional", "aggregate")
DENSITIES = ("dense", "sparse")


def read_toml(path: Path, what: str = "a TOML spec file") -> dict[str, Any]:
    """Parse a TOML spec file through :mod:`perfmodel._io`, every failure a one-line named error."""
    return _io.read_toml(path, what, SpecError)


class Table:
    """A TOML table with its location, and getters that check kind and value."""

    def __init__(self, data: Any, file: str, where: str = ""):
        self.file = file
        self.where = where
        if not isinstance(data, dict):
            raise SpecError(f"{self._here()}: expected a table, got {_show(data)}")
        self.data = data
        self._used: set[str] = set()

    # -- location ---------------------------------------------------------------------------
    def _here(self, key: str | None = None) -> str:
        place = f"{self.file} [{self.where}]" if self.where else self.file
        return f"{place} {key}" if key is not None else place

    def fail(self, key: str | None, message: str) -> SpecError:
        return SpecError(f"{self._here(key)}: {message}")

    # -- structure ---------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = ...) -> Any:
        self._used.add(key)
        if key not in self.data:
            if default is ...:
                close = difflib.get_close_matches(key, [k for k in self.data if k not in self._used], n=1, cutoff=0.6)
                raise self.fail(key, "missing (required)" + (f"; the table has '{close[0]}': a misspelling of "
                                                              f"'{key}'?" if close else ""))
            return default
        return self.data[key]

    def table(self, key: str, *, required: bool = True) -> Table | None:
        if key not in self.data and not required:
            self._used.add(key)
            return None
        value = self.raw(key)
        where = f"{self.where}.{key}" if self.where else key
        return Table(value, self.file, where)

    def keys(self) -> list[str]:
        return list(self.data)

    def finish(self, allowed_extra: tuple[str, ...] = ()) -> None:
        """Refuse keys that no getter asked for (typos, unsupported fields)."""
        known = self._used | set(allowed_extra)
        for key in self.data:
            if key not in known:
                raise self.fail(key, f"unknown key{did_you_mean(key, known)}")

    # -- scalars -----------------------------------------------------------------------------
    def string(self, key: str, default: Any = ..., choices: tuple[str, ...] | None = None) -> str:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}{did_you_mean(value, choices)}")
        return value

    def integer(self, key: str, default: Any = ..., minimum: int = 1, maximum: int = 10**9) -> int:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_show(value)}")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"expected an integer in [{minimum}, {maximum}], got {value}")
        return value

    def number(self, key: str, default: Any = ..., minimum: float = 0.0, maximum: float = math.inf,
               inclusive_minimum: bool = True) -> float:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"expected a finite number, got {_show(value)}")
        low_ok = value >= minimum if inclusive_minimum else value > minimum
        if not low_ok or value > maximum:
            bound = "[" if inclusive_minimum else "("
            raise self.fail(key, f"expected a number in {bound}{minimum:g}, {maximum:g}], got {value:g}")
        return float(value)

    def boolean(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def int_list(self, key: str, default: Any = ..., minimum: int = 1) -> tuple[int, ...]:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"expected a non-empty list of integers, got {_show(value)}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
                raise self.fail(key, f"expected integers >= {minimum}, got {_show(item)} in {value}")
        return tuple(value)

    # -- quantities with provenance ------------------------------------------------------------
    def quantity(self, key: str, dimension: str, *, required: bool = True, positive: bool = True,
                 direction: bool = False, density: bool = False) -> Quantity | None:
        """Read ``key = { value = "3.35 TB/s", source = "...", [direction = ...] [note = ...] }``."""
        if key not in self.data and not required:
            self._used.add(key)
            return None
        entry = self.table(key)
        text = entry.raw("value")
        what, example = DIMENSIONS[dimension]
        if not isinstance(text, str):
            raise self.fail(key, f"expected {what} like '{example}' (a string with a unit), got {_show(text)}")
        try:
            value = parse_quantity(text, dimension, allow_zero=not positive)
        except UnitError as exc:
            raise self.fail(key, str(exc)) from None
        odd = implausible(dimension, value, text)
        if odd:
            raise self.fail(key, odd)
        source = entry.string("source")
        stated = entry.string("direction", choices=DIRECTIONS) if direction else None
        dense = entry.string("density", choices=DENSITIES) if density else None
        entry.string("note", default=None)
        entry.string("derivation", default=None)
        entry.finish()
        return Quantity(value=value, text=text, source=source, direction=stated, density=dense,
                        derivation=entry.data.get("derivation"))


class Quantity:
    """An SI value with the string it was read from, its source and how it was stated."""

    __slots__ = ("value", "text", "source", "direction", "density", "derivation")

    def __init__(self, value: float, text: str, source: str, direction: str | None = None,
                 density: str | None = None, derivation: str | None = None):
        self.value = value
        self.text = text
        self.source = source
        self.direction = direction
        self.density = density
        self.derivation = derivation

    def per_direction(self) -> float:
        """The per-direction value of a link bandwidth (a bidirectional figure counts both ways)."""
        return self.value / 2 if self.direction == "bidirectional" else self.value

    def __repr__(self) -> str:
        return f"Quantity({self.text!r}, source={self.source!r})"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"
