"""Pythia-VL and Mamba-VL: a frozen vision tower, an MLP projector and a causal language model, one implementation.

The towers are built through the Auto classes from the composite config (``vision_tower``: CLIP / SigLIP / timm
EVA-02; ``language_model``: transformers' ``GPTNeoXForCausalLM`` or ``MambaForCausalLM``), so pretrained checkpoints of
either part load unchanged. Projected image features replace the embeddings of the ``<image>`` placeholder positions
after an explicit count check. Everything that differs between the backbones lives in the two small subclasses at
the bottom of this file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.generation.utils import ALL_CACHE_NAMES
from transformers.utils import ModelOutput

from configuration import MambaVLConfig, PythiaVLConfig, VLConfig

from .mamba_kernels import enable_fast_mamba_scan
from .model_card import write_model_card
from .standalone import make_standalone


@dataclass
class VLCausalLMOutputWithPast(ModelOutput):
    r"""
    Output of the vision-language models.

    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*): next-token loss on the labelled (answer) positions.
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`): language model logits.
        cache (`Cache`, *optional*): the language model's generation state (Pythia: KV cache; Mamba: conv and
            recurrent states).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the language model's hidden states.
        attentions (`tuple(torch.FloatTensor)`, *optional*): the language model's attentions (Pythia only).
        image_hidden_states (`torch.FloatTensor` of shape `(num_images, num_image_tokens, hidden_size)`, *optional*):
            projected image features of this forward pass.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: Any | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    image_hidden_states: torch.FloatTensor | None = None


# transformers >= 5.2x calls every generation cache `cache`; older 5.x releases (the GPU image has 5.17) read
# `past_key_values` (attention) or `cache_params` (Mamba) from the outputs, so the output carries those names there.
_LEGACY_CACHE_NAMES = "cache" not in ALL_CACHE_NAMES
_CACHE_FIELDS = ("cache", "past_key_values", "cache_params")

if _LEGACY_CACHE_NAMES:

    @dataclass
    class VLCausalLMOutputWithPast(VLCausalLMOutputWithPast):
        past_key_values: Any | None = None
        cache_params: Any | None = None


class VLMultiModalProjector(nn.Module):
    """Linear(vision width -> d) -> GELU -> Linear(d -> d), d = language model width (the paper's projector)."""

    def __init__(self, config: VLConfig) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(config.vision_hidden_size, config.hidden_size, bias=config.projector_bias)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(config.hidden_size, config.hidden_size, bias=config.projector_bias)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        """Project vision features ``(N, T, C_vision)`` to ``(N, T, d)``."""
        return self.linear_2(self.act(self.linear_1(image_features)))


class VLPreTrainedModel(PreTrainedModel):
    """Shared base of Pythia-VL and Mamba-VL: weight init, capabilities read by Trainer / PEFT / Accelerate."""

    config_class = VLConfig
    config: VLConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    _skip_keys_device_placement = list(_CACHE_FIELDS)

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise the projector; the towers initialise themselves through their own classes."""
        if isinstance(module, VLMultiModalProjector):
            std = getattr(self.config.text_config, "initializer_range", 0.02)
            for linear in (module.linear_1, module.linear_2):
                nn.init.normal_(linear.weight, mean=0.0, std=std)
                if linear.bias is not None:
                    nn.init.zeros_(linear.bias)


class VLForConditionalGeneration(VLPreTrainedModel, GenerationMixin):
    """Vision tower -> projector -> causal language model, with loss on labelled positions and generation."""

    lora_target_modules: tuple[str, ...] = ()  # safe default LoRA targets in the language model, per backbone
    lora_unsafe_modules: tuple[str, ...] = ()  # language-model modules LoRA must refuse, per backbone

    def __init__(self, config: VLConfig) -> None:
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        width = _feature_width(self.vision_tower)
        if config.vision_hidden_size is None:
            # A timm config names its width only through the architecture and its model_args: read it off the tower.
            config.vision_hidden_size = width
        elif config.vision_hidden_size != width:
            raise ValueError(
                f"vision_hidden_size={config.vision_hidden_size}, but the {config.vision_config.model_type} tower "
                f"emits features of width {width}; leave vision_hidden_size unset to take the tower's."
            )
        self.num_prefix_tokens = _check_grid(self.vision_tower, config)
        self.multi_modal_projector = VLMultiModalProjector(config)
        self.language_model = self._build_language_model(config)
        self.post_init()

    def _build_language_model(self, config: VLConfig) -> PreTrainedModel:
        """The causal language model of `config.text_config`, through the Auto classes."""
        return AutoModelForCausalLM.from_config(config.text_config)

    # -- accessors read by transformers / PEFT --------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        """The language model's token embeddings."""
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the language model's token embeddings."""
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        """The language model's head."""
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        """Replace the language model's head."""
        self.language_model.set_output_embeddings(new_embeddings)

    def get_decoder(self) -> nn.Module:
        """The language model (used by generation utilities)."""
        return self.language_model

    @classmethod
    def from_pretrained_parts(
        cls,
        vision_model_name_or_path: str | os.PathLike[str],
        language_model_name_or_path: str | os.PathLike[str],
        *,
        image_grid_size: int | None = None,
        dtype: torch.dtype | None = None,
        **config_kwargs: Any,
    ) -> VLForConditionalGeneration:
        """Assemble a model from a pretrained vision model and language model; only the projector is new.

        This is how the paper's models begin stage 1: a pretrained vision encoder (EVA-02-L/14 through timm, or a
        CLIP / SigLIP vision tower) and a pretrained Pythia or Mamba, joined by a freshly initialised projector. On
        the base class the backbone follows the language model's type; `config_kwargs` set the composite config's
        other fields (e.g. ``image_token_id``, ``image_layout``).
        """
        config = VLConfig.from_pretrained_parts(
            vision_model_name_or_path, language_model_name_or_path, image_grid_size=image_grid_size, **config_kwargs
        )
        model_class = MODEL_CLASSES[config.backbone]
        if not issubclass(model_class, cls):
            raise ValueError(
                f"{os.fspath(language_model_name_or_path)!r} is a {config.text_config.model_type!r} language model, "
                f"which builds a {model_class.__name__}, not a {cls.__name__}."
            )
        # Build the composite on the meta device (no memory, no random init of the towers), then put the parts in.
        with torch.device("meta"):
            model = model_class(config)
        model.vision_tower = AutoModel.from_pretrained(
            vision_model_name_or_path, config=config.vision_config, dtype=dtype
        )
        model.language_model = AutoModelForCausalLM.from_pretrained(language_model_name_or_path, dtype=dtype)
        model.multi_modal_projector.to_empty(device=model.language_model.device)
        model.multi_modal_projector.to(dtype or torch.get_default_dtype())
        model._init_weights(model.multi_modal_projector)
        model.freeze_vision_tower()
        return model

    def save_pretrained(
        self, save_directory: str | os.PathLike[str], *args: Any, standalone: bool | None = None, **kwargs: Any
    ) -> None:
        """Save config and safetensors weights (transformers), and a model card if the folder has none.

        ``standalone=True`` also writes the code files and ``auto_map`` that let transformers load the folder without
        this library (:mod:`.standalone`). By default a model is saved standalone exactly when its config has an
        ``auto_map`` (it was loaded from a standalone folder), so such a folder stays complete and an ordinary save
        never writes an ``auto_map`` without the code it names.
        """
        auto_map = getattr(self.config, "auto_map", None)
        standalone = bool(auto_map) if standalone is None else standalone
        if auto_map and not standalone:
            del self.config.auto_map  # saved without its code, it would point at files that are not there
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if auto_map:
                self.config.auto_map = auto_map
        if not kwargs.get("is_main_process", True):
            return
        if standalone:
            make_standalone(save_directory)
        if not (Path(save_directory) / "README.md").exists():
            write_model_card(save_directory)

    # -- freezing --------------------------------------------------------------------------------------------------
    def set_trainable(
        self, *, vision_tower: bool = False, multi_modal_projector: bool = True, language_model: bool = True
    ) -> None:
        """Choose which parts train: the one place where per-stage freezing happens.

        The paper's stage 1 trains the projector alone (``language_model=False``); stage 2 trains the projector and
        the whole language model. The vision tower stays frozen in both unless ``vision_tower=True``.
        """
        self.vision_tower.requires_grad_(vision_tower)
        self.multi_modal_projector.requires_grad_(multi_modal_projector)
        self.language_model.requires_grad_(language_model)

    def freeze_vision_tower(self, frozen: bool = True) -> None:
        """Freeze (the paper's default) or unfreeze the vision tower's parameters."""
        self.vision_tower.requires_grad_(not frozen)

    # -- image features --------------------------------------------------------------------------------------------
    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Encode images ``(N, 3, H, W)`` and project them to ``(N, image_grid_size**2, d)``."""
        tower_dtype = next(self.vision_tower.parameters()).dtype
        layer = self.config.vision_feature_layer
        trainable = any(p.requires_grad for p in self.vision_tower.parameters())
        # A frozen tower needs no graph: skipping it saves the activations of a 300M-parameter encoder.
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            outputs = self.vision_tower(
                pixel_values.to(tower_dtype), output_hidden_states=layer != -1, return_dict=True
            )
        features = outputs.last_hidden_state if layer == -1 else outputs.hidden_states[layer]  # (N, T, C)
        num_prefix = features.shape[1] - self.config.num_image_tokens  # CLS / register tokens lead
        expected = getattr(self, "num_prefix_tokens", None)
        if num_prefix < 0 or (expected is not None and num_prefix != expected):
            raise ValueError(
                f"The vision tower returned {features.shape[1]} tokens per image, not image_grid_size**2="
                f"{self.config.num_image_tokens} patches + {expected if expected is not None else 'its'} leading "
                "token(s): the images' size differs from the tower's (check the image processor's size)."
            )
        features = features[:, num_prefix:]  # (N, grid*grid, C)
        return self.multi_modal_projector(features.to(self.multi_modal_projector.linear_1.weight.dtype))

    def merge_image_features(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, image_features: torch.Tensor
    ) -> torch.Tensor:
        """Write image features into the ``<image>`` positions of ``inputs_embeds`` ``(B, L, d)``."""
        image_mask = input_ids == self.config.image_token_id  # (B, L)
        n_positions = int(image_mask.sum())
        n_features = image_features.shape[0] * image_features.shape[1]
        if n_positions != n_features:
            raise ValueError(
                f"The inputs hold {n_positions} image positions (token id {self.config.image_token_id}) but the "
                f"{image_features.shape[0]} image(s) give {n_features} features "
                f"({image_features.shape[1]} per image); each image needs one complete image block."
            )
        image_mask = image_mask.unsqueeze(-1).expand_as(inputs_embeds)  # (B, L, d)
        return inputs_embeds.masked_scatter(image_mask, image_features.to(inputs_embeds.dtype))

    # -- forward ---------------------------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> VLCausalLMOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): token ids with image blocks.
            pixel_values (`torch.FloatTensor` of shape `(num_images, 3, H, W)`, *optional*): one per image block,
                in order of appearance. Only needed at the first (prefill) step of generation.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 = real token.
            inputs_embeds (`torch.FloatTensor`, *optional*): embeddings instead of `input_ids` (no images then).
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): targets, -100 ignored;
                shifted inside the language model.
            kwargs: passed to the language model (cache, position_ids, use_cache, logits_to_keep, ...).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
        _check_image_inputs(self.config, input_ids, pixel_values)
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)  # (B, L, d)
        image_features = None
        if pixel_values is not None:
            if input_ids is None:
                raise ValueError("`pixel_values` need `input_ids` to locate the image positions.")
            image_features = self.get_image_features(pixel_values)  # (N, T, d)
            inputs_embeds = self.merge_image_features(input_ids, inputs_embeds, image_features)
        outputs = self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **kwargs
        )
        return VLCausalLMOutputWithPast(
            loss=outputs.get("loss"),
            logits=outputs.logits,
            **generation_cache(outputs),
            hidden_states=outputs.get("hidden_states"),
            attentions=outputs.get("attentions"),
            image_hidden_states=image_features,
        )

    # -- generation ------------------------------------------------------------------------------------------------
    def _expand_inputs_for_generation(
        self,
        expand_size: int = 1,
        is_encoder_decoder: bool = False,
        input_ids: torch.LongTensor | None = None,
        **model_kwargs: Any,
    ) -> tuple[torch.LongTensor, dict[str, Any]]:
        """Beams / return sequences: copy each sample's images with it (generate's default would repeat every
        image row in place, giving a two-image sample beams of (R, R) and (G, G) instead of (R, G))."""
        pixel_values = model_kwargs.pop("pixel_values", None)
        expanded, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        if pixel_values is not None and expand_size > 1 and input_ids is not None:
            counts = ((input_ids == self.config.image_token_id).sum(1) // self.config.num_image_tokens).tolist()
            starts = [sum(counts[:i]) for i in range(len(counts))]
            order = [start + k for start, n in zip(starts, counts, strict=True) for _ in range(expand_size)
                     for k in range(n)]  # fmt: skip
            pixel_values = pixel_values[torch.tensor(order, dtype=torch.long, device=pixel_values.device)]
        model_kwargs["pixel_values"] = pixel_values
        return expanded, model_kwargs

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        pixel_values: torch.FloatTensor | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Let the language model prepare its own inputs (cache, positions); pass images at prefill only."""
        model_inputs = self.language_model.prepare_inputs_for_generation(input_ids, **kwargs)
        # The vision tower runs once: later steps read the image from the KV cache / recurrent state.
        if kwargs.get("is_first_iteration") or not kwargs.get("use_cache", True):
            model_inputs["pixel_values"] = pixel_values
        return model_inputs


def _check_image_inputs(config: VLConfig, input_ids: torch.Tensor | None, pixel_values: torch.Tensor | None) -> None:
    """Refuse image placeholders without images (their embeddings would stand in for the image) and pixel values
    that are not floats (raw 0..255 integers skipped the image processor)."""
    if pixel_values is not None and not torch.is_floating_point(pixel_values):
        raise ValueError(
            f"pixel_values must be floating point (the image processor's output), got {pixel_values.dtype}"
        )
    if pixel_values is None and input_ids is not None:
        placeholders = int((input_ids == config.image_token_id).sum())
        if placeholders >= config.num_image_tokens:  # a whole image block; one generated token is not an image
            raise ValueError(
                f"input_ids hold {placeholders} image placeholder(s) (token id {config.image_token_id}) but no "
                "pixel_values were given; pass the images, or drop the image blocks from the text"
            )


def _tower_grid(vision_tower: nn.Module) -> tuple[int, int] | None:
    """``(leading tokens, patches)`` the tower emits per image at its configured size, when it can tell."""
    timm_model = getattr(vision_tower, "timm_model", None)
    if timm_model is not None:
        grid = getattr(getattr(timm_model, "patch_embed", None), "grid_size", None)
        if grid is None:
            return None
        return int(getattr(timm_model, "num_prefix_tokens", 1)), int(grid[0]) * int(grid[1])
    config = vision_tower.config
    image_size, patch_size = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    if not isinstance(image_size, int) or not isinstance(patch_size, int):
        return None
    prefix = 0 if "siglip" in config.model_type else 1 + int(getattr(config, "num_register_tokens", 0) or 0)
    return prefix, (image_size // patch_size) ** 2


def _check_grid(vision_tower: nn.Module, config: VLConfig) -> int | None:
    """The tower's leading-token count; ValueError when ``image_grid_size`` does not cover its patch grid (smaller
    would drop real patches as if they were CLS tokens)."""
    grid = _tower_grid(vision_tower)
    if grid is None:
        return None
    prefix, patches = grid
    if patches != config.num_image_tokens:
        side = round(patches**0.5)
        raise ValueError(
            f"image_grid_size={config.image_grid_size} gives {config.num_image_tokens} image tokens, but the "
            f"{config.vision_config.model_type} tower makes {patches} patches per image ({side} per side at its "
            f"image size); set image_grid_size={side}"
        )
    return prefix


def _feature_width(vision_tower: nn.Module) -> int:
    """Width of the features a vision tower emits: its config's ``hidden_size``, or a timm model's ``num_features``."""
    width = getattr(vision_tower.config, "hidden_size", None)
    if width is None:
        width = getattr(getattr(vision_tower, "timm_model", None), "num_features", None)
    if not isinstance(width, int) or width <= 0:
        raise ValueError(f"cannot tell the width of the {type(vision_tower).__name__} vision tower's features")
    return width


def generation_cache(outputs: ModelOutput) -> dict[str, Any]:
    """``{name: cache}`` of an output, under the one name the installed transformers uses (others alias it).

    Pass it back as keyword arguments to continue decoding: ``model(input_ids=token, **generation_cache(out))``.
    """
    for name in _CACHE_FIELDS:
        if outputs.get(name) is not None:
            return {name: outputs.get(name)}
    return {}


class PythiaVLForConditionalGeneration(VLForConditionalGeneration):
    """Pythia-VL: the language model is GPT-NeoX; its head is not tied to the embeddings."""

    config_class = PythiaVLConfig
    config: PythiaVLConfig
    _tied_weights_keys: dict[str, str] = {}
    _no_split_modules = ["GPTNeoXLayer", "VLMultiModalProjector"]
    # LoRA targets inside `language_model`: every linear layer of attention and MLP.
    lora_target_modules: tuple[str, ...] = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
    lora_unsafe_modules: tuple[str, ...] = ()


class MambaVLForConditionalGeneration(VLForConditionalGeneration):
    """Mamba-VL: the language model is Mamba (stateful: a recurrent state, no KV cache); its head is tied."""

    config_class = MambaVLConfig
    config: MambaVLConfig
    _tied_weights_keys = {"language_model.lm_head.weight": "language_model.backbone.embeddings.weight"}
    _no_split_modules = ["MambaBlock", "VLMultiModalProjector"]
    _is_stateful = True
    # The fused training kernel (mamba_inner_fn) reads x_proj, dt_proj, out_proj and conv1d weights directly, so
    # adapters there would do nothing in training and then act at inference: only in_proj is a safe LoRA target.
    lora_target_modules: tuple[str, ...] = ("in_proj",)
    lora_unsafe_modules: tuple[str, ...] = ("x_proj", "dt_proj", "out_proj", "conv1d")

    def __init__(self, config: MambaVLConfig) -> None:
        # Without the fused CUDA kernels, route transformers' Mamba scan to our fast scan (a no-op where they exist).
        enable_fast_mamba_scan()
        super().__init__(config)

    def _build_language_model(self, config: MambaVLConfig) -> PreTrainedModel:
        """transformers' Mamba; ``text_norm="layer_norm"`` makes its block and final norms LayerNorms with a bias."""
        language_model = super()._build_language_model(config)
        if config.text_norm == "layer_norm":
            # The paper's checkpoints center and shift (nn.LayerNorm); MambaRMSNorm can represent neither. The blocks
            # call `norm(x.to(norm.weight.dtype))`, so a LayerNorm drops in without touching transformers' code.
            width, eps = config.text_config.hidden_size, config.text_config.layer_norm_epsilon
            for block in language_model.backbone.layers:
                block.norm = nn.LayerNorm(width, eps=eps)
            language_model.backbone.norm_f = nn.LayerNorm(width, eps=eps)
        return language_model


MODEL_CLASSES: dict[str, type[VLForConditionalGeneration]] = {
    "pythia": PythiaVLForConditionalGeneration,
    "mamba": MambaVLForConditionalGeneration,
}

__all__ = [
    "MODEL_CLASSES",
    "MambaVLForConditionalGeneration",
    "PythiaVLForConditionalGeneration",
    "VLCausalLMOutputWithPast",
    "VLForConditionalGeneration",
    "VLMultiModalProjector",
    "VLPreTrainedModel",
    "generation_cache",
]
