"""``vlm train RECIPE``: one training run of a recipe through the transformers ``Trainer``.

The run builds the model and processor the recipe names, freezes and unfreezes parts per stage, optionally wraps the
language model in LoRA, and hands everything to the ``Trainer``: its loop, checkpoints, evaluation loss, logging
(TensorBoard by default), mixed precision, gradient checkpointing and its own ``push_to_hub``. Several processes or
GPUs come from ``accelerate launch`` (configs in ``training/accelerate_configs/``); nothing here is device-specific.

Beside the checkpoints ``output_dir`` gets ``run_recipe.yaml`` (the resolved recipe), ``skipped_records.json``, the
processor and, at the end, the model and a model card recording the recipe and the data. A run started again with
the same command resumes from the latest complete checkpoint (``--resume auto``, the default).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate.utils import gather_object
from peft import get_peft_model
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.integrations import is_tensorboard_available

from configuration import PRESETS, config_class_for_backbone
from modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration, VLImageProcessor, VLProcessor
from modeling_vlm.assembly import assemble_from_pretrained

from .checkpoints import find_resume_checkpoint, is_complete_checkpoint, remove_incomplete_checkpoints
from .collator import VLDataCollator
from .peft_utils import lora_config_for
from .recipe import Recipe, RecipeError, recipe_to_dict, save_recipe
from .recipe_data import (
    SKIPPED_RECORDS_FILE,
    RecipeData,
    SourceConversations,
    build_datasets,
    conversation_texts,
    local_skip_counts,
    read_sources,
    skipped_report,
    validate_records,
    write_skipped,
)
from .synthetic import train_synthetic_tokenizer

__all__ = [
    "LAYOUT_TOKENS",
    "RECIPE_FILE",
    "RecipeTrainer",
    "TrainResult",
    "apply_trainable",
    "build_model_and_processor",
    "resolve_resume",
    "restrict_fsdp_wrap_classes",
    "train",
    "training_arguments",
]

logger = logging.getLogger(__name__)

RECIPE_FILE = "run_recipe.yaml"
LAYOUT_TOKENS = ("<image>", "###", "&&")
_EMPTY_BASE_MODEL = "This model is a fine-tuned version of [](https://huggingface.co/) on"
_SCRATCH = "This model was trained from scratch on"


@dataclass
class TrainResult:
    """What a run leaves: the trainer (model, state), the output folder, the final metrics and the skip report."""

    trainer: Trainer
    output_dir: Path
    metrics: dict[str, float]
    skipped: dict[str, Any]
    resumed_from: str | None


# ----------------------------------------------------------------------------------------------------------------
# TrainingArguments
# ----------------------------------------------------------------------------------------------------------------
def _checkpointing_field() -> str:
    """The TrainingArguments name of gradient checkpointing in the installed transformers."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def training_arguments(
    recipe: Recipe, output_dir: str | os.PathLike[str] | None = None, push_to_hub: bool | None = None
) -> TrainingArguments:
    """The recipe's ``training:`` block as TrainingArguments, with the recipe's defaults; errors name the file."""
    values: dict[str, Any] = {
        "report_to": ["tensorboard"],
        "label_names": ["labels"],
        "prediction_loss_only": True,
        "logging_steps": 10,
        "ddp_find_unused_parameters": False,  # frozen parts hold no gradients; every trainable part is used
        **recipe.training,
        "remove_unused_columns": False,  # pixel_values are built by the dataset, not model-argument columns
    }
    values["output_dir"] = os.fspath(output_dir) if output_dir is not None else values.get("output_dir")
    if not values["output_dir"]:
        raise RecipeError(
            f"{recipe.path or 'recipe'}: no output folder; pass --output-dir or set training.output_dir."
        )
    values.setdefault("data_seed", values.get("seed", 42))
    if push_to_hub is not None:
        values["push_to_hub"] = push_to_hub
    if recipe.data.eval or recipe.data.eval_holdout:
        values.setdefault("eval_strategy", "steps")
    if recipe.gradient_checkpointing:
        field = _checkpointing_field()
        values[field] = True
        values[f"{field}_kwargs"] = {"use_reentrant": False, **(values.get(f"{field}_kwargs") or {})}
    reporters = [values["report_to"]] if isinstance(values["report_to"], str) else values["report_to"]
    if "tensorboard" in reporters and not is_tensorboard_available():
        raise RecipeError(
            f"{recipe.path or 'recipe'}: training.report_to names tensorboard, which is not installed: "
            "pip install tensorboard, or set report_to: [] (or another logger)."
        )
    try:
        return TrainingArguments(**values)
    except (ValueError, TypeError) as err:
        raise RecipeError(f"{recipe.path or 'recipe'}: training: {err}") from err


