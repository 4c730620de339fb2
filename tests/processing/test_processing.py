"""The image block layout, the multimodal processor (tokens, truncation, padding, training examples, serialisation)
and the image processor (modes, normalisation, unreadable files)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoProcessor, PreTrainedTokenizerFast
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from processing import (
    IGNORE_INDEX,
    VLImageProcessor,
    VLProcessor,
    image_block_ids,
    load_image,
    move_instruction_first,
    to_rgb,
)
from training.synthetic.tokenizer import train_synthetic_tokenizer
from training.templates import CAPTION_PROMPT

P, B, S = 7, 8, 9  # placeholder, boundary, row separator ids for the pure layout tests
MEAN = np.array(OPENAI_CLIP_MEAN, dtype=np.float32)
STD = np.array(OPENAI_CLIP_STD, dtype=np.float32)
WHITE = (1.0 - MEAN) / STD
BLACK = (0.0 - MEAN) / STD


def _expected_rows(grid: int) -> list[int]:
    """The paper's layout written out position by position: B, then rows of P each followed by S, last S -> B."""
    length = 1 + grid * (grid + 1)
    ids = [P] * length
    ids[0] = B
    for row in range(grid):
        ids[(row + 1) * (grid + 1)] = S  # right after the row's `grid` patches
    ids[-1] = B
    return ids


def _pixels(output: Any) -> np.ndarray:
    return np.asarray(output["pixel_values"][0], dtype=np.float32)  # (3, H, W)


def _channel_values(pixels: np.ndarray) -> np.ndarray:
    """The single value of each channel of a uniform image (asserting it is uniform)."""
    flat = pixels.reshape(3, -1)
    np.testing.assert_allclose(flat, flat[:, :1].repeat(flat.shape[1], axis=1), atol=1e-6)
    return flat[:, 0]


@pytest.fixture
def image(synthetic_dataset: Any) -> Image.Image:
    return synthetic_dataset[0]["image"]


@pytest.fixture
def images(synthetic_dataset: Any) -> list[Image.Image]:
    return [synthetic_dataset[i]["image"] for i in range(0, 9, 3)]


def _enc(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


# ---------------------------------------------------------------------------------------------------------------------
# Layout (pure functions)
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("grid", [1, 2, 3, 4, 7, 24])
def test_rows_layout_positions(grid: int) -> None:
    ids = image_block_ids(grid, "rows", P, B, S)
    assert len(ids) == 1 + grid * (grid + 1)
    assert ids == _expected_rows(grid)
    assert ids[0] == B
    assert ids[-1] == B
    assert ids.count(P) == grid * grid
    assert ids.count(S) == grid - 1  # a separator after every row but the last
    assert ids.count(B) == 2
    separators = [i for i, t in enumerate(ids) if t == S]
    assert separators == [(row + 1) * (grid + 1) for row in range(grid - 1)]
    for row in range(grid):
        start = 1 + row * (grid + 1)
        assert ids[start : start + grid] == [P] * grid


def test_rows_layout_of_the_paper_has_601_positions() -> None:
    assert len(image_block_ids(24, "rows", P, B, S)) == 601
    assert image_block_ids(2, "rows", P, B, S) == [B, P, P, S, P, P, B]


@pytest.mark.parametrize("grid", [1, 4, 24])
def test_flat_layout_is_patches_only(grid: int) -> None:
    assert image_block_ids(grid, "flat", P, B, S) == [P] * (grid * grid)


@pytest.mark.parametrize(("grid", "layout", "match"), [(4, "grid", "image_layout"), (0, "rows", "image_grid_size")])
def test_invalid_layout_arguments(grid: int, layout: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        image_block_ids(grid, layout, P, B, S)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "<image>Locate the region that is described by:\nthe red circle.",
            "Locate the region that is described by:\n<image>\nthe red circle.",
        ),
        ("Hi <image>Instruction\nrest\nmore", "Hi Instruction\n<image>\nrest\nmore"),
        ("<image>Only an instruction", "Only an instruction\n<image>"),
        ("no image at all\nsecond line", "no image at all\nsecond line"),
        ("text then image<image>", "text then image<image>"),
        ("<image>first\nsecond <image>third\nfourth", "first\n<image>\nsecond <image>third\nfourth"),
    ],
)
def test_move_instruction_first(text: str, expected: str) -> None:
    assert move_instruction_first(text, "<image>") == expected


