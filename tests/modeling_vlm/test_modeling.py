"""Pythia-VL and Mamba-VL: forward and loss, image merging, generation, saving, assembly, pipeline, streaming."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import (
    AutoModelForImageTextToText,
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    MambaConfig,
    MambaForCausalLM,
    PreTrainedTokenizerFast,
    TextIteratorStreamer,
    pipeline,
)

from configuration import BACKBONES, PRESETS
from configuration.presets import TINY_VISION_CONFIG
from modeling_vlm import (
    MODEL_CLASSES,
    MambaVLForConditionalGeneration,
    VLCausalLMOutputWithPast,
    VLForConditionalGeneration,
    VLMultiModalProjector,
)
from processing import IGNORE_INDEX, VLProcessor

BACKBONE_NAMES = ("pythia", "mamba")
LM_CLASSES = {"pythia": GPTNeoXForCausalLM, "mamba": MambaForCausalLM}
LM_CONFIG_CLASSES = {"pythia": GPTNeoXConfig, "mamba": MambaConfig}
NEW_TOKENS = 6

pytestmark = pytest.mark.parametrize("backbone", BACKBONE_NAMES)


# ---------------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------------
def _liven(model: VLForConditionalGeneration) -> VLForConditionalGeneration:
    """
    A freshly initialised Mamba has a residual stream dominated by its input embedding, and its head is tied to that
    embedding, so greedy decoding just repeats the last token. Scaling the mixers' output projections makes the
    greedy continuation depend on the whole prefix, so that generation comparisons are not vacuous.
    """
    if isinstance(model, MambaVLForConditionalGeneration):
        with torch.no_grad():
            for name, parameter in model.language_model.named_parameters():
                if "mixer.out_proj" in name:
                    parameter.mul_(20.0)
    return model


@pytest.fixture(scope="module")
def models(make_model: Callable[..., VLForConditionalGeneration]) -> dict[str, VLForConditionalGeneration]:
    """One shared tiny model per backbone (read-only: tests that change a model build their own)."""
    return {name: _liven(make_model(name)) for name in BACKBONE_NAMES}


@pytest.fixture(scope="module")
def rows(synthetic_dataset: Any) -> list[dict[str, Any]]:
    return [synthetic_dataset[i] for i in (0, 4, 8)]  # a caption, a VQA and a grounding sample


def _messages(row: dict[str, Any], with_answer: bool = True) -> list[dict[str, Any]]:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["prompt"]}]}]
    if with_answer:
        messages.append({"role": "assistant", "content": row["answer"]})
    return messages


def _prompt(processor: VLProcessor, row: dict[str, Any]) -> str:
    return processor.apply_chat_template(_messages(row, with_answer=False), add_generation_prompt=True)


def _training_batch(processor: VLProcessor, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Right-padded batch of training examples (pads: pad id in the inputs, -100 in the labels)."""
    examples = [processor.build_training_example(_messages(row), images=[row["image"]]) for row in rows]
    width = max(len(e["input_ids"]) for e in examples)
    pad = processor.tokenizer.pad_token_id
    input_ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in examples])
    labels = torch.tensor([e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in examples])
    mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples])
    pixel_values = torch.cat([e["pixel_values"] for e in examples])
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "pixel_values": pixel_values}


