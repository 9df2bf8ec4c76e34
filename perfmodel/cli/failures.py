"""How a framework or OS error becomes the one line the user reads: typer's range and type errors with
the value given, an OSError on a user path with the flag that named it."""

from __future__ import annotations

import errno
import os

from perfmodel.cli.text import LONG_VALUE

__all__ = ["bad_value", "os_error", "flag_of", "OUTPUT_FLAGS"]

OUTPUT_FLAGS = ("--out", "--plot")
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EBADF}


def bad_value(exc: Exception) -> str | None:
    """typer's range/type errors with the value the user gave: ``Invalid value for '--devices': expected an
    integer in [1, 10000000], got '-8'`` (typer's own line drops the value). None when it is not one."""
    errors = getattr(exc.__cause__, "errors", None)
    param = getattr(exc, "param", None)
    if not callable(errors) or param is None:
        return None
    try:
        first = errors()[0]
        given, kind, message = first["input"], first["type"], str(first["msg"])
        full, own = exc.format_message(), str(exc.message)
        prefix = full[: len(full) - len(own)] if full.endswith(own) and full != own else ""
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    except (AttributeError, IndexError, KeyError, TypeError):  # an unexpected shape: keep typer's own line
        return None
    if not isinstance(given, str):
        return None
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    what = {int: "an integer", float: "a number"}.get(annotation)
    if what is not None and kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than",
                                     "int_parsing", "int_from_float", "float_parsing", "finite_number"):
        if low is not None and high is not None:
            what += f" in [{low}, {high}]"
        elif low is not None:
            what += f" >= {low}"
        elif high is not None:
            what += f" <= {high}"
        return f"{prefix}expected {what}, got '{given}'"
    message = message.removeprefix("Value error, ")
    if f"'{given}'" not in message and repr(given) not in message:
        message = f"{message.rstrip('.')}, got '{given}'"
    return prefix + message


def os_error(exc: OSError, args: list[str]) -> str:
    """``--model: cannot read 'aaa…(1000000 chars)': File name too long``: an OSError on a user path, with
    the flag that gave the path when one did."""
    reason = exc.strerror or str(exc)
    filename = exc.filename if exc.filename is not None else exc.filename2
    if filename is None:
        if exc.errno in _WRITE_ERRNOS:  # a write to stdout (or an open file) failed: the output is lost
            return f"cannot write the output: {reason}"
        return f"cannot read or write a file: {reason}"
    name = os.fsdecode(filename) if isinstance(filename, (str, bytes, os.PathLike)) else str(filename)
    flag = flag_of(name, args)
    if flag is None:
        return f"cannot access '{name}': {reason}"
    verb = "write" if flag in OUTPUT_FLAGS else "read"
    return f"{flag + ': ' if flag.startswith('-') else ''}cannot {verb} '{name}': {reason}"


def flag_of(name: str, args: list[str]) -> str | None:
    """The option whose value is the path ``name`` ('' for a positional argument), or None."""
    def same(arg: str) -> bool:
        if not arg or arg.startswith("-"):
            return False
        if arg == name or (len(arg) > LONG_VALUE and arg in name):
            return True
        try:
            return os.path.abspath(arg) == os.path.abspath(name)
        except (OSError, ValueError):
            return False

    for i, arg in enumerate(args):
        if arg.startswith("--") and "=" in arg:
            flag, _, value = arg.partition("=")
            if same(value):
                return flag
        elif same(arg):
            previous = args[i - 1] if i else ""
            return previous if previous.startswith("--") and "=" not in previous else ""
    return None
