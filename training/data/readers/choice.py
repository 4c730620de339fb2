"""Multiple-choice and true/false data: A-OKVQA, AI2D, Visual7W telling and VSR."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ...templates import Turn, multiple_choice_turn, vsr_turn
from .conversation import Conversation, pack
from .files import PathLike, get, int_field, load_json, load_records, top

__all__ = ["read_ai2d", "read_aokvqa", "read_visual7w", "read_vsr"]


def read_aokvqa(path: PathLike, *, max_turns_per_image: int = 1, source: str = "aokvqa") -> list[Conversation]:
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


def read_ai2d(path: PathLike, *, max_turns_per_image: int = 1, source: str = "ai2d") -> list[Conversation]:
    """AI2D: a JSON/JSONL list of {image, question, options, answer index}, or the original ``questions/`` folder."""
    if Path(path).is_dir():
        return pack(_ai2d_original(Path(path)), max_turns_per_image, source)
    items = []
    for index, record in enumerate(load_records(path)):
        answer = int_field(get(record, "answer", path, index), "answer", path, index)
        options = get(record, "options", path, index)
        turn = _multiple_choice(get(record, "question", path, index), options, answer, path, index)
        items.append((str(get(record, "image", path, index)), turn, "multiple_choice"))
    return pack(items, max_turns_per_image, source)


def _ai2d_original(folder: Path) -> Iterator[tuple[str, Turn, str]]:
    """Items of the original AI2D release: one ``<image>.json`` per diagram, question -> answerTexts/correctAnswer."""
    folder = folder / "questions" if (folder / "questions").is_dir() else folder
    for file in sorted(folder.glob("*.json")):
        data = load_json(file)
        image = str(top(data, "imageName", file))
        for question, record in top(data, "questions", file).items():
            answer = int_field(
                get(record, "correctAnswer", file, repr(question)), "correctAnswer", file, repr(question)
            )
            options = get(record, "answerTexts", file, repr(question))
            yield image, _multiple_choice(question, options, answer, file, repr(question)), "multiple_choice"


def read_visual7w(
    path: PathLike,
    *,
    splits: Sequence[str] | None = ("train",),
    seed: int = 0,
    max_turns_per_image: int = 1,
    source: str = "visual7w",
) -> list[Conversation]:
    """Visual7W telling ``dataset_v7w_telling.json`` -> multiple choice, options shuffled per question by `seed`."""
    items = []
    for index, image in enumerate(top(load_json(path), "images", path)):
        if splits is not None and get(image, "split", path, index) not in splits:
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
    return pack(items, max_turns_per_image, source)


def read_vsr(path: PathLike, *, max_turns_per_image: int = 1, source: str = "vsr") -> list[Conversation]:
    """VSR JSONL ``{image, caption, label}`` (label 1/0) -> ``"True"`` / ``"False"``."""
    items = []
    for index, record in enumerate(load_records(path)):
        label = get(record, "label", path, index)
        if label not in (0, 1):  # True/False compare equal to 1/0
            raise ValueError(f"{os.fspath(path)!r}: record {index} field 'label' should be 0 or 1, got {label!r}.")
        turn = vsr_turn(get(record, "caption", path, index), bool(label))
        items.append((str(get(record, "image", path, index)), turn, "vsr"))
    return pack(items, max_turns_per_image, source)