def _manual_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled positions, written out by hand."""
    total, count = torch.zeros((), dtype=torch.float64), 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            target = int(labels[b, t + 1])
            if target != IGNORE_INDEX:
                total -= torch.log_softmax(logits[b, t].double(), dim=-1)[target]
                count += 1
    assert count > 0
    return total / count


def _manual_greedy(model: VLForConditionalGeneration, inputs: dict[str, torch.Tensor], steps: int) -> tuple:
    """Greedy decoding by re-running the full forward pass (no cache, images every step)."""
    input_ids, logits_per_step = inputs["input_ids"], []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=input_ids, pixel_values=inputs["pixel_values"], use_cache=False).logits
            logits_per_step.append(logits[:, -1])
            input_ids = torch.cat([input_ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return input_ids, torch.stack(logits_per_step, dim=1)


def _generate(model: VLForConditionalGeneration, inputs: dict[str, torch.Tensor], **kwargs: Any) -> Any:
    return model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        min_new_tokens=NEW_TOKENS,
        do_sample=False,
        return_dict_in_generate=True,
        output_logits=True,
        **kwargs,
    )


class _CallCounter:
    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *args: Any) -> None:
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


# ---------------------------------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------------------------------
def test_modules_and_classes(backbone: str, models: dict[str, VLForConditionalGeneration]) -> None:
    model = models[backbone]
    assert type(model) is MODEL_CLASSES[backbone]
    assert isinstance(model.vision_tower, CLIPVisionModel)
    assert isinstance(model.multi_modal_projector, VLMultiModalProjector)
    assert isinstance(model.language_model, LM_CLASSES[backbone])
    names = {name for name, _ in model.named_children()}
    assert {"vision_tower", "multi_modal_projector", "language_model"} <= names
    assert model.get_input_embeddings() is model.language_model.get_input_embeddings()
    assert model.get_output_embeddings() is model.language_model.get_output_embeddings()
    assert model.get_decoder() is model.language_model
    assert model.config.model_type == BACKBONES[backbone].model_type
    projector = model.multi_modal_projector
    assert (projector.linear_1.in_features, projector.linear_1.out_features) == (32, 64)
    assert (projector.linear_2.in_features, projector.linear_2.out_features) == (64, 64)


def test_class_attributes(backbone: str) -> None:
    cls = MODEL_CLASSES[backbone]
    assert getattr(cls, "_is_stateful", False) is (backbone == "mamba")
    assert isinstance(cls._tied_weights_keys, dict)
    if backbone == "mamba":
        assert cls._tied_weights_keys == {"language_model.lm_head.weight": "language_model.backbone.embeddings.weight"}
    else:
        assert cls._tied_weights_keys == {}
    assert cls.supports_gradient_checkpointing is True
    assert {"pythia": "GPTNeoXLayer", "mamba": "MambaBlock"}[backbone] in cls._no_split_modules
    assert "VLMultiModalProjector" in cls._no_split_modules
    assert cls.config_class.model_type == BACKBONES[backbone].model_type


def test_initial_tying(backbone: str, models: dict[str, VLForConditionalGeneration]) -> None:
    lm = models[backbone].language_model
    tied = lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
    assert tied is (backbone == "mamba")


# ---------------------------------------------------------------------------------------------------------------------
# Forward and loss
# ---------------------------------------------------------------------------------------------------------------------
def test_forward_shapes(backbone: str, models: dict, processor: VLProcessor, rows: list) -> None:
    model = models[backbone]
    inputs = processor(
        images=[r["image"] for r in rows[:2]], text=[_prompt(processor, r) for r in rows[:2]], return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**inputs)
    assert isinstance(out, VLCausalLMOutputWithPast)
    batch, length = inputs["input_ids"].shape
    assert tuple(out.logits.shape) == (batch, length, len(processor.tokenizer))
    assert out.loss is None
    assert tuple(out.image_hidden_states.shape) == (2, 16, model.config.hidden_size)
    assert torch.isfinite(out.logits).all()
    with torch.no_grad():
        features = model.get_image_features(inputs["pixel_values"])
    torch.testing.assert_close(out.image_hidden_states, features)


def test_image_features_replace_the_placeholder_embeddings(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    inputs = processor(images=[rows[0]["image"]], text=_prompt(processor, rows[0]), return_tensors="pt")
    ids = inputs["input_ids"]
    with torch.no_grad():
        features = model.get_image_features(inputs["pixel_values"])  # (1, 16, d)
        embeds = model.get_input_embeddings()(ids)
        merged = model.merge_image_features(ids, embeds, features)
        positions = (ids[0] == processor.image_token_id).nonzero().squeeze(-1)
        torch.testing.assert_close(merged[0, positions], features[0])
        others = ids[0] != processor.image_token_id
        torch.testing.assert_close(merged[0, others], embeds[0, others])
        via_embeds = model(inputs_embeds=merged, attention_mask=inputs["attention_mask"]).logits
        via_ids = model(**inputs).logits
    torch.testing.assert_close(via_embeds, via_ids)


def test_loss_is_shifted_cross_entropy_on_labelled_positions(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    batch = _training_batch(processor, rows)
    with torch.no_grad():
        out = model(**batch)
    assert out.loss.ndim == 0
    torch.testing.assert_close(out.loss.double(), _manual_loss(out.logits, batch["labels"]), rtol=1e-5, atol=1e-5)
    # The same with torch's own cross-entropy on the shifted tensors.
    shifted = F.cross_entropy(
        out.logits[:, :-1].reshape(-1, out.logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=-100
    )
    torch.testing.assert_close(out.loss, shifted, rtol=1e-5, atol=1e-5)


def test_loss_ignores_prompt_and_padding(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    batch = _training_batch(processor, rows[:2])
    labels = batch["labels"]
    prompt = (labels == IGNORE_INDEX) & (batch["attention_mask"] == 1)
    assert prompt.sum() > 2 * 21  # the image blocks and the prompts are masked
    with torch.no_grad():
        masked = model(**batch).loss
        # Labelling the prompt and image positions too changes the loss: -100 is what keeps them out of it.
        unmasked_labels = torch.where(prompt, batch["input_ids"], labels)
        unmasked = model(**{**batch, "labels": unmasked_labels}).loss
        # The padded batch's loss is the token-weighted mean of the samples' losses computed alone: padding and the
        # other sample contribute nothing.
        total, count = 0.0, 0
        for index in range(2):
            real = batch["attention_mask"][index].bool()
            alone = {k: v[index : index + 1][:, real] for k, v in batch.items() if k != "pixel_values"}
            alone["pixel_values"] = batch["pixel_values"][index : index + 1]
            n_labelled = int((alone["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += model(**alone).loss.item() * n_labelled
            count += n_labelled
    assert not torch.isclose(masked, unmasked, rtol=1e-3)
    assert masked.item() == pytest.approx(total / count, rel=1e-5)


def test_image_count_mismatch_raises(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    inputs = processor(images=[rows[0]["image"]], text=_prompt(processor, rows[0]), return_tensors="pt")
    two_images = torch.cat([inputs["pixel_values"], inputs["pixel_values"]])
    with torch.no_grad(), pytest.raises(ValueError, match="image"):
        model(input_ids=inputs["input_ids"], pixel_values=two_images)
    ids = inputs["input_ids"][0].tolist()
    del ids[ids.index(processor.image_token_id)]  # a block missing one patch
    with torch.no_grad(), pytest.raises(ValueError, match="15 image positions"):
        model(input_ids=torch.tensor([ids]), pixel_values=inputs["pixel_values"])
    features = torch.zeros(1, 15, model.config.hidden_size)
    embeds = torch.zeros(*inputs["input_ids"].shape, model.config.hidden_size)
    with pytest.raises(ValueError, match="16 image positions"):
        model.merge_image_features(inputs["input_ids"], embeds, features)


def test_vision_feature_layer_selects_a_hidden_state(backbone: str, make_model: Callable, processor, rows) -> None:
    model = make_model(backbone, vision_feature_layer=-2)
    pixel_values = processor(images=[rows[0]["image"]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        features = model.get_image_features(pixel_values)
        hidden_states = model.vision_tower(pixel_values, output_hidden_states=True).hidden_states
        # The CLS token is dropped ("default" strategy), the patches of the second-to-last layer are projected.
        expected = model.multi_modal_projector(hidden_states[-2][:, 1:])
        last = model.multi_modal_projector(hidden_states[-1][:, 1:])
    assert tuple(features.shape) == (1, 16, model.config.hidden_size)
    torch.testing.assert_close(features, expected)
    assert not torch.allclose(features, last)


def test_vision_tower_influences_the_logits(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    text = _prompt(processor, rows[0])
    ids = processor(images=[rows[0]["image"]], text=text, return_tensors="pt")
    with torch.no_grad():
        a = model(**ids).logits
        b = model(**processor(images=[rows[1]["image"]], text=text, return_tensors="pt")).logits
        c = model(**processor(images=[rows[0]["image"]], text=text, return_tensors="pt")).logits
    torch.testing.assert_close(a, c)  # deterministic
    first_patch = int((ids["input_ids"][0] == processor.image_token_id).nonzero()[0])
    # Causal: before the first patch nothing can see the image; after it, the image changes the logits.
    torch.testing.assert_close(a[:, :first_patch], b[:, :first_patch])
    assert (a[:, -1] - b[:, -1]).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------------
def test_cached_greedy_generation_equals_full_forward_loop(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    inputs = processor(images=[rows[0]["image"]], text=_prompt(processor, rows[0]), return_tensors="pt")
    expected_ids, expected_logits = _manual_greedy(model, inputs, NEW_TOKENS)
    new = expected_ids[0, inputs["input_ids"].shape[1] :]
    assert len(set(new.tolist())) > 1, "greedy continuation is degenerate; the comparison would be vacuous"
    for use_cache in (True, False):
        out = _generate(model, inputs, use_cache=use_cache)
        assert torch.equal(out.sequences, expected_ids), use_cache
        torch.testing.assert_close(torch.stack(out.logits, dim=1), expected_logits, rtol=1e-4, atol=1e-4)


def test_batched_left_padded_generation_equals_single(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    prompts = [_prompt(processor, row) for row in rows]
    images = [row["image"] for row in rows]
    batch = processor(images=images, text=prompts, padding_side="left", return_tensors="pt")
    lengths = batch["attention_mask"].sum(-1)
    assert len(set(lengths.tolist())) == 3  # three different prompt lengths: two rows are padded
    batched = _generate(model, batch)
    width = batch["input_ids"].shape[1]
    for index, (image, prompt) in enumerate(zip(images, prompts, strict=True)):
        alone = _generate(model, processor(images=[image], text=prompt, return_tensors="pt"))
        assert batched.sequences[index, width:].tolist() == alone.sequences[0, -NEW_TOKENS:].tolist(), index
        torch.testing.assert_close(
            torch.stack(batched.logits, dim=1)[index], torch.stack(alone.logits, dim=1)[0], rtol=1e-4, atol=1e-4
        )


def test_vision_tower_runs_once_per_generate_call(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    batch = processor(
        images=[r["image"] for r in rows[:2]],
        text=[_prompt(processor, r) for r in rows[:2]],
        padding_side="left",
        return_tensors="pt",
    )
    counter = _CallCounter(model.vision_tower)
    try:
        model.generate(**batch, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        assert counter.calls == 1
        model.generate(**batch, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        assert counter.calls == 2
    finally:
        counter.remove()


def test_streamed_generation_equals_plain_generation(backbone: str, models: dict, processor, rows) -> None:
    model = models[backbone]
    inputs = processor(images=[rows[1]["image"]], text=_prompt(processor, rows[1]), return_tensors="pt")
    kwargs = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}
    plain = model.generate(**inputs, **kwargs)
    expected = processor.tokenizer.decode(plain[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert expected

    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            model.generate(**inputs, **kwargs, streamer=streamer)
        except BaseException as error:  # surfaced below instead of dying silently in the thread
            errors.append(error)
            streamer.end()

    thread = threading.Thread(target=run)
    thread.start()
    pieces = list(streamer)
    thread.join()
    assert not errors
    assert "".join(pieces) == expected


# ---------------------------------------------------------------------------------------------------------------------
# Saving, loading, pipeline
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(models: dict, processor: VLProcessor, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths = {}
    for name, model in models.items():
        path = tmp_path_factory.mktemp(f"saved-{name}")
        model.save_pretrained(path)
        processor.save_pretrained(path)
        paths[name] = path
    return paths


def test_save_and_auto_load_round_trip(backbone: str, models: dict, saved: dict, processor, rows) -> None:
    model, path = models[backbone], saved[backbone]
    assert (path / "model.safetensors").is_file()
    assert (path / "config.json").is_file()
    card = (path / "README.md").read_text()
    assert BACKBONES[backbone].display_name in card
    assert BACKBONES[backbone].model_type in card
    assert BACKBONES[backbone].text_model_type in card
    assert "image-text-to-text" in card

    loaded = AutoModelForImageTextToText.from_pretrained(path).eval()
    assert type(loaded) is MODEL_CLASSES[backbone]
    assert loaded.config.image_token_id == model.config.image_token_id
    loaded_state, state = loaded.state_dict(), model.state_dict()
    assert loaded_state.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded_state[key], value), key
    inputs = processor(
        images=[r["image"] for r in rows[:2]], text=[_prompt(processor, r) for r in rows[:2]], return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)


def test_tying_after_reload(backbone: str, saved: dict) -> None:
    loaded = AutoModelForImageTextToText.from_pretrained(saved[backbone])
    lm = loaded.language_model
    tied = lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
    assert tied is (backbone == "mamba")
    with safe_open(str(saved[backbone] / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert "language_model.backbone.embeddings.weight" in keys or "language_model.gpt_neox.embed_in.weight" in keys
    # A tied head is not stored twice; an untied one must be stored.
    assert ("language_model.lm_head.weight" in keys or "language_model.embed_out.weight" in keys) is (
        backbone == "pythia"
    )


def test_save_keeps_an_existing_model_card(backbone: str, models: dict, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my own card")
    models[backbone].save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "my own card"


def test_pipeline_generates_text(backbone: str, models: dict, saved: dict, processor, rows) -> None:
    pipe = pipeline("image-text-to-text", model=str(saved[backbone]))
    assert type(pipe.model) is MODEL_CLASSES[backbone]
    row = rows[0]
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": row["image"]}, {"type": "text", "text": row["prompt"]}],
        }
    ]
    kwargs = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}
    result = pipe(text=messages, generate_kwargs=kwargs)
    answer = result[0]["generated_text"][-1]
    assert answer["role"] == "assistant"

    inputs = processor(images=[row["image"]], text=_prompt(processor, row), return_tensors="pt")
    generated = models[backbone].generate(**inputs, **kwargs)
    expected = processor.tokenizer.decode(generated[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert expected.strip()
    assert answer["content"] == expected

    # Plain text with the placeholder works too and continues the prompt.
    plain = pipe(images=row["image"], text=_prompt(processor, row), generate_kwargs=kwargs)
    assert plain[0]["generated_text"] == _prompt(processor, row) + expected


# ---------------------------------------------------------------------------------------------------------------------
# Freezing and training
# ---------------------------------------------------------------------------------------------------------------------
def test_freeze_vision_tower(backbone: str, make_model: Callable, processor, rows) -> None:
    model = make_model(backbone)
    model.freeze_vision_tower()
    assert not any(p.requires_grad for p in model.vision_tower.parameters())
    assert all(p.requires_grad for p in model.multi_modal_projector.parameters())
    assert all(p.requires_grad for p in model.language_model.parameters())
    model.train()
    batch = _training_batch(processor, rows[:2])
    loss = model(**batch).loss
    assert loss.requires_grad
    loss.backward()
    assert all(p.grad is None for p in model.vision_tower.parameters())
    for parameter in model.multi_modal_projector.parameters():
        assert parameter.grad is not None
        assert parameter.grad.abs().sum() > 0
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0

    model.zero_grad(set_to_none=True)
    model.freeze_vision_tower(False)
    assert all(p.requires_grad for p in model.vision_tower.parameters())
    model(**batch).loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vision_tower.parameters())


def test_activation_checkpointing_keeps_loss_and_gradients(backbone: str, make_model: Callable, processor, rows):
    model = make_model(backbone).train()
    model.freeze_vision_tower()
    batch = _training_batch(processor, rows[:2])
    plain = model(**batch).loss
    plain.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    # transformers >= 5.2x renamed gradient checkpointing to activation checkpointing; the GPU image has 5.17.
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()
    assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
    checkpointed = model(**batch).loss
    checkpointed.backward()
    torch.testing.assert_close(checkpointed, plain)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == expected.keys()
    assert any(name.startswith("multi_modal_projector.") for name in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


# ---------------------------------------------------------------------------------------------------------------------
# Assembly from pretrained parts
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parts(tokenizer: PreTrainedTokenizerFast, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CLIP vision model and a tiny language model of each backbone, saved to disk."""
    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(1)
    vision = CLIPVisionModel(CLIPVisionConfig(**{k: v for k, v in TINY_VISION_CONFIG.items() if k != "model_type"}))
    vision.save_pretrained(root / "vision")
    paths = {"vision": root / "vision"}
    for name in BACKBONE_NAMES:
        text = {k: v for k, v in PRESETS[name]["tiny"].text_config.items() if k != "model_type"}
        LM_CLASSES[name](LM_CONFIG_CLASSES[name](**{**text, "vocab_size": len(tokenizer)})).save_pretrained(
            root / name
        )
        paths[name] = root / name
    return paths


