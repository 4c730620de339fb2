"""Readers of the paper's training datasets: each dataset's own annotation format -> a list of :class:`Conversation`.

A :class:`Conversation` is one image (a path relative to that dataset's image folder) and its ``(user, assistant)``
turns, already written in the paper's templates (:mod:`training.data.templates`). Several questions about one image
are packed into one multi-turn conversation, at most ``max_turns_per_image`` turns each (20 for VQAv2 and GQA, 10 for
Visual Genome and GRIT, 1 elsewhere by default); different tasks about one image are never mixed in a conversation.

Errors: a missing annotation file raises ``FileNotFoundError`` naming the path; a record without a required field
raises ``ValueError`` naming the file, the record (index or key) and the field. Image files are not opened here:
missing or corrupt images are found, and skipped, by :class:`training.data.dataset.ConversationDataset`.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .templates import (
    Turn,
    caption_turn,
    format_box,
    grounding_turn,
    multiple_choice_turn,
    region_caption_turn,
    vqa_turn,
    vsr_turn,
)

__all__ = [
    "READERS",
    "Conversation",
    "Reader",
    "get_reader",
    "read_ai2d",
    "read_aokvqa",
    "read_coco_captions",
    "read_docvqa",
    "read_gqa",
    "read_grit",
    "read_infographicvqa",
    "read_llava_conversations",
    "read_llava_pretrain",
    "read_ocrvqa",
    "read_refcoco",
    "read_textcaps",
    "read_visual7w",
    "read_visual_genome",
    "read_vqav2",
    "read_vsr",
]

PathLike = str | os.PathLike[str]
IMAGE_MARKER = "<image>"
REGION_TASKS = ("grounding", "region_captioning")


@dataclass(frozen=True)
class Conversation:
    """One image and its ``(user text, assistant text)`` turns; `image_path` is relative to the image folder."""

    image_path: str
    turns: list[Turn]
    source: str

    def __post_init__(self) -> None:
        """Reject conversations without turns."""
        if not self.turns:
            raise ValueError(f"A conversation needs at least one turn ({self.source}: {self.image_path}).")

    def to_messages(self) -> list[dict[str, Any]]:
        """Chat messages for :meth:`VLProcessor.build_training_example`; the image opens the first user turn."""
        messages: list[dict[str, Any]] = []
        for index, (user, assistant) in enumerate(self.turns):
            content: list[dict[str, Any]] = [{"type": "image"}] if index == 0 else []
            content.append({"type": "text", "text": user})
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant}]})
        return messages


Reader = Callable[..., list[Conversation]]


# ----------------------------------------------------------------------------------------------------------------
# File access, field checks and packing
# ----------------------------------------------------------------------------------------------------------------
def _existing(path: PathLike) -> Path:
    """The path, or ``FileNotFoundError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Annotation file not found: {os.fspath(path)!r}")
    return path


def _load_json(path: PathLike) -> Any:
    """Parse a JSON file; raise naming the file when it is missing or malformed."""
    path = _existing(path)
    with path.open(encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{os.fspath(path)!r} is not valid JSON: {err}") from err


def _jsonl_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a JSON-lines file with their record index."""
    with _existing(path).open(encoding="utf-8") as handle:
        yield from enumerate(line for line in handle if line.strip())


def _parse_line(line: str, path: PathLike, index: int) -> Any:
    """One JSON-lines record; raise naming the file and record when malformed."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{os.fspath(path)!r}: record {index} is not valid JSON: {err}") from err


def _load_records(path: PathLike) -> list[Any]:
    """Records of a ``.jsonl`` file (one per line) or of a JSON file holding a list."""
    if Path(path).suffix == ".jsonl":
        return [_parse_line(line, path, index) for index, line in _jsonl_lines(path)]
    data = _load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{os.fspath(path)!r} should hold a JSON list of records, got {type(data).__name__}.")
    return data


def _get(record: Any, field: str, path: PathLike, index: object) -> Any:
    """``record[field]``, or ``ValueError`` naming the file, the record and the field."""
    if not isinstance(record, dict):
        raise ValueError(f"{os.fspath(path)!r}: record {index} should be a JSON object, got {type(record).__name__}.")
    if record.get(field) is None:
        raise ValueError(f"{os.fspath(path)!r}: record {index} has no field {field!r}.")
    return record[field]


