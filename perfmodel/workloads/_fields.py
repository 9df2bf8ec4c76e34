"""Typed reads from a parsed TOML/JSON mapping, with one-line errors naming place, key and value.

Every model file goes through :class:`Fields`: each read states what it expects, and a wrong
value raises :class:`~perfmodel.errors.ModelError` as ``<where> <key>: expected <kind>, got
<value>``. Values are only type-checked and compared, never evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from perfmodel.errors import ModelError, did_you_mean

_MISSING: Any = object()
# Upper bound of every size in a model (layers, hidden, heads, ffn_hidden, vocab, seq, channels,
# widths, image sides, ...): the CLI's --layers ... --seq take at most this too. A billion is far
# above any real model's size and keeps every count finite in float64 (products of a few sizes).
MAX_SIZE = 10**9


def show(value: object) -> str:
    """A value spelled as it would appear in a TOML/JSON file (``true``, ``"abc"``, ``3``)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def is_int(value: object) -> bool:
    """True for a real integer (``bool`` is an ``int`` subclass in Python, and is rejected)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(where: str, key: str, value: object, minimum: int = 1, maximum: int = MAX_SIZE) -> int:
    """Return ``value`` if it is an integer in ``[minimum, maximum]``, else raise a ModelError."""
    kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        raise ModelError(f"{where} {key}: expected {kind}, got {show(value)}")
    if value > maximum:  # type: ignore[operator]
        raise ModelError(f"{where} {key}: expected {kind} of at most {maximum}, got {show(value)}")
    return value  # type: ignore[return-value]


def check_choice(where: str, key: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise with a did-you-mean hint."""
    choices = tuple(choices)
    if isinstance(value, str) and value in choices:
        return value
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    raise ModelError(f"{where} {key}: expected one of {', '.join(choices)}, "
                     f"got {show(value)}{hint}")


def check_bool(where: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ModelError(f"{where} {key}: expected true or false, got {show(value)}")
    return value


def check_str(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ModelError(f"{where} {key}: expected a string, got {show(value)}")
    return value


class Fields:
    """Reads keys of one mapping; :meth:`finish` rejects the keys nobody asked for."""

    def __init__(self, data: object, where: str, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ModelError(f"{where} {prefix.rstrip('.') or 'top level'}: expected a table, "
                             f"got {show(data)}")
        self.data = data
        self.where = where
        self.prefix = prefix
        self.known: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def raw(self, key: str, default: Any = _MISSING, expected: str = "a value") -> Any:
        self.known.add(key)
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is _MISSING:
            raise ModelError(f"{self.where}: missing key '{self.key(key)}' (expected {expected})")
        return default

    def int(self, key: str, default: Any = _MISSING, minimum: int = 1, maximum: int = MAX_SIZE) -> int:
        value = self.raw(key, default, "a positive integer" if minimum == 1 else "an integer")
        return value if value is None else check_int(self.where, self.key(key), value, minimum, maximum)

    def str(self, key: str, default: Any = _MISSING) -> str:
        return check_str(self.where, self.key(key), self.raw(key, default, "a string"))

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        return check_bool(self.where, self.key(key), self.raw(key, default, "true or false"))

    def choice(self, key: str, choices: Iterable[str], default: Any = _MISSING) -> str:
        choices = tuple(choices)
        value = self.raw(key, default, f"one of {', '.join(choices)}")
        return check_choice(self.where, self.key(key), value, choices)

    def int_list(self, key: str, default: Any = _MISSING, length: int | None = None,
                 maximum: int = MAX_SIZE) -> tuple[int, ...]:
        expected = f"a list of {length or ''} positive integers".replace("  ", " ")
        value = self.raw(key, default, expected)
        bad = not isinstance(value, list | tuple) or not value or (length and len(value) != length)
        if bad or not all(is_int(v) and v > 0 for v in value):
            raise ModelError(f"{self.where} {self.key(key)}: expected {expected}, "
                             f"got {show(value)}")
        if any(v > maximum for v in value):
            raise ModelError(f"{self.where} {self.key(key)}: expected {expected} of at most "
                             f"{maximum}, got {show(value)}")
        return tuple(value)

    def finish(self) -> None:
        """Raise on the first key that no read asked for (a typo, most likely)."""
        for key in self.data:
            if key not in self.known:
                hint = did_you_mean(key, sorted(self.known))
                raise ModelError(f"{self.where}: unknown key '{self.key(key)}'{hint}")
