"""Shared fixtures: synthetic data, its tokenizer, a processor and a factory of tiny Pythia-VL / Mamba-VL models."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# --import-mode=importlib does not put the repository root on sys.path; the packages live there (not installed).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import datasets  # noqa: E402
import torch  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

import modeling_vlm  # noqa: E402  (registers pythia_vl / mamba_vl with the Auto classes)
from configuration import PRESETS, MambaVLConfig, PythiaVLConfig, VLConfig  # noqa: E402
from processing import VLImageProcessor, VLProcessor  # noqa: E402
from training.synthetic.shapes import SyntheticShapesConfig, build_synthetic_dataset  # noqa: E402
from training.synthetic.tokenizer import synthetic_corpus, train_synthetic_tokenizer  # noqa: E402

IMAGE_SIZE = 32
GRID = 4
EXTRA_TOKENS = ("<image>", "###", "&&")
CONFIG_CLASSES: dict[str, type[VLConfig]] = {"pythia": PythiaVLConfig, "mamba": MambaVLConfig}


class _DropKernelFallbackWarnings(logging.Filter):
    """Mamba on the CPU logs that the fused kernels are missing; that is expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "falling back to its reference PyTorch implementation" not in record.getMessage()


logging.getLogger("transformers.integrations.hub_kernels").addFilter(_DropKernelFallbackWarnings())

# The tiny models are far too small to gain from intra-op threads, and on a busy shared CPU the threads' spin-waits
# make every op 10-100x slower. One thread unless the environment asks for more.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_dataset() -> datasets.Dataset:
    return build_synthetic_dataset(12, seed=0, config=SyntheticShapesConfig(image_size=IMAGE_SIZE))


@pytest.fixture(scope="session")
def tokenizer(synthetic_dataset: datasets.Dataset) -> PreTrainedTokenizerFast:
    return train_synthetic_tokenizer(synthetic_corpus(synthetic_dataset), extra_tokens=EXTRA_TOKENS, vocab_size=400)


@pytest.fixture(scope="session")
def image_processor() -> VLImageProcessor:
    return VLImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


@pytest.fixture(scope="session")
def processor(image_processor: VLImageProcessor, tokenizer: PreTrainedTokenizerFast) -> VLProcessor:
    return VLProcessor(image_processor, tokenizer, image_grid_size=GRID)


def tiny_config(backbone: str, vocab_size: int, **overrides: Any) -> VLConfig:
    """The tiny preset of `backbone` with the text vocabulary resized to `vocab_size`."""
    text_config = {**PRESETS[backbone]["tiny"].text_config, "vocab_size": vocab_size}
    return CONFIG_CLASSES[backbone].from_preset("tiny", text_config=text_config, **overrides)


@pytest.fixture(scope="session")
def make_config(tokenizer: PreTrainedTokenizerFast) -> Callable[..., VLConfig]:
    """Factory: ``make_config("pythia", image_layout="flat")`` -> the tiny preset sized to the test tokenizer."""
    return lambda backbone, **overrides: tiny_config(backbone, len(tokenizer), **overrides)


@pytest.fixture(scope="session")
def make_model(tokenizer: PreTrainedTokenizerFast) -> Callable[..., modeling_vlm.VLForConditionalGeneration]:
    """Factory: ``make_model("mamba", image_layout="flat")`` -> a freshly seeded tiny model in eval mode."""

    def _make(backbone: str, **config_overrides: Any) -> modeling_vlm.VLForConditionalGeneration:
        config = tiny_config(backbone, len(tokenizer), **config_overrides)
        torch.manual_seed(0)
        return modeling_vlm.MODEL_CLASSES[backbone](config).eval()

    return _make
