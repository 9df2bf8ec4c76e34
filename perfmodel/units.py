"""Quantity strings at the edges: parse "3.35 TB/s" into SI floats, format SI floats for people.

Inside perfmodel every quantity is a plain float in SI: seconds, bytes, FLOP, bytes/s, FLOP/s,
hertz, transfers/s, watts. Strings with units exist only in files and flags (parsed once, here)
and in output (formatted, here).

Rules:
- decimal and binary prefixes are distinct: ``GB`` = 1e9 B, ``GiB`` = 2**30 B; binary prefixes
  apply to bits and bytes only; a bare capital ``K`` is refused (write ``k`` or ``Ki``);
- bits and bytes are explicit: ``b``/``bit`` is a bit, ``B`` a byte (``200 Gb/s`` = 25e9 B/s);
- ``FLOP`` is a count, ``FLOP/s`` (or the datasheet spelling ``FLOPS``) a rate; ``FLOPs`` is
  refused as ambiguous;
- the number is finite and, unless ``allow_negative``, not negative.

pint is the reference in the tests; it is not used here because building its registry takes
~0.8 s, too slow for every CLI call.
"""

from __future__ import annotations

import math
import re

from perfmodel.errors import UnitError

__all__ = ["DIMENSIONS", "parse_quantity", "format_quantity", "dimension_of"]

# dimension -> (what it is called in messages, an example string)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "time": ("a time", "2 us"),
    "bytes": ("a size", "80 GiB"),
    "bandwidth": ("a bandwidth", "3.35 TB/s"),
    "flops": ("a FLOP count", "1.2 PFLOP"),
    "flop_rate": ("a FLOP rate", "989 TFLOP/s"),
    "frequency": ("a frequency", "1.98 GHz"),
    "transfer_rate": ("a transfer rate", "32 GT/s"),
    "power": ("a power", "700 W"),
    "ratio": ("a ratio", "95 %"),
}

_LARGE = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
# Sub-unit prefixes are stored as divisors so that "5 us" is exactly 5 / 1e6 = 5e-06.
_SMALL = {"": 1.0, "m": -1e3, "u": -1e6, "\u00b5": -1e6, "\u03bc": -1e6, "n": -1e9, "p": -1e12}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}

# unit symbol -> (dimension, factor to SI, allowed prefix table). A negative factor -d means
# "divide by d" (bits, %, ms, us, ...), which keeps decimal inputs exact in binary floating point.
_UNITS: dict[str, tuple[str, float, dict[str, float]]] = {
    "s": ("time", 1.0, _SMALL),
    "min": ("time", 60.0, {"": 1.0}),
    "h": ("time", 3600.0, {"": 1.0}),
    "B": ("bytes", 1.0, {**_LARGE, **_BINARY}),
    "b": ("bytes", -8.0, {**_LARGE, **_BINARY}),
    "bit": ("bytes", -8.0, {**_LARGE, **_BINARY}),
    "B/s": ("bandwidth", 1.0, {**_LARGE, **_BINARY}),
    "b/s": ("bandwidth", -8.0, {**_LARGE, **_BINARY}),
    "bit/s": ("bandwidth", -8.0, {**_LARGE, **_BINARY}),
    "bps": ("bandwidth", -8.0, _LARGE),
    "FLOP": ("flops", 1.0, _LARGE),
    "FLOP/s": ("flop_rate", 1.0, _LARGE),
    "FLOPS": ("flop_rate", 1.0, _LARGE),
    "OP/s": ("flop_rate", 1.0, _LARGE),
    "OPS": ("flop_rate", 1.0, _LARGE),
    "Hz": ("frequency", 1.0, _LARGE),
    "T/s": ("transfer_rate", 1.0, _LARGE),
    "W": ("power", 1.0, _LARGE),
    "%": ("ratio", -100.0, {"": 1.0}),
}

# Longest first, so "Gib/s" is not read as "Gi" + "b/s"... and "GiB/s" not as "G" + "iB/s".
def _combine(a: float, b: float) -> tuple[float, float]:
    """(multiplier, divisor) of two factors in the sign convention above."""
    mul = (a if a > 0 else 1.0) * (b if b > 0 else 1.0)
    div = (-a if a < 0 else 1.0) * (-b if b < 0 else 1.0)
    return mul, div


_SUFFIXES = sorted(
    ((p + u, dim, _combine(factor, scale)) for u, (dim, factor, prefixes) in _UNITS.items()
     for p, scale in prefixes.items()),
    key=lambda t: -len(t[0]),
)
_LOOKUP = {s: (dim, f) for s, dim, f in _SUFFIXES}

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")

