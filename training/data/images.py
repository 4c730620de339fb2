"""Opening a training image: a file under the source's image folder, or a member of a webdataset tar shard.

A path whose first part ends in ``.tar`` (``00000.tar/000000042.jpg``, as img2dataset's webdataset output is read
by :mod:`training.releases.grit`) names a member of that tar. Each process keeps its open shards and their member
index (a DataLoader worker opens its own after the fork), so a member is read without scanning the tar again.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from PIL import Image

from processing import load_image, to_rgb

from ..files import safe_relative

__all__ = ["image_exists", "open_image", "split_tar_path"]

_SHARDS: dict[tuple[int, Path], tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]] = {}


def split_tar_path(root: Path, relative: str | os.PathLike[str]) -> tuple[Path, str] | None:
    """``(tar file, member name)`` when `relative` names a member of a tar under `root`, else None."""
    parts = Path(relative).parts
    if len(parts) >= 2 and parts[0].endswith(".tar"):
        return root / parts[0], "/".join(parts[1:])
    return None


def _shard(path: Path) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]:
    key = (os.getpid(), path)
    if key not in _SHARDS:
        try:
            handle = tarfile.open(path)  # noqa: SIM115  (kept open for the process's later reads)
        except tarfile.TarError as err:
            raise ValueError(f"Cannot read tar shard {os.fspath(path)!r}: {err}") from err
        _SHARDS[key] = (handle, {member.name: member for member in handle.getmembers() if member.isfile()})
    return _SHARDS[key]


def _tar_member(path: Path, member: str) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"Tar shard not found: {os.fspath(path)!r}")
    handle, members = _shard(path)
    if member not in members:
        raise FileNotFoundError(f"{member!r} is not in the tar shard {os.fspath(path)!r}")
    data = handle.extractfile(members[member])
    if data is None:  # pragma: no cover - only regular files are indexed
        raise ValueError(f"{member!r} in {os.fspath(path)!r} is not a file")
    return data.read()


def open_image(root: str | os.PathLike[str], relative: str | os.PathLike[str]) -> Image.Image:
    """The decoded RGB image at `root`/`relative` (a file or a tar member); FileNotFoundError / ValueError name it."""
    root = Path(root)
    safe_relative(relative, f"image path under {os.fspath(root)!r}")
    in_tar = split_tar_path(root, relative)
    if in_tar is None:
        return load_image(root / relative)
    path, member = in_tar
    data = _tar_member(path, member)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return to_rgb(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot decode {member!r} in the tar shard {os.fspath(path)!r}: {err}") from err


def image_exists(root: str | os.PathLike[str], relative: str | os.PathLike[str]) -> bool:
    """Whether the image file (or tar member) exists, without decoding it."""
    root = Path(root)
    in_tar = split_tar_path(root, relative)
    if in_tar is None:
        return (root / relative).is_file()
    path, member = in_tar
    return path.is_file() and member in _shard(path)[1]