def _top(data: Any, field: str, path: PathLike) -> Any:
    """A top-level field of an annotation file, or ``ValueError`` naming file and field."""
    if not isinstance(data, dict) or data.get(field) is None:
        raise ValueError(f"{os.fspath(path)!r}: the top-level field {field!r} is missing.")
    return data[field]


def _int(value: Any, field: str, path: PathLike, index: object) -> int:
    """An integer field value (ints or digit strings), or ``ValueError`` naming file, record, field and value."""
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{os.fspath(path)!r}: record {index} field {field!r} should be an integer, got {value!r}."
        ) from err


def _check_max_turns(max_turns_per_image: int) -> None:
    """Reject non-positive packing limits."""
    if max_turns_per_image < 1:
        raise ValueError(f"max_turns_per_image must be >= 1, got {max_turns_per_image}.")


def _pack(items: Iterable[tuple[str, Turn, str]], max_turns_per_image: int, source: str) -> list[Conversation]:
    """Group ``(image, turn, task)`` items by image and task (first-seen order) into chunks of at most N turns."""
    _check_max_turns(max_turns_per_image)
    groups: dict[tuple[str, str], list[Turn]] = {}
    for image_path, turn, task in items:
        groups.setdefault((image_path, task), []).append(turn)
    return [
        Conversation(image_path, turns[start : start + max_turns_per_image], source)
        for (image_path, _), turns in groups.items()
        for start in range(0, len(turns), max_turns_per_image)
    ]


# ----------------------------------------------------------------------------------------------------------------
# LLaVA-style conversations (LLaVA-Pretrain 558K, LLaVA-Instruct-150K)
# ----------------------------------------------------------------------------------------------------------------
_USER_ROLES = ("human", "user")
_ASSISTANT_ROLES = ("gpt", "assistant")


def _llava_turns(record: Any, path: PathLike, index: int) -> list[Turn]:
    """Alternating human/gpt messages -> turns, the ``<image>`` marker removed (the image always comes first)."""
    messages = _get(record, "conversations", path, index)
    if not isinstance(messages, list) or not messages or len(messages) % 2:
        raise ValueError(
            f"{os.fspath(path)!r}: record {index} field 'conversations' should hold an even, non-zero number of "
            f"messages alternating human/gpt, got {len(messages) if isinstance(messages, list) else messages!r}."
        )
    turns: list[Turn] = []
    for position in range(0, len(messages), 2):
        texts = []
        for offset, roles in ((0, _USER_ROLES), (1, _ASSISTANT_ROLES)):
            where = f"{index} conversations[{position + offset}]"
            role = _get(messages[position + offset], "from", path, where)
            if role not in roles:
                raise ValueError(f"{os.fspath(path)!r}: record {where} has 'from'={role!r}; expected one of {roles}.")
            texts.append(
                str(_get(messages[position + offset], "value", path, where)).replace(IMAGE_MARKER, "").strip()
            )
        turns.append((texts[0], texts[1]))
    return turns


def read_llava_conversations(path: PathLike, *, source: str = "llava_instruct") -> list[Conversation]:
    """LLaVA-style JSON list or JSONL of ``{image, conversations: [{from, value}]}`` (e.g. LLaVA-Instruct-150K)."""
    return [
        Conversation(str(_get(record, "image", path, index)), _llava_turns(record, path, index), source)
        for index, record in enumerate(_load_records(path))
    ]


def read_llava_pretrain(
    path: PathLike, *, use_caption_prompt: bool = False, source: str = "llava_pretrain"
) -> list[Conversation]:
    """LLaVA-Pretrain ``blip_laion_cc_sbu_558k.json``; `use_caption_prompt` swaps its prompts for the paper's."""
    conversations = read_llava_conversations(path, source=source)
    if not use_caption_prompt:
        return conversations
    return [
        Conversation(c.image_path, [caption_turn(answer) for _, answer in c.turns], c.source) for c in conversations
    ]


# ----------------------------------------------------------------------------------------------------------------
# Captioning (COCO Karpathy, TextCaps)
# ----------------------------------------------------------------------------------------------------------------
def read_coco_captions(
    path: PathLike, *, splits: Sequence[str] | None = ("train", "restval"), source: str = "coco_captions"
) -> list[Conversation]:
    """COCO Karpathy ``dataset_coco.json``: one captioning conversation per caption of the chosen splits."""
    conversations = []
    for index, image in enumerate(_top(_load_json(path), "images", path)):
        if splits is not None and _get(image, "split", path, index) not in splits:
            continue
        image_path = str(Path(image.get("filepath") or "", _get(image, "filename", path, index)))
        for number, sentence in enumerate(_get(image, "sentences", path, index)):
            raw = _get(sentence, "raw", path, f"{index} sentences[{number}]")
            conversations.append(Conversation(image_path, [caption_turn(raw)], source))
    return conversations


