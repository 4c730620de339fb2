"""Batch collation for training: right padding of ids and labels, images stacked in order of appearance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from processing import IGNORE_INDEX


@dataclass
class VLDataCollator:
    """
    Pad ``input_ids`` / ``labels`` on the right and concatenate ``pixel_values`` of every example.

    Training pads on the right: the fused Mamba training kernel ignores the attention mask, so padding must come after
    the real tokens, where it cannot leak into their recurrent state.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate examples holding ``input_ids``, ``labels`` and optionally ``pixel_values`` of shape (n, 3, H, W)."""
        longest = max(len(example["input_ids"]) for example in examples)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(examples), longest), self.pad_token_id, dtype=torch.long)  # (B, L)
        labels = torch.full((len(examples), longest), IGNORE_INDEX, dtype=torch.long)  # (B, L)
        attention_mask = torch.zeros((len(examples), longest), dtype=torch.long)  # (B, L)
        for row, example in enumerate(examples):
            length = len(example["input_ids"])
            input_ids[row, :length] = torch.as_tensor(example["input_ids"])
            labels[row, :length] = torch.as_tensor(example["labels"])
            attention_mask[row, :length] = 1
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
        images = [example["pixel_values"] for example in examples if example.get("pixel_values") is not None]
        if images:
            batch["pixel_values"] = torch.cat([torch.as_tensor(image) for image in images])  # (N, 3, H, W)
        return batch
