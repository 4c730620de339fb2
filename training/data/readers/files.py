"""Reading training annotation files: JSON and JSON lines, and required fields, with errors naming file and record."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["PathLike", "get", "int_field", "jsonl_lines", "load_json", "load_records", "parse_line", "top"]

PathLike = str | os.PathLike[str]


def existing(path: PathLike) -> Path:
    """The path, or ``FileNotFoundError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Annotation file not found: {os.fspath(path)!r}")
    return path


def load_json(path: PathLike) -> Any:
    """Parse a JSON file; raise naming the file when it is missing or malformed."""
    path = existing(path)
    with path.open(encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{os.fspath(path)!r} is not valid JSON: {err}") from err


def jsonl_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a JSON-lines file with their record index."""
    with existing(path).open(encoding="utf-8") as handle:
        yield from enumerate(line for line in handle if line.strip())


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
