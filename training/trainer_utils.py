"""Shared `TrainingArguments` for the short, self-contained CPU runs of the demo and the probes."""

from __future__ import annotations

from typing import Any

from transformers import TrainingArguments


def short_run_arguments(
    output_dir: str,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    show_progress: bool,
    logs: int = 40,
    **overrides: Any,
) -> TrainingArguments:
    """The paper's schedule (cosine, 3% warmup, no weight decay) over `steps` steps, no checkpoints, `logs` logs."""
    arguments: dict[str, Any] = {
        "output_dir": output_dir,
        "max_steps": steps,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(1, steps // 33),  # the paper's 3% warmup
        "weight_decay": 0.0,
        "logging_steps": max(1, steps // logs),
        "save_strategy": "no",
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "remove_unused_columns": False,  # the collator needs the image columns
        "dataloader_num_workers": 0,
        "disable_tqdm": not show_progress,
    }
    return TrainingArguments(**{**arguments, **overrides})
