"""LoRA on the language model: the right targets per backbone, training, saving, reloading, merging, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import datasets
import pytest
import torch
from peft import PeftModel, get_peft_model

from modeling_vlm import VLForConditionalGeneration
from processing import VLProcessor
from training.collator import VLDataCollator
from training.lora import lora_config_for
from training.templates import conversation

BACKBONES = ("pythia", "mamba")


@pytest.fixture(scope="module")
def batch(processor: VLProcessor, synthetic_dataset: datasets.Dataset) -> dict[str, torch.Tensor]:
    rows = synthetic_dataset.select(range(6))
    examples = [
        processor.build_training_example(conversation(row["prompt"], row["answer"]), images=[row["image"]])
        for row in rows
    ]
    return VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id)(examples)


def _train(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int = 8) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("backbone", BACKBONES)
def test_adapters_train_save_reload_and_merge(
    backbone: str,
    make_model: Callable[..., VLForConditionalGeneration],
    batch: dict[str, torch.Tensor],
    tmp_path: Path,
) -> None:
    base = make_model(backbone)
    config = lora_config_for(base, r=4, alpha=8, dropout=0.0)
    model = get_peft_model(base, config)
    adapted = {name for name, _ in model.named_modules() if name.endswith("lora_A")}
    assert adapted and all(".language_model." in name for name in adapted)
    assert {name.rsplit(".", 2)[-2] for name in adapted} == set(base.lora_target_modules)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    losses = _train(model, batch)
    assert losses[-1] < losses[0] - 0.4 and losses == sorted(losses, reverse=True)  # goes down, step after step
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all("lora_" in name or "multi_modal_projector.modules_to_save" in name for name in changed)
    assert any("multi_modal_projector" in name for name in changed)

    model.eval()
    with torch.no_grad():
        adapted_logits = model(**batch).logits
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    reloaded = PeftModel.from_pretrained(make_model(backbone), tmp_path / "adapter").eval()
    merged = model.merge_and_unload().eval()
    assert isinstance(merged, VLForConditionalGeneration)
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, adapted_logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(merged(**batch).logits, adapted_logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_regex_never_matches_the_vision_tower(
    backbone: str, make_model: Callable[..., VLForConditionalGeneration]
) -> None:
    model = make_model(backbone)
    config = lora_config_for(model, target_modules=[*model.lora_target_modules, "lm_head"])
    matched = [name for name, _ in model.named_modules() if re.fullmatch(config.target_modules, name)]
    assert matched and all(name.startswith("language_model.") for name in matched)
    assert "language_model.lm_head" in matched
    assert config.modules_to_save == ["multi_modal_projector"]
    vision_out_proj = [n for n, _ in model.named_modules() if n.startswith("vision_tower") and n.endswith("out_proj")]
    assert vision_out_proj and not any(re.fullmatch(config.target_modules, n) for n in vision_out_proj)


@pytest.mark.parametrize("name", ["x_proj", "dt_proj", "out_proj", "conv1d"])
def test_mamba_refuses_kernel_read_modules(make_model: Callable[..., VLForConditionalGeneration], name: str) -> None:
    with pytest.raises(ValueError, match=rf"LoRA target '{name}' is unsafe for MambaVL.*fused training kernel"):
        lora_config_for(make_model("mamba"), target_modules=["in_proj", name])


@pytest.mark.parametrize(
    ("backbone", "targets", "message"),
    [
        ("pythia", ["q_proj"], r"'q_proj' matches no module of .*language model\. It names vision-tower modules"),
        ("pythia", ["out_proj"], r"'out_proj' matches no module.*vision_tower\..*out_proj"),
        ("mamba", ["fc1"], r"'fc1' matches no module.*vision-tower"),
        ("pythia", ["no_such_layer"], r"'no_such_layer' matches no module"),
        ("mamba", ["vision_tower.encoder.layers.0.mlp.fc1"], r"outside the language model"),
        ("pythia", ["multi_modal_projector.linear_1"], r"outside the language model.*modules_to_save"),
        ("pythia", ["dense|fc1"], r"is not a module name"),
    ],
)
def test_bad_targets(
    make_model: Callable[..., VLForConditionalGeneration], backbone: str, targets: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lora_config_for(make_model(backbone), target_modules=targets)


def test_bad_modules_to_save_and_values(make_model: Callable[..., VLForConditionalGeneration]) -> None:
    model = make_model("pythia")
    with pytest.raises(ValueError, match=r"modules_to_save entry 'projector_x' matches no module"):
        lora_config_for(model, extra_modules_to_save=["projector_x"])
    with pytest.raises(ValueError, match=r"r >= 1"):
        lora_config_for(model, r=0)
    config = lora_config_for(model, extra_modules_to_save=["embed_in"])
    assert config.modules_to_save == ["multi_modal_projector", "embed_in"]
