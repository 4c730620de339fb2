"""The in-context retrieval probe's examples (the paper's hypothesis 2): symbol sequences and glyph grids.

* text (language-only, as in the paper's released code): N distinct symbol tokens, then a query symbol; the answer
  is the query's 1-based position as a number string. Every symbol is one token, so N is the context length.
* image: the first N cells (row-major) of a grid hold distinct glyphs, one vision patch per cell; the question asks
  for the glyph in a cell ("Which glyph is in row r, column c?") or for a glyph's cell ("In which cell is glyph X?"
  -> "row r, column c").

Examples are pure functions of ``(split, seed, N, index)``; :mod:`training.probes.retrieval` trains and scores on them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..templates import vqa_prompt

__all__ = [
    "CELL_ANSWER",
    "CELL_QUESTION",
    "GLYPH_ALPHABET",
    "GLYPH_QUESTION",
    "TEXT_INSTRUCTION",
    "RetrievalExample",
    "glyph_vocabulary",
    "grid_example",
    "render_grid",
    "symbol_vocabulary",
    "text_example",
]

TEXT_INSTRUCTION = "Find the position of the query symbol in the sequence."
GLYPH_QUESTION = "Which glyph is in row {row}, column {column}?"
CELL_QUESTION = "In which cell is glyph {glyph}?"
CELL_ANSWER = "row {row}, column {column}"
# Digits and letters without look-alikes (0/O/o, 1/I/l, c/C, s/S, ...), so every glyph reads one way at 12 px.
GLYPH_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabdefghkmnqrty"


@dataclass(frozen=True)
class RetrievalExample:
    """One probe item: the context items in order, the asked item's 1-based position, prompt and gold answer."""

    n: int
    context: tuple[str, ...]
    position: int
    kind: str  # "position" (text), "glyph_at" or "cell_of" (image)
    prompt: str
    answer: str
    image: Image.Image | None = None


def _rng(modality: str, split: str, seed: int, n: int, index: int) -> random.Random:
    """Independent, platform-stable RNG per example (string seeds are hashed with SHA-512)."""
    return random.Random(f"retrieval/{modality}/{split}/{seed}/{n}/{index}")


def symbol_vocabulary(size: int) -> tuple[str, ...]:
    """``size`` distinct symbol strings, each added to the probe's tokenizer as one token."""
    return tuple(f"<sym{i}>" for i in range(size))


def text_example(
    n: int, seed: int = 0, index: int = 0, num_symbols: int | None = None, split: str = "eval"
) -> RetrievalExample:
    """N distinct symbols, then a query symbol drawn from them; the answer is its 1-based position."""
    vocabulary = symbol_vocabulary(num_symbols or max(64, n))
    if not 1 <= n <= len(vocabulary):
        raise ValueError(f"n={n} must be between 1 and the number of symbols ({len(vocabulary)})")
    rng = _rng("text", split, seed, n, index)
    context = tuple(rng.sample(vocabulary, n))
    position = rng.randint(1, n)
    prompt = f"{TEXT_INSTRUCTION}\nSequence: {''.join(context)}\nQuery: {context[position - 1]}\nPosition:"
    return RetrievalExample(n, context, position, "position", prompt, str(position))


def glyph_vocabulary(size: int) -> tuple[str, ...]:
    """``size`` distinct glyph strings: single characters of ``GLYPH_ALPHABET`` first, then pairs."""
    singles = list(GLYPH_ALPHABET)
    if size > len(singles) + len(singles) ** 2:
        raise ValueError(f"at most {len(singles) + len(singles) ** 2} distinct glyphs, asked for {size}")
    pairs = (a + b for a in singles for b in singles)
    return tuple(singles + [next(pairs) for _ in range(max(0, size - len(singles)))])


@lru_cache(maxsize=16)
def _glyph_font(cell_size: int, chars: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest default-font size at which ``chars`` wide characters fit a cell with a 1 px margin."""
    for size in range(cell_size, 5, -1):
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = font.getbbox("W" * chars)
        if right - left <= cell_size - 2 and bottom - top <= cell_size - 2:
            return font
    return ImageFont.load_default()


def render_grid(glyphs: Sequence[str], grid_side: int, cell_size: int) -> Image.Image:
    """Black glyphs centred in the first ``len(glyphs)`` cells (row-major) of a white ``grid_side``-column grid."""
    if len(glyphs) > grid_side**2:
        raise ValueError(f"{len(glyphs)} glyphs do not fit a {grid_side}x{grid_side} grid")
    image = Image.new("RGB", (grid_side * cell_size, grid_side * cell_size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _glyph_font(cell_size, max((len(g) for g in glyphs), default=1))
    for index, glyph in enumerate(glyphs):
        row, column = divmod(index, grid_side)
        left, top, right, bottom = font.getbbox(glyph)
        x = column * cell_size + (cell_size - (right - left)) // 2 - left
        y = row * cell_size + (cell_size - (bottom - top)) // 2 - top
        draw.text((x, y), glyph, fill=(0, 0, 0), font=font)
    return image


def grid_example(
    n: int, seed: int = 0, index: int = 0, grid_side: int | None = None, cell_size: int = 12, split: str = "eval"
) -> RetrievalExample:
    """A grid image of N distinct glyphs and a question about one cell (its glyph, or a glyph's cell)."""
    grid_side = grid_side or math.isqrt(n - 1) + 1
    if not 1 <= n <= grid_side**2:
        raise ValueError(f"n={n} cells do not fit a {grid_side}x{grid_side} grid")
    rng = _rng("image", split, seed, n, index)
    glyphs = tuple(rng.sample(glyph_vocabulary(max(len(GLYPH_ALPHABET), grid_side**2)), n))
    position = rng.randint(1, n)
    row, column = divmod(position - 1, grid_side)
    glyph, cell = glyphs[position - 1], {"row": row + 1, "column": column + 1}
    if rng.random() < 0.5:
        kind, question, answer = "glyph_at", GLYPH_QUESTION.format(**cell), glyph
    else:
        kind, question, answer = "cell_of", CELL_QUESTION.format(glyph=glyph), CELL_ANSWER.format(**cell)
    image = render_grid(glyphs, grid_side, cell_size)
    return RetrievalExample(n, glyphs, position, kind, vqa_prompt(question), answer, image)
