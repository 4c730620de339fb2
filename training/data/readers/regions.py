"""Grounding and region-captioning data: GRIT, RefCOCO / RefCOCO+ / RefCOCOg and Visual Genome.

GRIT is read from img2dataset's download of it (:mod:`training.releases.grit`; shard folders or webdataset tars) or
from JSON lines; RefCOCO/+/g from REFER's ``refs(<splitBy>).p`` + ``instances.json``
(:mod:`training.releases.refer`, a restricted unpickler).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ...releases.boxes import box_problem
from ...releases.grit import read_img2dataset
from ...releases.refer import DATASETS, RELEASE, read_refs
from ...templates import Turn, format_box, grounding_turn, region_caption_turn
from .conversation import Conversations, pack
from .files import PathLike, get, jsonl_lines, load_records, parse_line

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
) -> Conversations:
    """GRIT -> grounding turns (noun chunks and referring expressions), at most `max_records` images sampled.

    `path` is img2dataset's output folder (or one of its shard parquet files), images under it as img2dataset wrote
    them; or a JSON-lines file of records {key or image, caption, noun_chunks}, images ``<key>.jpg``.
    """
    if Path(path).is_dir() or Path(path).suffix == ".parquet":
        records, skipped = read_img2dataset(path, max_records=max_records, seed=seed)
        items = [(r.image, grounding_turn(e, format_box(b, 1, 1)), "grounding") for r in records for e, b in r.spans]
        return pack(items, max_turns_per_image, source, skipped)
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


def _refs_file(path: Path, source: str) -> Path:
    """The ``refs(<splitBy>).p`` that `path` names: the file, or the paper's one in a dataset or REFER folder."""
    dataset = source if source in DATASETS else "refcoco"
    if path.is_dir():
        folder = path / dataset if (path / dataset).is_dir() else path
        return folder / f"refs({DATASETS[dataset][0]}).p"
    if path.suffix == ".json":
        raise ValueError(
            f"{os.fspath(path)!r} is JSON; {source} reads REFER's release: refs(<splitBy>).p (a pickle) with "
            f"instances.json beside it ({RELEASE})"
        )
    return path


def read_refcoco(
    path: PathLike,
    *,
    splits: Sequence[str] | None = ("train",),
    tasks: Sequence[str] = REGION_TASKS,
    max_turns_per_image: int = 1,
    source: str = "refcoco",
) -> Conversations:
    """RefCOCO/+/g from REFER's ``refs(<splitBy>).p`` + ``instances.json`` -> grounding and region captioning.

    `path` is the pickle, its dataset folder or the REFER data root (the paper's splitBy: unc, umd for RefCOCOg).
    Boxes are xywh pixels, normalised by the image size of ``instances.json``; a degenerate box or one outside its
    image is skipped and counted.
    """
    _check_tasks(tasks)
    expressions = read_refs(_refs_file(Path(path), source))
    items, skipped = [], Counter()
    present = sorted({e.split for e in expressions})
    chosen = [e for e in expressions if splits is None or e.split in splits]
    if not chosen:
        raise ValueError(f"{os.fspath(path)!r} has no ref of the split(s) {list(splits or [])}; it has: {present}")
    for e in chosen:
        problem = box_problem(e.bbox, e.width, e.height)
        if problem:
            skipped[problem] += 1
            continue
        box = format_box(e.bbox, e.width, e.height, box_format="xywh")
        items.extend(_region_items(e.file_name, box, e.text, tasks))
    return pack(items, max_turns_per_image, source, skipped)


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
) -> Conversations:
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
