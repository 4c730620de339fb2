"""Greedy batched generation over a dataset of (image, prompt, answer) rows, and per-task scores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import torch
from tqdm.auto import tqdm

from modeling_vlm import VLForConditionalGeneration, VLProcessor

from .metrics import score_task


def user_turn(prompt: str) -> dict[str, Any]:
    """A user message holding the image followed by the prompt text."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def conversation(prompt: str, answer: str) -> list[dict[str, Any]]:
    """One question-answer exchange about an image, in chat-message form."""
    return [user_turn(prompt), {"role": "assistant", "content": [{"type": "text", "text": answer}]}]


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


def evaluate_dataset(
    model: VLForConditionalGeneration,
    processor: VLProcessor,
    dataset: datasets.Dataset,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    show_progress: bool = True,
    scorer: Callable[[str, Sequence[str], Sequence[Any]], dict[str, float]] = score_task,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Score greedy answers per task with `scorer`; return ``({task: metrics}, predictions)``."""
    predictions = generate_answers(
        model,
        processor,
        dataset["image"],
        dataset["prompt"],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        show_progress=show_progress,
    )
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, task in enumerate(dataset["task"]):
        by_task[task].append(index)
    answers, boxes = dataset["answer"], dataset["box"]
    scores = {}
    for task, indices in by_task.items():
        refs = [boxes[i] if task == "grounding" else answers[i] for i in indices]
        scores[task] = scorer(task, [predictions[i] for i in indices], refs)
    records = [
        {"task": task, "prompt": prompt, "answer": answer, "prediction": prediction}
        for task, prompt, answer, prediction in zip(
            dataset["task"], dataset["prompt"], answers, predictions, strict=True
        )
    ]
    return scores, records
