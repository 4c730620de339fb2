"""Torch datasets over :class:`~training.data.readers.Conversation` lists: lazy images, skipping, weighted mixtures.

:class:`ConversationDataset` loads each image only inside ``__getitem__`` and tokenizes with
:meth:`VLProcessor.build_training_example`. A record that cannot be used is skipped -- the next usable record (in
index order, wrapping around) is returned instead -- and counted in ``skipped`` by reason:

* ``missing_image``: the image file does not exist (or is no regular file);
* ``corrupt_image``: the image file cannot be decoded (damaged, empty, or above PIL's decompression-bomb limit);
* ``image_token_in_text``: a turn's text holds the literal image placeholder, which would stand for an image;
* ``unsafe_path``: the image path leads out of the image folder (``..``);
* ``too_long``: the image block (plus at least one answer token) does not fit in ``max_length``.

Conversations longer than ``max_length`` lose whole trailing turns first; only when even the first turn does not
fit is it cut token-wise, after the image block. With ``num_workers > 0`` each DataLoader worker counts its own skips;
call :meth:`ConversationDataset.validate` in the main process for a complete count.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from processing import IGNORE_INDEX, VLProcessor

from .images import open_image
from .readers.conversation import Conversation

__all__ = ["SKIP_REASONS", "ConversationDataset", "WeightedMixture", "assistant_turn_ends"]

SKIP_REASONS: tuple[str, ...] = ("missing_image", "corrupt_image", "image_token_in_text", "unsafe_path", "too_long")


def assistant_turn_ends(labels: Sequence[int]) -> list[int]:
    """End offsets (exclusive) of each supervised run of `labels`, i.e. of each assistant turn (answer + eos)."""
    ends = []
    for position, label in enumerate(labels):
        supervised = label != IGNORE_INDEX
        next_supervised = position + 1 < len(labels) and labels[position + 1] != IGNORE_INDEX
        if supervised and not next_supervised:
            ends.append(position + 1)
    return ends


class ConversationDataset(Dataset):
    """Training examples (``input_ids``, ``labels``, ``pixel_values``) built lazily from conversations."""

    def __init__(
        self,
        conversations: Sequence[Conversation],
        image_root: str | os.PathLike[str],
        processor: VLProcessor,
        max_length: int | None = None,
    ) -> None:
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be a positive number of tokens or None, got {max_length}.")
        self.conversations = conversations
        self.image_root = Path(image_root)
        self.processor = processor
        self.max_length = max_length
        self.skipped: Counter[str] = Counter()
        self._unusable: dict[int, str] = {}  # index -> reason; only small ints, never images

    def __len__(self) -> int:
        """Number of conversations, usable or not."""
        return len(self.conversations)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The example at `index`, or the next usable one (wrapping around) when that record must be skipped."""
        size = len(self.conversations)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range for a dataset of {size} conversations.")
        for offset in range(size):
            position = (index + offset) % size
            if position in self._unusable:
                continue
            example = self.build_example(position)
            if isinstance(example, dict):
                return example
            self._unusable[position] = example
            self.skipped[example] += 1
        raise RuntimeError(
            f"All {size} conversations under {os.fspath(self.image_root)!r} were skipped: {dict(self.skipped)}."
        )

    def build_example(self, index: int) -> dict[str, Any] | str:
        """The training example of conversation `index`, or the reason (one of ``SKIP_REASONS``) it is unusable."""
        conversation = self.conversations[index]
        token = self.processor.image_token
        if any(token in user or token in assistant for user, assistant in conversation.turns):
            return "image_token_in_text"
        images = None
        if conversation.image_path is not None and ".." in Path(conversation.image_path).parts:
            return "unsafe_path"
        if conversation.image_path is not None:  # None: a text-only conversation
            try:
                images = [open_image(self.image_root, conversation.image_path)]
            except FileNotFoundError:
                return "missing_image"
            except ValueError:
                return "corrupt_image"
        example = self.processor.build_training_example(conversation.to_messages(), images=images)
        return self._fit(example) or "too_long"

    def _fit(self, example: dict[str, Any]) -> dict[str, Any] | None:
        """Drop whole trailing turns to fit `max_length`, then cut the first turn; None if the image cannot fit."""
        input_ids, labels = example["input_ids"], example["labels"]
        if self.max_length is None or len(input_ids) <= self.max_length:
            return example
        fitting = [end for end in assistant_turn_ends(labels) if end <= self.max_length]
        cut = fitting[-1] if fitting else self.max_length
        if not fitting and (self._image_block_end(input_ids) > cut or all(x == IGNORE_INDEX for x in labels[:cut])):
            return None  # the image block, or every answer token, lies beyond max_length
        return {**example, "input_ids": input_ids[:cut], "labels": labels[:cut]}

    def _image_block_end(self, input_ids: Sequence[int]) -> int:
        """Offset just after the (single) image block of a sequence; 0 for a text-only one."""
        block = self.processor.image_block_ids
        image_token_id = self.processor.image_token_id
        if image_token_id not in input_ids:
            return 0
        start = list(input_ids).index(image_token_id) - block.index(image_token_id)
        return start + len(block)

    def validate(self) -> Counter[str]:
        """Check every record once (loading every image) and return the skip counts."""
        for index in range(len(self.conversations)):
            if index not in self._unusable:
                reason = self.build_example(index)
                if isinstance(reason, str):
                    self._unusable[index] = reason
                    self.skipped[reason] += 1
        return Counter(self.skipped)