# ---------------------------------------------------------------------------------------------------------------------
# Processor: tokens
# ---------------------------------------------------------------------------------------------------------------------
def test_processor_block_uses_the_marker_tokens(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast) -> None:
    image_id, boundary_id, separator_id = tokenizer.convert_tokens_to_ids(["<image>", "###", "&&"])
    assert processor.image_token_id == image_id == 1
    assert processor.image_block_ids == image_block_ids(4, "rows", image_id, boundary_id, separator_id)
    assert len(processor.image_block_ids) == 21
    assert "pixel_values" in processor.model_input_names
    assert "input_ids" in processor.model_input_names


def test_image_placeholder_is_expanded_at_token_level(
    processor: VLProcessor, tokenizer: PreTrainedTokenizerFast, image: Image.Image
) -> None:
    block = processor.image_block_ids
    # Text glued to the placeholder (even marker-like text) never merges with the block.
    out = processor(images=[image], text="##<image>&& is here", return_tensors="pt")
    assert out["input_ids"][0].tolist() == _enc(tokenizer, "##") + block + _enc(tokenizer, "&& is here")
    assert out["attention_mask"][0].tolist() == [1] * out["input_ids"].shape[1]
    assert tuple(out["pixel_values"].shape) == (1, 3, 32, 32)


def test_two_images_give_two_blocks(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast, images: list) -> None:
    out = processor(images=images[:2], text="<image>and<image>", return_tensors="pt")
    block = processor.image_block_ids
    assert out["input_ids"][0].tolist() == block + _enc(tokenizer, "and") + block
    assert (out["input_ids"] == processor.image_token_id).sum() == 2 * 16
    assert tuple(out["pixel_values"].shape) == (2, 3, 32, 32)


def test_flat_layout_processor(image_processor: VLImageProcessor, tokenizer: PreTrainedTokenizerFast, image) -> None:
    processor = VLProcessor(image_processor, tokenizer, image_grid_size=3, image_layout="flat")
    ids = processor(images=[image], text="<image>x")["input_ids"][0]
    assert ids == [processor.image_token_id] * 9 + _enc(tokenizer, "x")


def test_text_only_and_images_only(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast, images: list) -> None:
    out = processor(text="no image here", return_tensors="pt")
    assert out["input_ids"][0].tolist() == _enc(tokenizer, "no image here")
    assert "pixel_values" not in out
    out = processor(images=images, return_tensors="pt")
    assert tuple(out["pixel_values"].shape) == (3, 3, 32, 32)
    assert "input_ids" not in out
    with pytest.raises(ValueError):
        processor()


def test_instruction_first_moves_only_the_first_instruction_line(
    image_processor: VLImageProcessor, tokenizer: PreTrainedTokenizerFast, image: Image.Image
) -> None:
    processor = VLProcessor(image_processor, tokenizer, image_grid_size=4, instruction_first=True)
    text = "<image>Locate the region that is described by:\nthe small red circle."
    ids = processor(images=[image], text=text)["input_ids"][0]
    instruction = _enc(tokenizer, "Locate the region that is described by:\n")
    expression = _enc(tokenizer, "\nthe small red circle.")
    assert ids == instruction + processor.image_block_ids + expression
    # Without the option the instruction stays after the image.
    plain = VLProcessor(image_processor, tokenizer, image_grid_size=4)
    assert plain(images=[image], text=text)["input_ids"][0] == plain.image_block_ids + _enc(
        tokenizer, "Locate the region that is described by:\nthe small red circle."
    )


