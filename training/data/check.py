"""``vlm train RECIPE --dry-run``: read every data source of a recipe and report on it, without building a model.

Per source: the conversations read, the annotations the reader skipped (by reason) and what it left out, the
images missing on disk (checked without decoding), two example conversations as the model will see them, and the
test-leak check (:mod:`.leaks`) against the evaluation splits found under ``data.root``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..recipe import Recipe
from .images import image_exists
from .leaks import LeakReport, check_leaks
from .readers.conversation import Conversation
from .sources import SourceConversations, read_sources

__all__ = ["SourceReport", "check_data", "format_report", "render_conversation", "report_json"]


@dataclass
class SourceReport:
    """What a dry run found in one source."""

    split: str
    name: str
    reader: str
    conversations: int
    turns: int
    images: int
    text_only: int
    skipped: dict[str, int]
    notes: list[str]
    examples: list[str]
    leaks: list[LeakReport] = field(default_factory=list)
    error: str | None = None  # why the source could not be read (a missing or wrong file, a bad record)


def render_conversation(conversation: Conversation) -> str:
    """A conversation as text: its image, then each user / assistant turn."""
    lines = [f"[image: {conversation.image_path}]" if conversation.image_path else "[no image]"]
    for user, assistant in conversation.turns:
        lines += [f"user: {user}", f"assistant: {assistant}"]
    return "\n".join(lines)


def _missing_images(read: SourceConversations) -> int:
    paths = {c.image_path for c in read.conversations if c.image_path is not None}
    return sum(1 for path in paths if not image_exists(read.image_root, path))


def _report(split: str, read: SourceConversations, examples: int, leak_root: Path | None) -> SourceReport:
    conversations = read.conversations
    skipped = Counter(getattr(conversations, "skipped", {}))
    missing = _missing_images(read)
    if missing:
        skipped["image missing on disk"] += missing
    leaks = check_leaks(read.source.reader, conversations, leak_root) if leak_root and split == "train" else []
    return SourceReport(
        split=split,
        name=str(read.source.name),
        reader=read.source.reader,
        conversations=len(conversations),
        turns=sum(len(c.turns) for c in conversations),
        images=len({c.image_path for c in conversations if c.image_path is not None}),
        text_only=sum(1 for c in conversations if c.image_path is None),
        skipped=dict(skipped),
        notes=list(getattr(conversations, "notes", [])),
        examples=[render_conversation(c) for c in conversations[:examples]],
        leaks=leaks,
    )


def check_data(recipe: Recipe, examples: int = 2) -> list[SourceReport]:
    """Read every source of `recipe` (synthetic ones rendered into a temporary folder) and report on each."""
    leak_root = Path(recipe.data.root) if recipe.data.root else None
    seed = recipe.data.seed if recipe.data.seed is not None else int(recipe.training.get("seed", 0))
    reports = []
    with tempfile.TemporaryDirectory(prefix="vlm-dry-run-") as scratch:
        for split, sources in (("train", recipe.data.train), ("eval", recipe.data.eval)):
            for source in sources:
                try:
                    [read] = read_sources([source], scratch, split, seed)
                except (FileNotFoundError, ValueError) as err:  # reported per source; the others still read
                    reports.append(SourceReport(split, str(source.name), source.reader, 0, 0, 0, 0, {}, [], [],
                                                error=str(err)))  # fmt: skip
                    continue
                reports.append(_report(split, read, examples, leak_root))
    return reports


def _leak_lines(report: SourceReport) -> list[str]:
    lines = []
    for leak in report.leaks:
        if leak.error:
            lines.append(f"  test leak vs {leak.benchmark}: not checked ({leak.error})")
            continue
        lines.append(
            f"  test leak vs {leak.benchmark}: {leak.status} ({leak.shared_items} shared items, {leak.shared_images} "
            f"of {leak.training_images} images also among its {leak.evaluation_images})"
            + (f"; e.g. {'; '.join(leak.examples)}" if leak.examples and leak.status != "clean" else "")
        )
    return lines


def format_report(reports: Sequence[SourceReport]) -> str:
    """The dry run's printout: one block per source, then the totals."""
    blocks = []
    for r in reports:
        if r.error:
            blocks.append(f"{r.split}/{r.name} ({r.reader}): ERROR: {r.error}")
            continue
        head = f"{r.split}/{r.name} ({r.reader}): {r.conversations} conversations, {r.turns} turns, {r.images} images"
        lines = [head + (f", {r.text_only} text-only" if r.text_only else "")]
        lines += [f"  skipped {count}: {reason}" for reason, count in sorted(r.skipped.items())]
        lines += [f"  note: {note}" for note in r.notes]
        lines += _leak_lines(r)
        for number, example in enumerate(r.examples, 1):
            lines.append(f"  example {number}:")
            lines += [f"    {line}" for line in example.split("\n")]
        blocks.append("\n".join(lines))
    leaks = [f"{r.name} vs {leak.benchmark}" for r in reports for leak in r.leaks if leak.status == "leak"]
    errors = [r.name for r in reports if r.error]
    total = sum(r.conversations for r in reports if r.split == "train")
    blocks.append(f"{total} training conversations in {sum(r.split == 'train' for r in reports)} sources; "
                  + (f"TEST LEAKS: {', '.join(leaks)}" if leaks else "no test leak found")
                  + (f"; UNREADABLE: {', '.join(errors)}" if errors else ""))  # fmt: skip
    return "\n\n".join(blocks)


def report_json(reports: Sequence[SourceReport]) -> list[dict[str, Any]]:
    """The reports as plain data."""
    return [{**asdict(r), "leaks": [{**asdict(leak), "status": leak.status} for leak in r.leaks]} for r in reports]
