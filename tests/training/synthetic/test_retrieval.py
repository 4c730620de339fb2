"""The in-context retrieval probe's examples: unique symbols and the query's position, glyph grids read from pixels."""

from __future__ import annotations

import re

import numpy as np
import pytest

from training.synthetic.retrieval import glyph_vocabulary, grid_example, render_grid, text_example

TEXT_RE = re.compile(
    r"^Find the position of the query symbol in the sequence\.\nSequence: (.*)\nQuery: (.*)\nPosition:$"
)


def _symbols(text: str) -> list[str]:
    return re.findall(r"<sym\d+>", text)


@pytest.mark.parametrize("n", [1, 20, 576, 600])
def test_text_example_has_unique_symbols_and_the_query_position(n: int) -> None:
    for index in range(5):
        example = text_example(n, seed=1, index=index, num_symbols=640)
        sequence, query = TEXT_RE.match(example.prompt).groups()
        symbols = _symbols(sequence)
        assert len(symbols) == n == len(set(symbols)) == example.n
        assert symbols == list(example.context)
        assert symbols[int(example.answer) - 1] == query and symbols.count(query) == 1
        assert example.answer == str(example.position) and 1 <= example.position <= n


def test_text_examples_are_deterministic_by_seed_and_split() -> None:
    assert text_example(50, seed=3, index=2) == text_example(50, seed=3, index=2)
    assert text_example(50, seed=3, index=2) != text_example(50, seed=4, index=2)
    assert text_example(50, seed=3, index=2) != text_example(50, seed=3, index=3)
    assert text_example(50, seed=3, index=2, split="train") != text_example(50, seed=3, index=2)
    positions = {text_example(20, seed=0, index=i).position for i in range(60)}
    assert len(positions) > 10  # targets spread over the sequence
    with pytest.raises(ValueError, match="number of symbols"):
        text_example(70, num_symbols=64)


def test_grid_example_asks_about_one_cell_with_distinct_glyphs() -> None:
    kinds = set()
    for index in range(20):
        example = grid_example(14, seed=2, index=index, grid_side=4, cell_size=8)
        assert len(set(example.context)) == 14
        row, column = divmod(example.position - 1, 4)
        if example.kind == "glyph_at":
            assert f"Which glyph is in row {row + 1}, column {column + 1}?" in example.prompt
            assert example.answer == example.context[example.position - 1]
        else:
            assert f"In which cell is glyph {example.context[example.position - 1]}?" in example.prompt
            assert example.answer == f"row {row + 1}, column {column + 1}"
        assert example.image.size == (32, 32)
        kinds.add(example.kind)
    assert kinds == {"glyph_at", "cell_of"}
    first = grid_example(9, seed=2, index=0, grid_side=3)
    assert first.context == grid_example(9, seed=2, index=0, grid_side=3).context
    assert first.context != grid_example(9, seed=3, index=0, grid_side=3).context


def test_render_grid_draws_only_in_the_filled_cells() -> None:
    pixels = np.asarray(render_grid(["A", "7", "k"], grid_side=2, cell_size=12))
    ink = (pixels < 128).any(axis=-1)
    cells = [ink[r * 12 : (r + 1) * 12, c * 12 : (c + 1) * 12].any() for r in range(2) for c in range(2)]
    assert cells == [True, True, True, False]
    glyphs = glyph_vocabulary(600)
    assert len(set(glyphs)) == 600 and all(1 <= len(g) <= 2 for g in glyphs)
    with pytest.raises(ValueError, match="do not fit"):
        render_grid(["A"] * 5, grid_side=2, cell_size=12)