@pytest.mark.parametrize(
    ("text", "n_images"),
    [
        ("<image>one placeholder", 2),  # more images than placeholders
        ("<image>two<image>placeholders", 1),  # fewer
        ("no placeholder", 1),
        ("<image>", 0),
    ],
)
def test_placeholder_image_count_mismatch_raises(processor: VLProcessor, images: list, text: str, n_images: int):
    with pytest.raises(ValueError, match="placeholder"):
        processor(images=images[:n_images] or None, text=text)


def test_batched_images_as_list_of_lists(processor: VLProcessor, images: list) -> None:
    out = processor(images=[[images[0]], [images[1], images[2]]], text=["<image>a", "<image>b<image>c"])
    assert len(out["pixel_values"]) == 3
    with pytest.raises(ValueError, match="placeholder"):
        processor(images=[[images[0]], [images[1]]], text=["<image>a", "<image>b<image>c"])


# ---------------------------------------------------------------------------------------------------------------------
# Processor: truncation (the tokenizer warns that `max_length` does not pad with padding=True, which is expected)
# ---------------------------------------------------------------------------------------------------------------------
NO_PAD_WARNING = pytest.mark.filterwarnings("ignore:`max_length` is ignored when `padding`=`True`")


@NO_PAD_WARNING
def test_truncation_cuts_text_after_the_image(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast, image):
    text = "<image>" + CAPTION_PROMPT
    full = processor.image_block_ids + _enc(tokenizer, CAPTION_PROMPT)
    assert len(full) > 24
    out = processor(images=[image], text=text, truncation=True, max_length=24)
    assert out["input_ids"][0] == full[:24]
    # Exactly the block still fits.
    out = processor(images=[image], text=text, truncation=True, max_length=21)
    assert out["input_ids"][0] == processor.image_block_ids
    # Without truncation, max_length does not cut.
    assert processor(images=[image], text=text, max_length=24)["input_ids"][0] == full


@NO_PAD_WARNING
@pytest.mark.parametrize("max_length", [1, 10, 20])
def test_truncation_never_cuts_an_image_block(processor: VLProcessor, image: Image.Image, max_length: int) -> None:
    with pytest.raises(ValueError, match="image block"):
        processor(images=[image], text="<image>" + CAPTION_PROMPT, truncation=True, max_length=max_length)


@NO_PAD_WARNING
def test_truncation_raises_when_text_before_the_image_is_too_long(processor: VLProcessor, image) -> None:
    with pytest.raises(ValueError, match="image block"):
        processor(images=[image], text=CAPTION_PROMPT + "<image>", truncation=True, max_length=22)


@NO_PAD_WARNING
def test_truncation_of_text_only(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast) -> None:
    ids = processor(text=CAPTION_PROMPT, truncation=True, max_length=3)["input_ids"][0]
    assert ids == _enc(tokenizer, CAPTION_PROMPT)[:3]


# ---------------------------------------------------------------------------------------------------------------------
# Processor: padding
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_sides(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast, images: list, side: str) -> None:
    texts = ["<image>Short?\n", "<image>" + CAPTION_PROMPT + "\n"]
    singles = [processor(images=[im], text=t)["input_ids"][0] for im, t in zip(images, texts, strict=False)]
    out = processor(images=images[:2], text=texts, padding_side=side, return_tensors="pt")
    ids, mask = out["input_ids"], out["attention_mask"]
    width = max(len(s) for s in singles)
    assert tuple(ids.shape) == (2, width)
    for row, single in enumerate(singles):
        n_pad = width - len(single)
        real = ids[row, n_pad:] if side == "left" else ids[row, : len(single)]
        pads = ids[row, :n_pad] if side == "left" else ids[row, len(single) :]
        assert real.tolist() == single
        assert pads.tolist() == [tokenizer.pad_token_id] * n_pad
        expected_mask = [0] * n_pad + [1] * len(single) if side == "left" else [1] * len(single) + [0] * n_pad
        assert mask[row].tolist() == expected_mask
    assert mask[1].all()  # the longest sample is not padded
    assert tuple(out["pixel_values"].shape) == (2, 3, 32, 32)


