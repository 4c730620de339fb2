"""The image block's token layout and the paper's task-aware reordering (pure functions, no tokenizer)."""

from __future__ import annotations

from configuration.configuration_vlm import IMAGE_LAYOUTS

IGNORE_INDEX = -100

# The placeholder that stands for one image patch and the paper's layout markers (GPT-NeoX's `###` and `&&`).
IMAGE_TOKEN = "<image>"
BOUNDARY_TOKEN = "###"
ROW_SEPARATOR_TOKEN = "&&"
LAYOUT_TOKENS: tuple[str, ...] = (IMAGE_TOKEN, BOUNDARY_TOKEN, ROW_SEPARATOR_TOKEN)
"""Tokens a tokenizer must hold as single tokens for the processor: the placeholder, then the two markers."""


def image_block_ids(
    grid: int,
    layout: str,
    image_token_id: int,
    boundary_token_id: int,
    row_separator_token_id: int,
) -> list[int]:
    """
    Token ids standing for one image of ``grid x grid`` patches.

    ``rows`` (the paper): ``B (P*grid S)*grid`` with the last ``S`` replaced by ``B``, i.e. ``1 + grid*(grid+1)``
    positions (601 for 24x24). ``flat``: the ``grid*grid`` patch placeholders alone.
    """
    if layout not in IMAGE_LAYOUTS:
        raise ValueError(f"image_layout={layout!r} is not one of {IMAGE_LAYOUTS}.")
    if grid <= 0:
        raise ValueError(f"image_grid_size must be positive, got {grid}.")
    if layout == "flat":
        return [image_token_id] * (grid * grid)
    ids = [boundary_token_id]
    for _ in range(grid):
        ids.extend([image_token_id] * grid)
        ids.append(row_separator_token_id)
    ids[-1] = boundary_token_id  # the block closes with the boundary marker, not a row separator
    return ids


def move_instruction_first(text: str, image_token: str) -> str:
    """
    The paper's task-aware encoding: move the task instruction (the first line after the first image) before it.

    ``"<image>Locate the region that is described by:\nthe red circle."`` becomes
    ``"Locate the region that is described by:\n<image>\nthe red circle."``: the instruction precedes the image, while
    the referring expression (or question) and the answer still follow it. Only the instruction's own characters move,
    so applying this to a whole rendered conversation or to its first turn alone gives the same text. Text without an
    image is unchanged.
    """
    head, sep, tail = text.partition(image_token)
    if not sep or not tail:
        return text
    instruction = tail.partition("\n")[0]
    return f"{head}{instruction}\n{image_token}{tail[len(instruction) :]}"
