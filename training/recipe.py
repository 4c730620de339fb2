"""Training recipes: one YAML or JSON file describes a whole run (model, data mixture, stage, LoRA, hyperparameters).

A recipe is a tree of dataclasses built by :func:`load_recipe`, which checks every key and value before anything is
trained: an unknown key, reader, backbone or TrainingArguments field, or a bad value, raises :class:`RecipeError`
naming the key (e.g. ``data.train[2].reader``) and the file. Layout::

    name: stage1_alignment            # free text, recorded in the model card
    stage: alignment                  # alignment (projector only) | instruction (projector + language model)
    model:                            # one of: model_name_or_path | vision_model + language_model | preset + backbone
      vision_model: timm/eva02_large_patch14_clip_336.merged2b_s6b_b61k
      language_model: EleutherAI/pythia-1b
    trainable: {vision_tower: false}  # overrides of the stage's trainable parts
    lora: {r: 16, alpha: 32}          # optional: LoRA on the language model (instruction stage)
    max_length: 1024
    gradient_checkpointing: true      # non-reentrant, so a frozen vision tower is fine
    data:
      root: ${VLM_DATA_ROOT}          # data paths below are relative to it
      train:
        - {reader: vqav2, files: {questions_path: q.json, annotations_path: a.json}, image_root: coco}
        - {reader: synthetic, kwargs: {num_images: 64}}   # generated shapes; no files needed
      eval_holdout: 16                # conversations held out of each training source for the eval loss
    training: {learning_rate: 2.0e-5, lr_scheduler_type: cosine}   # any transformers TrainingArguments field

Relative paths resolve against the recipe file's folder (``data.root`` first, for data); ``${VAR}`` expands
environment variables. :func:`save_recipe` writes the resolved recipe, so the copy beside the checkpoints is
self-contained.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainingArguments

from configuration import BACKBONES, PRESETS

from .data.readers import READERS, get_reader
from .files import safe_name, write_text
from .synthetic.shapes import SyntheticShapesConfig

__all__ = [
    "DTYPES",
    "STAGES",
    "SYNTHETIC",
    "DataRecipe",
    "DataSource",
    "LoraRecipe",
    "ModelRecipe",
    "Recipe",
    "RecipeError",
    "TrainableParts",
    "load_recipe",
    "recipe_from_dict",
    "recipe_to_dict",
    "save_recipe",
]

SYNTHETIC = "synthetic"
DTYPES = ("float32", "bfloat16", "float16")
# TrainingArguments names of older releases (or other libraries) and what to write instead.
_RENAMED_TRAINING_KEYS = {
    "warmup_ratio": "warmup_steps (a float below 1 is a ratio of the total steps, e.g. warmup_steps: 0.03)",
    "evaluation_strategy": "eval_strategy",
    "logging_dir": "the TENSORBOARD_LOGGING_DIR environment variable (TensorBoard logs go to output_dir/runs)",
    "overwrite_output_dir": "--resume never on the command line",
}
# Keys of `training:` that the recipe sets elsewhere.
_RECIPE_OWNED_TRAINING_KEYS = {
    "gradient_checkpointing": "the top-level `gradient_checkpointing` key",
    "activation_checkpointing": "the top-level `gradient_checkpointing` key",
    "resume_from_checkpoint": "--resume on the command line",
    "remove_unused_columns": "nothing: the recipe always keeps every column (images are not a model argument name)",
}


class RecipeError(ValueError):
    """A recipe file with an unknown key or name, or a bad value; the message names the key and the file."""


@dataclass(frozen=True)
class TrainableParts:
    """Which parts train; ``None`` keeps the stage's default (both stages keep the vision tower frozen)."""

    vision_tower: bool | None = None
    multi_modal_projector: bool | None = None
    language_model: bool | None = None


