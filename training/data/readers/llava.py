"""LLaVA-format conversations: LLaVA-Pretrain (stage 1) and LLaVA-Instruct-style records ``{image, conversations}``."""

from __future__ import annotations

import os
from typing import Any

from processing import IMAGE_TOKEN

from ...templates import Turn, caption_turn
from .conversation import Conversation, Conversations
from .files import PathLike, get, load_records

__all__ = ["read_llava_conversations", "read_llava_pretrain"]


_USER_ROLES = ("human", "user")
_ASSISTANT_ROLES = ("gpt", "assistant")


def _llava_turns(record: Any, path: PathLike, index: int) -> list[Turn]:
    """Alternating human/gpt messages -> turns, the ``<image>`` marker removed (the image always comes first)."""
    messages = get(record, "conversations", path, index)
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
            role = get(messages[position + offset], "from", path, where)
            if role not in roles:
                raise ValueError(f"{os.fspath(path)!r}: record {where} has 'from'={role!r}; expected one of {roles}.")
            texts.append(str(get(messages[position + offset], "value", path, where)).replace(IMAGE_TOKEN, "").strip())
        turns.append((texts[0], texts[1]))
    return turns


def read_llava_conversations(path: PathLike, *, source: str = "llava_instruct") -> Conversations:
    """LLaVA-style JSON list or JSONL of ``{image, conversations: [{from, value}]}`` (LLaVA-Instruct-150K,
    ``llava_v1_5_mix665k.json``); a record without ``image`` is a text-only conversation (mix665k has 40K)."""
    conversations = Conversations()
    for index, record in enumerate(load_records(path)):
        image = record.get("image") if isinstance(record, dict) else None
        conversations.append(Conversation(str(image) if image else None, _llava_turns(record, path, index), source))
    text_only = sum(1 for c in conversations if c.image_path is None)
    if text_only:
        conversations.notes.append(f"{text_only} text-only conversations (no image)")
    return conversations


def read_llava_pretrain(
    path: PathLike, *, use_caption_prompt: bool = False, source: str = "llava_pretrain"
) -> Conversations:
    """LLaVA-Pretrain ``blip_laion_cc_sbu_558k.json``; `use_caption_prompt` swaps its prompts for the paper's."""
    conversations = read_llava_conversations(path, source=source)
    if not use_caption_prompt:
        return conversations
    return Conversations(
        Conversation(c.image_path, [caption_turn(answer) for _, answer in c.turns], c.source) for c in conversations
    )
