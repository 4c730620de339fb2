"""Captioning data: COCO captions (Karpathy splits) and TextCaps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...templates import caption_turn
from .conversation import Conversation
from .files import PathLike, get, load_json, top

__all__ = ["read_coco_captions", "read_textcaps"]


def read_coco_captions(
    path: PathLike, *, splits: Sequence[str] | None = ("train", "restval"), source: str = "coco_captions"
) -> list[Conversation]:
    """COCO Karpathy ``dataset_coco.json``: one captioning conversation per caption of the chosen splits."""
    conversations = []
    for index, image in enumerate(top(load_json(path), "images", path)):
        if splits is not None and get(image, "split", path, index) not in splits:
            continue
        image_path = str(Path(image.get("filepath") or "", get(image, "filename", path, index)))
        for number, sentence in enumerate(get(image, "sentences", path, index)):
            raw = get(sentence, "raw", path, f"{index} sentences[{number}]")
            conversations.append(Conversation(image_path, [caption_turn(raw)], source))
    return conversations


def read_textcaps(path: PathLike, *, source: str = "textcaps") -> list[Conversation]:
    """TextCaps ``TextCaps_0.1_train.json``: one captioning conversation per caption, image ``<image_id>.jpg``."""
    conversations = []
    for index, record in enumerate(top(load_json(path), "data", path)):
        image_path = f"{get(record, 'image_id', path, index)}.jpg"
        conversations.append(Conversation(image_path, [caption_turn(get(record, "caption_str", path, index))], source))
    return conversations
