"""AI2D as the Allen Institute releases it: ``ai2d-all.zip`` plus ``ai2d_test_ids.csv``.

Layout (the zip unpacks to ``ai2d/``; the test ids are a separate download)::

    ai2d/questions/<n>.png.json    {"imageName": "<n>.png", "questions": {"<question text>": {"answerTexts": [...],
                                    "correctAnswer": <index>, "abcLabel": <bool>, "questionId": "..."}}}
    ai2d/images/<n>.png
    ai2d/annotations/<n>.png.json  {"text": {"T1": {"value": "leaf", "replacementText": "A", ...}}, ...}
    ai2d_test_ids.csv              one test image id (<n>) per line, beside ai2d/ or inside it

The test split is the images named in ``ai2d_test_ids.csv``; training takes the others. The OCR text is the paper's
(``ai2d_loader.py``): ``"OCR text:\\n"`` then ``"{replacementText}: {value}"`` lines sorted by replacementText.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RELEASE",
    "SPLITS",
    "TEST_IDS_FILE",
    "TEST_IDS_RELEASE",
    "AI2DQuestion",
    "find_test_ids",
    "read_ai2d",
    "read_ai2d_questions",
    "read_test_ids",
]

RELEASE = "https://ai2-public-datasets.s3.amazonaws.com/diagrams/ai2d-all.zip"
TEST_IDS_RELEASE = "https://s3-us-east-2.amazonaws.com/prior-datasets/ai2d_test_ids.csv"
TEST_IDS_FILE = "ai2d_test_ids.csv"
SPLITS = ("test", "train", "all")


@dataclass(frozen=True)
class AI2DQuestion:
    """One AI2D question: its diagram, text, options in release order and the index of the correct one."""

    image: str  # file name under images/
    question: str
    options: tuple[str, ...]
    answer_index: int
    question_id: str
    abc_label: bool
    ocr_text: str


def read_test_ids(path: str | os.PathLike[str]) -> set[str]:
    """The image ids of ``ai2d_test_ids.csv`` (one per line; blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: AI2D's test ids ({TEST_IDS_RELEASE})")
    ids = {line.strip().split(",")[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    if not ids:
        raise ValueError(f"{path} lists no test image ids")
    return ids


def find_test_ids(folder: Path) -> Path:
    """``ai2d_test_ids.csv`` inside the AI2D folder or beside it (the path inside it when neither exists)."""
    for candidate in (folder / TEST_IDS_FILE, folder.parent / TEST_IDS_FILE):
        if candidate.is_file():
            return candidate
    return folder / TEST_IDS_FILE


def _ocr_text(annotation: Path) -> str:
    """The paper's OCR context of one diagram, or "" when it has no text (or no annotation file)."""
    if not annotation.is_file():
        return ""
    texts = json.loads(annotation.read_text(encoding="utf-8")).get("text") or {}
    pairs = sorted((str(t.get("replacementText", "")), str(t.get("value", ""))) for t in texts.values())
    return "OCR text:\n" + "\n".join(f"{label}: {value}" for label, value in pairs) if pairs else ""


def _questions(path: Path, folder: Path) -> Iterator[AI2DQuestion]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, Mapping) or not isinstance(data.get("questions"), Mapping):
        raise ValueError(f"{path}: missing field 'questions' (an object of question text -> answers)")
    image = str(data.get("imageName") or path.name.removesuffix(".json"))
    ocr = _ocr_text(folder / "annotations" / f"{image}.json")
    for text, record in data["questions"].items():
        where = f"{path} [{text!r}]"
        options = record.get("answerTexts") if isinstance(record, Mapping) else None
        answer = record.get("correctAnswer") if isinstance(record, Mapping) else None
        if not isinstance(options, list) or not isinstance(answer, int) or not 0 <= answer < len(options):
            raise ValueError(f"{where}: needs answerTexts (a list) and correctAnswer (an index into it)")
        yield AI2DQuestion(image, str(text).strip(), tuple(str(o).strip() for o in options), answer,
                           str(record.get("questionId", text)), bool(record.get("abcLabel", False)), ocr)  # fmt: skip


def read_ai2d_questions(
    folder: str | os.PathLike[str], split: str = "test", test_ids: str | os.PathLike[str] | None = None
) -> tuple[list[AI2DQuestion], int]:
    """The questions of `split` (``test``: the images of the test ids; ``train``: the others; ``all``) and how many
    questions the split left out."""
    folder = Path(folder)
    questions = folder / "questions"
    if not questions.is_dir():
        raise FileNotFoundError(f"{questions} not found: AI2D's questions folder (unpack {RELEASE})")
    if split not in SPLITS:
        raise ValueError(f"unknown AI2D split {split!r}; valid: {', '.join(SPLITS)}")
    ids = read_test_ids(test_ids or find_test_ids(folder)) if split != "all" else set()
    chosen: list[AI2DQuestion] = []
    left_out = 0
    for path in sorted(questions.glob("*.json")):
        image_id = path.name.split(".")[0]
        if split == "all" or (image_id in ids) == (split == "test"):
            chosen.extend(_questions(path, folder))
        else:
            left_out += sum(1 for _ in _questions(path, folder))
    return chosen, left_out


def read_ai2d(
    folder: str | os.PathLike[str], split: str = "test", test_ids: str | os.PathLike[str] | None = None
) -> list[AI2DQuestion]:
    """The questions of `split` (``test``: the images of the test ids; ``train``: the others; ``all``)."""
    return read_ai2d_questions(folder, split, test_ids)[0]


def as_dict(question: AI2DQuestion) -> dict[str, Any]:
    """A question as plain data (for the samples' ``extra``)."""
    return {"options": list(question.options), "answer_index": question.answer_index, "question": question.question,
            "abc_label": question.abc_label, "ocr_text": question.ocr_text}  # fmt: skip
