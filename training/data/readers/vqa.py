"""Short-answer VQA data: VQAv2, GQA, DocVQA, InfographicVQA and OCR-VQA."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...templates import vqa_turn
from .conversation import Conversations, pack
from .files import PathLike, check_split, get, int_field, load_json, top

__all__ = ["read_docvqa", "read_gqa", "read_infographicvqa", "read_ocrvqa", "read_vqav2"]


def read_vqav2(
    questions_path: PathLike,
    annotations_path: PathLike,
    *,
    data_subtype: str | None = "train2014",
    max_turns_per_image: int = 20,
    source: str = "vqav2",
) -> Conversations:
    """VQAv2 questions + annotations JSON (``multiple_choice_answer``); images ``COCO_<subtype>_<id:012d>.jpg``.

    Only `data_subtype` files are read (val2014 is what ``vlm eval vqav2_val`` scores); None reads any.
    """
    questions = load_json(questions_path)
    found = top(questions, "data_subtype", questions_path)
    check_split(questions_path, found, data_subtype, "VQAv2", "v2_OpenEnded_mscoco_train2014_questions.json")
    annotations = top(load_json(annotations_path), "annotations", annotations_path)
    answers = {
        get(ann, "question_id", annotations_path, i): get(ann, "multiple_choice_answer", annotations_path, i)
        for i, ann in enumerate(annotations)
    }
    subtype = top(questions, "data_subtype", questions_path)
    items = []
    for index, question in enumerate(top(questions, "questions", questions_path)):
        question_id = get(question, "question_id", questions_path, index)
        if question_id not in answers:
            raise ValueError(
                f"{os.fspath(questions_path)!r}: record {index} field 'question_id'={question_id!r} has no "
                f"annotation in {os.fspath(annotations_path)!r}."
            )
        image_id = int_field(get(question, "image_id", questions_path, index), "image_id", questions_path, index)
        turn = vqa_turn(get(question, "question", questions_path, index), str(answers[question_id]))
        items.append((f"COCO_{subtype}_{image_id:012d}.jpg", turn, "vqa"))
    return pack(items, max_turns_per_image, source)


def read_gqa(path: PathLike, *, max_turns_per_image: int = 20, source: str = "gqa") -> Conversations:
    """GQA ``*_balanced_questions.json`` (question id -> {imageId, question, answer}); images ``<imageId>.jpg``.

    The questions carry no split, so the file name tells: test-dev (``vlm eval gqa_testdev``) is refused.
    """
    if "testdev" in Path(path).name:
        check_split(path, "testdev", "train", "GQA", "train_balanced_questions.json")
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)!r} should map question ids to questions, got {type(data).__name__}.")
    items = []
    for key, record in data.items():
        turn = vqa_turn(get(record, "question", path, repr(key)), str(get(record, "answer", path, repr(key))))
        items.append((f"{get(record, 'imageId', path, repr(key))}.jpg", turn, "vqa"))
    return pack(items, max_turns_per_image, source)


def _first_answer(record: Any, path: PathLike, index: object) -> str:
    """The first entry of a non-empty ``answers`` list."""
    answers = get(record, "answers", path, index)
    if not isinstance(answers, list) or not answers:
        raise ValueError(f"{os.fspath(path)!r}: record {index} field 'answers' should be a non-empty list.")
    return str(answers[0])


def read_docvqa(
    path: PathLike, *, split: str | None = "train", max_turns_per_image: int = 1, source: str = "docvqa"
) -> Conversations:
    """DocVQA / InfographicVQA ``{dataset_split, data: [{question, answers, image}]}`` (``image_local_name`` also
    accepted); a file of another ``dataset_split`` than `split` is refused (None reads any)."""
    data = load_json(path)
    found = data.get("dataset_split") if isinstance(data, dict) else None
    check_split(path, found, split, source, f"its {split} file, e.g. train_v1.0.json")
    items = []
    for index, record in enumerate(top(data, "data", path)):
        field = "image_local_name" if isinstance(record, dict) and "image" not in record else "image"
        turn = vqa_turn(get(record, "question", path, index), _first_answer(record, path, index))
        items.append((str(get(record, field, path, index)), turn, "vqa"))
    return pack(items, max_turns_per_image, source)


def read_infographicvqa(
    path: PathLike, *, split: str | None = "train", max_turns_per_image: int = 1, source: str = "infographicvqa"
) -> Conversations:
    """InfographicVQA ``infographicsVQA_train_v1.0.json`` (the DocVQA format; images ``image_local_name``)."""
    return read_docvqa(path, split=split, max_turns_per_image=max_turns_per_image, source=source)


def _url_extension(url: Any) -> str:
    """The file extension of an image URL (``.jpg``, ``.png``, ...), ``.jpg`` when it has none."""
    suffix = Path(str(url or "").split("?")[0]).suffix.lower()
    return suffix if suffix in (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp") else ".jpg"


def read_ocrvqa(
    path: PathLike, *, splits: Sequence[int] | None = (1,), max_turns_per_image: int = 1, source: str = "ocrvqa"
) -> Conversations:
    """OCR-VQA ``dataset.json`` (id -> {imageURL, questions, answers, split: 1 train / 2 val / 3 test}); images
    ``<id><extension of imageURL>`` as its ``loadDataset.py`` saves them (``.jpg`` when the URL has none)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)!r} should map image ids to records, got {type(data).__name__}.")
    items = []
    for key, record in data.items():
        if (
            splits is not None
            and int_field(get(record, "split", path, repr(key)), "split", path, repr(key)) not in splits
        ):
            continue
        questions, answers = get(record, "questions", path, repr(key)), get(record, "answers", path, repr(key))
        if len(questions) != len(answers):
            raise ValueError(
                f"{os.fspath(path)!r}: record {key!r} has {len(questions)} 'questions' but {len(answers)} 'answers'."
            )
        image = f"{key}{_url_extension(record.get('imageURL'))}"
        items.extend((image, vqa_turn(q, str(a)), "vqa") for q, a in zip(questions, answers, strict=True))
    return pack(items, max_turns_per_image, source)