def read_textcaps(path: PathLike, *, source: str = "textcaps") -> list[Conversation]:
    """TextCaps ``TextCaps_0.1_train.json``: one captioning conversation per caption, image ``<image_id>.jpg``."""
    conversations = []
    for index, record in enumerate(_top(_load_json(path), "data", path)):
        image_path = f"{_get(record, 'image_id', path, index)}.jpg"
        conversations.append(
            Conversation(image_path, [caption_turn(_get(record, "caption_str", path, index))], source)
        )
    return conversations


# ----------------------------------------------------------------------------------------------------------------
# Short-answer VQA (VQAv2, GQA, DocVQA, InfographicVQA, OCR-VQA)
# ----------------------------------------------------------------------------------------------------------------
def read_vqav2(
    questions_path: PathLike, annotations_path: PathLike, *, max_turns_per_image: int = 20, source: str = "vqav2"
) -> list[Conversation]:
    """VQAv2 questions + annotations JSON (``multiple_choice_answer``); images ``COCO_<subtype>_<id:012d>.jpg``."""
    questions = _load_json(questions_path)
    annotations = _top(_load_json(annotations_path), "annotations", annotations_path)
    answers = {
        _get(ann, "question_id", annotations_path, i): _get(ann, "multiple_choice_answer", annotations_path, i)
        for i, ann in enumerate(annotations)
    }
    subtype = _top(questions, "data_subtype", questions_path)
    items = []
    for index, question in enumerate(_top(questions, "questions", questions_path)):
        question_id = _get(question, "question_id", questions_path, index)
        if question_id not in answers:
            raise ValueError(
                f"{os.fspath(questions_path)!r}: record {index} field 'question_id'={question_id!r} has no "
                f"annotation in {os.fspath(annotations_path)!r}."
            )
        image_id = _int(_get(question, "image_id", questions_path, index), "image_id", questions_path, index)
        turn = vqa_turn(_get(question, "question", questions_path, index), str(answers[question_id]))
        items.append((f"COCO_{subtype}_{image_id:012d}.jpg", turn, "vqa"))
    return _pack(items, max_turns_per_image, source)


def read_gqa(path: PathLike, *, max_turns_per_image: int = 20, source: str = "gqa") -> list[Conversation]:
    """GQA ``*_balanced_questions.json`` (question id -> {imageId, question, answer}); images ``<imageId>.jpg``."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)!r} should map question ids to questions, got {type(data).__name__}.")
    items = []
    for key, record in data.items():
        turn = vqa_turn(_get(record, "question", path, repr(key)), str(_get(record, "answer", path, repr(key))))
        items.append((f"{_get(record, 'imageId', path, repr(key))}.jpg", turn, "vqa"))
    return _pack(items, max_turns_per_image, source)


def _first_answer(record: Any, path: PathLike, index: object) -> str:
    """The first entry of a non-empty ``answers`` list."""
    answers = _get(record, "answers", path, index)
    if not isinstance(answers, list) or not answers:
        raise ValueError(f"{os.fspath(path)!r}: record {index} field 'answers' should be a non-empty list.")
    return str(answers[0])


def read_docvqa(path: PathLike, *, max_turns_per_image: int = 1, source: str = "docvqa") -> list[Conversation]:
    """DocVQA / InfographicVQA ``{data: [{question, answers, image}]}`` (``image_local_name`` also accepted)."""
    items = []
    for index, record in enumerate(_top(_load_json(path), "data", path)):
        field = "image_local_name" if isinstance(record, dict) and "image" not in record else "image"
        turn = vqa_turn(_get(record, "question", path, index), _first_answer(record, path, index))
        items.append((str(_get(record, field, path, index)), turn, "vqa"))
    return _pack(items, max_turns_per_image, source)


def read_infographicvqa(
    path: PathLike, *, max_turns_per_image: int = 1, source: str = "infographicvqa"
) -> list[Conversation]:
    """InfographicVQA (the DocVQA format; images named by ``image_local_name`` or ``image``)."""
    return read_docvqa(path, max_turns_per_image=max_turns_per_image, source=source)


def read_ocrvqa(
    path: PathLike, *, splits: Sequence[int] | None = (1,), max_turns_per_image: int = 1, source: str = "ocrvqa"
) -> list[Conversation]:
    """OCR-VQA ``dataset.json`` (id -> {questions, answers, split: 1 train / 2 val / 3 test}); images ``<id>.jpg``."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)!r} should map image ids to records, got {type(data).__name__}.")
    items = []
    for key, record in data.items():
        if splits is not None and _int(_get(record, "split", path, repr(key)), "split", path, repr(key)) not in splits:
            continue
        questions, answers = _get(record, "questions", path, repr(key)), _get(record, "answers", path, repr(key))
        if len(questions) != len(answers):
            raise ValueError(
                f"{os.fspath(path)!r}: record {key!r} has {len(questions)} 'questions' but {len(answers)} 'answers'."
            )
        items.extend((f"{key}.jpg", vqa_turn(q, str(a)), "vqa") for q, a in zip(questions, answers, strict=True))
    return _pack(items, max_turns_per_image, source)


