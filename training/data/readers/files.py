"""Reading training annotation files: JSON and JSON lines, and required fields, with errors naming file and record."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...files import check_readable

__all__ = [
    "PathLike",
    "check_split",
    "get",
    "int_field",
    "jsonl_lines",
    "load_json",
    "load_records",
    "not_text_error",
    "parse_line",
    "top",
]

PathLike = str | os.PathLike[str]


def existing(path: PathLike) -> Path:
    """The path, or ``FileNotFoundError`` naming it (``ValueError`` for a FIFO or device, which would block)."""
    return check_readable(path, "Annotation file")


_BINARY_KINDS = ((b"PAR1", "a parquet file"), (b"\x80", "a pickle"), (b"\x89PNG", "a PNG image"),
                 (b"\xff\xd8", "a JPEG image"), (b"PK", "a zip archive"), (b"\x1f\x8b", "a gzip archive"))  # fmt: skip


def _looks_like(path: PathLike) -> str | None:
    """What a file that is not JSON seems to be, from its first bytes (protocol-0 pickles are ASCII text)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head[:2] in (b"(l", b"(d", b"(i", b"(t") or (head[:1] in (b"]", b"}") and head[1:2] in (b"q", b"(")):
        return "a pickle"
    return next((name for magic, name in _BINARY_KINDS if head.startswith(magic)), None)


def not_text_error(path: PathLike) -> ValueError:
    """The error for a binary file given where a JSON text file was expected, naming what it looks like."""
    kind = _looks_like(path) or "binary"
    return ValueError(f"{os.fspath(path)!r} is not a JSON text file (it looks like {kind}); is it the right file?")


def load_json(path: PathLike) -> Any:
    """Parse a JSON file; raise naming the file when it is missing, malformed or not text at all."""
    path = existing(path)
    with path.open(encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            if err.pos == 0 and _looks_like(path):
                raise not_text_error(path) from err
            raise ValueError(f"{os.fspath(path)!r} is not valid JSON: {err}") from err
        except UnicodeDecodeError as err:
            raise not_text_error(path) from err


def jsonl_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a JSON-lines file with their record index."""
    with existing(path).open(encoding="utf-8") as handle:
        try:
            yield from enumerate(line for line in handle if line.strip())
        except UnicodeDecodeError as err:
            raise not_text_error(path) from err


def parse_line(line: str, path: PathLike, index: int) -> Any:
    """One JSON-lines record; raise naming the file and record when malformed."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{os.fspath(path)!r}: record {index} is not valid JSON: {err}") from err


def load_records(path: PathLike) -> list[Any]:
    """Records of a ``.jsonl`` file (one per line) or of a JSON file holding a list."""
    if Path(path).suffix == ".jsonl":
        return [parse_line(line, path, index) for index, line in jsonl_lines(path)]
    data = load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{os.fspath(path)!r} should hold a JSON list of records, got {type(data).__name__}.")
    return data


def get(record: Any, field: str, path: PathLike, index: object) -> Any:
    """``record[field]``, or ``ValueError`` naming the file, the record and the field."""
    if not isinstance(record, dict):
        raise ValueError(f"{os.fspath(path)!r}: record {index} should be a JSON object, got {type(record).__name__}.")
    if record.get(field) is None:
        raise ValueError(f"{os.fspath(path)!r}: record {index} has no field {field!r}.")
    return record[field]


def top(data: Any, field: str, path: PathLike) -> Any:
    """A top-level field of an annotation file, or ``ValueError`` naming file and field."""
    if not isinstance(data, dict) or data.get(field) is None:
        raise ValueError(f"{os.fspath(path)!r}: the top-level field {field!r} is missing.")
    return data[field]


def int_field(value: Any, field: str, path: PathLike, index: object) -> int:
    """An integer field value (ints or digit strings), or ``ValueError`` naming file, record, field and value."""
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{os.fspath(path)!r}: record {index} field {field!r} should be an integer, got {value!r}."
        ) from err


def check_split(path: PathLike, found: object, wanted: object, dataset: str, expected_file: str) -> None:
    """Raise when an annotation file declares another split than the one training reads (a val/test file given)."""
    if found is not None and wanted is not None and found != wanted:
        raise ValueError(
            f"{os.fspath(path)!r} is {dataset}'s {found!r} split; training reads {wanted!r} ({expected_file}). "
            "Evaluation splits are scored by vlm eval and must not be trained on."
        )
