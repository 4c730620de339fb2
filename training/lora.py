"""LoRA for Pythia-VL and Mamba-VL: adapters on the language model only, the projector trained in full.

:func:`lora_config_for` builds a peft ``LoraConfig`` whose ``target_modules`` is a regular expression anchored at
``language_model``, so a vision-tower module that shares a name with a language-model module (CLIP's ``out_proj``,
Mamba's ``out_proj``) is never adapted by accident. Default targets are the backbone's ``lora_target_modules``; the
backbone's ``lora_unsafe_modules`` are refused (Mamba's fused training kernel reads ``x_proj``, ``dt_proj``,
``out_proj`` and ``conv1d`` weights directly, so adapters there would do nothing in training and then act at
inference), and so are targets that match nothing in the language model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from peft import LoraConfig
from torch import nn

__all__ = ["LANGUAGE_MODEL", "PROJECTOR", "VISION_TOWER", "language_model_regex", "lora_config_for"]

LANGUAGE_MODEL = "language_model"
PROJECTOR = "multi_modal_projector"
VISION_TOWER = "vision_tower"
_NAME = re.compile(r"^[A-Za-z_][\w.]*$")


def language_model_regex(names: Sequence[str]) -> str:
    """Regex (peft ``re.fullmatch``) matching modules under ``language_model`` whose name ends in one of `names`."""
    alternatives = "|".join(re.escape(name) for name in names)
    return rf"{LANGUAGE_MODEL}(\..*)?\.({alternatives})$"


def _modules_ending_in(model: nn.Module, name: str, prefix: str) -> list[str]:
    """Full names of modules under `prefix` whose dotted name ends with `name`."""
    return [
        full
        for full, _ in model.named_modules()
        if full.startswith(prefix + ".") and (full == f"{prefix}.{name}" or full.endswith("." + name))
    ]


def _check_target(model: nn.Module, name: str) -> None:
    """Raise ``ValueError`` naming `name` when it is malformed, unsafe, outside the language model or unmatched."""
    backbone = type(model).__name__
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"LoRA target {name!r} is not a module name; give names such as {list(model.lora_target_modules)}."
        )
    if name in tuple(getattr(model, "lora_unsafe_modules", ())):
        raise ValueError(
            f"LoRA target {name!r} is unsafe for {backbone}: its fused training kernel reads the {name!r} weights "
            "directly, so an adapter there would do nothing in training and then change the outputs at inference. "
            f"Safe targets: {list(model.lora_target_modules)}."
        )
    if name.split(".")[0] in (VISION_TOWER, PROJECTOR):
        raise ValueError(
            f"LoRA target {name!r} is outside the language model: LoRA adapts `{LANGUAGE_MODEL}` only; the projector "
            "is trained in full through modules_to_save and the vision tower stays frozen."
        )
    if _modules_ending_in(model, name, LANGUAGE_MODEL):
        return
    in_vision = _modules_ending_in(model, name, VISION_TOWER)
    where = f" It names vision-tower modules ({in_vision[0]}, ...), which LoRA never adapts." if in_vision else ""
    raise ValueError(f"LoRA target {name!r} matches no module of {backbone}'s language model.{where}")


def _check_modules_to_save(model: nn.Module, names: Sequence[str]) -> None:
    """Raise ``ValueError`` naming a ``modules_to_save`` entry that matches no module."""
    module_names = [full for full, _ in model.named_modules()]
    for name in names:
        if not any(full == name or full.endswith("." + name) for full in module_names):
            raise ValueError(f"LoRA modules_to_save entry {name!r} matches no module of {type(model).__name__}.")


def lora_config_for(
    model: nn.Module,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
    extra_modules_to_save: Sequence[str] = (),
) -> LoraConfig:
    """A ``LoraConfig`` adapting `target_modules` (default: the backbone's safe set) of the language model only."""
    names = list(target_modules) if target_modules is not None else list(getattr(model, "lora_target_modules", ()))
    if not names:
        raise ValueError(f"No LoRA targets: {type(model).__name__} declares no lora_target_modules; pass some.")
    if r < 1 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA needs r >= 1, alpha > 0 and 0 <= dropout < 1; got r={r}, alpha={alpha}, {dropout=}.")
    for name in names:
        _check_target(model, name)
    modules_to_save = list(dict.fromkeys([PROJECTOR, *extra_modules_to_save]))
    _check_modules_to_save(model, modules_to_save)
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=language_model_regex(names),
        modules_to_save=modules_to_save,
        task_type="CAUSAL_LM",
    )