STAGES: dict[str, TrainableParts] = {
    "alignment": TrainableParts(vision_tower=False, multi_modal_projector=True, language_model=False),
    "instruction": TrainableParts(vision_tower=False, multi_modal_projector=True, language_model=True),
}


@dataclass
class ModelRecipe:
    """The model: a saved Pythia-VL / Mamba-VL, pretrained parts to assemble, or a random preset."""

    model_name_or_path: str | None = None  # a saved Pythia-VL / Mamba-VL (hub id or folder)
    processor: str | None = None  # its processor, when stored elsewhere than the model
    vision_model: str | None = None  # pretrained parts: CLIP / SigLIP / timm vision model ...
    language_model: str | None = None  # ... and a Pythia or Mamba language model (its tokenizer too)
    image_grid_size: int | None = None  # patches per side; inferred from a ViT config when omitted
    image_size: int | None = None  # image side in pixels; read from the vision config when omitted
    preset: str | None = None  # a random model of a named preset ("tiny"), with a synthetic tokenizer ...
    backbone: str | None = None  # ... of this backbone ("pythia" | "mamba")
    text_config: dict[str, Any] = field(default_factory=dict)  # preset overrides of the language model config
    vision_config: dict[str, Any] = field(default_factory=dict)  # preset overrides of the vision config
    tokenizer_vocab_size: int = 512  # size of the synthetic tokenizer of a preset
    dtype: str = "float32"  # dtype of the weights (mixed precision is `training.bf16`)

    @property
    def mode(self) -> str:
        """``"pretrained"``, ``"parts"`` or ``"preset"``."""
        if self.model_name_or_path:
            return "pretrained"
        return "parts" if self.vision_model or self.language_model else "preset"


@dataclass
class LoraRecipe:
    """LoRA on the language model (see :func:`training.lora.lora_config_for`)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None  # default: the backbone's lora_target_modules
    modules_to_save: list[str] = field(default_factory=list)  # beyond the projector, which always trains in full
    load_in_4bit: bool = False  # QLoRA: the saved model's language model in 4-bit NF4 (bitsandbytes, CUDA only)


@dataclass
class DataSource:
    """One dataset of a mixture: a registered reader, its annotation files and image folder, and a weight."""

    reader: str
    name: str | None = None  # defaults to the reader name; unique within the mixture
    files: dict[str, str] = field(default_factory=dict)  # reader file argument -> path, e.g. {path: x.json}
    image_root: str | None = None
    weight: float | None = None  # sampling weight in the mixture; None: proportional to its size (concatenation)
    kwargs: dict[str, Any] = field(default_factory=dict)  # reader keyword arguments (synthetic: num_images, ...)

    def __post_init__(self) -> None:
        """Default the name to the reader's."""
        self.name = self.name or self.reader


@dataclass
class DataRecipe:
    """Training mixture, evaluation data and data options."""

    train: list[DataSource]
    eval: list[DataSource] = field(default_factory=list)
    eval_holdout: int = 0  # conversations held out of each training source for evaluation
    num_samples: int | None = None  # samples per epoch of the mixture; default: the sum of the sources' sizes
    root: str | None = None  # folder that relative data paths start from
    validate: bool = False  # check every record (open every image) before training and list the skipped ones
    seed: int | None = None  # mixture plan and synthetic data seed; default: training.seed


@dataclass
class Recipe:
    """A whole training run."""

    model: ModelRecipe
    data: DataRecipe
    stage: str = "instruction"
    name: str | None = None
    trainable: TrainableParts = field(default_factory=TrainableParts)
    lora: LoraRecipe | None = None
    max_length: int | None = None
    gradient_checkpointing: bool = False
    training: dict[str, Any] = field(default_factory=dict)  # transformers TrainingArguments fields
    path: str | None = field(default=None, compare=False, metadata={"serialize": False})  # the file it came from

    def trainable_parts(self) -> dict[str, bool]:
        """The stage's trainable parts with the recipe's overrides applied."""
        defaults = dataclasses.asdict(STAGES[self.stage])
        overrides = {k: v for k, v in dataclasses.asdict(self.trainable).items() if v is not None}
        return {**defaults, **overrides}