def test_default_padding_is_left_and_to_max_length(processor: VLProcessor, images: list) -> None:
    out = processor(images=images[:2], text=["<image>a", "<image>abc abc"], padding="max_length", max_length=40)
    assert [len(ids) for ids in out["input_ids"]] == [40, 40]
    assert out["attention_mask"][0][0] == 0 and out["attention_mask"][0][-1] == 1  # ready for generate
    right = processor(images=images[:2], text=["<image>a", "<image>abc abc"], padding_side="right")
    assert right["attention_mask"][0][-1] == 0
    unpadded = processor(images=images[:2], text=["<image>a", "<image>abc abc"], padding=False)
    assert len(unpadded["input_ids"][0]) < len(unpadded["input_ids"][1])


def test_one_image_list_per_text_must_match_each_text(processor: VLProcessor, images: list) -> None:
    out = processor(
        images=[[images[0]], [images[1], images[2]]], text=["<image>a", "<image><image>b"], return_tensors="pt"
    )
    assert out["pixel_values"].shape[0] == 3
    with pytest.raises(ValueError, match=r"text 0 holds 2 '<image>' placeholder\(s\) but its image list has 1"):
        processor(images=[[images[0]], [images[1], images[2]]], text=["<image><image>a", "<image>b"])  # same total
    with pytest.raises(ValueError, match="2 image lists were given for 1 texts"):
        processor(images=[[images[0]], [images[1]]], text=["<image><image>a"])


# ---------------------------------------------------------------------------------------------------------------------
# Chat template and training examples
# ---------------------------------------------------------------------------------------------------------------------
def _conversation(synthetic_dataset: Any, rows: list[int], *, string_content: bool = False) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for index in rows:
        row = synthetic_dataset[index]
        if string_content:
            messages.append({"role": "user", "content": "<image>" + row["prompt"]})
        else:
            content = [{"type": "image"}, {"type": "text", "text": row["prompt"]}]
            messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": row["answer"]}]})
    return messages


def test_chat_template_format(processor: VLProcessor, synthetic_dataset: Any) -> None:
    messages = _conversation(synthetic_dataset, [0])
    row = synthetic_dataset[0]
    assert processor.apply_chat_template(messages) == f"<image>{row['prompt']}\n{row['answer']}<|endoftext|>"
    prompt = processor.apply_chat_template(messages[:1], add_generation_prompt=True)
    assert prompt == f"<image>{row['prompt']}\n"


def _assistant_spans(processor: VLProcessor, messages: list[dict[str, Any]]) -> list[tuple[int, list[int]]]:
    """(start, ids) of each assistant turn (answer + eos), rebuilt turn by turn from the documented format."""
    tokenizer = processor.tokenizer
    position, spans = 0, []
    for index, message in enumerate(messages):
        if index > 0:
            position += len(_enc(tokenizer, "\n"))
        parts = message["content"]
        text = parts if isinstance(parts, str) else "".join(p.get("text", "<image>") for p in parts)
        if message["role"] == "assistant":
            ids = [*_enc(tokenizer, text), tokenizer.eos_token_id]
            spans.append((position, ids))
        else:
            ids = processor.encode_with_images(text)
        position += len(ids)
    return spans


