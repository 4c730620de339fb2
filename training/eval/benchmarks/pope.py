"""POPE (object hallucination on COCO val2014): yes/no questions in the short-VQA template, three splits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

from ...templates import vqa_prompt
from .files import field, read_records, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, benchmark_spec

__all__ = ["SPECS"]


def _read_pope(paths: Mapping[str, Path], image_root: Path, split: str) -> Iterator[EvalSample]:
    """POPE: JSON lines {question_id, image, text, label yes/no}; asked in the short-VQA template."""
    path = paths["questions"]
    for i, record in enumerate(read_records(path)):
        where = f"{path} record {i}"
        label = str(field(record, "label", where)).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"{where}: field 'label' must be 'yes' or 'no', got {record['label']!r}")
        question = str_field(record, "text", where)
        sample_id = str(record.get("question_id", i))
        image = image_root / str_field(record, "image", where)
        extra = {"pope_split": split, "question": question}
        yield EvalSample(sample_id, image, vqa_prompt(question), [label], "pope", extra)


SPECS: tuple[BenchmarkSpec, ...] = tuple(
    benchmark_spec(f"pope_{split}", "pope", f"POPE ({split}) on COCO val2014",
                   {"questions": f"coco_pope_{split}.json"}, partial(_read_pope, split=split))
    for split in ("random", "popular", "adversarial")
)  # fmt: skip
