"""Named presets: the paper's six model sizes and a tiny model per backbone for tests and the demo.

The sizes are written out here (from the public checkpoints' config files) so that a preset builds offline; the
``*_model_id`` fields point at the pretrained components to assemble the real model from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# EVA-02-L/14 at 336 px, the paper's frozen encoder, reached through transformers' TimmWrapper.
EVA02_L_336 = "timm/eva02_large_patch14_clip_336.merged2b_s6b_b61k"
EVA02_VISION_CONFIG: dict[str, Any] = {
    "model_type": "timm_wrapper",
    "architecture": "eva02_large_patch14_clip_336",
    "num_features": 1024,
    "do_pooling": False,
    "num_labels": 0,
}

# GPT-NeoX-20B tokenizer: eos = pad = bos = <|endoftext|> (id 0). Pythia pads its embedding matrix to 50304 and
# Mamba to 50280, so the added `<image>` placeholder (id 50277) fits both without resizing.
_NEOX_SPECIAL = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
_PYTHIA_COMMON = {
    "model_type": "gpt_neox",
    "vocab_size": 50304,
    "max_position_embeddings": 2048,
    "rotary_pct": 0.25,
    "rotary_emb_base": 10000,
    "use_parallel_residual": True,
    "tie_word_embeddings": False,
    **_NEOX_SPECIAL,
}
_MAMBA_COMMON = {
    "model_type": "mamba",
    "vocab_size": 50280,
    "state_size": 16,
    "expand": 2,
    "conv_kernel": 4,
    "tie_word_embeddings": True,
    **_NEOX_SPECIAL,
}


@dataclass(frozen=True)
class VLPreset:
    """A named model size: architecture configs (offline) and the pretrained component ids."""

    text_config: dict[str, Any]
    vision_config: dict[str, Any] = field(default_factory=lambda: dict(EVA02_VISION_CONFIG))
    image_grid_size: int = 24
    image_token_id: int = 50277
    text_model_id: str | None = None
    vision_model_id: str | None = EVA02_L_336


def _pythia(hidden: int, layers: int, heads: int, model_id: str) -> VLPreset:
    text = {**_PYTHIA_COMMON, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads}
    return VLPreset(text_config={**text, "intermediate_size": 4 * hidden}, text_model_id=model_id)


def _mamba(hidden: int, layers: int, model_id: str) -> VLPreset:
    text = {**_MAMBA_COMMON, "hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": 2 * hidden}
    return VLPreset(text_config=text, text_model_id=model_id)


# A tiny CLIP vision tower: 32 px images, 8 px patches -> a 4x4 grid of 16 image tokens.
TINY_VISION_CONFIG: dict[str, Any] = {
    "model_type": "clip_vision_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}
TINY_TEXT_CONFIGS: dict[str, dict[str, Any]] = {
    "pythia": {
        **_PYTHIA_COMMON,
        "vocab_size": 512,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "max_position_embeddings": 1024,
    },
    # Four Mamba layers match two Pythia layers in parameters (the paper compares models of matched size).
    "mamba": {**_MAMBA_COMMON, "vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 4, "intermediate_size": 128},
}


def _tiny(backbone: str) -> VLPreset:
    return VLPreset(
        text_config=TINY_TEXT_CONFIGS[backbone],
        vision_config=TINY_VISION_CONFIG,
        image_grid_size=4,
        image_token_id=1,  # the synthetic tokenizer puts `<image>` right after `<|endoftext|>`
        vision_model_id=None,
    )


PRESETS: dict[str, dict[str, VLPreset]] = {
    "pythia": {
        "tiny": _tiny("pythia"),
        "1b": _pythia(2048, 16, 8, "EleutherAI/pythia-1b"),
        "1.4b": _pythia(2048, 24, 16, "EleutherAI/pythia-1.4b"),
        "2.8b": _pythia(2560, 32, 32, "EleutherAI/pythia-2.8b"),
    },
    "mamba": {
        "tiny": _tiny("mamba"),
        "790m": _mamba(1536, 48, "state-spaces/mamba-790m-hf"),
        "1.4b": _mamba(2048, 48, "state-spaces/mamba-1.4b-hf"),
        "2.8b": _mamba(2560, 64, "state-spaces/mamba-2.8b-hf"),
    },
}