_HINTS = {
    "FLOPs": "'FLOPs' is ambiguous: write 'FLOP' for a count or 'FLOP/s' for a rate",
    "K": "write 'k' (1e3) or 'Ki' (1024)",
}


def _split(text: str, example: str = "3.35 TB/s") -> tuple[float, str]:
    if not isinstance(text, str):
        raise UnitError(f"expected a quantity string like '{example}', got {text!r} ({type(text).__name__})")
    m = _NUMBER.match(text)
    if not m:
        raise UnitError(f"cannot read a number in {text!r}; write a quantity like '{example}'")
    return float(m.group(1)), m.group(2)


def _hint(suffix: str) -> str:
    for bad, hint in _HINTS.items():
        if bad in suffix:
            return f" ({hint})"
    return ""


def dimension_of(text: str) -> str:
    """The dimension name of a quantity string (``"bandwidth"`` for ``"3.35 TB/s"``)."""
    _, suffix = _split(text)
    if suffix == "":
        return "number"
    if suffix not in _LOOKUP:
        raise UnitError(f"unknown unit {suffix!r} in {text!r}{_hint(suffix)}")
    return _LOOKUP[suffix][0]


def parse_quantity(text: str, expected: str, *, allow_negative: bool = False, allow_zero: bool = True) -> float:
    """Parse ``text`` as a quantity of dimension ``expected`` and return its SI value.

    >>> parse_quantity("3.35 TB/s", "bandwidth")
    3350000000000.0
    >>> parse_quantity("200 Gb/s", "bandwidth")
    25000000000.0
    >>> parse_quantity("80 GiB", "bytes")
    85899345920.0
    >>> parse_quantity("2 us", "time")
    2e-06
    """
    if expected not in DIMENSIONS:
        raise ValueError(f"unknown dimension {expected!r}")  # programming error, not user input
    what, example = DIMENSIONS[expected]
    number, suffix = _split(text, example)
    if suffix == "":
        if expected == "ratio":
            value = number
        else:
            raise UnitError(f"expected {what} like '{example}', got {text!r} (no unit)")
    else:
        if suffix not in _LOOKUP:
            raise UnitError(f"expected {what} like '{example}', got {text!r}: unknown unit {suffix!r}{_hint(suffix)}")
        dim, (mul, div) = _LOOKUP[suffix]
        if dim != expected:
            raise UnitError(f"expected {what} like '{example}', got {text!r} ({DIMENSIONS[dim][0]})")
        value = number * mul / div
    if not math.isfinite(value):
        raise UnitError(f"expected a finite {what[2:] if what.startswith('a ') else what}, got {text!r}")
    if value < 0 and not allow_negative:
        raise UnitError(f"expected a non-negative {what[2:]}, got {text!r}")
    if value == 0 and not allow_zero:
        raise UnitError(f"expected a positive {what[2:]}, got {text!r}")
    return value


# Output side ----------------------------------------------------------------------------------

_FORMAT_UNITS = {
    "time": "s",
    "bytes": "B",
    "bandwidth": "B/s",
    "flops": "FLOP",
    "flop_rate": "FLOP/s",
    "frequency": "Hz",
    "transfer_rate": "T/s",
    "power": "W",
}
_UP = [("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0)]
_DOWN = [("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("ps", 1e-12)]
_BIN_UP = [("Ei", 2.0**60), ("Pi", 2.0**50), ("Ti", 2.0**40), ("Gi", 2.0**30), ("Mi", 2.0**20), ("Ki", 2.0**10), ("", 1.0)]


def format_quantity(value: float, dimension: str, *, digits: int = 3, binary: bool = False) -> str:
    """Format an SI value with the prefix that keeps 1 <= mantissa < 1000.

    >>> format_quantity(3.35e12, "bandwidth")
    '3.35 TB/s'
    >>> format_quantity(85899345920.0, "bytes", binary=True)
    '80 GiB'
    >>> format_quantity(2.5e-6, "time")
    '2.5 us'
    """
    if dimension == "ratio":
        return f"{value * 100:.{digits}g} %"
    unit = _FORMAT_UNITS[dimension]
    if not math.isfinite(value) or value == 0:
        return f"{value:g} {unit}"
    mag = abs(value)
    if dimension == "time" and mag < 1:
        for symbol, scale in _DOWN:
            if mag >= scale * 0.9995:
                break
        return f"{value / scale:.{digits}g} {symbol}"
    table = _BIN_UP if binary and dimension in ("bytes", "bandwidth") else _UP
    for prefix, scale in table:
        if mag >= scale * 0.9995:
            break
    return f"{value / scale:.{digits}g} {prefix}{unit}"