# ----------------------------------------------------------------------------------------------------------------
# Multiple choice (A-OKVQA, AI2D, Visual7W telling) and VSR
# ----------------------------------------------------------------------------------------------------------------
def read_aokvqa(path: PathLike, *, max_turns_per_image: int = 1, source: str = "aokvqa") -> list[Conversation]:
    """A-OKVQA JSON list (question, choices, correct_choice_idx) -> multiple choice; images ``<image_id:012d>.jpg``."""
    items = []
    for index, record in enumerate(_load_records(path)):
        image_id = _int(_get(record, "image_id", path, index), "image_id", path, index)
        answer = _int(_get(record, "correct_choice_idx", path, index), "correct_choice_idx", path, index)
        options = _get(record, "choices", path, index)
        turn = _multiple_choice(_get(record, "question", path, index), options, answer, path, index)
        items.append((f"{image_id:012d}.jpg", turn, "multiple_choice"))
    return _pack(items, max_turns_per_image, source)


def _multiple_choice(question: Any, options: Any, answer: int, path: PathLike, index: object) -> Turn:
    """A multiple-choice turn; template errors (bad option count or answer index) name file and record."""
    try:
        return multiple_choice_turn(str(question), list(options), answer)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)!r}: record {index}: {err}") from err


def read_ai2d(path: PathLike, *, max_turns_per_image: int = 1, source: str = "ai2d") -> list[Conversation]:
    """AI2D: a JSON/JSONL list of {image, question, options, answer index}, or the original ``questions/`` folder."""
    if Path(path).is_dir():
        return _pack(_ai2d_original(Path(path)), max_turns_per_image, source)
    items = []
    for index, record in enumerate(_load_records(path)):
        answer = _int(_get(record, "answer", path, index), "answer", path, index)
        options = _get(record, "options", path, index)
        turn = _multiple_choice(_get(record, "question", path, index), options, answer, path, index)
        items.append((str(_get(record, "image", path, index)), turn, "multiple_choice"))
    return _pack(items, max_turns_per_image, source)


def _ai2d_original(folder: Path) -> Iterator[tuple[str, Turn, str]]:
    """Items of the original AI2D release: one ``<image>.json`` per diagram, question -> answerTexts/correctAnswer."""
    folder = folder / "questions" if (folder / "questions").is_dir() else folder
    for file in sorted(folder.glob("*.json")):
        data = _load_json(file)
        image = str(_top(data, "imageName", file))
        for question, record in _top(data, "questions", file).items():
            answer = _int(_get(record, "correctAnswer", file, repr(question)), "correctAnswer", file, repr(question))
            options = _get(record, "answerTexts", file, repr(question))
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
    for index, image in enumerate(_top(_load_json(path), "images", path)):
        if splits is not None and _get(image, "split", path, index) not in splits:
            continue
        filename = str(_get(image, "filename", path, index))
        for number, qa in enumerate(_get(image, "qa_pairs", path, index)):
            where = f"{index} qa_pairs[{number}]"
            answer = str(_get(qa, "answer", path, where))
            options = [*(str(choice) for choice in _get(qa, "multiple_choices", path, where)), answer]
            # A string seed hashes deterministically (sha512), independent of PYTHONHASHSEED.
            random.Random(f"{seed}-{qa.get('qa_id', where)}").shuffle(options)
            turn = _multiple_choice(_get(qa, "question", path, where), options, options.index(answer), path, where)
            items.append((filename, turn, "multiple_choice"))
    return _pack(items, max_turns_per_image, source)


