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
from transformers import Trainer, TrainingArguments, set_seed
from transformers.integrations import is_tensorboard_available

from modeling_vlm import VLForConditionalGeneration, VLProcessor
from modeling_vlm.standalone import mark_standalone

from . import cpu_sharding
from .checkpoints import (
    find_resume_checkpoint,
    is_complete_checkpoint,
    set_aside_checkpoints,
    set_aside_incomplete_checkpoints,
)
from .collator import VLDataCollator
from .data.sources import (
    SKIPPED_RECORDS_FILE,
    RecipeData,
    build_datasets,
    local_skip_counts,
    read_sources,
    skipped_report,
    validate_records,
)
from .launch_checks import check_launch
from .model_loading import build_model_and_processor, build_processor, prepare_model
from .recipe import Recipe, RecipeError, recipe_to_dict, save_recipe
from .trainer import RecipeTrainer, SkippedRecordsCallback

__all__ = [
    "RECIPE_FILE",
    "TrainResult",
    "close_process_group",
    "resolve_resume",
    "restrict_fsdp_wrap_classes",
    "train",
    "training_arguments",
]

logger = logging.getLogger(__name__)

RECIPE_FILE = "run_recipe.yaml"


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
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:  # reported, then rewritten by this run
        logger.warning("The saved %s is unreadable (%s); it is written again.", saved_path, err)
        return
    if not isinstance(saved, dict):
        logger.warning("The saved %s holds no recipe; it is written again.", saved_path)
        return
    current = recipe_to_dict(recipe)
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


def _save_gathered(trainer: RecipeTrainer, out: Path) -> None:
    """FSDP: gather the full state dict (every process takes part) and save it, from the main process, as an ordinary
    ``save_pretrained`` folder of a model built on the meta device (no second copy of the weights)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(trainer.model, options=options)
    if trainer.args.should_save:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "peft_config"):  # LoRA: the adapter alone, from the gathered (plain) tensors
            model.save_pretrained(out, state_dict=state)
        else:
            with torch.device("meta"):
                plain = type(model)(model.config)
            plain.load_state_dict(state, strict=True, assign=True)
            plain.tie_weights()
            plain.save_pretrained(out)
    trainer.accelerator.wait_for_everyone()


def _save_final(trainer: RecipeTrainer, recipe: Recipe, out: Path) -> None:
    """The final model (gathered from FSDP shards; merged when LoRA's base is no saved checkpoint) and the state."""
    if trainer.is_fsdp_enabled:  # checkpoints stay sharded; the final model is gathered into one ordinary folder
        _save_gathered(trainer, out)
    else:
        trainer.save_model()
    if recipe.lora is not None and recipe.model.mode != "pretrained":
        _save_merged(trainer, out)
    trainer.save_state()


_ADAPTER_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "adapter_config.json",
    "README.md",
)  # PEFT card too


def _save_merged(trainer: RecipeTrainer, out: Path) -> None:
    """LoRA on a base that is no loadable checkpoint (a preset, or parts assembled here): an adapter alone would name
    no base (``base_model_name_or_path: None``) and the base weights would exist nowhere, so the adapter is merged
    into the model and the whole model is saved instead."""
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        logger.warning("LoRA on a %s base under DeepSpeed/FSDP: only the adapter is saved; merge it from a checkpoint "
                       "loaded in one process.", "random or assembled")  # fmt: skip
        return
    merged = trainer.model.merge_and_unload()
    trainer.model = merged
    if trainer.args.should_save:
        for name in _ADAPTER_FILES:
            (out / name).unlink(missing_ok=True)
        merged.save_pretrained(out)
        logger.warning("LoRA on a base that is no saved checkpoint: saved the merged model to %s", out)


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


def _prepare_output_dir(run_recipe: Recipe, out: Path, resume: str) -> None:
    """Main process: set aside what must not be resumed from (incomplete checkpoints; with ``never``, the earlier
    run's checkpoints), then save the run's recipe."""
    out.mkdir(parents=True, exist_ok=True)
    if resume == "auto":
        set_aside_incomplete_checkpoints(out)
        _warn_if_recipe_changed(run_recipe, out)
    elif resume == "never":
        set_aside_checkpoints(out)  # never write over another run's checkpoints
    save_recipe(run_recipe, out / RECIPE_FILE)


def _prepare_run(
    recipe: Recipe, args: TrainingArguments, checkpoint: str | None
) -> tuple[VLForConditionalGeneration, VLProcessor, RecipeData]:
    """Read the data and make the processor (main process first: it renders and saves; the others reuse), then build
    the model on every process at once (DeepSpeed ZeRO-3 partitions it while it is built, which takes all of them)."""
    output_dir, is_main = Path(args.output_dir), args.process_index == 0
    seed = recipe.data.seed if recipe.data.seed is not None else args.seed
    saved = checkpoint if checkpoint and recipe.model.mode != "pretrained" else None
    if saved and not (Path(saved) / "processor_config.json").is_file():  # sharded (FSDP) checkpoints hold none
        saved = str(output_dir) if (output_dir / "processor_config.json").is_file() else None
    with args.main_process_first(desc="reading the data and building the processor"):
        train_read = read_sources(recipe.data.train, output_dir, "train", seed)
        eval_read = read_sources(recipe.data.eval, output_dir, "eval", seed)
        if is_main:
            build_processor(recipe, train_read, saved).save_pretrained(output_dir)
    set_seed(args.seed)  # the same random initialisation on every process and every (re)start
    model, processor = build_model_and_processor(recipe, train_read, saved or output_dir)
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
    check_launch(recipe)  # before anything is built: a launch that cannot run names the option to change
    if cpu_sharding.applies():
        cpu_sharding.enable()
    args = training_arguments(recipe, output_dir, push_to_hub)
    out = Path(args.output_dir)
    _check_data_paths(recipe)
    ran_with = {"output_dir": os.fspath(out.resolve()), **({"push_to_hub": True} if args.push_to_hub else {})}
    run_recipe = dataclasses.replace(recipe, training={**recipe.training, **ran_with})
    if args.process_index == 0:
        _prepare_output_dir(run_recipe, out, resume)
    with args.main_process_first(desc="finding the checkpoint to resume from"):
        checkpoint = resolve_resume(out, resume)
    model, processor, data = _prepare_run(recipe, args, checkpoint)
    if args.push_to_hub and recipe.lora is None:
        mark_standalone(model)  # every save (and so every push) is a folder transformers loads without this library
    restrict_fsdp_wrap_classes(model)
    trainer = RecipeTrainer(
        model=prepare_model(model, recipe),
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
    _save_final(trainer, recipe, out)
    card = _card_kwargs(recipe, model, out)
    if args.push_to_hub:
        trainer.push_to_hub(commit_message=f"{recipe.name or 'vlm train'}: end of training", **card)
    else:
        trainer.create_model_card(**card)
    skipped = skipped_report(data, [local_skip_counts(data)])
    return TrainResult(trainer, out, metrics, skipped, checkpoint)


def close_process_group() -> None:
    """Destroy the default process group at the end of a finished distributed run, as the entry point's last step.

    Call it on success only (after a failure another rank may still be inside a collective), and not from inside
    :func:`train`, whose caller may go on with collectives. Left to interpreter shutdown, gloo's worker threads can
    abort a finished process with "terminate called without an active exception" (pytorch/pytorch#190489).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