# ----------------------------------------------------------------------------------------------------------------
# Model and processor
# ----------------------------------------------------------------------------------------------------------------
def _torch_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` -> ``torch.bfloat16``."""
    return getattr(torch, name)


def _add_layout_tokens(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Make ``<image>``, ``###`` and ``&&`` single tokens and give the tokenizer a pad token."""
    missing = [t for t in LAYOUT_TOKENS if len(tokenizer.encode(t, add_special_tokens=False)) != 1]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _image_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Id of the ``<image>`` placeholder."""
    return tokenizer.convert_tokens_to_ids(LAYOUT_TOKENS[0])


def _processor_for(
    model: VLForConditionalGeneration, tokenizer: PreTrainedTokenizerBase, recipe: Recipe
) -> VLProcessor:
    """A processor matching the model: image size from the vision config, the model's grid."""
    size = recipe.model.image_size or getattr(model.config.vision_config, "image_size", None)
    if not size:
        raise RecipeError(
            f"{recipe.path or 'recipe'}: model.image_size is needed: the vision config does not give it."
        )
    image_processor = VLImageProcessor(size={"height": int(size), "width": int(size)})
    return VLProcessor(image_processor, tokenizer, image_grid_size=model.config.image_grid_size)


def _preset_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase) -> VLForConditionalGeneration:
    """A randomly initialised model of the recipe's preset, its vocabulary sized to `tokenizer`."""
    spec = recipe.model
    preset = PRESETS[spec.backbone][spec.preset]
    text_config = {**preset.text_config, **spec.text_config, "vocab_size": len(tokenizer)}
    text_config.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    config = config_class_for_backbone(spec.backbone).from_preset(
        spec.preset,
        text_config=text_config,
        vision_config={**preset.vision_config, **spec.vision_config},
        image_grid_size=spec.image_grid_size or preset.image_grid_size,
        image_token_id=_image_token_id(tokenizer),
    )
    return MODEL_CLASSES[spec.backbone](config).to(_torch_dtype(spec.dtype))


def _parts_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase) -> VLForConditionalGeneration:
    """A model assembled from the recipe's pretrained vision model and language model."""
    spec = recipe.model
    model = assemble_from_pretrained(
        spec.vision_model,
        spec.language_model,
        image_grid_size=spec.image_grid_size,
        dtype=_torch_dtype(spec.dtype),
        image_token_id=_image_token_id(tokenizer),
    )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return model


def _new_tokenizer(recipe: Recipe, sources: list[SourceConversations]) -> PreTrainedTokenizerBase:
    """The language model's tokenizer (pretrained parts) or a synthetic one trained on the data (preset)."""
    if recipe.model.mode == "parts":
        return _add_layout_tokens(AutoTokenizer.from_pretrained(recipe.model.language_model))
    corpus = conversation_texts(sources)
    return train_synthetic_tokenizer(corpus, extra_tokens=LAYOUT_TOKENS, vocab_size=recipe.model.tokenizer_vocab_size)


def build_model_and_processor(
    recipe: Recipe, sources: list[SourceConversations], saved_processor: str | os.PathLike[str] | None = None
) -> tuple[VLForConditionalGeneration, VLProcessor]:
    """The recipe's model and processor; `saved_processor` (a folder) replaces building a new one."""
    spec = recipe.model
    if spec.mode == "pretrained":
        model = AutoModelForImageTextToText.from_pretrained(spec.model_name_or_path, dtype=_torch_dtype(spec.dtype))
        if not isinstance(model, VLForConditionalGeneration):
            raise RecipeError(f"model.model_name_or_path={spec.model_name_or_path!r} is not a Pythia-VL / Mamba-VL.")
        return model, AutoProcessor.from_pretrained(spec.processor or spec.model_name_or_path)
    processor = AutoProcessor.from_pretrained(saved_processor) if saved_processor else None
    tokenizer = processor.tokenizer if processor is not None else _new_tokenizer(recipe, sources)
    model = _parts_model(recipe, tokenizer) if spec.mode == "parts" else _preset_model(recipe, tokenizer)
    return model, processor or _processor_for(model, tokenizer, recipe)


def apply_trainable(model: VLForConditionalGeneration, parts: dict[str, bool]) -> None:
    """Set which parts train (``vision_tower``, ``multi_modal_projector``, ``language_model``)."""
    model.set_trainable(**parts)


def restrict_fsdp_wrap_classes(model: VLForConditionalGeneration) -> list[str] | None:
    """Under ``accelerate launch`` with FSDP, keep only the configured wrap classes that `model` contains.

    Accelerate refuses a listed class the model lacks, so one config names the layers of both backbones and of every
    vision tower (see ``accelerate_configs/fsdp.yaml``) and each run keeps its own; the model's ``_no_split_modules``
    present in it are the fallback. Returns the classes kept, or None when FSDP is not in use.
    """
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() not in ("1", "true"):
        return None
    present = {type(module).__name__ for module in model.modules()}
    listed = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP") or ",".join(model._no_split_modules or ())
    kept = [name for name in dict.fromkeys(listed.split(",")) if name.strip() in present]
    kept = kept or [name for name in model._no_split_modules or () if name in present]
    os.environ["FSDP_TRANSFORMER_CLS_TO_WRAP"] = ",".join(kept)  # read by accelerate's FSDP plugin
    logger.info("FSDP wraps %s", kept)
    return kept


def _prepare_model(model: VLForConditionalGeneration, recipe: Recipe) -> torch.nn.Module:
    """Freeze per stage, or wrap the language model in LoRA (adapters + projector train)."""
    if recipe.lora is None:
        apply_trainable(model, recipe.trainable_parts())
        return model
    lora = recipe.lora
    config = lora_config_for(model, lora.r, lora.alpha, lora.dropout, lora.target_modules, lora.modules_to_save)
    return get_peft_model(model, config)


# ----------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------
class RecipeTrainer(Trainer):
    """The transformers ``Trainer``; its model card also records the recipe and the data mixture."""

    def __init__(self, *args: Any, recipe: Recipe, data_summary: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.data_summary = data_summary

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
            card.write_text(text + recipe_card_section(self.recipe, self.data_summary))


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


def resolve_resume(output_dir: str | os.PathLike[str], resume: str) -> str | None:
    """``auto``: the latest complete checkpoint or None; ``never``: None; else a path that must be complete."""
    if resume == "never":
        return None
    if resume == "auto":
        checkpoint = find_resume_checkpoint(output_dir)
        return os.fspath(checkpoint) if checkpoint else None
    if not is_complete_checkpoint(resume):
        raise ValueError(f"--resume {resume!r} is not a complete checkpoint folder (trainer_state.json + weights).")
    return os.fspath(resume)


def _warn_if_recipe_changed(recipe: Recipe, output_dir: Path) -> None:
    """Log the keys whose values differ from the recipe saved by an earlier run in `output_dir`."""
    saved_path = output_dir / RECIPE_FILE
    if not saved_path.is_file():
        return
    saved, current = yaml.safe_load(saved_path.read_text(encoding="utf-8")), recipe_to_dict(recipe)
    changed = sorted(key for key in set(saved) | set(current) if saved.get(key) != current.get(key))
    if changed:
        logger.warning("Resuming in %s with a recipe that differs from the saved one in: %s", output_dir, changed)


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------
def _check_data_paths(recipe: Recipe) -> None:
    """Every annotation file and image folder exists; raise naming the recipe key before anything is built."""
    for split in ("train", "eval"):
        for index, source in enumerate(getattr(recipe.data, split)):
            where = f"data.{split}[{index}]"
            for key, path in source.files.items():
                if not Path(path).exists():
                    raise FileNotFoundError(
                        f"{recipe.path or 'recipe'}: {where}.files.{key}: {path!r} does not exist."
                    )
            if source.image_root and not Path(source.image_root).is_dir():
                raise FileNotFoundError(
                    f"{recipe.path or 'recipe'}: {where}.image_root: {source.image_root!r} is not a folder."
                )


def _card_kwargs(recipe: Recipe, model: VLForConditionalGeneration, output_dir: Path) -> dict[str, Any]:
    """Model card metadata: name, tags, datasets and the model it starts from."""
    spec = recipe.model
    start = spec.model_name_or_path or spec.language_model
    return {
        "model_name": recipe.name or output_dir.name,
        "tags": [model.config.model_type, "vision-language", "image-text-to-text", f"stage-{recipe.stage}"],
        "dataset": [source.name for source in recipe.data.train],
        **({"finetuned_from": start} if start and not Path(start).exists() else {}),
    }


def _prepare_run(
    recipe: Recipe, args: TrainingArguments, checkpoint: str | None
) -> tuple[VLForConditionalGeneration, VLProcessor, RecipeData]:
    """Read the data, build model and processor (main process first: it renders, saves; the others reuse)."""
    output_dir, is_main = Path(args.output_dir), args.process_index == 0
    seed = recipe.data.seed if recipe.data.seed is not None else args.seed
    with args.main_process_first(desc="reading the data and building the processor"):
        train_read = read_sources(recipe.data.train, output_dir, "train", seed)
        eval_read = read_sources(recipe.data.eval, output_dir, "eval", seed)
        saved = checkpoint if checkpoint and recipe.model.mode != "pretrained" else None
        saved = saved or (None if is_main else output_dir)
        set_seed(args.seed)  # the same random initialisation on every process and every (re)start
        model, processor = build_model_and_processor(recipe, train_read, saved)
        if is_main:
            processor.save_pretrained(output_dir)
    data = build_datasets(recipe, train_read, eval_read, processor, seed)
    if recipe.data.validate and is_main:
        data.validated = validate_records(data)
        logger.warning("Data validation found %d unusable record(s).", len(data.validated))
    return model, processor, data


def train(
    recipe: Recipe,
    output_dir: str | os.PathLike[str] | None = None,
    push_to_hub: bool | None = None,
    resume: str = "auto",
) -> TrainResult:
    """Run the recipe with the transformers Trainer; resume from the latest complete checkpoint with ``auto``."""
    args = training_arguments(recipe, output_dir, push_to_hub)
    out = Path(args.output_dir)
    _check_data_paths(recipe)
    ran_with = {"output_dir": os.fspath(out.resolve()), **({"push_to_hub": True} if args.push_to_hub else {})}
    run_recipe = dataclasses.replace(recipe, training={**recipe.training, **ran_with})
    if args.process_index == 0:
        out.mkdir(parents=True, exist_ok=True)
        if resume == "auto":
            remove_incomplete_checkpoints(out)
            _warn_if_recipe_changed(run_recipe, out)
        save_recipe(run_recipe, out / RECIPE_FILE)
    with args.main_process_first(desc="finding the checkpoint to resume from"):
        checkpoint = resolve_resume(out, resume)
    model, processor, data = _prepare_run(recipe, args, checkpoint)
    restrict_fsdp_wrap_classes(model)
    trainer = RecipeTrainer(
        model=_prepare_model(model, recipe),
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id),
        processing_class=processor,
        callbacks=[SkippedRecordsCallback(data, out / SKIPPED_RECORDS_FILE)],
        recipe=run_recipe,
        data_summary=data.summary(),
    )
    if checkpoint:
        logger.warning("Resuming from %s", checkpoint)
    metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
    trainer.save_model()
    trainer.save_state()
    card = _card_kwargs(recipe, model, out)
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"{recipe.name or 'vlm train'}: end of training", **card)
    else:
        trainer.create_model_card(**card)
    skipped = skipped_report(data, [local_skip_counts(data)])
    return TrainResult(trainer, out, metrics, skipped, checkpoint)
