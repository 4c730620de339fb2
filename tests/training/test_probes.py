"""The in-context retrieval probe: generator properties, scoring by N and position, and tiny end-to-end runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from training.cli import main
from training.probes.retrieval import (
    PAPER_LENGTHS,
    ProbeConfig,
    RetrievalExample,
    glyph_vocabulary,
    grid_example,
    render_grid,
    run_retrieval_probe,
    summarize,
    text_example,
)

PNG = b"\x89PNG\r\n\x1a\n"
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


def test_summarize_by_length_position_and_kind() -> None:
    def example(n: int, position: int, answer: str) -> RetrievalExample:
        return RetrievalExample(n, (), position, "position", "", answer)

    examples = [example(10, 1, "1"), example(10, 10, "10"), example(20, 2, "2"), example(20, 19, "19")]
    result = summarize(examples, ["1", " 10 ", "3", ""])
    assert result["accuracy"] == 0.5
    assert result["by_length"] == {"10": 1.0, "20": 0.0}
    assert result["by_position"] == {"1-2": 0.5, "9-10": 1.0, "19-20": 0.0}  # bins of 20 / 10 = 2
    assert result["by_kind"] == {"position": 0.5}


def test_probe_config_defaults_and_validation() -> None:
    assert ProbeConfig().lengths == PAPER_LENGTHS and ProbeConfig().num_symbols == 600
    image = ProbeConfig(modality="image", lengths=(30, 4))
    assert image.lengths == (4, 30) and image.grid_side == 6
    with pytest.raises(ValueError, match="instruction_first needs modality='image'"):
        ProbeConfig(instruction_first=True)
    with pytest.raises(ValueError, match="num_symbols=10"):
        ProbeConfig(lengths=(20,), num_symbols=10)
    with pytest.raises(ValueError, match="modality='audio'"):
        ProbeConfig(modality="audio")
    with pytest.raises(ValueError, match="Unknown backbone 'rwkv'"):
        ProbeConfig(backbones=("rwkv",))


def _check_outputs(out: Path, lengths: tuple[int, ...]) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"pythia", "mamba"}
    table = (out / "results.md").read_text()
    for entry in results["models"].values():
        assert set(entry["by_length"]) == {str(n) for n in lengths}
        assert all(0.0 <= v <= 1.0 for v in entry["by_length"].values())
        assert entry["final_loss"] > 0 and entry["by_position"]
        assert f"{entry['display_name']} {100 * entry['accuracy']:.1f}" in table
    assert (out / "retrieval_curves.png").read_bytes()[:8] == PNG
    return results


def test_text_probe_runs_end_to_end(tmp_path: Path) -> None:
    config = ProbeConfig(
        lengths=(3, 6), steps=2, batch_size=2, eval_examples=2, out=str(tmp_path), show_progress=False
    )
    results = run_retrieval_probe(config)
    assert results["models"] == _check_outputs(tmp_path, (3, 6))["models"]
    lines = (tmp_path / "mamba" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4 and {json.loads(line)["n"] for line in lines} == {3, 6}


def test_image_probe_runs_from_the_cli_with_instruction_first(tmp_path: Path) -> None:
    args = ["probe", "retrieval", "--modality", "image", "--lengths", "2,4", "--steps", "1", "--batch-size", "2"]
    assert main([*args, "--eval-examples", "1", "--instruction-first", "--out", str(tmp_path), "--no-progress"]) == 0
    results = _check_outputs(tmp_path, (2, 4))
    assert results["config"]["instruction_first"] is True


def test_probe_cli_reports_bad_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["probe", "retrieval", "--instruction-first", "--out", str(tmp_path)]) == 2
    assert "instruction_first needs modality='image'" in capsys.readouterr().err
