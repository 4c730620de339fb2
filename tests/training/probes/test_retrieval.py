"""The in-context retrieval probe: scoring by N and position, its settings, and tiny end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.cli import main
from training.probes import retrieval
from training.probes.retrieval import PAPER_LENGTHS, ProbeConfig, run_retrieval_probe, summarize
from training.synthetic.retrieval import RetrievalExample

PNG = b"\x89PNG\r\n\x1a\n"


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


@pytest.mark.parametrize(("backbones", "compiles"), [(("pythia", "mamba"), 1), (("pythia",), 0)])
def test_probe_compiles_mamba_kernels_in_a_child_first(
    backbones: tuple[str, ...], compiles: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As the demo does: the process that compiles a numba kernel gets results 1 ulp apart from every process that
    loads it from the cache (see training.short_runs), so the probe has a child compile them before it trains."""
    calls = []
    monkeypatch.setattr(retrieval, "compile_cpu_kernels_in_child", lambda: calls.append(1) or True)
    config = ProbeConfig(
        lengths=(3,), steps=1, batch_size=2, eval_examples=1, backbones=backbones, out=str(tmp_path),
        show_progress=False,
    )  # fmt: skip
    run_retrieval_probe(config)
    assert len(calls) == compiles


def test_image_probe_runs_from_the_cli_with_instruction_first(tmp_path: Path) -> None:
    args = ["probe", "retrieval", "--modality", "image", "--lengths", "2,4", "--steps", "1", "--batch-size", "2"]
    assert main([*args, "--eval-examples", "1", "--instruction-first", "--out", str(tmp_path), "--no-progress"]) == 0
    results = _check_outputs(tmp_path, (2, 4))
    assert results["config"]["instruction_first"] is True


def test_probe_cli_reports_bad_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["probe", "retrieval", "--instruction-first", "--out", str(tmp_path)]) == 2
    assert "instruction_first needs modality='image'" in capsys.readouterr().err