def read_vsr(path: PathLike, *, max_turns_per_image: int = 1, source: str = "vsr") -> list[Conversation]:
    """VSR JSONL ``{image, caption, label}`` (label 1/0) -> ``"True"`` / ``"False"``."""
    items = []
    for index, record in enumerate(_load_records(path)):
        label = _get(record, "label", path, index)
        if label not in (0, 1):  # True/False compare equal to 1/0
            raise ValueError(f"{os.fspath(path)!r}: record {index} field 'label' should be 0 or 1, got {label!r}.")
        turn = vsr_turn(_get(record, "caption", path, index), bool(label))
        items.append((str(_get(record, "image", path, index)), turn, "vsr"))
    return _pack(items, max_turns_per_image, source)


# ----------------------------------------------------------------------------------------------------------------
# Grounding and region captioning (GRIT, RefCOCO/+/g, Visual Genome)
# ----------------------------------------------------------------------------------------------------------------
def _sample_lines(path: PathLike, max_records: int | None, seed: int) -> list[tuple[int, str]]:
    """All lines, or a uniform reservoir sample of `max_records` of them (deterministic by `seed`), in file order."""
    if max_records is None:
        return list(_jsonl_lines(path))
    if max_records < 1:
        raise ValueError(f"max_records must be >= 1 or None, got {max_records}.")
    rng, reservoir = random.Random(seed), []
    for index, line in _jsonl_lines(path):
        if index < max_records:
            reservoir.append((index, line))
        elif (slot := rng.randint(0, index)) < max_records:
            reservoir[slot] = (index, line)
    return sorted(reservoir)


def _grit_turns(record: Any, path: PathLike, index: int) -> list[Turn]:
    """Grounding turns of one GRIT record: caption[start:end] -> its (already normalised) box."""
    caption = str(_get(record, "caption", path, index))
    turns = []
    for number, chunk in enumerate(_get(record, "noun_chunks", path, index)):
        if not isinstance(chunk, list) or len(chunk) < 6:
            raise ValueError(
                f"{os.fspath(path)!r}: record {index} field 'noun_chunks'[{number}] should be "
                f"[start, end, x1, y1, x2, y2, score], got {chunk!r}."
            )
        expression = caption[int(chunk[0]) : int(chunk[1])]
        turns.append(grounding_turn(expression, format_box(chunk[2:6], 1, 1)))
    return turns


def read_grit(
    path: PathLike,
    *,
    max_records: int | None = None,
    seed: int = 0,
    max_turns_per_image: int = 10,
    source: str = "grit",
) -> list[Conversation]:
    """GRIT JSONL (caption + noun_chunks with normalised boxes) -> grounding; at most `max_records` records sampled."""
    items = []
    for index, line in _sample_lines(path, max_records, seed):
        record = _parse_line(line, path, index)
        name_field = next((f for f in ("image", "key", "id") if isinstance(record, dict) and f in record), "key")
        name = str(_get(record, name_field, path, index))
        image_path = name if name_field == "image" else f"{name}.jpg"
        items.extend((image_path, turn, "grounding") for turn in _grit_turns(record, path, index))
    return _pack(items, max_turns_per_image, source)


def _region_items(image_path: str, box: str, phrase: str, tasks: Sequence[str]) -> Iterator[tuple[str, Turn, str]]:
    """A grounding and/or a region-captioning item for one described box."""
    for task in tasks:
        turn = grounding_turn(phrase, box) if task == "grounding" else region_caption_turn(box, phrase)
        yield image_path, turn, task


def _check_tasks(tasks: Sequence[str]) -> None:
    """Reject unknown region tasks."""
    unknown = [task for task in tasks if task not in REGION_TASKS]
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {REGION_TASKS}, got {list(tasks)!r}.")


def _index_by_id(records: Any, path: PathLike, field: str) -> dict[Any, Any]:
    """Records of a list keyed by their ``id`` field."""
    return {_get(record, "id", path, f"{field}[{i}]"): record for i, record in enumerate(records)}


