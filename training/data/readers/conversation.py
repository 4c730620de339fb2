"""One training example: an image and its ``(user, assistant)`` turns in the paper's templates, and their packing.

Several questions about one image are packed into one multi-turn conversation, at most ``max_turns_per_image`` turns
each; different tasks about one image are never mixed in a conversation. A conversation without an image (LLaVA's
text-only records) has ``image_path=None``. A reader returns :class:`Conversations`: the list, and what it skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...templates import Turn

__all__ = ["Conversation", "Conversations", "Reader", "check_max_turns", "pack"]


@dataclass(frozen=True)
class Conversation:
    """One image and its ``(user text, assistant text)`` turns; `image_path` is relative to the image folder (None:
    a text-only conversation)."""

    image_path: str | None
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
            content: list[dict[str, Any]] = [{"type": "image"}] if index == 0 and self.image_path else []
            content.append({"type": "text", "text": user})
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant}]})
        return messages


class Conversations(list[Conversation]):
    """A reader's conversations, with the annotations it skipped (reason -> count) and notes on what it left out."""

    def __init__(
        self,
        items: Iterable[Conversation] = (),
        skipped: Mapping[str, int] | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        super().__init__(items)
        self.skipped: Counter[str] = Counter(skipped or {})
        self.notes: list[str] = list(notes)


Reader = Callable[..., list[Conversation]]


def check_max_turns(max_turns_per_image: int) -> None:
    """Reject non-positive packing limits."""
    if max_turns_per_image < 1:
        raise ValueError(f"max_turns_per_image must be >= 1, got {max_turns_per_image}.")


def pack(
    items: Iterable[tuple[str, Turn, str]],
    max_turns_per_image: int,
    source: str,
    skipped: Mapping[str, int] | None = None,
    notes: Iterable[str] = (),
) -> Conversations:
    """Group ``(image, turn, task)`` items by image and task (first-seen order) into chunks of at most N turns."""
    check_max_turns(max_turns_per_image)
    groups: dict[tuple[str, str], list[Turn]] = {}
    for image_path, turn, task in items:
        groups.setdefault((image_path, task), []).append(turn)
    conversations = (
        Conversation(image_path, turns[start : start + max_turns_per_image], source)
        for (image_path, _), turns in groups.items()
        for start in range(0, len(turns), max_turns_per_image)
    )
    return Conversations(conversations, skipped, notes)
