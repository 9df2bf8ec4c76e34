"""User files in and out (stdlib only): the one path every input file is read through, and the one
check of a file a command or a plot will write.

Reading: :func:`read_bytes` opens regular files only (a FIFO, ``/dev/zero`` or a directory, also
behind a symlink, is refused without reading), at most :data:`MAX_INPUT_BYTES`; :func:`read_text`
decodes UTF-8; :func:`read_toml` and :func:`read_json` parse (duplicate JSON keys and integers over
4300 digits refused). Every failure is one line naming the path. Used by specs, stacks, workloads,
tasks, calibrate and sweep grids.

Writing: :func:`check_writable`, used by ``perfmodel.cli.paths`` (``--out``) and ``perfmodel.plots``
(``--plot``/plot paths); each caller keeps its own wording through the message templates.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from perfmodel.errors import InputFileError


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the filesystem of ``folder`` takes (255 when it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_writable(path: Path, error: type[Exception], prefix: str, *, reserve: int, too_long: str, is_dir: str,
                   os_error: str) -> None:
    """Raise ``error`` (one line) unless ``path`` can be written: its name (plus ``reserve`` bytes for a
    temporary name beside it) fits the filesystem, its folder exists, is a folder and is writable, and
    ``path`` is not a folder. ``prefix`` starts the folder messages; ``too_long``, ``is_dir`` and
    ``os_error`` are whole-message templates with the fields {path}, {name}, {size}, {limit}, {allowed},
    {reason}."""
    folder = path.parent
    size, limit = len(os.fsencode(path.name)), name_max(folder)
    if size + reserve > limit:
        raise error(too_long.format(path=path, name=path.name, size=size, limit=limit, allowed=limit - reserve))
    try:
        if not folder.exists():
            raise error(f"{prefix}folder '{folder}' does not exist")
        if not folder.is_dir():
            raise error(f"{prefix}'{folder}' is not a folder")
        if path.is_dir():
            raise error(is_dir.format(path=path))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise error(f"{prefix}folder '{folder}' is not writable")
    except OSError as exc:
        raise error(os_error.format(path=path, reason=exc.strerror or exc)) from None


# --- reading user files ----------------------------------------------------------------------------

# The largest input file read (bytes): every spec, model, stack, task graph and measurement file the
# project knows is under 1 MiB; /dev/zero, a FIFO or a 6 GB file behind a .toml name must not be read whole.
MAX_INPUT_BYTES = 16 * 2**20
# Python refuses to turn a decimal string longer than this into an int (sys.get_int_max_str_digits)
MAX_INT_DIGITS = 4300

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: Path | str, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``limit`` of them.

    Anything else is one-line :class:`InputFileError` naming the path: missing, no permission, a
    directory, a FIFO or device (opened without blocking, never read), larger than ``limit``."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputFileError(f"expected a path to {what}, got {path!r} ({type(path).__name__})")
    path = Path(path)
    try:
        # non-blocking: a FIFO opens at once (and is then refused by its type) instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except PermissionError:
        raise InputFileError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the name
        raise InputFileError(f"{str(path)!r}: cannot open ({exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputFileError(f"{path}: is a directory, expected {what}")
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{path}: is {_kind(info.st_mode)}, not a regular file; expected {what}")
        if info.st_size > limit:
            raise InputFileError(f"{path}: {info.st_size} bytes, larger than the {limit} bytes an input file may "
                                 f"have; expected {what}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        if isinstance(exc, InputFileError):
            raise
        raise InputFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while read (or /proc reports size 0)
        raise InputFileError(f"{path}: larger than the {limit} bytes an input file may have; expected {what}")
    return data


def read_text(path: Path | str, what: str, error: type[Exception] = InputFileError, *,
              limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``; bad UTF-8 is one-line ``error``."""
    data = read_bytes(path, what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read: not UTF-8 text ({exc.reason} at byte {exc.start}), expected "
                    f"{what}") from None


def parse_toml(text: str, where: str, error: type[Exception]) -> dict[str, Any]:
    """``tomllib.loads(text)``; every failure one line of ``error`` starting with ``where``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: malformed TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nesting level of arrays and inline tables
        raise error(f"{where}: nested too deeply (arrays or inline tables inside each other beyond what the "
                    f"TOML reader can follow)") from None
    except ValueError as exc:  # an integer over MAX_INT_DIGITS digits
        raise error(f"{where}: {_too_long(exc)}") from None


def _too_long(exc: Exception) -> str:
    if "digits" in str(exc):
        return f"an integer longer than {MAX_INT_DIGITS} digits"
    return f"cannot parse ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    pass


def parse_json(text: str, where: str, error: type[Exception]) -> Any:
    """``json.loads(text)`` refusing duplicate keys; every failure one line of ``error``."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _DuplicateKey as exc:
        raise error(f"{where}: duplicate key {exc.args[0]!r} in a JSON object (which one is meant?)") from None
    except RecursionError:  # the decoder recurses once per nesting level
        raise error(f"{where}: nested too deeply (arrays or objects inside each other beyond what the JSON "
                    f"reader can follow)") from None
    except ValueError as exc:  # an integer over MAX_INT_DIGITS digits
        raise error(f"{where}: {_too_long(exc)}") from None


def read_toml(path: Path | str, what: str, error: type[Exception]) -> dict[str, Any]:
    """The parsed TOML file ``path`` (see :func:`read_text`, :func:`parse_toml`)."""
    return parse_toml(read_text(path, what, error), str(path), error)


def read_json(path: Path | str, what: str, error: type[Exception]) -> Any:
    """The parsed JSON file ``path`` (see :func:`read_text`, :func:`parse_json`)."""
    return parse_json(read_text(path, what, error), str(path), error)
