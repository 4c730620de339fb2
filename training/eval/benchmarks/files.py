"""Reading benchmark annotation files: JSON and JSON lines, required fields, boxes and option order.

Every error names the file and the record (``path images[3]``) and the field, so a bad download is found at once.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["field", "list_field", "normalised_box", "read_json", "read_records", "shuffled_options", "str_field"]


def read_json(path: Path) -> Any:
    """Parse a JSON file; ValueError naming the file when it is not valid JSON."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file, a JSON list, or a JSON object with a ``data`` list."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not a valid JSON line ({err})") from err
        data = records
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict):  # a single JSON-lines record
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{path}: expected JSON lines, a JSON list of objects or an object with a 'data' list")
    return data


def field(record: Any, key: str, where: str) -> Any:
    """``record[key]``, or ValueError naming the place and the missing field."""
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if key not in record:
        raise ValueError(f"{where}: missing field {key!r}")
    return record[key]


def list_field(record: Any, key: str, where: str) -> list[Any]:
    """``record[key]`` that must be a list."""
    value = field(record, key, where)
    if not isinstance(value, list):
        raise ValueError(f"{where}: field {key!r} must be a list, got {type(value).__name__}")
    return value


def str_field(record: Any, key: str, where: str) -> str:
    """``record[key]`` that must be a non-empty string."""
    value = field(record, key, where)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def normalised_box(xywh: Sequence[Any], width: Any, height: Any, where: str) -> list[float]:
    """COCO ``[x, y, w, h]`` pixels -> ``[x1, y1, x2, y2]`` divided by the image size, clamped to [0, 1]."""
    try:
        x, y, w, h = (float(v) for v in xywh)
        width, height = float(width), float(height)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: bad box {xywh!r} or image size {width!r}x{height!r}") from err
    if not (width > 0 and height > 0) or not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
        raise ValueError(f"{where}: bad box {list(xywh)!r} or image size {width!r}x{height!r}")
    values = (x / width, y / height, (x + w) / width, (y + h) / height)
    return [min(max(v, 0.0), 1.0) for v in values]


def shuffled_options(correct: Any, wrong: Sequence[Any], seed: str) -> tuple[list[Any], int]:
    """The correct option among the wrong ones in a fixed pseudo-random order (seeded by ``seed``), and its index."""
    options = [correct, *wrong]
    order = list(range(len(options)))
    random.Random(seed).shuffle(order)
    return [options[i] for i in order], order.index(0)
