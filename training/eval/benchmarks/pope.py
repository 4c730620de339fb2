"""POPE (object hallucination on COCO val2014): yes/no questions in the short-VQA template, three splits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

from ...templates import vqa_prompt
from .files import field, read_records, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, ImageFolders, Location, benchmark_spec

__all__ = ["SPECS"]


def _read_pope(
    paths: Mapping[str, Path], images: ImageFolders, split: str | None, *, variant: str
) -> Iterator[EvalSample]:
    """POPE: JSON lines {question_id, image, text, label yes/no}; asked in the short-VQA template."""
    path = paths["questions"]
    for i, record in enumerate(read_records(path)):
        where = f"{path} record {i}"
        label = str(field(record, "label", where)).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"{where}: field 'label' must be 'yes' or 'no', got {record['label']!r}")
        question = str_field(record, "text", where)
        sample_id = str(record.get("question_id", i))
        image = images.path(str_field(record, "image", where))
        extra = {"pope_split": variant, "question": question}
        yield EvalSample(sample_id, image, vqa_prompt(question), [label], "pope", extra)


SPECS: tuple[BenchmarkSpec, ...] = tuple(
    benchmark_spec(f"pope_{variant}", "pope", f"POPE ({variant}) on COCO val2014",
                   {"questions": f"coco_pope_{variant}.json"}, partial(_read_pope, variant=variant),
                   release="https://github.com/AoiDragon/POPE (output/coco/coco_pope_*.json; COCO val2014 images)",
                   location=Location("pope", ("coco/val2014",)))
    for variant in ("random", "popular", "adversarial")
)  # fmt: skip