# ----------------------------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """YAML loader that reads ``1e-3`` as a float (YAML 1.1 would read it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$|^[-+]?\d[\d_]*\.\d*$|^[-+]?\.\d+$|^[-+]?\.(?:inf|Inf|INF)$"
    ),
    list("-+0123456789."),
)


def _read_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON file into a mapping, naming the file on any error."""
    if not path.is_file():
        raise FileNotFoundError(f"Recipe file not found: {os.fspath(path)!r}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Loader)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise RecipeError(f"{os.fspath(path)}: cannot parse the recipe: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError(f"{os.fspath(path)}: a recipe is a mapping of keys, got {type(data).__name__}.")
    return data


def _unknown_key_error(key: str, where: str, valid: list[str], hints: dict[str, str] | None = None) -> str:
    """Message for an unknown key: the key, a rename hint or the closest valid names."""
    if hints and key.rsplit(".", 1)[-1] in hints:
        return f"unknown key {where}; use {hints[key.rsplit('.', 1)[-1]]}."
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=3)
    suggestion = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(valid)}."
    return f"unknown key {where}; {suggestion}"


def _is_optional(hint: Any) -> tuple[bool, Any]:
    """Whether a type hint allows None, and the hint without None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return len(args) < len(typing.get_args(hint)), args[0] if len(args) == 1 else hint
    return False, hint


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a dataclass field's type hint; build nested dataclasses; raise naming `where`."""
    optional, hint = _is_optional(hint)
    if value is None:
        if optional:
            return None
        raise RecipeError(f"{where} must not be empty.")
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{where} must be a list, got {value!r}.")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where} must be a mapping, got {value!r}.")
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return {key: _scalar(item, value_hint, f"{where}.{key}") for key, item in value.items()}
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    """Check a scalar: bool, int (no bools), float (ints accepted), str; other types pass."""
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }
    if hint in ok and not ok[hint]:
        raise RecipeError(f"{where} must be {expected[hint]}, got {value!r}.")
    return float(value) if hint is float else value


