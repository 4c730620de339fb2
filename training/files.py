"""Writing what is read back later: whole or not at all, never beside stale files, never outside its folder.

- :func:`write_text` / :func:`write_json` write to a temporary file in the same folder and rename it over the target,
  so a kill or a full disk leaves the old file or the new one, never half of either.
- :func:`read_json` reads such a file back; an unreadable one is reported (logged, ``None``) rather than fatal.
- :func:`set_aside` renames a folder or file out of the way (``<name>.<reason>-<UTC time>``) instead of deleting it.
- :func:`replace_folder` builds an output folder under a temporary name and swaps it in at the end, so no file of an
  earlier run stays beside the new ones.
- :func:`safe_name` checks a name that becomes a path component (no separators, no ``..``);
  :func:`safe_relative` a path from an annotation file (no ``..``); :func:`check_readable` that a path to read is
  a regular file or a folder (a FIFO or device would block the read).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "check_readable",
    "fresh_folder",
    "read_json",
    "replace_folder",
    "safe_name",
    "safe_relative",
    "set_aside",
    "write_json",
    "write_text",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def write_text(path: PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_json(path: PathLike, data: Any) -> Path:
    """Write `data` as indented JSON, atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: PathLike, what: str = "file") -> Any | None:
    """The JSON in `path`, or None (with a warning naming the file) when it is missing or unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logger.warning("Ignoring the unreadable %s %s: %s", what, path, err)
        return None


def set_aside(path: PathLike, reason: str) -> Path | None:
    """Rename `path` to ``<name>.<reason>-<UTC time>`` beside it (never deleted); None if it cannot be renamed."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.{reason}-{stamp}-{number}")
    try:
        os.replace(path, target)
    except OSError as err:
        logger.warning("Could not set %s aside (%s); left as it is.", path, err)
        return None
    return target


@contextlib.contextmanager
def replace_folder(out: PathLike) -> Iterator[Path]:
    """A temporary folder beside `out` to build the output in; swapped in for `out` when the block succeeds.

    On an error the temporary folder is removed and `out` is left as it was.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def safe_name(value: str, field: str) -> str:
    """`value` if it can be one path component (not empty, no ``/`` or ``\\``, not ``.`` / ``..``); else ValueError."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value:
        raise ValueError(f"{field}={value!r} must be a plain name (no '/', '\\\\' or '..'), as it names a folder")
    return value


def safe_relative(relative: str | os.PathLike[str], where: str) -> str | os.PathLike[str]:
    """`relative` (an image path from an annotation file) unless a ``..`` part would lead out of its folder."""
    if ".." in Path(relative).parts:
        raise ValueError(f"{where}: the path {os.fspath(relative)!r} leads out of its folder ('..'); refused")
    return relative


def check_readable(path: PathLike, what: str = "file") -> Path:
    """`path` if it is a regular file or a folder; FileNotFoundError when missing, ValueError for a FIFO, socket
    or device (reading one would block or never end)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {os.fspath(path)!r}")
    if not (path.is_file() or path.is_dir()):
        raise ValueError(f"{what} {os.fspath(path)!r} is not a regular file (a FIFO, socket or device?)")
    return path


def fresh_folder(out: PathLike) -> Path:
    """An empty output folder at `out`: an earlier run's non-empty folder is set aside first (renamed, announced),
    so none of its files stays beside the new ones and none is lost."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {os.fspath(out)!r} is a file")
    if out.is_dir() and any(out.iterdir()):
        moved = set_aside(out, "previous")
        if moved is None:
            raise OSError(f"cannot set the existing {os.fspath(out)!r} aside; remove it or choose another --out")
        print(f"{out} held an earlier run; moved it to {moved}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    return out
