"""A recipe's data: its sources read into conversations, the weighted training mixture, the eval set, skip reports.

Each source goes through its registered reader (:mod:`training.data.readers`) into :class:`ConversationDataset`
(lazy images, skipping of missing / corrupt / too long records); the ``synthetic`` source renders
:mod:`training.synthetic.shapes` scenes once into ``<output_dir>/_synthetic/`` (the leading underscore keeps them
out of hub pushes) and then reads them like any other image folder. Skips are counted per dataset and written to
``skipped_records.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset, Dataset

from processing import VLProcessor

from ..files import write_json
from ..recipe import SYNTHETIC, DataRecipe, DataSource, Recipe
from ..synthetic.shapes import SyntheticShapesConfig, build_synthetic_dataset
from .dataset import ConversationDataset, WeightedMixture
from .readers import Conversation, get_reader

__all__ = [
    "SKIPPED_RECORDS_FILE",
    "SYNTHETIC_FOLDER",
    "RecipeData",
    "SourceConversations",
    "build_datasets",
    "conversation_texts",
    "local_skip_counts",
    "read_sources",
    "skipped_report",
    "validate_records",
    "write_skipped",
]

logger = logging.getLogger(__name__)

SKIPPED_RECORDS_FILE = "skipped_records.json"
SYNTHETIC_FOLDER = "_synthetic"
_SKIP_NOTE = "Counts are of records met while training; each was replaced by the next usable record."
_WORKER_NOTE = (
    " With dataloader_num_workers={} the DataLoader workers count their own skips, which are not included here;"
    " set data.validate: true for a complete list."
)


@dataclass
class SourceConversations:
    """One source's conversations and the folder their image paths start from."""

    source: DataSource
    conversations: list[Conversation]
    image_root: Path


@dataclass
class RecipeData:
    """The datasets of a run, by source name, and the mixture the Trainer reads."""

    train: WeightedMixture
    eval: Dataset | None
    train_sources: dict[str, ConversationDataset]
    eval_sources: dict[str, ConversationDataset]
    validated: list[dict[str, Any]] = field(default_factory=list)  # records found unusable before training

    def summary(self) -> list[dict[str, Any]]:
        """One row per training source: conversations, weight and planned samples (for the model card)."""
        planned = self.train.samples_per_dataset
        return [
            {"name": name, "conversations": len(dataset), "samples_per_epoch": planned[name]}
            for name, dataset in self.train_sources.items()
        ]


def _generation_key(source: DataSource, seed: int) -> str:
    """A digest of every parameter the rendered images depend on (a changed seed, size or task renders anew)."""
    options = {k: v for k, v in source.kwargs.items() if k not in ("num_images", "seed")}
    parameters = {
        "seed": source.kwargs.get("seed", seed),
        **source.kwargs,
        "config": asdict(SyntheticShapesConfig(**options)),
    }
    return hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _synthetic_conversations(source: DataSource, folder: Path, seed: int) -> list[Conversation]:
    """Render the synthetic shapes of `source` into `folder` (once) and return one conversation per task row."""
    options = {k: v for k, v in source.kwargs.items() if k not in ("num_images", "seed")}
    rows = build_synthetic_dataset(
        source.kwargs["num_images"], seed=source.kwargs.get("seed", seed), config=SyntheticShapesConfig(**options)
    )
    folder.mkdir(parents=True, exist_ok=True)
    conversations = []
    for row in rows:
        name = f"{row['image_id']}.png"
        if not (folder / name).exists():
            partial = folder / f".{name}.partial"
            row["image"].save(partial, format="PNG")
            os.replace(partial, folder / name)  # atomic: a reader never sees half an image
        conversations.append(Conversation(name, [(row["prompt"], row["answer"])], source.name or SYNTHETIC))
    return conversations


def read_sources(
    sources: Sequence[DataSource], output_dir: str | os.PathLike[str], split: str, seed: int
) -> list[SourceConversations]:
    """Read every source's annotations (synthetic ones are rendered under `output_dir`)."""
    read = []
    for source in sources:
        if source.reader == SYNTHETIC:
            folder = Path(output_dir) / SYNTHETIC_FOLDER / f"{split}-{source.name}-{_generation_key(source, seed)}"
            conversations = _synthetic_conversations(source, folder, seed)
        else:
            conversations = get_reader(source.reader)(**source.files, **source.kwargs)
            folder = Path(source.image_root or ".")
        if not conversations:
            raise ValueError(f"data.{split} source {source.name!r} ({source.reader}) holds no conversations.")
        logger.info("data.%s %s: %d conversations", split, source.name, len(conversations))
        for reason, count in getattr(conversations, "skipped", {}).items():
            logger.warning("data.%s %s: skipped %d annotation(s): %s", split, source.name, count, reason)
        for note in getattr(conversations, "notes", []):
            logger.info("data.%s %s: %s", split, source.name, note)
        read.append(SourceConversations(source, conversations, folder))
    return read


