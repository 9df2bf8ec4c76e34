"""The one check of a file a command or a plot will write, made before anything is computed (stdlib only).

Used by ``perfmodel.cli.paths`` (``--out``) and ``perfmodel.plots`` (``--plot``/plot paths); each caller
keeps its own wording through the message templates.
"""

from __future__ import annotations

import os
from pathlib import Path


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
