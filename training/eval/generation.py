"""Greedy batched generation: answers to (image, prompt) pairs in left-padded batches (`vlm eval`, the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import BatchFeature

from modeling_vlm import VLForConditionalGeneration, VLProcessor

from ..templates import user_turn

__all__ = ["generate_answers", "generate_from_ids"]


@torch.inference_mode()
def generate_answers(
    model: VLForConditionalGeneration,
    processor: VLProcessor,
    images: Sequence[Any],
    prompts: Sequence[str],
    batch_size: int = 16,
    max_new_tokens: int = 32,
    show_progress: bool = True,
) -> list[str]:
    """Greedy answers for each (image, prompt) pair, generated in left-padded batches."""
    model.eval()
    answers: list[str] = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc="generating", disable=not show_progress, leave=False):
        texts = [
            processor.apply_chat_template([user_turn(p)], add_generation_prompt=True)
            for p in prompts[start : start + batch_size]
        ]
        inputs = processor(
            images=list(images[start : start + batch_size]), text=texts, padding_side="left", return_tensors="pt"
        )
        answers.extend(_greedy(model, processor, inputs, max_new_tokens))
    return answers


def _greedy(model: VLForConditionalGeneration, processor: VLProcessor, inputs: Any, max_new_tokens: int) -> list[str]:
    """Greedy continuation of a left-padded batch, decoded without special tokens and stripped."""
    inputs = inputs.to(model.device)
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = output[:, inputs["input_ids"].shape[1] :]  # (B, T_new)
    return [text.strip() for text in processor.batch_decode(new_tokens, skip_special_tokens=True)]


@torch.inference_mode()
def generate_from_ids(
    model: VLForConditionalGeneration,
    processor: VLProcessor,
    images: Sequence[Any],
    input_ids: Sequence[Sequence[int]],
    max_new_tokens: int = 32,
) -> list[str]:
    """Greedy answers for prompts already tokenized (each holding its image block), as one left-padded batch."""
    model.eval()
    longest = max(len(ids) for ids in input_ids)
    pad = processor.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (longest - len(row)) + list(row) for row in input_ids])  # (B, L)
    mask = torch.tensor([[0] * (longest - len(row)) + [1] * len(row) for row in input_ids])  # (B, L)
    pixel_values = processor.image_processor(list(images), return_tensors="pt")["pixel_values"]  # (B, 3, H, W)
    inputs = BatchFeature({"input_ids": ids, "attention_mask": mask, "pixel_values": pixel_values})
    return _greedy(model, processor, inputs, max_new_tokens)
