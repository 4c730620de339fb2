"""Readers of the paper's training datasets: each dataset's own annotation format -> a list of :class:`Conversation`.

A :class:`Conversation` is one image (a path relative to that dataset's image folder) and its ``(user, assistant)``
turns, already written in the paper's templates (:mod:`training.templates`). Several questions about one image
are packed into one multi-turn conversation, at most ``max_turns_per_image`` turns each (20 for VQAv2 and GQA, 10 for
Visual Genome and GRIT, 1 elsewhere by default); different tasks about one image are never mixed in a conversation.

One module per family (:mod:`.llava`, :mod:`.captions`, :mod:`.vqa`, :mod:`.choice`, :mod:`.regions`); ``READERS``
maps each dataset name to its reader.

Errors: a missing annotation file raises ``FileNotFoundError`` naming the path; a record without a required field
raises ``ValueError`` naming the file, the record (index or key) and the field. Image files are not opened here:
missing or corrupt images are found, and skipped, by :class:`training.data.dataset.ConversationDataset`.
"""

from __future__ import annotations

import functools

from .captions import read_coco_captions, read_textcaps
from .choice import read_ai2d, read_aokvqa, read_visual7w, read_vsr
from .conversation import Conversation, Conversations, Reader
from .llava import read_llava_conversations, read_llava_pretrain
from .regions import REGION_TASKS, read_grit, read_refcoco, read_visual_genome
from .vqa import read_docvqa, read_gqa, read_infographicvqa, read_ocrvqa, read_vqav2

__all__ = [
    "READERS",
    "REGION_TASKS",
    "Conversation",
    "Conversations",
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
