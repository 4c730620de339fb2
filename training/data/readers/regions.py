"""Grounding and region-captioning data: GRIT, RefCOCO / RefCOCO+ / RefCOCOg and Visual Genome."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

from ...templates import Turn, format_box, grounding_turn, region_caption_turn
from .conversation import Conversation, pack
from .files import PathLike, get, jsonl_lines, load_json, load_records, parse_line, top

__all__ = ["REGION_TASKS", "read_grit", "read_refcoco", "read_visual_genome"]


REGION_TASKS = ("grounding", "region_captioning")


def _sample_lines(path: PathLike, max_records: int | None, seed: int) -> list[tuple[int, str]]:
    """All lines, or a uniform reservoir sample of `max_records` of them (deterministic by `seed`), in file order."""
    if max_records is None:
        return list(jsonl_lines(path))
    if max_records < 1:
        raise ValueError(f"max_records must be >= 1 or None, got {max_records}.")
    rng, reservoir = random.Random(seed), []
    for index, line in jsonl_lines(path):
        if index < max_records:
            reservoir.append((index, line))
        elif (slot := rng.randint(0, index)) < max_records:
            reservoir[slot] = (index, line)
    return sorted(reservoir)


def _grit_turns(record: Any, path: PathLike, index: int) -> list[Turn]:
    """Grounding turns of one GRIT record: caption[start:end] -> its (already normalised) box."""
    caption = str(get(record, "caption", path, index))
    turns = []
    for number, chunk in enumerate(get(record, "noun_chunks", path, index)):
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
        record = parse_line(line, path, index)
        name_field = next((f for f in ("image", "key", "id") if isinstance(record, dict) and f in record), "key")
        name = str(get(record, name_field, path, index))
        image_path = name if name_field == "image" else f"{name}.jpg"
        items.extend((image_path, turn, "grounding") for turn in _grit_turns(record, path, index))
    return pack(items, max_turns_per_image, source)


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
    return {get(record, "id", path, f"{field}[{i}]"): record for i, record in enumerate(records)}


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
    data = load_json(path)
    images = _index_by_id(top(data, "images", path), path, "images")
    annotations = _index_by_id(top(data, "annotations", path), path, "annotations")
    boxes = {key: get(ann, "bbox", path, f"annotations[{key!r}]") for key, ann in annotations.items()}
    items = []
    for index, ref in enumerate(top(data, "refs", path)):
        where = f"refs[{index}]"
        if splits is not None and get(ref, "split", path, where) not in splits:
            continue
        ann_id, image_id = get(ref, "ann_id", path, where), get(ref, "image_id", path, where)
        for field, key, table in (("ann_id", ann_id, boxes), ("image_id", image_id, images)):
            if key not in table:
                raise ValueError(f"{os.fspath(path)!r}: record {where} field {field!r}={key!r} matches no entry.")
        image = images[image_id]
        width, height = (get(image, f, path, f"images[{image_id!r}]") for f in ("width", "height"))
        box = format_box(boxes[ann_id], width, height, box_format="xywh")
        file_name = str(get(image, "file_name", path, f"images[{image_id!r}]"))
        for number, sentence in enumerate(get(ref, "sentences", path, where)):
            phrase = str(get(sentence, "sent", path, f"{where} sentences[{number}]"))
            items.extend(_region_items(file_name, box, phrase, tasks))
    return pack(items, max_turns_per_image, source)


def _vg_images(path: PathLike) -> dict[Any, tuple[str, float, float]]:
    """Visual Genome ``image_data.json`` -> image id: (relative path from the url, width, height)."""
    images = {}
    for index, record in enumerate(load_records(path)):
        image_id = record.get("image_id", record.get("id")) if isinstance(record, dict) else None
        if image_id is None:
            raise ValueError(f"{os.fspath(path)!r}: record {index} has no field 'image_id'.")
        url = record.get("url")
        image_path = "/".join(str(url).split("/")[-2:]) if url else f"{image_id}.jpg"  # e.g. VG_100K_2/1.jpg
        images[image_id] = (image_path, get(record, "width", path, index), get(record, "height", path, index))
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
    for index, record in enumerate(load_records(regions_path)):
        image_id = get(record, "id", regions_path, index)
        if image_id not in images:
            raise ValueError(
                f"{os.fspath(regions_path)!r}: record {index} field 'id'={image_id!r} is not in "
                f"{os.fspath(image_data_path)!r}."
            )
        image_path, width, height = images[image_id]
        for number, region in enumerate(get(record, "regions", regions_path, index)):
            where = f"{index} regions[{number}]"
            xywh = [get(region, field, regions_path, where) for field in ("x", "y", "width", "height")]
            box = format_box(xywh, width, height, box_format="xywh")
            items.extend(_region_items(image_path, box, str(get(region, "phrase", regions_path, where)), tasks))
    return pack(items, max_turns_per_image, source)
