"""The command-line interface: ``perfmodel`` (thin typer layer over the library).

``main`` turns every perfmodel error and every usage error into one line on stderr and exit
code 2; typer and rich are imported only here, never by ``import perfmodel``. Set
``PERFMODEL_DEBUG=1`` to see the traceback of an unexpected internal error.

Every error line goes through :func:`one_line`: user text echoed in a message (a name, a value,
a file's contents) has its control characters escaped (``\\n``, ``\\x1b``), so the message stays
one line and no escape sequence reaches the terminal, and an absurdly long value is cut short.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata

__all__ = ["main", "one_line"]

LONG_VALUE = 200  # characters: an echoed value longer than this is cut to its start and its length
KEPT = 60  # characters of a cut value that are kept
LONG_LINE = 4000  # characters: the whole line is cut beyond this
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# a quoted value: the quote opens after no letter (not "model's") and closes before none
_QUOTED = re.compile(rf"(?<!\w)(?:'([^']{{{LONG_VALUE + 1},}})'|\"([^\"]{{{LONG_VALUE + 1},}})\")(?!\w)")
_LONG_WORD = re.compile(rf"\S{{{LONG_VALUE + 1},}}")
_OUTPUT_FLAGS = ("--out", "--plot")


def main(argv: list[str] | None = None) -> int:
    import typer

    from perfmodel.cli.app import build_app
    from perfmodel.errors import PerfModelError

    command = typer.main.get_command(build_app())
    args = sys.argv[1:] if argv is None else argv
    try:
        command.main(args=args, prog_name="perfmodel", standalone_mode=False)
    except PerfModelError as exc:
        _fail(str(exc))
    except BrokenPipeError:
        raise SystemExit(0) from None
    except OSError as exc:  # a user path the library could not open (e.g. a name longer than the OS allows)
        _fail(_os_error(exc, args))
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # click/typer signalling exceptions differ between typer versions
        _handle_framework(exc)
    return 0


def _handle_framework(exc: Exception) -> None:
    name = type(exc).__name__
    if name == "Exit":
        raise SystemExit(getattr(exc, "exit_code", 0)) from None
    if name == "Abort":
        _fail("aborted")
    if name.startswith("NoArgsIsHelp"):
        ctx = getattr(exc, "ctx", None)
        print(ctx.get_help() if ctx is not None else str(exc), file=sys.stderr)
        raise SystemExit(2) from None
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = _bad_value(exc) or exc.format_message().replace("\n", " ")
        _fail(message + hint)
    if os.environ.get("PERFMODEL_DEBUG"):
        raise exc
    print(one_line(f"internal error (a bug in perfmodel, please report it): {name}: {exc}"), file=sys.stderr)
    raise SystemExit(1) from None


def _bad_value(exc: Exception) -> str | None:
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


def _os_error(exc: OSError, args: list[str]) -> str:
    """``--model: cannot read 'aaa…(1000000 chars)': File name too long``: an OSError on a user path, with
    the flag that gave the path when one did."""
    reason = exc.strerror or str(exc)
    filename = exc.filename if exc.filename is not None else exc.filename2
    if filename is None:
        return f"cannot read or write a file: {reason}"
    name = os.fsdecode(filename) if isinstance(filename, (str, bytes, os.PathLike)) else str(filename)
    flag = _flag_of(name, args)
    if flag is None:
        return f"cannot access '{name}': {reason}"
    verb = "write" if flag in _OUTPUT_FLAGS else "read"
    return f"{flag + ': ' if flag.startswith('-') else ''}cannot {verb} '{name}': {reason}"


def _flag_of(name: str, args: list[str]) -> str | None:
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


def one_line(text: str) -> str:
    """``text`` safe to print as one line: long echoed values cut short, control characters escaped."""
    text = _QUOTED.sub(lambda m: _cut(m.group(0)[0], m.group(1) if m.group(1) is not None else m.group(2)), text)
    text = _LONG_WORD.sub(lambda m: _cut("", m.group(0)), text)
    if len(text) > LONG_LINE:
        text = f"{text[:LONG_LINE]}…({len(text):,} chars)"
    return "".join(_escape(ch) for ch in text)


def _cut(quote: str, value: str) -> str:
    return f"{quote}{value[:KEPT]}…({len(value):,} chars){quote}"


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _fail(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(2)
