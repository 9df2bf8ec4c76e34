"""Find and load hardware specs by bundled name or by path.

Bundled specs live in the repository's ``hardware/`` folder, shipped in the wheel as the package
``perfmodel._hardware`` (see pyproject.toml), so they are found after a non-editable install.
"""

from __future__ import annotations

import functools
import os
import threading
from importlib import resources
from pathlib import Path

from perfmodel.errors import SpecError, UnknownNameError, did_you_mean
from perfmodel.specs import loader

__all__ = ["bundled_dir", "bundled_names", "load_spec", "load_device", "load_link", "load_system", "check_file"]

KIND_DIRS = ("cpu", "gpu", "xpu", "link", "system")


@functools.cache
def bundled_dir() -> Path:
    """The folder holding cpu/ gpu/ xpu/ link/ system/ spec files."""
    return Path(str(resources.files("perfmodel._hardware")))


@functools.cache
def bundled_names() -> dict[str, tuple[str, Path]]:
    """name -> (kind folder, path) for every bundled spec."""
    out: dict[str, tuple[str, Path]] = {}
    root = bundled_dir()
    for kind in KIND_DIRS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            out[path.stem] = (kind, path)
    return out


def _looks_like_path(name) -> bool:
    if isinstance(name, os.PathLike):
        return True
    return isinstance(name, str) and (name.endswith(".toml") or "/" in name or "\\" in name)


def _name(name_or_path, what: str):
    """A str or path-like argument as given; anything else is a one-line SpecError."""
    if isinstance(name_or_path, os.PathLike):
        return name_or_path
    if not isinstance(name_or_path, str):
        raise SpecError(f"{what}: expected a bundled name or a path to a TOML file, got {name_or_path!r} "
                        f"({type(name_or_path).__name__})")
    return name_or_path


def _resolve(name: str, kind: str, base_dir: Path | None):
    """Load a referenced spec (by bundled name, or by path relative to the referring file)."""
    if _looks_like_path(name):
        path = Path(name)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        spec = load_path(path)
    else:
        spec = _load_bundled(name, kind)
    loader.check_reference_kind(spec, kind, name)
    return spec


@functools.cache
def _load_bundled_cached(name: str):
    kind, path = bundled_names()[name]
    return loader.load_file(path, _resolve)


def _load_bundled(name: str, kind: str = "spec"):
    if not isinstance(name, str) or name not in bundled_names():
        names = bundled_names()
        pool = [n for n, (k, _) in names.items() if kind in ("spec", "device") or k == kind] or list(names)
        what = {"device": "device", "spec": "hardware"}.get(kind, kind)
        raise UnknownNameError(f"unknown {what} '{name}'{did_you_mean(str(name), pool)}"
                               f" (see `perfmodel hardware list`)")
    return _load_bundled_cached(name)


# per thread, the files being loaded, outermost first: a reference back to one of them is a cycle
_STATE = threading.local()


def load_path(path: Path | str):
    """Load a spec file by path (not cached: the file may be edited between calls)."""
    path = Path(path)
    try:
        real = path.resolve()
    except (OSError, ValueError, RuntimeError):  # a symlink loop, a NUL byte: the reader says what is wrong
        real = path
    loading = _STATE.__dict__.setdefault("loading", [])
    if real in loading:
        chain = [p.name for p in loading[loading.index(real):]] + [real.name]
        raise loader.ReferenceCycleError(f"{path}: reference cycle between spec files: {' -> '.join(chain)} "
                                         f"(a system cannot name itself, directly or through other files)")
    loading.append(real)
    try:
        return loader.load_file(path, _resolve)
    finally:
        loading.pop()


def load_spec(name_or_path: str | os.PathLike):
    """A device, link or system, by bundled name or by path to a TOML file."""
    name_or_path = _name(name_or_path, "hardware")
    if _looks_like_path(name_or_path):
        return load_path(name_or_path)
    return _load_bundled(name_or_path)


def load_device(name_or_path: str | os.PathLike):
    return _resolve(_name(name_or_path, "device"), "device", None)


def load_link(name_or_path: str | os.PathLike):
    return _resolve(_name(name_or_path, "link"), "link", None)


def load_system(name_or_path: str | os.PathLike):
    """A system; a device name (or file) means that device alone, with no network."""
    spec = load_spec(name_or_path)
    if spec.kind == "system":
        return spec
    if spec.kind in loader.DEVICE_KINDS:
        return loader.single_device_system(spec)
    raise SpecError(f"'{name_or_path}' is a {spec.kind} spec, expected a system or a device")


def check_file(path: Path | str):
    """Load ``path`` fully (references included) and return the spec, or raise the named error."""
    return load_path(path)
