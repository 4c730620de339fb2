"""The model and processor a recipe names: a saved Pythia-VL / Mamba-VL, pretrained parts, or a random preset.

:func:`build_model_and_processor` makes them; :func:`prepare_model` freezes per stage or wraps the language model in
LoRA. A preset gets a tokenizer trained on the run's own texts; pretrained parts get the language model's tokenizer
with the image placeholder and layout markers added.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from peft import get_peft_model
from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer, PreTrainedTokenizerBase

from configuration import PRESETS, VLConfig, config_class_for_backbone
from modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration, VLImageProcessor, VLProcessor
from processing import IMAGE_TOKEN, LAYOUT_TOKENS

from .data.sources import SourceConversations, conversation_texts
from .lora import lora_config_for
from .recipe import Recipe, RecipeError
from .synthetic.tokenizer import train_synthetic_tokenizer

__all__ = ["apply_trainable", "build_model_and_processor", "build_processor", "prepare_model"]


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
    return tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)


def _model_config(recipe: Recipe, tokenizer: PreTrainedTokenizerBase) -> Any:
    """The config of the model a preset or parts recipe builds (read without building the model)."""
    spec = recipe.model
    if spec.mode == "parts":
        return VLConfig.from_pretrained_parts(
            spec.vision_model, spec.language_model, image_grid_size=spec.image_grid_size,
            image_token_id=_image_token_id(tokenizer),
        )  # fmt: skip
    preset = PRESETS[spec.backbone][spec.preset]
    text_config = {**preset.text_config, **spec.text_config, "vocab_size": len(tokenizer)}
    text_config.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return config_class_for_backbone(spec.backbone).from_preset(
        spec.preset,
        text_config=text_config,
        vision_config={**preset.vision_config, **spec.vision_config},
        image_grid_size=spec.image_grid_size or preset.image_grid_size,
        image_token_id=_image_token_id(tokenizer),
    )


def _processor_for(config: Any, tokenizer: PreTrainedTokenizerBase, recipe: Recipe) -> VLProcessor:
    """A processor matching the model's config: image size from the vision config, the model's grid."""
    size = recipe.model.image_size or getattr(config.vision_config, "image_size", None)
    if not size:
        raise RecipeError(
            f"{recipe.path or 'recipe'}: model.image_size is needed: the vision config does not give it."
        )
    image_processor = VLImageProcessor(size={"height": int(size), "width": int(size)})
    return VLProcessor(image_processor, tokenizer, image_grid_size=config.image_grid_size)


def _preset_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase) -> VLForConditionalGeneration:
    """A randomly initialised model of the recipe's preset, its vocabulary sized to `tokenizer`."""
    spec = recipe.model
    return MODEL_CLASSES[spec.backbone](_model_config(recipe, tokenizer)).to(_torch_dtype(spec.dtype))


def _parts_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase) -> VLForConditionalGeneration:
    """A model assembled from the recipe's pretrained vision model and language model."""
    spec = recipe.model
    model = VLForConditionalGeneration.from_pretrained_parts(
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


@contextlib.contextmanager
def _unpartitioned() -> Iterator[None]:
    """Build without DeepSpeed's ZeRO-3 ``zero.Init``: a model assembled here (a preset, or parts joined by a new
    projector) is built whole, initialised exactly as in one process, and partitioned when the DeepSpeed engine
    starts. (A saved Pythia-VL / Mamba-VL still loads through ``from_pretrained``, partitioned as it loads.)"""
    from transformers.integrations import deepspeed as hf_deepspeed

    reference = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = reference


def _four_bit() -> Any:
    """QLoRA's quantisation: the language model's linear layers in 4-bit NF4, computed in bf16; the vision tower and
    the projector stay in full precision (checked for the machine by the recipe: CUDA and bitsandbytes)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True, llm_int8_skip_modules=["vision_tower", "multi_modal_projector"],
    )  # fmt: skip


def build_processor(
    recipe: Recipe, sources: list[SourceConversations], saved_processor: str | os.PathLike[str] | None = None
) -> VLProcessor:
    """The recipe's processor alone (no model is built): saved, the pretrained model's, or a new one."""
    spec = recipe.model
    if saved_processor:
        return AutoProcessor.from_pretrained(saved_processor)
    if spec.mode == "pretrained":
        return AutoProcessor.from_pretrained(spec.processor or spec.model_name_or_path)
    tokenizer = _new_tokenizer(recipe, sources)
    return _processor_for(_model_config(recipe, tokenizer), tokenizer, recipe)


def build_model_and_processor(
    recipe: Recipe, sources: list[SourceConversations], saved_processor: str | os.PathLike[str] | None = None
) -> tuple[VLForConditionalGeneration, VLProcessor]:
    """The recipe's model and processor; `saved_processor` (a folder) replaces building a new one."""
    spec = recipe.model
    if spec.mode == "pretrained":
        quantized = {"quantization_config": _four_bit()} if recipe.lora and recipe.lora.load_in_4bit else {}
        model = AutoModelForImageTextToText.from_pretrained(
            spec.model_name_or_path, dtype=_torch_dtype(spec.dtype), **quantized
        )
        if not isinstance(model, VLForConditionalGeneration):
            raise RecipeError(f"model.model_name_or_path={spec.model_name_or_path!r} is not a Pythia-VL / Mamba-VL.")
        return model, AutoProcessor.from_pretrained(spec.processor or spec.model_name_or_path)
    processor = AutoProcessor.from_pretrained(saved_processor) if saved_processor else None
    tokenizer = processor.tokenizer if processor is not None else _new_tokenizer(recipe, sources)
    with _unpartitioned():
        model = _parts_model(recipe, tokenizer) if spec.mode == "parts" else _preset_model(recipe, tokenizer)
    return model, processor or _processor_for(model.config, tokenizer, recipe)


def apply_trainable(model: VLForConditionalGeneration, parts: dict[str, bool]) -> None:
    """Set which parts train (``vision_tower``, ``multi_modal_projector``, ``language_model``)."""
    model.set_trainable(**parts)


def prepare_model(model: VLForConditionalGeneration, recipe: Recipe) -> torch.nn.Module:
    """Freeze per stage, or wrap the language model in LoRA (adapters + projector train)."""
    if recipe.lora is None:
        apply_trainable(model, recipe.trainable_parts())
        return model
    lora = recipe.lora
    config = lora_config_for(model, lora.r, lora.alpha, lora.dropout, lora.target_modules, lora.modules_to_save)
    if lora.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    return get_peft_model(model, config)