@pytest.mark.parametrize(("rows", "string_content"), [([0], False), ([1], True), ([0, 4, 8], False)])
def test_training_example_labels_and_ids(
    processor: VLProcessor, synthetic_dataset: Any, rows: list[int], string_content: bool
) -> None:
    messages = _conversation(synthetic_dataset, rows, string_content=string_content)
    images = [synthetic_dataset[i]["image"] for i in rows]
    example = processor.build_training_example(messages, images=images)
    input_ids, labels = example["input_ids"], example["labels"]
    assert len(input_ids) == len(labels)

    # The same ids as the inference path on the rendered conversation.
    rendered = processor(images=images, text=processor.apply_chat_template(messages))
    assert input_ids == rendered["input_ids"][0]
    np.testing.assert_array_equal(np.asarray(example["pixel_values"]), np.asarray(rendered["pixel_values"]))
    assert tuple(example["pixel_values"].shape) == (len(rows), 3, 32, 32)

    # -100 everywhere except the assistant answers and their eos, which are labelled with themselves.
    expected = [IGNORE_INDEX] * len(input_ids)
    for start, ids in _assistant_spans(processor, messages):
        expected[start : start + len(ids)] = ids
        assert input_ids[start : start + len(ids)] == ids
    assert labels == expected
    labelled = [t for t in labels if t != IGNORE_INDEX]
    answers = [synthetic_dataset[i]["answer"] for i in rows]
    assert processor.tokenizer.decode(labelled) == "<|endoftext|>".join(answers) + "<|endoftext|>"
    assert labelled.count(processor.tokenizer.eos_token_id) == len(rows)
    # No image position, marker or prompt token is ever a target.
    assert all(label == IGNORE_INDEX for label, t in zip(labels, input_ids, strict=True) if t == 1)
    assert labels[: len(processor.image_block_ids)] == [IGNORE_INDEX] * len(processor.image_block_ids)


