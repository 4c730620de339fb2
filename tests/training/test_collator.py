"""The collator's right padding, and a short transformers Trainer run with it: the loss falls for both backbones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Trainer, TrainingArguments

from processing import IGNORE_INDEX, VLProcessor
from training.collator import VLDataCollator

N_EXAMPLES = 8
STEPS = 20


@pytest.fixture(scope="module")
def examples(processor: VLProcessor, synthetic_dataset: Any) -> list[dict[str, Any]]:
    out = []
    for row in synthetic_dataset.select(range(N_EXAMPLES)):
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["prompt"]}]},
            {"role": "assistant", "content": row["answer"]},
        ]
        out.append(processor.build_training_example(messages, images=[row["image"]], max_length=96))
    return out


def test_collator_pads_right(examples: list[dict[str, Any]], processor: VLProcessor) -> None:
    batch = VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id)(examples[:4])
    lengths = [len(e["input_ids"]) for e in examples[:4]]
    assert len(set(lengths)) > 1
    assert tuple(batch["input_ids"].shape) == (4, max(lengths))
    assert tuple(batch["pixel_values"].shape) == (4, 3, 32, 32)
    for row, example in enumerate(examples[:4]):
        n = len(example["input_ids"])
        assert batch["input_ids"][row, :n].tolist() == example["input_ids"]
        assert batch["labels"][row, :n].tolist() == example["labels"]
        assert (batch["input_ids"][row, n:] == processor.tokenizer.pad_token_id).all()
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_trainer_reduces_the_loss(
    backbone: str,
    make_model: Callable[..., Any],
    processor: VLProcessor,
    examples: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    model = make_model(backbone)
    model.freeze_vision_tower()
    vision_before = {k: v.clone() for k, v in model.vision_tower.state_dict().items()}
    projector_before = model.multi_modal_projector.linear_1.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id),
    )
    result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == STEPS
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.6 * first, losses
    assert result.global_step == STEPS
    # Only the projector and the language model learn; the frozen tower is untouched.
    for key, value in model.vision_tower.state_dict().items():
        assert torch.equal(value, vision_before[key]), key
    assert not torch.equal(model.multi_modal_projector.linear_1.weight, projector_before)
