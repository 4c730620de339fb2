"""Captioning data: COCO captions (Karpathy splits) and TextCaps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ...templates import caption_turn
from .conversation import Conversation, Conversations
from .files import PathLike, check_split, get, load_json, top

__all__ = ["read_coco_captions", "read_textcaps"]


def read_coco_captions(
    path: PathLike, *, splits: Sequence[str] | None = ("train", "restval"), source: str = "coco_captions"
) -> Conversations:
    """COCO Karpathy ``dataset_coco.json``: one captioning conversation per caption of the chosen splits."""
    data = load_json(path)
    if isinstance(data, dict) and "annotations" in data and "info" in data:
        raise ValueError(
            f"{os.fspath(path)!r} is COCO's own captions file; coco_captions reads Karpathy's dataset_coco.json "
            "(its train/restval/val/test split)"
        )
    conversations, present = Conversations(), set()
    for index, image in enumerate(top(data, "images", path)):
        present.add(get(image, "split", path, index))
        if splits is not None and image["split"] not in splits:
            continue
        image_path = str(Path(image.get("filepath") or "", get(image, "filename", path, index)))
        for number, sentence in enumerate(get(image, "sentences", path, index)):
            raw = get(sentence, "raw", path, f"{index} sentences[{number}]")
            conversations.append(Conversation(image_path, [caption_turn(raw)], source))
    if not conversations:
        raise ValueError(f"{os.fspath(path)!r} has no image of the split(s) {list(splits or [])}: {sorted(present)}")
    return conversations


def read_textcaps(path: PathLike, *, split: str | None = "train", source: str = "textcaps") -> Conversations:
    """TextCaps ``TextCaps_0.1_train.json``: one captioning conversation per caption, image ``<image_id>.jpg``; a
    file of another ``dataset_type`` than `split` (val: ``vlm eval textcaps_val``) is refused."""
    data = load_json(path)
    found = data.get("dataset_type") if isinstance(data, dict) else None
    check_split(path, found, split, "TextCaps", "TextCaps_0.1_train.json")
    conversations = Conversations()
    for index, record in enumerate(top(data, "data", path)):
        image_path = f"{get(record, 'image_id', path, index)}.jpg"
        conversations.append(Conversation(image_path, [caption_turn(get(record, "caption_str", path, index))], source))
    return conversations
