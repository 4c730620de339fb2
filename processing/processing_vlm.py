"""Processor of Pythia-VL / Mamba-VL: images -> pixel values, text with ``<image>`` -> token ids in the paper's layout.

Sequence layout (the paper's, identical for both backbones): a boundary marker, then each row of patches followed by a
row separator, the last separator replaced by the boundary marker (``###`` and ``&&`` in the GPT-NeoX vocabulary), then
the instruction, then the answer. Mamba has no positions, so the markers tell it where rows begin and end.

The image block is inserted at the token level rather than by expanding the string, so that the markers can never be
merged by BPE with the text around them and the block is always exactly ``layout_length`` tokens long.

Conversations follow one format, shared by :meth:`VLProcessor.apply_chat_template` and
:meth:`VLProcessor.build_training_example`: turns are joined by a newline and every assistant turn ends with the
tokenizer's eos token. Training labels keep only the assistant tokens (answer + eos); everything else is -100.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import BatchFeature, ProcessorMixin
from transformers.utils import PROCESSOR_NAME

from .image_processing_vlm import VLImageProcessor
from .layout import (
    BOUNDARY_TOKEN,
    IGNORE_INDEX,
    IMAGE_TOKEN,
    ROW_SEPARATOR_TOKEN,
    image_block_ids,
    move_instruction_first,
)

# Turns joined by "\n"; each assistant turn closed by eos. `{% generation %}` marks the assistant tokens so that
# transformers' `return_assistant_tokens_mask` also works on the rendered text.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if not loop.first %}{{ '\\n' }}{% endif -%}"
    "{%- if message['content'] is string -%}{%- set parts = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}{%- set parts = message['content'] -%}{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{% generation %}"
    "{%- for part in parts -%}{%- if part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}{%- endfor -%}"
    "{{ eos_token }}{% endgeneration %}"
    "{%- else -%}"
    "{%- for part in parts -%}"
    "{%- if part['type'] == 'image' -%}{{ '<image>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '\\n' }}{%- endif -%}"
)


class VLProcessor(ProcessorMixin):
    r"""
    Processor of Pythia-VL and Mamba-VL: a :class:`VLImageProcessor` and a tokenizer.

    Args:
        image_processor: the image processor.
        tokenizer: a tokenizer in which `image_token`, `boundary_token` and `row_separator_token` are single tokens.
        image_grid_size (`int`): patches per image side (24 for EVA-02-L/14 at 336 px).
        image_layout (`str`): `"rows"` (the paper) or `"flat"` (patch placeholders only).
        instruction_first (`bool`): the paper's task-aware encoding (first instruction line before the image).
        image_token / boundary_token / row_separator_token (`str`): the placeholder and the layout markers.
        chat_template (`str`, *optional*): defaults to the paper's format (turns joined by newlines).
    """

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        image_grid_size: int = 24,
        image_layout: str = "rows",
        instruction_first: bool = False,
        image_token: str = IMAGE_TOKEN,
        boundary_token: str = BOUNDARY_TOKEN,
        row_separator_token: str = ROW_SEPARATOR_TOKEN,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(instruction_first, bool):  # a "false" string from processor_config.json is truthy
            raise ValueError(f"instruction_first must be true or false, got {instruction_first!r}")
        if not isinstance(image_grid_size, int) or isinstance(image_grid_size, bool) or image_grid_size < 1:
            raise ValueError(f"image_grid_size must be a positive integer, got {image_grid_size!r}")
        self.image_grid_size = image_grid_size
        self.image_layout = image_layout
        self.instruction_first = instruction_first
        self.image_token = image_token
        self.boundary_token = boundary_token
        self.row_separator_token = row_separator_token
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHAT_TEMPLATE, **kwargs)
        self.image_token_id = self._single_token_id("image_token", image_token)
        self._block_ids = image_block_ids(
            grid=image_grid_size,
            layout=image_layout,
            image_token_id=self.image_token_id,
            boundary_token_id=self._single_token_id("boundary_token", boundary_token),
            row_separator_token_id=self._single_token_id("row_separator_token", row_separator_token),
        )

    def save_pretrained(self, save_directory: str | os.PathLike[str], *args: Any, **kwargs: Any) -> list[str]:
        """Save as transformers does; in a standalone folder (``config.json`` with an ``auto_map``) add this
        processor's and its image processor's ``auto_map`` too, so AutoProcessor finds them without the library."""
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        if declares_auto_map(save_directory) and (Path(save_directory) / PROCESSOR_CONFIG).is_file():
            add_processor_auto_map(save_directory)
        return saved

    def _single_token_id(self, name: str, token: str) -> int:
        """Return the id of a token that must be one vocabulary entry, or raise naming it."""
        ids = self.tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1 or ids[0] == self.tokenizer.unk_token_id:
            raise ValueError(
                f"{name}={token!r} must be a single token of the tokenizer, but it encodes to {ids}. "
                "Add it with `tokenizer.add_tokens` (or `add_special_tokens`) first."
            )
        return ids[0]

    @property
    def image_block_ids(self) -> list[int]:
        """Token ids that replace one ``<image>`` placeholder (markers and patch placeholders)."""
        return list(self._block_ids)

    @property
    def model_input_names(self) -> list[str]:
        """Inputs the model consumes (tokenizer's plus ``pixel_values``)."""
        return list(dict.fromkeys([*self.tokenizer.model_input_names, "pixel_values"]))

    # ----------------------------------------------------------------------------------------------------------
    # Inference / generic call
    # ----------------------------------------------------------------------------------------------------------
    def __call__(
        self,
        images: Any = None,
        text: str | Sequence[str] | None = None,
        *,
        padding: bool | str = True,
        truncation: bool = False,
        max_length: int | None = None,
        padding_side: str = "left",
        return_tensors: str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """
        Tokenize `text` (each ``<image>`` expanded into the image block) and preprocess `images`.

        A batch is padded on the left by default, as generation needs (right padding would put pad tokens between a
        shorter prompt and its answer); training examples come from :meth:`build_training_example` and the collator.
        `images` is one flat list in order of the placeholders, or one list per text (then each text's placeholders
        must match its own list).

        Raises ``ValueError`` when the number of ``<image>`` placeholders differs from the number of images, and when
        `max_length` would cut through an image block (text after the last image is truncated instead).
        """
        if text is None:
            if images is None:
                raise ValueError("VLProcessor needs `text`, `images`, or both.")
            return BatchFeature(self.image_processor(images, return_tensors=return_tensors))
        texts = [text] if isinstance(text, str) else list(text)
        self._check_images_per_sample(texts, images)
        image_list = _flatten_images(images)
        self._check_image_count(texts, image_list)
        sequences = [self.encode_with_images(t, max_length=max_length if truncation else None) for t in texts]
        encoded = self.tokenizer.pad(
            {"input_ids": sequences},
            padding=padding,
            max_length=max_length if padding == "max_length" else None,
            padding_side=padding_side,
            return_tensors=return_tensors,
        )
        data = dict(encoded)
        if image_list:
            data.update(self.image_processor(image_list, return_tensors=return_tensors))
        return BatchFeature(data, tensor_type=return_tensors)

    def _check_images_per_sample(self, texts: Sequence[str], images: Any) -> None:
        """With one image list per text, each text's placeholders must match its own list (no image moves over)."""
        if not isinstance(images, (list, tuple)) or not any(isinstance(i, (list, tuple)) for i in images):
            return
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} image lists were given for {len(texts)} texts; give one list per text")
        for index, (text, group) in enumerate(zip(texts, images, strict=True)):
            count = len(group) if isinstance(group, (list, tuple)) else 1
            if text.count(self.image_token) != count:
                raise ValueError(
                    f"text {index} holds {text.count(self.image_token)} {self.image_token!r} placeholder(s) but its "
                    f"image list has {count} image(s)"
                )

    def _check_image_count(self, texts: Sequence[str], images: Sequence[Any]) -> None:
        """Raise if the ``<image>`` placeholders and the images do not pair up one to one."""
        n_placeholders = sum(t.count(self.image_token) for t in texts)
        if n_placeholders != len(images):
            raise ValueError(
                f"The text holds {n_placeholders} {self.image_token!r} placeholder(s) but {len(images)} image(s) "
                "were given; each image needs exactly one placeholder."
            )

    def encode_with_images(self, text: str, max_length: int | None = None) -> list[int]:
        """Token ids of one text, each ``<image>`` replaced by the image block (never truncated through a block)."""
        if self.instruction_first:
            text = move_instruction_first(text, self.image_token)
        ids = self._encode_segments(text)
        if max_length is not None and len(ids) > max_length:
            self._check_cut(ids, max_length)
            ids = ids[:max_length]
        return ids

    def _encode_segments(self, text: str) -> list[int]:
        """Tokenize the text between placeholders and insert the image block's ids for each placeholder."""
        ids: list[int] = []
        for index, chunk in enumerate(text.split(self.image_token)):
            if index > 0:
                ids.extend(self._block_ids)
            if chunk:
                ids.extend(self.tokenizer.encode(chunk, add_special_tokens=False))
        return ids

    def _check_cut(self, ids: list[int], max_length: int) -> None:
        """Raise if keeping the first `max_length` ids would cut through an image block."""
        image_positions = [i for i, token in enumerate(ids) if token == self.image_token_id]
        block_end = image_positions[-1] + 1 + self._trailing_markers() if image_positions else 0
        if block_end > max_length:
            raise ValueError(
                f"max_length={max_length} would cut through an image block ending at token {block_end}; "
                "raise max_length or drop this sample."
            )

    # ----------------------------------------------------------------------------------------------------------
    # Training
    # ----------------------------------------------------------------------------------------------------------
    def build_training_example(
        self,
        messages: Sequence[dict[str, Any]],
        images: Any = None,
        max_length: int | None = None,
    ) -> dict[str, Any]:
        """
        Tokenize a conversation for training: ``input_ids`` and ``labels`` (-100 except on assistant answers + eos).

        The ids equal those of ``processor(text=processor.apply_chat_template(messages))``. With `max_length`, text
        turns after the last image are truncated; a conversation whose image block does not fit raises.
        Returns lists (and ``pixel_values`` as a tensor when `images` are given).
        """
        image_list = _flatten_images(images)
        newline = self.tokenizer.encode("\n", add_special_tokens=False)
        input_ids: list[int] = []
        labels: list[int] = []
        moved = not self.instruction_first  # task-aware encoding moves the first image's instruction only
        for index, message in enumerate(messages):
            if index > 0:  # the turn separator is never a target
                input_ids.extend(newline)
                labels.extend([IGNORE_INDEX] * len(newline))
            text = _message_text(message, self.image_token)
            if not moved and self.image_token in text:
                text, moved = move_instruction_first(text, self.image_token), True
            if message["role"] == "assistant":
                ids = self._encode_segments(text + self.tokenizer.eos_token)
                labels.extend(ids)
            else:
                ids = self._encode_segments(text)
                labels.extend([IGNORE_INDEX] * len(ids))
            input_ids.extend(ids)
        self._check_image_count(["".join(_message_text(m, self.image_token) for m in messages)], image_list)
        input_ids, labels = self._truncate_example(input_ids, labels, max_length)
        example: dict[str, Any] = {"input_ids": input_ids, "labels": labels}
        if image_list:
            example["pixel_values"] = self.image_processor(image_list, return_tensors="pt")["pixel_values"]
        return example

    def _truncate_example(
        self, input_ids: list[int], labels: list[int], max_length: int | None
    ) -> tuple[list[int], list[int]]:
        """Cut text after the last image block to `max_length`; raise if the cut would enter an image block."""
        if max_length is None or len(input_ids) <= max_length:
            return input_ids, labels
        self._check_cut(input_ids, max_length)
        return input_ids[:max_length], labels[:max_length]

    def _trailing_markers(self) -> int:
        """Number of marker tokens after the last patch placeholder of a block."""
        last_patch = max(i for i, token in enumerate(self._block_ids) if token == self.image_token_id)
        return len(self._block_ids) - 1 - last_patch


def _message_text(message: dict[str, Any], image_token: str) -> str:
    """Render one message's content parts as text, images as the placeholder."""
    content = message["content"]
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part["type"] == "image":
            parts.append(image_token)
        elif part["type"] == "text":
            parts.append(part["text"])
        else:
            raise ValueError(f"Unsupported content type {part['type']!r} in message; expected 'image' or 'text'.")
    return "".join(parts)


def _flatten_images(images: Any) -> list[Any]:
    """Accept one image, a list, or a list of lists (one per sample); return a flat list."""
    if images is None:
        return []
    if not isinstance(images, (list, tuple)):
        return [images]
    flat: list[Any] = []
    for item in images:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    return flat


def _flat_name(cls: type) -> str:
    """``file.Class`` of a class in a standalone folder, where each module of the library is one flat file."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def declares_auto_map(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder/config.json`` has an ``auto_map``: the folder is standalone and must stay complete."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("auto_map"))


def add_processor_auto_map(folder: str | os.PathLike[str]) -> None:
    """Point ``AutoProcessor`` (top level of the processor config) and ``AutoImageProcessor`` (its nested
    ``image_processor`` entry) at the flat code files; without the first, AutoProcessor returns the bare tokenizer."""
    path = Path(folder) / PROCESSOR_CONFIG
    data = json.loads(path.read_text(encoding="utf-8"))
    data["auto_map"] = {**data.get("auto_map", {}), "AutoProcessor": _flat_name(VLProcessor)}
    if isinstance(data.get("image_processor"), dict):
        nested = data["image_processor"]
        nested["auto_map"] = {**nested.get("auto_map", {}), "AutoImageProcessor": _flat_name(VLImageProcessor)}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


PROCESSOR_CONFIG = PROCESSOR_NAME
"""The processor's config file (``processor_config.json``), which holds the image processor's settings too."""

__all__ = ["CHAT_TEMPLATE", "PROCESSOR_CONFIG", "VLProcessor", "add_processor_auto_map", "declares_auto_map"]
