"""ConversationDataset (lazy images, skipping, truncation by whole turns); WeightedMixture (weights, determinism)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

import training.data.dataset as dataset_module
from processing import IGNORE_INDEX, VLProcessor
from training.collator import VLDataCollator
from training.data.dataset import ConversationDataset, WeightedMixture, assistant_turn_ends
from training.data.readers import Conversation
from training.templates import caption_turn, vqa_turn

BLOCK = 21  # ### + 4 rows of (4 patches + separator) for the test processor's 4x4 grid


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    for name, colour in (("red.png", (220, 30, 30)), ("blue.png", (30, 70, 220))):
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    (tmp_path / "corrupt.jpg").write_bytes(b"\x00garbage, not an image\xff" * 8)
    return tmp_path


def conversation(image: str, *turns: tuple[str, str]) -> Conversation:
    return Conversation(image, list(turns) or [vqa_turn("What colour is the square?", "red")], "test")


def block_intact(processor: VLProcessor, input_ids: list[int]) -> bool:
    block = processor.image_block_ids
    return any(input_ids[start : start + len(block)] == block for start in range(len(input_ids) - len(block) + 1))


def test_assistant_turn_ends() -> None:
    x = IGNORE_INDEX
    assert assistant_turn_ends([x, x, 5, 6, x, x, 7, x, 8]) == [4, 7, 9]
    assert assistant_turn_ends([x, x]) == []


def test_skips_missing_corrupt_and_too_long(processor: VLProcessor, image_root: Path) -> None:
    long_question = "what colour is the shape " * 40
    conversations = [
        conversation("red.png"),
        conversation("missing.png"),
        conversation("corrupt.jpg"),
        conversation("red.png", vqa_turn(long_question, "red")),  # the answer lies beyond max_length
        conversation("blue.png", caption_turn("a blue image")),
    ]
    dataset = ConversationDataset(conversations, image_root, processor, max_length=64)
    first = dataset[0]
    assert set(first) == {"input_ids", "labels", "pixel_values"}
    assert first["pixel_values"].shape == (1, 3, 32, 32)
    for index in (1, 2, 3):  # each unusable record yields the next usable one: the blue caption
        assert dataset[index]["input_ids"] == dataset[4]["input_ids"]
    assert dataset.skipped == Counter(missing_image=1, corrupt_image=1, too_long=1)
    dataset[1], dataset[3]  # known-bad records are counted once
    assert dataset.skipped == Counter(missing_image=1, corrupt_image=1, too_long=1)
    fresh = ConversationDataset(conversations, image_root, processor, max_length=64)
    assert fresh.validate() == Counter(missing_image=1, corrupt_image=1, too_long=1)
    assert [fresh[i]["input_ids"] for i in range(5)] == [dataset[i]["input_ids"] for i in range(5)]  # deterministic


def test_image_block_that_does_not_fit_is_too_long(processor: VLProcessor, image_root: Path) -> None:
    task_aware = VLProcessor(processor.image_processor, processor.tokenizer, image_grid_size=4, instruction_first=True)
    # Task-aware encoding puts the (here very long) instruction line before the image block.
    conversations = [conversation("red.png", ("what colour is the shape " * 20 + "\nQuestion: colour?", "red"))]
    dataset = ConversationDataset(conversations, image_root, task_aware, max_length=BLOCK + 10)
    assert dataset.build_example(0) == "too_long"
    with pytest.raises(RuntimeError, match=r"All 1 conversations .* skipped"):
        dataset[0]


def test_truncation_drops_whole_trailing_turns(processor: VLProcessor, image_root: Path) -> None:
    turns = [vqa_turn(f"What colour is shape {n}?", "red") for n in range(6)]
    full = processor.build_training_example(
        conversation("red.png", *turns).to_messages(), images=[image_root / "red.png"]
    )
    ends = assistant_turn_ends(full["labels"])
    assert len(ends) == 6
    max_length = ends[2] + 3  # room for three turns and part of the fourth
    example = ConversationDataset([conversation("red.png", *turns)], image_root, processor, max_length=max_length)[0]
    three = processor.build_training_example(
        conversation("red.png", *turns[:3]).to_messages(), images=[image_root / "red.png"]
    )
    assert example["input_ids"] == three["input_ids"] and example["labels"] == three["labels"]
    assert len(example["input_ids"]) == ends[2] <= max_length
    assert example["labels"][-1] == processor.tokenizer.eos_token_id  # ends on a complete answer
    assert block_intact(processor, example["input_ids"])


def test_single_long_turn_is_cut_after_the_image(processor: VLProcessor, image_root: Path) -> None:
    long_answer = conversation("red.png", caption_turn("a red square and a blue circle " * 20))
    example = ConversationDataset([long_answer], image_root, processor, max_length=BLOCK + 30)[0]
    assert len(example["input_ids"]) == BLOCK + 30
    assert block_intact(processor, example["input_ids"])
    assert any(label != IGNORE_INDEX for label in example["labels"])


def test_images_are_loaded_lazily(processor: VLProcessor, image_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[Path] = []
    real_open = dataset_module.open_image
    monkeypatch.setattr(
        dataset_module, "open_image", lambda root, path: loaded.append(root / path) or real_open(root, path)
    )
    dataset = ConversationDataset([conversation("red.png"), conversation("blue.png")], image_root, processor)
    assert loaded == [] and not hasattr(dataset, "images")
    dataset[1]
    dataset[1]
    assert loaded == [image_root / "blue.png"] * 2  # loaded again on every access, never cached


def test_examples_collate(processor: VLProcessor, image_root: Path) -> None:
    dataset = ConversationDataset(
        [conversation("red.png"), conversation("blue.png", caption_turn("blue"), vqa_turn("Colour?", "blue"))],
        image_root,
        processor,
    )
    batch = VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id or 0)([dataset[0], dataset[1]])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["pixel_values"].shape == (2, 3, 32, 32)


# ----------------------------------------------------------------------------------------------------------------
# WeightedMixture
# ----------------------------------------------------------------------------------------------------------------
def test_mixture_follows_the_weights() -> None:
    parts = [[("a", i) for i in range(50)], [("b", i) for i in range(7)], [("c", i) for i in range(300)]]
    mixture = WeightedMixture(parts, [0.6, 0.3, 0.1], num_samples=4000, seed=0, names=["a", "b", "c"])
    assert len(mixture) == 4000
    drawn = Counter(mixture[i][0] for i in range(len(mixture)))
    assert drawn == Counter(mixture.samples_per_dataset)
    for name, weight in zip("abc", [0.6, 0.3, 0.1], strict=True):
        assert abs(drawn[name] / 4000 - weight) < 0.03
    assert mixture.source_of(0) == mixture[0][0]
    b_items = [mixture[i][1] for i in range(len(mixture)) if mixture[i][0] == "b"]
    assert sorted(b_items[:7]) == list(range(7))  # a full pass over a dataset before any item repeats


def test_mixture_is_deterministic_by_seed() -> None:
    parts = [list(range(10)), list(range(100, 120))]

    def plan(seed: int) -> list[int]:
        mixture = WeightedMixture(parts, [1, 1], num_samples=200, seed=seed)
        return [mixture[i] for i in range(len(mixture))]

    assert plan(3) == plan(3)
    assert plan(3) != plan(4)


def test_mixture_aggregates_skips(processor: VLProcessor, image_root: Path) -> None:
    first = ConversationDataset([conversation("red.png"), conversation("missing.png")], image_root, processor)
    second = ConversationDataset([conversation("corrupt.jpg"), conversation("blue.png")], image_root, processor)
    mixture = WeightedMixture([first, second], [1.0, 1.0], num_samples=12, seed=0, names=["first", "second"])
    for index in range(len(mixture)):
        assert isinstance(mixture[index]["input_ids"], list)
    assert mixture.skipped == Counter(missing_image=1, corrupt_image=1)
    assert mixture.skipped_by_dataset == {"first": Counter(missing_image=1), "second": Counter(corrupt_image=1)}
    loader = torch.utils.data.DataLoader(mixture, batch_size=4, collate_fn=VLDataCollator(pad_token_id=0))
    assert sum(batch["input_ids"].shape[0] for batch in loader) == 12


@pytest.mark.parametrize(
    ("weights", "num_samples", "match"),
    [([1.0], 10, "one weight and one name per dataset"), ([1.0, 0.0], 10, "positive"),
     ([1.0, float("nan")], 10, "positive"), ([1.0, 1.0], 0, "num_samples")],
)  # fmt: skip
def test_mixture_rejects_bad_arguments(weights: list[float], num_samples: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WeightedMixture([[1], [2]], weights, num_samples=num_samples)
    with pytest.raises(ValueError, match="'1' of the mixture is empty"):
        WeightedMixture([[1], []], [1, 1], num_samples=5)


# ----------------------------------------------------------------------------------------------------------------
# Text-only conversations, webdataset shards, the held-out set
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_text_only_conversations_train_beside_image_ones(
    processor: VLProcessor, image_root: Path, make_model: object, backbone: str
) -> None:
    text_only = Conversation(None, [("Write a haiku.", "snow falls"), ("Another.", "rain")], "mix665k")
    dataset = ConversationDataset([conversation("red.png"), text_only], image_root, processor)
    example = dataset[1]
    assert "pixel_values" not in example and processor.image_token_id not in example["input_ids"]
    assert dataset.skipped == Counter()  # not skipped as a missing image
    supervised = [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX]
    assert processor.tokenizer.decode(supervised).replace(processor.tokenizer.eos_token, "|").split("|")[:2] == [
        "snow falls", "rain"
    ]  # fmt: skip
    batch = VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id or 0)([dataset[0], example])
    assert batch["pixel_values"].shape[0] == 1  # one image for the two sequences
    model = make_model(backbone).train()  # type: ignore[operator]
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_images_inside_webdataset_tars(processor: VLProcessor, tmp_path: Path) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 200, 0)).save(buffer, format="JPEG")
    with tarfile.open(tmp_path / "00003.tar", "w") as tar:
        info = tarfile.TarInfo("000030000.jpg")
        info.size = len(buffer.getvalue())
        tar.addfile(info, io.BytesIO(buffer.getvalue()))
    conversations = [conversation("00003.tar/000030000.jpg"), conversation("00003.tar/missing.jpg")]
    dataset = ConversationDataset(conversations, tmp_path, processor)
    assert dataset[0]["pixel_values"].shape == (1, 3, 32, 32)
    dataset.validate()
    assert dataset.skipped == Counter(missing_image=1)


def test_the_held_out_set_takes_only_usable_records(processor: VLProcessor, image_root: Path) -> None:
    from training.data.sources import SourceConversations, _holdout
    from training.recipe import DataSource

    conversations = [conversation("red.png"), conversation("blue.png"), conversation("red.png"),
                     conversation("missing.png"), conversation("corrupt.jpg")]  # fmt: skip
    read = SourceConversations(DataSource(reader="x", name="src"), conversations, image_root)
    kept, held = _holdout(read, 2, processor, None)
    assert [c.image_path for c in held] == ["blue.png", "red.png"]  # the last two usable ones, in order
    assert [c.image_path for c in kept] == ["red.png", "missing.png", "corrupt.jpg"]  # skipped later, as usual
    with pytest.raises(ValueError, match="has only 2 usable conversations to hold out"):
        _holdout(read, 3, processor, None)


def test_a_literal_image_token_or_a_decompression_bomb_is_skipped_and_counted(
    processor: VLProcessor, image_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (64, 64)).save(image_root / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x the limit: PIL refuses to decode
    conversations = [
        conversation("red.png", vqa_turn("What does <image> mean in this text?", "a tag")),
        conversation("huge.png"),
        conversation("blue.png"),
    ]
    dataset = ConversationDataset(conversations, image_root, processor)
    assert dataset[0]["input_ids"] == dataset[2]["input_ids"]  # both bad records yield the next usable one
    dataset.validate()
    assert dataset.skipped == Counter(image_token_in_text=1, corrupt_image=1)
