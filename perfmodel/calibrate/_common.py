"""What both calibrations share: the error class, spec copies as raw TOML tables, atomic writes.

A calibrated spec is a copy of a bundled (or user) spec file with a few values replaced. The copy
is made from the parsed TOML table of the original, not from the frozen spec, so every value keeps
its unit string and its source; references to bundled specs stay names, references by path are
made absolute so the copy loads wherever it is written. Files are written to a temporary folder
next to the destination, loaded back with :func:`perfmodel.specs.registry.check_file`, and only
then moved into place: a failed calibration writes nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import perfmodel._io as _io
from perfmodel.errors import InputFileError, PerfModelError, SpecError

__all__ = ["MeasurementError", "dump_toml", "raw_spec", "check_out_path", "write_checked", "read_text"]


class MeasurementError(PerfModelError, ValueError):
    """A measurement file (nccl-tests output, GEMM sweep CSV) that is malformed: file, line, content."""


def read_text(path: Path | str, what: str) -> str:
    """The text of a measurement file; a one-line error when it is missing or unreadable."""
    return _io.read_text(path, what, MeasurementError)


# --- raw spec tables ------------------------------------------------------------------------------

_REFERENCE_KEYS = {("device",), ("host_cpu",), ("host_link",), ("fabric", "link"), ("fabric", "switch_uplink"),
                   ("network", "link")}


def raw_spec(name_or_path: str, kinds: tuple[str, ...]) -> tuple[dict, Path, Any]:
    """(parsed TOML table, its file, the loaded spec) of a bundled name or a spec file path.

    Path references inside a user file are rewritten as absolute paths, so that the copy written
    elsewhere still finds them; bundled names are kept as names.
    """
    from perfmodel.specs import registry
    from perfmodel.specs.reader import read_toml

    if registry._looks_like_path(name_or_path):
        spec = registry.load_path(name_or_path)
    else:  # the unknown-name error then says "unknown system" / "unknown device" / "unknown link"
        spec = registry._load_bundled(name_or_path, kinds[0] if len(kinds) == 1 else "device")
    if spec.kind not in kinds:
        raise SpecError(f"'{name_or_path}' is a {spec.kind} spec, expected a {' or '.join(kinds)}")
    if registry._looks_like_path(name_or_path):
        path = Path(name_or_path)
    else:
        path = registry.bundled_names()[name_or_path][1]
    data = read_toml(path)
    for keys in _REFERENCE_KEYS:
        table = data
        for key in keys[:-1]:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        ref = table.get(keys[-1]) if isinstance(table, dict) else None
        if isinstance(ref, str) and registry._looks_like_path(ref) and not Path(ref).is_absolute():
            table[keys[-1]] = str((path.parent / ref).resolve())
    return data, path, spec


# --- a TOML writer for the spec-file subset ---------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        if value and all(isinstance(v, list) for v in value):
            return "[\n" + "".join(f"  {_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")


def _is_inline(value: Any) -> bool:
    # quantities ({ value = "...", source = "..." }) are inline tables; tables that hold lists or
    # other tables ([peak.dense], [gemm.bf16]) are written as sections
    return isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values())


def dump_toml(data: dict, header: str = "") -> str:
    """TOML text of a spec table (strings, numbers, booleans, lists, nested tables).

    >>> print(dump_toml({"kind": "link", "latency": {"value": "5 us", "source": "x"}}))
    kind = "link"
    latency = { value = "5 us", source = "x" }
    <BLANKLINE>
    """
    out: list[str] = [header] if header else []
    _section(data, (), out, top=True)
    return "\n".join(out) + "\n"


def _section(table: dict, path: tuple[str, ...], out: list[str], top: bool = False) -> None:
    plain = [(k, v) for k, v in table.items() if not isinstance(v, dict) or _is_inline(v)]
    nested = [(k, v) for k, v in table.items() if isinstance(v, dict) and not _is_inline(v)]
    if plain and not top:
        out.append("")
        out.append("[" + ".".join(_key(p) for p in path) + "]")
    for key, value in plain:
        out.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        _section(value, (*path, key), out)


# --- writing ------------------------------------------------------------------------------------


def check_out_path(out: Path | str) -> Path:
    """The destination of a calibrated spec: a .toml path in an existing folder."""
    out = Path(out)
    if out.suffix != ".toml" or not out.stem:
        raise InputFileError(f"--out {out}: expected a path ending in .toml (its stem becomes the spec's name)")
    if len(os.fsencode(out.name)) > 200:  # NAME_MAX is 255 bytes; '<stem>-<link>.toml' is written next to it
        raise InputFileError(f"--out {out.name[:40]}...: file name of {len(os.fsencode(out.name))} bytes, expected "
                             f"at most 200")
    try:
        parent_is_dir, is_dir = out.parent.is_dir(), out.is_dir()
    except (OSError, ValueError) as exc:
        raise InputFileError(f"--out {out}: cannot use this path ({getattr(exc, 'strerror', None) or exc})") from None
    if not parent_is_dir:
        raise InputFileError(f"--out {out}: folder {out.parent} does not exist")
    if is_dir:
        raise InputFileError(f"--out {out}: is a directory")
    return out


def write_checked(files: dict[str, str], main: str, out_dir: Path):
    """Write ``files`` (file name -> text) into ``out_dir`` only if ``main`` then loads.

    Returns the spec loaded from its final place. All the files are written or none: every
    destination is checked first, and a move that fails undoes the ones before it.
    """
    from perfmodel.specs import registry

    for name in files:
        dest = out_dir / name
        if dest.is_dir() or (dest.exists() and not dest.is_file()):
            raise InputFileError(f"{dest}: is {'a directory' if dest.is_dir() else 'not a regular file'}; the "
                                 f"calibration writes {', '.join(files)} together, so none was written")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".perfmodel-calibrate-", dir=out_dir))
    except OSError as exc:
        raise InputFileError(f"{out_dir}: cannot write here ({exc.strerror})") from None
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        registry.check_file(tmp / main)  # the copy must load exactly as `perfmodel hardware check` loads it
        _move_all(files, tmp, out_dir)
    except OSError as exc:
        raise InputFileError(f"{out_dir}: cannot write the calibrated files ({exc.strerror}); none was "
                             f"written") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return registry.check_file(out_dir / main)


def _move_all(files, tmp: Path, out_dir: Path) -> None:
    """Move ``files`` from ``tmp`` into ``out_dir``; on a failure put back what was there before."""
    done: list[tuple[Path, Path | None]] = []
    try:
        for name in files:
            dest, backup = out_dir / name, None
            if dest.exists():
                backup = tmp / f"{name}.previous"
                os.replace(dest, backup)
            done.append((dest, backup))
            os.replace(tmp / name, dest)
    except OSError:
        for dest, backup in reversed(done):
            if backup is not None:
                os.replace(backup, dest)
            else:
                dest.unlink(missing_ok=True)
        raise