def test_training_example_without_images(processor: VLProcessor, tokenizer: PreTrainedTokenizerFast) -> None:
    messages = [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"}]
    example = processor.build_training_example(messages)
    assert "pixel_values" not in example
    assert example["input_ids"] == [*_enc(tokenizer, "Say yes.\nyes"), tokenizer.eos_token_id]
    n_prompt = len(_enc(tokenizer, "Say yes.\n"))
    assert example["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert example["labels"][n_prompt:] == example["input_ids"][n_prompt:]


def test_training_example_with_instruction_first(
    image_processor: VLImageProcessor, tokenizer: PreTrainedTokenizerFast, synthetic_dataset: Any
) -> None:
    processor = VLProcessor(image_processor, tokenizer, image_grid_size=4, instruction_first=True)
    row = next(r for r in synthetic_dataset if r["task"] == "grounding")
    messages = _conversation([row], [0])
    example = processor.build_training_example(messages, images=[row["image"]])
    rendered = processor(images=[row["image"]], text=processor.apply_chat_template(messages))
    assert example["input_ids"] == rendered["input_ids"][0]
    instruction, expression = row["prompt"].split("\n", 1)
    expected_start = (
        _enc(tokenizer, instruction + "\n") + processor.image_block_ids + _enc(tokenizer, "\n" + expression)
    )
    assert example["input_ids"][: len(expected_start)] == expected_start


def test_training_example_with_instruction_first_multi_image_matches_rendered_text(
    image_processor: VLImageProcessor, tokenizer: PreTrainedTokenizerFast, synthetic_dataset: Any
) -> None:
    processor = VLProcessor(image_processor, tokenizer, image_grid_size=4, instruction_first=True)
    messages = _conversation(synthetic_dataset, [0, 3])
    images = [synthetic_dataset[0]["image"], synthetic_dataset[3]["image"]]
    example = processor.build_training_example(messages, images=images)
    rendered = processor(images=images, text=processor.apply_chat_template(messages))
    assert example["input_ids"] == rendered["input_ids"][0]


def test_training_example_truncation(processor: VLProcessor, synthetic_dataset: Any) -> None:
    messages = _conversation(synthetic_dataset, [0])
    image = [synthetic_dataset[0]["image"]]
    full = processor.build_training_example(messages, images=image)
    cut = processor.build_training_example(messages, images=image, max_length=len(full["input_ids"]) - 5)
    assert cut["input_ids"] == full["input_ids"][:-5]
    assert cut["labels"] == full["labels"][:-5]
    assert processor.build_training_example(messages, images=image, max_length=21)["input_ids"] == (
        processor.image_block_ids
    )
    with pytest.raises(ValueError, match="image block"):
        processor.build_training_example(messages, images=image, max_length=20)


def test_training_example_checks_images_and_content(processor: VLProcessor, synthetic_dataset: Any) -> None:
    messages = _conversation(synthetic_dataset, [0])
    with pytest.raises(ValueError, match="placeholder"):
        processor.build_training_example(messages)
    with pytest.raises(ValueError, match="placeholder"):
        processor.build_training_example(messages, images=[synthetic_dataset[0]["image"]] * 2)
    bad = [{"role": "user", "content": [{"type": "video"}]}]
    with pytest.raises(ValueError, match="video"):
        processor.build_training_example(bad)


# ---------------------------------------------------------------------------------------------------------------------
# Processor: serialisation and construction
# ---------------------------------------------------------------------------------------------------------------------
def test_save_and_auto_processor_round_trip(
    image_processor: VLImageProcessor, tokenizer: PreTrainedTokenizerFast, images: list, tmp_path: Path
) -> None:
    import modeling_vlm  # noqa: F401  (registers VLProcessor / VLImageProcessor with the Auto classes)

    original = VLProcessor(image_processor, tokenizer, image_grid_size=3, image_layout="flat", instruction_first=True)
    original.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "VLProcessor"

    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is VLProcessor
    assert type(loaded.image_processor) is VLImageProcessor
    assert (loaded.image_grid_size, loaded.image_layout, loaded.instruction_first) == (3, "flat", True)
    assert loaded.image_block_ids == original.image_block_ids == [1] * 9
    assert dict(loaded.image_processor.size) == dict(image_processor.size)

    texts = ["<image>Answer:\nyes", "<image>" + CAPTION_PROMPT + "\nmore"]
    a = original(images=images[:2], text=texts, padding_side="left", return_tensors="pt")
    b = loaded(images=images[:2], text=texts, padding_side="left", return_tensors="pt")
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    assert loaded.apply_chat_template(messages, add_generation_prompt=True) == "<image>hi\n"

    image_only = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(image_only) is VLImageProcessor
    assert torch.equal(
        image_only(images[0], return_tensors="pt")["pixel_values"],
        image_processor(images[0], return_tensors="pt")["pixel_values"],
    )


@pytest.mark.parametrize(
    ("missing", "field"),
    [("&&", "row_separator_token"), ("###", "boundary_token"), ("<image>", "image_token")],
)
def test_tokenizer_without_a_marker_token_raises(
    image_processor: VLImageProcessor, synthetic_dataset: Any, missing: str, field: str
) -> None:
    extra = [t for t in ("<image>", "###", "&&") if t != missing]
    corpus = [row["prompt"] for row in synthetic_dataset.select_columns(["prompt"])]
    tokenizer = train_synthetic_tokenizer(corpus, extra_tokens=extra, vocab_size=300)
    with pytest.raises(ValueError, match=field) as info:
        VLProcessor(image_processor, tokenizer, image_grid_size=4)
    assert repr(missing) in str(info.value)


def test_custom_marker_not_in_vocabulary_raises(image_processor: VLImageProcessor, tokenizer) -> None:
    with pytest.raises(ValueError, match="boundary_token='@@@@'"):
        VLProcessor(image_processor, tokenizer, image_grid_size=4, boundary_token="@@@@")
    with pytest.raises(ValueError, match="image_layout"):
        VLProcessor(image_processor, tokenizer, image_grid_size=4, image_layout="spiral")


# ---------------------------------------------------------------------------------------------------------------------
# Image processor
# ---------------------------------------------------------------------------------------------------------------------
def test_output_shape_and_resize_without_padding(image_processor: VLImageProcessor) -> None:
    out = image_processor(
        [Image.new("RGB", (50, 20), "white"), Image.new("RGB", (7, 90), "black")], return_tensors="pt"
    )
    assert tuple(out["pixel_values"].shape) == (2, 3, 32, 32)
    assert out["pixel_values"].dtype == torch.float32
    # Whole image resized (no aspect-ratio padding): every pixel is the image's colour.
    np.testing.assert_allclose(_channel_values(np.asarray(out["pixel_values"][0])), WHITE, rtol=1e-5)
    np.testing.assert_allclose(_channel_values(np.asarray(out["pixel_values"][1])), BLACK, rtol=1e-5)


def test_normalisation_values(image_processor: VLImageProcessor) -> None:
    white = _channel_values(_pixels(image_processor(Image.new("RGB", (32, 32), (255, 255, 255)))))
    np.testing.assert_allclose(white, WHITE, rtol=1e-5)
    np.testing.assert_allclose(white, [1.9303, 2.0749, 2.1459], atol=1e-4)
    colour = _channel_values(_pixels(image_processor(Image.new("RGB", (32, 32), (51, 102, 204)))))
    np.testing.assert_allclose(colour, (np.array([51, 102, 204]) / 255.0 - MEAN) / STD, rtol=1e-5)


def test_default_size_is_the_papers_336(image: Image.Image) -> None:
    out = VLImageProcessor()(image, return_tensors="pt")
    assert tuple(out["pixel_values"].shape) == (1, 3, 336, 336)


def _colours(image: Image.Image) -> set[tuple[int, ...]]:
    """The distinct RGB values of an image."""
    return {tuple(int(c) for c in pixel) for pixel in np.asarray(image).reshape(-1, 3)}


def _i16(value: int) -> Image.Image:
    image = Image.new("I;16", (8, 8), value)
    assert image.mode == "I;16"
    assert image.getpixel((0, 0)) == value
    return image


def _palette(rgb: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (8, 8), rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)


def _transparent_palette() -> Image.Image:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    ("make", "rgb"),
    [
        (lambda: Image.new("L", (8, 8), 255), (255, 255, 255)),
        (lambda: Image.new("L", (8, 8), 0), (0, 0, 0)),
        (lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
        (lambda: _palette((200, 30, 40)), (200, 30, 40)),
        (_transparent_palette, (255, 255, 255)),
        (lambda: Image.new("RGBA", (8, 8), (200, 30, 40, 0)), (255, 255, 255)),  # transparent -> white
        (lambda: Image.new("RGBA", (8, 8), (200, 30, 40, 255)), (200, 30, 40)),
        (lambda: Image.new("LA", (8, 8), (0, 0)), (255, 255, 255)),
        (lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 0)), (255, 255, 255)),
        (lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 255)), (0, 0, 0)),
        (lambda: Image.new("CMYK", (8, 8), (255, 0, 0, 0)), (0, 255, 255)),
        (lambda: _i16(65535), (255, 255, 255)),
        (lambda: _i16(0), (0, 0, 0)),
        (lambda: _i16(32896), (128, 128, 128)),  # 32896 / 65535 * 255 = 128
    ],
)
def test_non_rgb_modes_convert(image_processor: VLImageProcessor, make: Any, rgb: tuple[int, int, int]) -> None:
    source = make()
    converted = to_rgb(source)
    assert converted.mode == "RGB"
    assert converted.size == source.size
    assert _colours(converted) == {rgb}
    values = _channel_values(_pixels(image_processor(source)))
    np.testing.assert_allclose(values, (np.array(rgb) / 255.0 - MEAN) / STD, rtol=1e-5, atol=1e-6)