def test_from_pretrained_parts(backbone: str, parts: dict[str, Path], processor, rows) -> None:
    cls = MODEL_CLASSES[backbone]
    model = cls.from_pretrained_parts(str(parts["vision"]), str(parts[backbone]), image_token_id=1)
    assert type(model) is cls
    assert model.config.image_grid_size == 4  # inferred: 32 px / 8 px patches
    assert model.config.text_model_id == str(parts[backbone])
    assert model.config.vision_model_id == str(parts["vision"])
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert tensor.device.type == "cpu", name

    lm = LM_CLASSES[backbone].from_pretrained(parts[backbone])
    for key, value in lm.state_dict().items():
        assert torch.equal(model.language_model.state_dict()[key], value), key
    vision = CLIPVisionModel.from_pretrained(parts["vision"])
    for key, value in vision.state_dict().items():
        assert torch.equal(model.vision_tower.state_dict()[key], value), key

    projector = model.multi_modal_projector
    std = model.config.text_config.initializer_range  # GPT-NeoX: 0.02, Mamba: 0.1
    for linear in (projector.linear_1, projector.linear_2):
        assert torch.isfinite(linear.weight).all()
        assert linear.weight.abs().sum() > 0
        assert 0.7 * std < linear.weight.std().item() < 1.3 * std
        assert torch.equal(linear.bias, torch.zeros_like(linear.bias))
    assert not any(p.requires_grad for p in model.vision_tower.parameters())
    assert all(p.requires_grad for p in projector.parameters())

    inputs = processor(images=[rows[0]["image"]], text=_prompt(processor, rows[0]), return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**inputs).logits
    assert torch.isfinite(logits).all()