class WeightedMixture(Dataset):
    """`num_samples` examples drawn from several datasets with probabilities proportional to `weights`.

    The plan is fixed at construction by `seed`: which dataset each position draws from (i.i.d.), and, per dataset,
    a fresh random permutation for every pass over it, so a dataset is covered before any of its items repeats.
    """

    def __init__(
        self,
        datasets: Sequence[Dataset],
        weights: Sequence[float],
        num_samples: int,
        seed: int = 0,
        names: Sequence[str] | None = None,
    ) -> None:
        self.names = list(names) if names is not None else [str(i) for i in range(len(datasets))]
        _check_mixture(datasets, weights, num_samples, self.names)
        self.datasets = list(datasets)
        rng = np.random.default_rng(seed)
        probabilities = np.asarray(weights, dtype=np.float64) / math.fsum(weights)
        self._dataset_of = rng.choice(len(datasets), size=num_samples, p=probabilities)  # (num_samples,)
        self._item_of = np.zeros(num_samples, dtype=np.int64)  # (num_samples,)
        for which, dataset in enumerate(self.datasets):
            positions = np.flatnonzero(self._dataset_of == which)
            if len(positions):
                passes = -(-len(positions) // len(dataset))
                order = np.concatenate([rng.permutation(len(dataset)) for _ in range(passes)])
                self._item_of[positions] = order[: len(positions)]

    def __len__(self) -> int:
        """Total number of samples requested."""
        return len(self._dataset_of)

    def __getitem__(self, index: int) -> Any:
        """The planned sample at `index`."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a mixture of {len(self)} samples.")
        return self.datasets[int(self._dataset_of[index])][int(self._item_of[index])]

    def source_of(self, index: int) -> str:
        """Name of the dataset that position `index` draws from."""
        return self.names[int(self._dataset_of[index])]

    @property
    def samples_per_dataset(self) -> dict[str, int]:
        """How many of the planned samples each dataset provides."""
        counts = np.bincount(self._dataset_of, minlength=len(self.datasets))
        return {name: int(count) for name, count in zip(self.names, counts, strict=True)}

    @property
    def skipped_by_dataset(self) -> dict[str, Counter[str]]:
        """Skip counts of each member dataset (empty for datasets that do not count skips)."""
        return {
            name: Counter(getattr(d, "skipped", Counter())) for name, d in zip(self.names, self.datasets, strict=True)
        }

    @property
    def skipped(self) -> Counter[str]:
        """Skip counts summed over the member datasets."""
        return sum(self.skipped_by_dataset.values(), Counter())


def _check_mixture(datasets: Sequence[Dataset], weights: Sequence[float], num_samples: int, names: list[str]) -> None:
    """Raise on mismatched lengths, empty datasets, non-positive weights or sample counts."""
    if not datasets or len(weights) != len(datasets) or len(names) != len(datasets):
        raise ValueError(
            f"A mixture needs one weight and one name per dataset: got {len(datasets)} datasets, "
            f"{len(weights)} weights and {len(names)} names."
        )
    for name, dataset, weight in zip(names, datasets, weights, strict=True):
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"The weight of dataset {name!r} must be a positive finite number, got {weight!r}.")
        if len(dataset) == 0:
            raise ValueError(f"Dataset {name!r} of the mixture is empty.")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
