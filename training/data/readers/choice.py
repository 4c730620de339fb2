"""Multiple-choice and true/false data: A-OKVQA, AI2D, Visual7W telling and VSR.

AI2D is read from its release folder (:mod:`training.releases.ai2d`) without the test images of
``ai2d_test_ids.csv``, which ``vlm eval ai2d_test`` scores.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...releases.ai2d import TEST_IDS_RELEASE, read_ai2d_questions
from ...templates import Turn, multiple_choice_turn, vsr_turn
from .conversation import Conversations, pack
from .files import PathLike, get, int_field, load_json, load_records, top

__all__ = ["read_ai2d", "read_aokvqa", "read_visual7w", "read_vsr"]


def read_aokvqa(path: PathLike, *, max_turns_per_image: int = 1, source: str = "aokvqa") -> Conversations:
    """A-OKVQA JSON list (question, choices, correct_choice_idx) -> multiple choice; images ``<image_id:012d>.jpg``."""
    items = []
    for index, record in enumerate(load_records(path)):
        image_id = int_field(get(record, "image_id", path, index), "image_id", path, index)
        answer = int_field(get(record, "correct_choice_idx", path, index), "correct_choice_idx", path, index)
        options = get(record, "choices", path, index)
        turn = _multiple_choice(get(record, "question", path, index), options, answer, path, index)
        items.append((f"{image_id:012d}.jpg", turn, "multiple_choice"))
    return pack(items, max_turns_per_image, source)


def _multiple_choice(question: Any, options: Any, answer: int, path: PathLike, index: object) -> Turn:
    """A multiple-choice turn; template errors (bad option count or answer index) name file and record."""
    try:
        return multiple_choice_turn(str(question), list(options), answer)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)!r}: record {index}: {err}") from err


def read_ai2d(
    path: PathLike,
    *,
    split: str = "train",
    test_ids: PathLike | None = None,
    max_turns_per_image: int = 1,
    source: str = "ai2d",
) -> Conversations:
    """AI2D from its release folder (``ai2d/`` or ``ai2d/questions``): the ``train`` split by default, i.e. every
    diagram except those of ``ai2d_test_ids.csv`` (beside or inside the folder, or `test_ids`); ``all`` takes all."""
    folder = Path(path)
    if folder.is_file():
        raise ValueError(
            f"{os.fspath(path)!r} is a file; ai2d reads the release folder (ai2d/ with questions/, images/ and "
            f"ai2d_test_ids.csv from {TEST_IDS_RELEASE})"
        )
    folder = folder.parent if folder.name == "questions" else folder
    questions, excluded = read_ai2d_questions(folder, split, test_ids)
    items = []
    for q in questions:
        turn = _multiple_choice(q.question, q.options, q.answer_index, folder, repr(q.question_id))
        items.append((q.image, turn, "multiple_choice"))
    notes = [f"{excluded} test questions (ai2d_test_ids.csv) left out"] if excluded else []
    return pack(items, max_turns_per_image, source, notes=notes)


def _check_telling(data: Any, path: PathLike) -> None:
    """Visual7W pointing answers with box ids; given to the telling reader they would become options."""
    images = top(data, "images", path)
    first = next((qa for image in images if isinstance(image, dict) for qa in image.get("qa_pairs") or []), None)
    if "boxes" in data or (isinstance(first, dict) and isinstance(first.get("answer"), int)):
        raise ValueError(
            f"{os.fspath(path)!r} is Visual7W pointing (answers are box ids); the visual7w reader takes the telling "
            "task's dataset_v7w_telling.json"
        )


def read_visual7w(
    path: PathLike,
    *,
    splits: Sequence[str] | None = ("train",),
    seed: int = 0,
    max_turns_per_image: int = 1,
    source: str = "visual7w",
) -> Conversations:
    """Visual7W telling ``dataset_v7w_telling.json`` -> multiple choice, options shuffled per question by `seed`."""
    data = load_json(path)
    _check_telling(data, path)
    items, present = [], set()
    for index, image in enumerate(top(data, "images", path)):
        present.add(get(image, "split", path, index))
        if splits is not None and image["split"] not in splits:
            continue
        filename = str(get(image, "filename", path, index))
        for number, qa in enumerate(get(image, "qa_pairs", path, index)):
            where = f"{index} qa_pairs[{number}]"
            answer = str(get(qa, "answer", path, where))
            options = [*(str(choice) for choice in get(qa, "multiple_choices", path, where)), answer]
            # A string seed hashes deterministically (sha512), independent of PYTHONHASHSEED.
            random.Random(f"{seed}-{qa.get('qa_id', where)}").shuffle(options)
            turn = _multiple_choice(get(qa, "question", path, where), options, options.index(answer), path, where)
            items.append((filename, turn, "multiple_choice"))
    if not items:
        raise ValueError(f"{os.fspath(path)!r} has no image of the split(s) {list(splits or [])}: {sorted(present)}")
    return pack(items, max_turns_per_image, source)


def _vsr_image(record: dict[str, Any], path: PathLike, index: int) -> str:
    """``<folder>/<image>`` when the record's ``image_link`` names its COCO folder (train2017 or val2017)."""
    image = str(get(record, "image", path, index))
    link = str(record.get("image_link") or "")
    folder = link.rstrip("/").split("/")[-2] if link.count("/") >= 2 else ""
    return f"{folder}/{image}" if folder in ("train2017", "val2017") else image


def read_vsr(path: PathLike, *, max_turns_per_image: int = 1, source: str = "vsr") -> Conversations:
    """VSR JSONL ``{image, image_link, caption, label}`` (label 1/0) -> ``"True"`` / ``"False"``; images under the
    COCO root as ``train2017/<image>`` or ``val2017/<image>`` (from ``image_link``), else ``<image>``."""
    items = []
    for index, record in enumerate(load_records(path)):
        label = get(record, "label", path, index)
        if label not in (0, 1):  # True/False compare equal to 1/0
            raise ValueError(f"{os.fspath(path)!r}: record {index} field 'label' should be 0 or 1, got {label!r}.")
        turn = vsr_turn(get(record, "caption", path, index), bool(label))
        items.append((_vsr_image(record, path, index), turn, "vsr"))
    return pack(items, max_turns_per_image, source)
