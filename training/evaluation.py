"""Greedy batched generation over a dataset of (image, prompt, answer) rows, and per-task scores."""

from __future__ import annotations

from collections import Counter, defaultdict
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


def score_predictions(
    dataset: datasets.Dataset,
    predictions: Sequence[str],
    scorer: Callable[[str, Sequence[str], Sequence[Any]], dict[str, float]] = score_task,
) -> dict[str, dict[str, float]]:
    """Score one prediction per row of `dataset`, per task, with `scorer` (grounding against ``box``)."""
    if len(predictions) != len(dataset):
        raise ValueError(f"got {len(predictions)} predictions for {len(dataset)} rows")
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, task in enumerate(dataset["task"]):
        by_task[task].append(index)
    answers, boxes = dataset["answer"], dataset["box"]
    scores = {}
    for task, indices in by_task.items():
        refs = [boxes[i] if task == "grounding" else answers[i] for i in indices]
        scores[task] = scorer(task, [predictions[i] for i in indices], refs)
    return scores


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
    records = [
        {"task": task, "prompt": prompt, "answer": answer, "prediction": prediction}
        for task, prompt, answer, prediction in zip(
            dataset["task"], dataset["prompt"], dataset["answer"], predictions, strict=True
        )
    ]
    return score_predictions(dataset, predictions, scorer), records


def image_blind_answers(train_set: datasets.Dataset, eval_set: datasets.Dataset) -> list[str]:
    """The best answers that ignore the image: each evaluation prompt's most frequent training answer in its task.

    Scored like a model's predictions, they give the floor that a model which does not look at the image reaches
    (the prompt alone can reveal the answer's form and prior, e.g. "yes" or the commonest count). Prompts never seen in
    training get the task's most frequent answer; ties go to the answer seen first.
    """
    by_prompt: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_task: dict[str, Counter[str]] = defaultdict(Counter)
    for task, prompt, answer in zip(train_set["task"], train_set["prompt"], train_set["answer"], strict=True):
        by_prompt[task, prompt][answer] += 1
        by_task[task][answer] += 1
    answers = []
    for task, prompt in zip(eval_set["task"], eval_set["prompt"], strict=True):
        counts = by_prompt.get((task, prompt)) or by_task.get(task)
        answers.append(counts.most_common(1)[0][0] if counts else "")
    return answers
