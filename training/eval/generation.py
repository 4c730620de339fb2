"""Greedy batched generation: answers to (image, prompt) pairs in left-padded batches (`vlm eval`, the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from modeling_vlm import VLForConditionalGeneration, VLProcessor

from ..templates import user_turn

__all__ = ["generate_answers"]


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
        ).to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]  # (B, T_new)
        answers.extend(text.strip() for text in processor.batch_decode(new_tokens, skip_special_tokens=True))
    return answers
