"""The ``Trainer`` of ``vlm train``: transformers' own, with a model card that records the recipe and the data.

:class:`RecipeTrainer` also loads checkpoints through ``from_pretrained`` (so saved key names map back to modules);
:class:`SkippedRecordsCallback` writes every process's count of unusable records beside each checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate.utils import gather_object
from transformers import Trainer, TrainerCallback, TrainingArguments

from modeling_vlm import VLForConditionalGeneration

from .checkpoints import CHECKPOINT_PATTERN, mark_complete
from .data.sources import RecipeData, local_skip_counts, skipped_report, write_skipped
from .files import set_aside, write_text
from .recipe import Recipe, recipe_to_dict

__all__ = ["RecipeTrainer", "SkippedRecordsCallback", "recipe_card_section"]

logger = logging.getLogger(__name__)

_EMPTY_BASE_MODEL = "This model is a fine-tuned version of [](https://huggingface.co/) on"
_SCRATCH = "This model was trained from scratch on"


class RecipeTrainer(Trainer):
    """The transformers ``Trainer``; its model card also records the recipe and the data mixture."""

    def __init__(self, *args: Any, recipe: Recipe, data_summary: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.data_summary = data_summary

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The Trainer's save into a fresh folder, committed once every process is done (:func:`mark_complete`).

        A folder already at this step (an earlier attempt's) is set aside first, so no file of it can pass for one
        of this save's.
        """
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        if self.args.should_save and folder.exists():
            moved = set_aside(folder, "replaced")
            logger.warning("Set the existing %s aside as %s before saving this step.", folder, moved)
        self.accelerator.wait_for_everyone()
        super()._save_checkpoint(model, trial)
        self.accelerator.wait_for_everyone()  # every process's shard, optimizer and RNG state is on disk
        if self.args.should_save and folder.is_dir() and CHECKPOINT_PATTERN.match(folder.name):
            mark_complete(folder)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """Load checkpoint weights through ``from_pretrained``, which maps saved key names back to module names.

        The Trainer loads the saved state dict as is, but ``save_pretrained`` writes the language model's original
        key names (GPT-NeoX ``embed_out`` for the module ``lm_head``), so a plain resume would silently leave the head
        at its initial weights (huggingface/transformers#43701). DeepSpeed, FSDP and PEFT keep the Trainer's loader.
        """
        target = model if model is not None else self.model
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not isinstance(target, VLForConditionalGeneration):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        dtype = next(target.parameters()).dtype
        saved = type(target).from_pretrained(resume_from_checkpoint, dtype=dtype)
        target.load_state_dict(saved.state_dict())

    def _load_best_model(self) -> None:
        """Load the best checkpoint with the same key mapping as :meth:`_load_from_checkpoint`."""
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not isinstance(self.model, VLForConditionalGeneration):
            super()._load_best_model()
            return
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Trainer's card, followed by the stage, the data table and the full recipe."""
        super().create_model_card(*args, **kwargs)
        if self.is_world_process_zero():
            card = Path(self.args.output_dir) / "README.md"
            # The Trainer reads an empty `_name_or_path` (a model built from a config) as a base model named "".
            text = card.read_text(encoding="utf-8").replace(_EMPTY_BASE_MODEL, _SCRATCH)
            write_text(card, text + recipe_card_section(self.recipe, self.data_summary))


def recipe_card_section(recipe: Recipe, data_summary: list[dict[str, Any]]) -> str:
    """Markdown recording the stage, trainable parts, data mixture and the recipe itself."""
    weights = {source.name: source.weight for source in recipe.data.train}
    readers = {source.name: source.reader for source in recipe.data.train}
    rows = [
        f"| {row['name']} | {readers[row['name']]} | {row['conversations']:,} | {weights[row['name']] or 'size'} | "
        f"{row['samples_per_epoch']:,} |"
        for row in data_summary
    ]
    parts = ", ".join(name for name, on in recipe.trainable_parts().items() if on)
    trained = f"LoRA (r={recipe.lora.r}) on the language model + projector" if recipe.lora else parts
    recipe_yaml = yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)
    return (
        f"\n## Training recipe\n\nStage: **{recipe.stage}**; trained: {trained}; max length: {recipe.max_length}.\n\n"
        "| dataset | reader | conversations | weight | samples per epoch |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\n<details><summary>run_recipe.yaml</summary>\n\n```yaml\n{recipe_yaml}```\n\n</details>\n"
    )


class SkippedRecordsCallback(TrainerCallback):
    """Gathers every process's skip counts at each save and at the end, logs them and writes the JSON report."""

    def __init__(self, data: RecipeData, path: Path) -> None:
        self.data = data
        self.path = path
        self.logged_total = 0

    def _write(self, args: TrainingArguments) -> None:
        """Gather (all processes), then log and write (main process)."""
        counts = gather_object([local_skip_counts(self.data)])
        report = skipped_report(self.data, counts, args.dataloader_num_workers)
        total = sum(report["total"].values())
        if args.process_index == 0:
            write_skipped(self.path, report)
            if total > self.logged_total:
                logger.warning("Skipped %d unusable record(s) so far: %s (see %s)", total, report["total"], self.path)
        self.logged_total = total

    def on_save(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        """Write the report beside each checkpoint save."""
        self._write(args)

    def on_train_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        """Write the final report."""
        self._write(args)