def _build(cls: type, mapping: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown and missing keys."""
    if not isinstance(mapping, dict):
        raise RecipeError(f"{where} must be a mapping, got {mapping!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("serialize", True)}
    kwargs = {}
    for key, value in mapping.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise RecipeError(_unknown_key_error(str(key), path, list(fields)))
        kwargs[key] = _coerce(value, hints[key], path)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise RecipeError(f"{where or 'the recipe'} needs the key(s) {', '.join(missing)}.")
    return cls(**kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------------------
def _check_model(model: ModelRecipe) -> None:
    """Exactly one way to get the model, a known backbone and preset, a valid dtype."""
    modes = [bool(model.model_name_or_path), bool(model.vision_model or model.language_model), bool(model.preset)]
    if sum(modes) != 1:
        raise RecipeError(
            "model needs exactly one of: model_name_or_path (a saved Pythia-VL / Mamba-VL), vision_model + "
            "language_model (pretrained parts), or preset + backbone (a random model)."
        )
    if model.mode == "parts" and not (model.vision_model and model.language_model):
        raise RecipeError("model.vision_model and model.language_model go together; give both.")
    if model.mode == "preset":
        if model.backbone not in BACKBONES:
            valid = ", ".join(BACKBONES)
            raise RecipeError(f"model.backbone={model.backbone!r} is unknown; valid backbones: {valid}.")
        if model.preset not in PRESETS[model.backbone]:
            valid = ", ".join(PRESETS[model.backbone])
            raise RecipeError(f"model.preset={model.preset!r} is unknown for {model.backbone}; valid: {valid}.")
    elif model.backbone or model.text_config or model.vision_config:
        raise RecipeError("model.backbone, model.text_config and model.vision_config go with model.preset only.")
    if model.dtype not in DTYPES:
        raise RecipeError(f"model.dtype={model.dtype!r} is not one of {', '.join(DTYPES)}.")
    if model.dtype == "float16":
        raise RecipeError(
            "model.dtype=float16 trains without float32 master weights and diverges; keep model.dtype: float32 and "
            "train in mixed precision with training.fp16: true (or training.bf16: true)."
        )
    for key in ("image_grid_size", "image_size", "tokenizer_vocab_size"):
        if getattr(model, key) is not None and getattr(model, key) < 1:
            raise RecipeError(f"model.{key} must be positive, got {getattr(model, key)!r}.")


def _reader_parameters(reader: str) -> tuple[list[str], list[str], list[str]]:
    """(required file arguments, all file arguments, keyword arguments) of a registered reader."""
    params = inspect.signature(get_reader(reader)).parameters.values()
    files = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in files if p.default is p.empty]
    return required, [p.name for p in files], [p.name for p in params if p.kind is p.KEYWORD_ONLY]


def _check_scalar_types(target: Any, values: dict[str, Any], where: str) -> None:
    """Values of `target`'s (a function's or dataclass's) bool / int / float / str parameters have that type: a
    ``"false"`` string is refused, not read as true."""
    target = getattr(target, "func", target)  # functools.partial readers
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # pragma: no cover - unresolvable annotations are not checked
        return
    for key, value in values.items():
        optional, hint = _is_optional(hints.get(key, Any))
        if value is None and optional:
            continue
        if hint in (bool, int, float, str):
            _scalar(value, hint, f"{where}.{key}")


def _check_synthetic(source: DataSource, where: str) -> None:
    """Synthetic shapes: no files, ``num_images`` > 0 and valid generation options."""
    if source.files or source.image_root:
        raise RecipeError(f"{where}: the synthetic source generates its images; remove files and image_root.")
    options = {f.name for f in dataclasses.fields(SyntheticShapesConfig)}
    valid = ["num_images", "seed", *sorted(options)]
    for key in source.kwargs:
        if key not in valid:
            raise RecipeError(_unknown_key_error(key, f"{where}.kwargs.{key}", valid))
    _check_scalar_types(
        SyntheticShapesConfig, {k: v for k, v in source.kwargs.items() if k in options}, f"{where}.kwargs"
    )
    num_images = source.kwargs.get("num_images")
    if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 1:
        raise RecipeError(f"{where}.kwargs.num_images must be a positive integer, got {num_images!r}.")
    try:
        SyntheticShapesConfig(**{k: v for k, v in source.kwargs.items() if k in options})
    except (TypeError, ValueError) as err:
        raise RecipeError(f"{where}.kwargs: {err}") from err


def _check_source(source: DataSource, where: str) -> None:
    """A known reader, its file arguments and keyword arguments, an image folder and a positive weight."""
    if source.weight is not None and not (math.isfinite(source.weight) and source.weight > 0):
        raise RecipeError(f"{where}.weight must be a positive number, got {source.weight!r}.")
    if source.reader == SYNTHETIC:
        _check_synthetic(source, where)
        return
    if source.reader not in READERS:
        valid = ", ".join(sorted([*READERS, SYNTHETIC]))
        raise RecipeError(f"{where}.reader: unknown dataset reader {source.reader!r}; valid readers: {valid}.")
    required, file_args, keyword_args = _reader_parameters(source.reader)
    for key in source.files:
        if key not in file_args:
            raise RecipeError(_unknown_key_error(key, f"{where}.files.{key}", file_args))
    missing = [name for name in required if name not in source.files]
    if missing:
        raise RecipeError(f"{where}.files needs {', '.join(missing)} for the {source.reader!r} reader.")
    for key in source.kwargs:
        if key not in keyword_args:
            raise RecipeError(_unknown_key_error(key, f"{where}.kwargs.{key}", keyword_args))
    _check_scalar_types(get_reader(source.reader), source.kwargs, f"{where}.kwargs")
    if not source.image_root:
        raise RecipeError(f"{where}.image_root is missing: the folder the {source.reader!r} image paths start from.")


def _check_data(data: DataRecipe) -> None:
    """Non-empty training mixture, valid and uniquely named sources, non-negative counts."""
    if not data.train:
        raise RecipeError("data.train needs at least one source.")
    for split in ("train", "eval"):
        sources = getattr(data, split)
        for index, source in enumerate(sources):
            _check_source(source, f"data.{split}[{index}]")
        names = [source.name for source in sources]
        for index, name in enumerate(names):
            try:
                safe_name(str(name), f"data.{split}[{index}].name")  # it names folders (the synthetic renders)
            except ValueError as err:
                raise RecipeError(str(err)) from None
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RecipeError(f"data.{split}: source name(s) {', '.join(duplicates)} repeat; give each a `name`.")
    if data.eval_holdout < 0:
        raise RecipeError(f"data.eval_holdout must be >= 0, got {data.eval_holdout}.")
    if data.num_samples is not None and data.num_samples < 1:
        raise RecipeError(f"data.num_samples must be >= 1, got {data.num_samples}.")


def _check_training(training: dict[str, Any]) -> None:
    """Only TrainingArguments fields not owned by the recipe, with values of the field's scalar type."""
    fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    for key, value in training.items():
        where = f"training.{key}"
        if key in _RECIPE_OWNED_TRAINING_KEYS:
            raise RecipeError(f"{where} is set by the recipe; use {_RECIPE_OWNED_TRAINING_KEYS[key]}.")
        if key not in fields:
            raise RecipeError(_unknown_key_error(key, where, sorted(fields), _RENAMED_TRAINING_KEYS))
        optional, hint = _is_optional(fields[key].type)
        if hint in (bool, int, float, str) and not (value is None and optional):
            _scalar(value, hint, where)


def _check_qlora(recipe: Recipe) -> None:
    """QLoRA needs a saved model to quantise, bitsandbytes and a CUDA GPU (its 4-bit kernels)."""
    import importlib.util

    import torch

    if recipe.model.mode != "pretrained":
        raise RecipeError("lora.load_in_4bit quantises a saved model: it needs model.model_name_or_path.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RecipeError("lora.load_in_4bit needs bitsandbytes: pip install bitsandbytes (on a machine with CUDA).")
    if not torch.cuda.is_available():
        raise RecipeError(
            "lora.load_in_4bit (QLoRA) needs a CUDA GPU for bitsandbytes' 4-bit kernels, and this machine has none; "
            "train LoRA without it (lora.load_in_4bit: false)."
        )


def _check_recipe(recipe: Recipe) -> None:
    """Cross-field checks of a parsed recipe."""
    if recipe.stage not in STAGES:
        raise RecipeError(f"stage={recipe.stage!r} is unknown; valid stages: {', '.join(STAGES)}.")
    _check_model(recipe.model)
    _check_data(recipe.data)
    _check_training(recipe.training)
    if recipe.max_length is not None and recipe.max_length < 1:
        raise RecipeError(f"max_length must be a positive number of tokens, got {recipe.max_length}.")
    if not any(recipe.trainable_parts().values()):
        raise RecipeError("trainable: every part is frozen, so nothing would train.")
    if recipe.lora is not None:
        if recipe.stage == "alignment":
            raise RecipeError("lora: LoRA adapts the language model, which the alignment stage keeps frozen.")
        if any(v is not None for v in dataclasses.asdict(recipe.trainable).values()):
            raise RecipeError(
                "trainable does not apply with lora (adapters and projector train); use lora.modules_to_save."
            )
        lora = recipe.lora
        if lora.r < 1 or lora.alpha <= 0 or not 0.0 <= lora.dropout < 1.0:
            raise RecipeError(f"lora needs r >= 1, alpha > 0 and 0 <= dropout < 1; got {lora}.")
        if lora.load_in_4bit:
            _check_qlora(recipe)
    if recipe.data.eval_holdout == 0 and not recipe.data.eval:
        strategy = str(recipe.training.get("eval_strategy", "no"))
        if strategy != "no":
            raise RecipeError(f"training.eval_strategy={strategy!r} needs data.eval or data.eval_holdout.")


# ----------------------------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------------------------
def _expand(value: str, where: str) -> str:
    """Expand ``~`` and ``${VAR}``; raise naming the key when a variable is not set."""
    expanded = os.path.expanduser(os.path.expandvars(value))
    unset = re.findall(r"\$\{?(\w+)", expanded)
    if unset:
        raise RecipeError(f"{where}={value!r}: environment variable {unset[0]} is not set.")
    return expanded


def _resolve(value: str, base: Path, where: str) -> str:
    """An absolute path: `value` expanded and, when relative, joined to `base`."""
    path = Path(_expand(value, where))
    return os.fspath(path if path.is_absolute() else (base / path).resolve())


def _resolve_model_path(value: str | None, base: Path, where: str) -> str | None:
    """A local path relative to the recipe becomes absolute; anything else (a hub id) is kept."""
    if value is None:
        return None
    expanded = _expand(value, where)
    local = base / expanded
    return os.fspath(local.resolve()) if not Path(expanded).is_absolute() and local.exists() else expanded


def _resolve_paths(recipe: Recipe, base: Path) -> None:
    """Make the recipe's paths absolute (data against ``data.root``, the rest against `base`)."""
    data = recipe.data
    if data.root is not None:
        data.root = _resolve(data.root, base, "data.root")
    data_base = Path(data.root) if data.root is not None else base
    for split in ("train", "eval"):
        for index, source in enumerate(getattr(data, split)):
            where = f"data.{split}[{index}]"
            source.files = {k: _resolve(v, data_base, f"{where}.files.{k}") for k, v in source.files.items()}
            if source.image_root is not None:
                source.image_root = _resolve(source.image_root, data_base, f"{where}.image_root")
    model = recipe.model
    for key in ("model_name_or_path", "processor", "vision_model", "language_model"):
        setattr(model, key, _resolve_model_path(getattr(model, key), base, f"model.{key}"))
    if isinstance(recipe.training.get("deepspeed"), str):
        recipe.training["deepspeed"] = _resolve(recipe.training["deepspeed"], base, "training.deepspeed")


# ----------------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------------
def recipe_from_dict(data: dict[str, Any], base_dir: str | os.PathLike[str] = ".") -> Recipe:
    """Build and check a recipe from a mapping; relative paths resolve against `base_dir`."""
    recipe = _build(Recipe, data, "")
    _check_recipe(recipe)
    _resolve_paths(recipe, Path(base_dir).resolve())
    return recipe


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Load and check a YAML (``.yaml`` / ``.yml``) or JSON (``.json``) recipe; errors name the key and the file."""
    path = Path(path)
    data = _read_mapping(path)
    try:
        recipe = recipe_from_dict(data, path.parent)
    except RecipeError as err:
        raise RecipeError(f"{os.fspath(path)}: {err}") from None
    recipe.path = os.fspath(path.resolve())
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain data (what :func:`recipe_from_dict` reads back)."""
    data = dataclasses.asdict(recipe)
    data.pop("path")
    return data


def save_recipe(recipe: Recipe, path: str | os.PathLike[str]) -> Path:
    """Write the recipe as YAML (or JSON for a ``.json`` path) and return the path."""
    path = Path(path)
    data = recipe_to_dict(recipe)
    text = json.dumps(data, indent=2) + "\n" if path.suffix == ".json" else yaml.safe_dump(data, sort_keys=False)
    return write_text(path, text)  # atomic: a kill never leaves half a recipe for the next resume to read