def test_half_transparent_rgba_is_composited_on_white() -> None:
    converted = to_rgb(Image.new("RGBA", (4, 4), (0, 0, 0, 128)))
    (value,) = _colours(converted)
    assert all(126 <= channel <= 128 for channel in value)


def test_rgb_is_returned_unchanged(image: Image.Image) -> None:
    assert to_rgb(image) is image


def test_image_paths_are_loaded(image_processor: VLImageProcessor, image: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "scene.png"
    image.save(path)
    from_path = image_processor(str(path), return_tensors="pt")["pixel_values"]
    from_image = image_processor(image, return_tensors="pt")["pixel_values"]
    assert torch.equal(from_path, from_image)
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(image.convert("RGB")))


def test_processor_reads_a_grayscale_png_path(processor: VLProcessor, tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (20, 20), 255).save(path)
    out = processor(images=[path], text="<image>x", return_tensors="pt")
    np.testing.assert_allclose(_channel_values(np.asarray(out["pixel_values"][0])), WHITE, rtol=1e-5)


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("corrupt.png", b"this is not an image at all"),
        ("truncated.png", _png_bytes()[: len(_png_bytes()) // 2]),
        ("empty.jpg", b""),
    ],
)
def test_unreadable_image_raises_value_error_with_the_path(
    image_processor: VLImageProcessor, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=name) as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=name):
        image_processor(str(path))