def conversation_texts(sources: Sequence[SourceConversations], limit: int = 50_000) -> Iterator[str]:
    """User and assistant texts of up to `limit` conversations (a corpus for a synthetic tokenizer)."""
    count = 0
    for read in sources:
        for conversation in read.conversations:
            if count >= limit:
                return
            count += 1
            for user, assistant in conversation.turns:
                yield user
                yield assistant


def _holdout(
    read: SourceConversations, count: int, processor: VLProcessor, max_length: int | None
) -> tuple[list[Conversation], list[Conversation]]:
    """Split off the last `count` usable conversations of a source for evaluation.

    Candidates are built once (image opened, text tokenized) from the end; an unusable one stays in the training
    part, where it is skipped and counted like any other, so the evaluation set never holds a record that fails.
    """
    conversations = read.conversations
    if count and count >= len(conversations):
        raise ValueError(
            f"data.eval_holdout={count} leaves nothing to train on in source {read.source.name!r} "
            f"({len(conversations)} conversations)."
        )
    if not count:
        return list(conversations), []
    probe = ConversationDataset(conversations, read.image_root, processor, max_length)
    held: list[int] = []
    for index in range(len(conversations) - 1, 0, -1):
        if len(held) == count:
            break
        if isinstance(probe.build_example(index), dict):
            held.append(index)
    if len(held) < count:
        raise ValueError(
            f"data.eval_holdout={count}: source {read.source.name!r} has only {len(held)} usable conversations "
            "to hold out (the others lack their image or do not fit max_length)."
        )
    chosen = set(held)
    kept = [c for i, c in enumerate(conversations) if i not in chosen]
    return kept, [conversations[i] for i in sorted(held)]


def build_datasets(
    recipe: Recipe,
    train: Sequence[SourceConversations],
    evaluation: Sequence[SourceConversations],
    processor: VLProcessor,
    seed: int,
) -> RecipeData:
    """Conversation datasets per source, the weighted training mixture and the (concatenated) eval set."""
    data: DataRecipe = recipe.data
    train_sets, eval_sets = {}, {}
    for read in train:
        kept, held = _holdout(read, data.eval_holdout, processor, recipe.max_length)
        train_sets[read.source.name] = ConversationDataset(kept, read.image_root, processor, recipe.max_length)
        if held:
            eval_sets[f"{read.source.name} (held out)"] = ConversationDataset(
                held, read.image_root, processor, recipe.max_length
            )
    for read in evaluation:
        eval_sets[read.source.name] = ConversationDataset(
            read.conversations, read.image_root, processor, recipe.max_length
        )
    weights = [
        read.source.weight if read.source.weight is not None else float(len(dataset))
        for read, dataset in zip(train, train_sets.values(), strict=True)
    ]
    num_samples = data.num_samples or sum(len(d) for d in train_sets.values())
    mixture = WeightedMixture(list(train_sets.values()), weights, num_samples, seed=seed, names=list(train_sets))
    eval_set = ConcatDataset(list(eval_sets.values())) if eval_sets else None
    return RecipeData(mixture, eval_set, train_sets, eval_sets)


def validate_records(data: RecipeData) -> list[dict[str, Any]]:
    """Open every record once and list the unusable ones (source, index, image, reason)."""
    records = []
    for split, sources in (("train", data.train_sources), ("eval", data.eval_sources)):
        for name, dataset in sources.items():
            for index, conversation in enumerate(dataset.conversations):
                reason = dataset.build_example(index)
                if isinstance(reason, str):
                    records.append(
                        {
                            "split": split,
                            "source": name,
                            "index": index,
                            "image": conversation.image_path,
                            "reason": reason,
                        }
                    )
    return records


def skipped_report(
    data: RecipeData, counts_by_rank: Sequence[dict[str, dict[str, int]]], num_workers: int = 0
) -> dict[str, Any]:
    """The content of ``skipped_records.json``: counts by dataset summed over ranks, totals, and validated records."""
    by_dataset: dict[str, Counter[str]] = {}
    for counts in counts_by_rank:
        for name, reasons in counts.items():
            by_dataset.setdefault(name, Counter()).update(reasons)
    total = sum(by_dataset.values(), Counter())
    return {
        "total": dict(total),
        "by_dataset": {name: dict(reasons) for name, reasons in by_dataset.items() if reasons},
        "validated_records": data.validated,
        "note": _SKIP_NOTE + (_WORKER_NOTE.format(num_workers) if num_workers else ""),
    }


def local_skip_counts(data: RecipeData) -> dict[str, dict[str, int]]:
    """This process's skip counts per dataset (``train/<name>`` and ``eval/<name>``)."""
    counts = {f"train/{name}": dict(d.skipped) for name, d in data.train_sources.items()}
    counts.update({f"eval/{name}": dict(d.skipped) for name, d in data.eval_sources.items()})
    return counts


def write_skipped(path: str | os.PathLike[str], report: dict[str, Any]) -> None:
    """Write the skip report as JSON."""
    write_json(path, report)
