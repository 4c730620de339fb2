"""The synthetic datasets' schema: one row per (image, task), the same columns for every generated task.

Every generator returns :class:`SyntheticRow` records; :func:`rows_to_dataset` turns them into a ``datasets.Dataset``
with :func:`dataset_features`, so rows of any task mix in one dataset (the demo trains on all of them at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import datasets
from PIL import Image

__all__ = ["SyntheticRow", "dataset_features", "rows_to_dataset"]

_COLUMNS = ("image", "task", "prompt", "answer", "box", "image_id")


@dataclass(frozen=True)
class SyntheticRow:
    """One generated example; ``box`` is the normalised target box of grounding rows, empty otherwise."""

    image: Image.Image
    task: str
    prompt: str
    answer: str
    box: tuple[float, ...] = ()
    image_id: int = 0


def dataset_features() -> datasets.Features:
    """Schema of every synthetic dataset: image, task, prompt, answer, box (normalised, or empty), image_id."""
    return datasets.Features(
        {
            "image": datasets.Image(),
            "task": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "box": datasets.List(datasets.Value("float64")),
            "image_id": datasets.Value("int64"),
        }
    )


def rows_to_dataset(rows: Iterable[SyntheticRow]) -> datasets.Dataset:
    """A dataset of `rows` in the shared schema (rows of several tasks may mix)."""
    columns: dict[str, list] = {name: [] for name in _COLUMNS}
    for row in rows:
        for name in _COLUMNS:
            value = getattr(row, name)
            columns[name].append(list(value) if name == "box" else value)
    return datasets.Dataset.from_dict(columns, features=dataset_features())