def test_missing_image_raises_file_not_found_with_the_path(image_processor: VLImageProcessor, tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.png"
    with pytest.raises(FileNotFoundError) as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        image_processor(str(path))


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("I", 32896, 128),  # "I" is how PIL opens 16-bit PNG / TIFF: always the 16-bit range
        ("I", 65535, 255),
        ("I;16", 65535, 255),
        ("I", 0, 0),
        ("F", 0.5, 128),  # floats in [0, 1]
        ("F", 1.0, 255),
    ],
)
def test_wide_modes_keep_their_nominal_level(mode: str, value: float, expected: int) -> None:
    image = Image.new(mode, (4, 4), value)
    assert _colours(to_rgb(image)) == {(expected, expected, expected)}


def test_wide_modes_are_decided_by_mode_not_by_their_own_values() -> None:
    image = Image.new("I", (4, 4), 200)
    level = to_rgb(image).getpixel((1, 1))
    image.putpixel((0, 0), 300)  # one pixel above 255 used to rescale every other pixel (200 -> 1)
    assert to_rgb(image).getpixel((1, 1)) == level == (1, 1, 1)
    with pytest.raises(ValueError, match=r"mode 'F' image with samples in \[3, 3\]: expected \[0, 1\]"):
        to_rgb(Image.new("F", (2, 2), 3.0))
    with pytest.raises(ValueError, match=r"mode 'I' image .* expected \[0, 65535\]"):
        to_rgb(Image.new("I", (2, 2), -5))
    with pytest.raises(ValueError, match=r"empty image \(0x3\)"):
        to_rgb(Image.new("L", (0, 3)))


def test_arrays_and_tensors_are_decided_by_dtype(image_processor: VLImageProcessor) -> None:
    half = np.full((6, 5, 3), 0.5, dtype=np.float32)  # torchvision's convention: floats in [0, 1]
    from_float = image_processor(half, return_tensors="pt")["pixel_values"]
    from_uint8 = image_processor(np.full((6, 5, 3), 128, dtype=np.uint8), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(from_float, from_uint8)  # not rescaled by 1/255 a second time (black)
    chw = image_processor(torch.full((3, 6, 5), 0.5), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(chw, from_uint8)
    with pytest.raises(ValueError, match=r"float image values must lie in \[0, 1\] \(got \[255, 255\]\)"):
        image_processor(np.full((4, 4, 3), 255.0), return_tensors="pt")
    with pytest.raises(ValueError, match="dtype int64 is ambiguous"):
        image_processor(np.zeros((4, 4, 3), dtype=np.int64), return_tensors="pt")
    with pytest.raises(ValueError, match=r"empty image array \(shape \(0, 4, 3\)\)"):
        image_processor(np.zeros((0, 4, 3), dtype=np.uint8), return_tensors="pt")