def test_from_pretrained_parts_rejects_the_wrong_class(backbone: str, parts: dict[str, Path]) -> None:
    other = "mamba" if backbone == "pythia" else "pythia"
    with pytest.raises(ValueError, match=MODEL_CLASSES[backbone].__name__):
        MODEL_CLASSES[backbone].from_pretrained_parts(str(parts["vision"]), str(parts[other]), image_token_id=1)


def test_from_pretrained_parts_takes_the_vision_tower_of_a_full_clip(backbone: str, parts: dict, tmp_path: Path):
    vision = {k: v for k, v in TINY_VISION_CONFIG.items() if k != "model_type"}
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4}
    torch.manual_seed(2)
    clip = CLIPModel(CLIPConfig(vision_config=vision, text_config={**text, "vocab_size": 99}, projection_dim=16))
    clip.save_pretrained(tmp_path)
    model = MODEL_CLASSES[backbone].from_pretrained_parts(str(tmp_path), str(parts[backbone]), image_token_id=1)
    assert isinstance(model.vision_tower, CLIPVisionModel)
    assert model.config.vision_config.model_type == "clip_vision_model"
    assert model.config.vision_hidden_size == 32
    state, reference = model.vision_tower.state_dict(), clip.vision_model.state_dict()
    assert reference.keys() == state.keys()
    for key, value in reference.items():
        assert torch.equal(state[key], value), key
