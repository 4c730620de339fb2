"""Tiny pretrained parts saved as the Hub holds them: a CLIP vision model, and a GPT-NeoX language model with its
tokenizer (shared by the training tests)."""

from __future__ import annotations

from pathlib import Path

from transformers import CLIPVisionConfig, CLIPVisionModel, GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast


def save_parts(folder: Path, tokenizer: PreTrainedTokenizerFast) -> tuple[Path, Path]:
    """A tiny pretrained CLIP vision model and GPT-NeoX language model (with its tokenizer) saved locally."""
    vision = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
    )
    text_config = GPTNeoXConfig(
        vocab_size=len(tokenizer) + 8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64
    )
    language = GPTNeoXForCausalLM(text_config)
    vision.save_pretrained(folder / "vision")
    language.save_pretrained(folder / "language")
    tokenizer.save_pretrained(folder / "language")
    return folder / "vision", folder / "language"