def read_refcoco(
    path: PathLike,
    *,
    splits: Sequence[str] | None = ("train",),
    tasks: Sequence[str] = REGION_TASKS,
    max_turns_per_image: int = 1,
    source: str = "refcoco",
) -> list[Conversation]:
    """RefCOCO/+/g JSON (refs, annotations with xywh bbox, images with size) -> grounding and region captioning."""
    _check_tasks(tasks)
    data = _load_json(path)
    images = _index_by_id(_top(data, "images", path), path, "images")
    annotations = _index_by_id(_top(data, "annotations", path), path, "annotations")
    boxes = {key: _get(ann, "bbox", path, f"annotations[{key!r}]") for key, ann in annotations.items()}
    items = []
    for index, ref in enumerate(_top(data, "refs", path)):
        where = f"refs[{index}]"
        if splits is not None and _get(ref, "split", path, where) not in splits:
            continue
        ann_id, image_id = _get(ref, "ann_id", path, where), _get(ref, "image_id", path, where)
        for field, key, table in (("ann_id", ann_id, boxes), ("image_id", image_id, images)):
            if key not in table:
                raise ValueError(f"{os.fspath(path)!r}: record {where} field {field!r}={key!r} matches no entry.")
        image = images[image_id]
        width, height = (_get(image, f, path, f"images[{image_id!r}]") for f in ("width", "height"))
        box = format_box(boxes[ann_id], width, height, box_format="xywh")
        file_name = str(_get(image, "file_name", path, f"images[{image_id!r}]"))
        for number, sentence in enumerate(_get(ref, "sentences", path, where)):
            phrase = str(_get(sentence, "sent", path, f"{where} sentences[{number}]"))
            items.extend(_region_items(file_name, box, phrase, tasks))
    return _pack(items, max_turns_per_image, source)


def _vg_images(path: PathLike) -> dict[Any, tuple[str, float, float]]:
    """Visual Genome ``image_data.json`` -> image id: (relative path from the url, width, height)."""
    images = {}
    for index, record in enumerate(_load_records(path)):
        image_id = record.get("image_id", record.get("id")) if isinstance(record, dict) else None
        if image_id is None:
            raise ValueError(f"{os.fspath(path)!r}: record {index} has no field 'image_id'.")
        url = record.get("url")
        image_path = "/".join(str(url).split("/")[-2:]) if url else f"{image_id}.jpg"  # e.g. VG_100K_2/1.jpg
        images[image_id] = (image_path, _get(record, "width", path, index), _get(record, "height", path, index))
    return images


def read_visual_genome(
    regions_path: PathLike,
    image_data_path: PathLike,
    *,
    tasks: Sequence[str] = ("region_captioning", "grounding"),
    max_turns_per_image: int = 10,
    source: str = "visual_genome",
) -> list[Conversation]:
    """Visual Genome ``region_descriptions.json`` + ``image_data.json`` -> region captioning and grounding."""
    _check_tasks(tasks)
    images = _vg_images(image_data_path)
    items = []
    for index, record in enumerate(_load_records(regions_path)):
        image_id = _get(record, "id", regions_path, index)
        if image_id not in images:
            raise ValueError(
                f"{os.fspath(regions_path)!r}: record {index} field 'id'={image_id!r} is not in "
                f"{os.fspath(image_data_path)!r}."
            )
        image_path, width, height = images[image_id]
        for number, region in enumerate(_get(record, "regions", regions_path, index)):
            where = f"{index} regions[{number}]"
            xywh = [_get(region, field, regions_path, where) for field in ("x", "y", "width", "height")]
            box = format_box(xywh, width, height, box_format="xywh")
            items.extend(_region_items(image_path, box, str(_get(region, "phrase", regions_path, where)), tasks))
    return _pack(items, max_turns_per_image, source)


# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------
READERS: dict[str, Reader] = {
    "llava_pretrain": read_llava_pretrain,
    "llava_instruct": read_llava_conversations,
    "coco_captions": read_coco_captions,
    "vqav2": read_vqav2,
    "gqa": read_gqa,
    "aokvqa": read_aokvqa,
    "ai2d": read_ai2d,
    "docvqa": read_docvqa,
    "infographicvqa": read_infographicvqa,
    "ocrvqa": read_ocrvqa,
    "textcaps": read_textcaps,
    "grit": read_grit,
    "refcoco": read_refcoco,
    "refcoco+": functools.partial(read_refcoco, source="refcoco+"),
    "refcocog": functools.partial(read_refcoco, source="refcocog"),
    "visual_genome": read_visual_genome,
    "visual7w": read_visual7w,
    "vsr": read_vsr,
}
"""Dataset name -> reader; the first positional argument(s) are the annotation file(s). Treat as read-only."""


def get_reader(name: str) -> Reader:
    """The reader registered under `name`, or ``ValueError`` listing the valid names."""
    if name not in READERS:
        raise ValueError(f"Unknown dataset reader {name!r}; valid names: {', '.join(sorted(READERS))}.")
    return READERS[name]
