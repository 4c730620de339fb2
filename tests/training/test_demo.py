"""``vlm demo``: its settings validated by the command and the config, its table, and a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor

from training.cli import build_parser, main
from training.demo import DemoConfig, results_table
from training.synthetic.scoring import ALL_TASKS


def test_demo_tasks_are_validated_by_the_cli_and_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["demo", "--tasks", "caption, retrieval"]).tasks == ("caption", "retrieval")
    assert build_parser().parse_args(["demo"]).tasks == ALL_TASKS
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--tasks", "caption,ocr"])
    err = capsys.readouterr().err
    assert "unknown task(s) ocr" in err and "valid tasks are: caption, vqa, grounding" in err
    with pytest.raises(ValueError, match="tasks must be a non-empty subset of caption, vqa"):
        DemoConfig(tasks=("ocr",))
    with pytest.raises(ValueError, match="tasks must be"):
        DemoConfig(tasks=())


def test_demo_table_shows_only_the_tasks_that_ran() -> None:
    model = {"language_model_parameters": 1000, "final_loss": 0.5, "train_seconds": 3.0}
    results = {
        "models": {
            "pythia": {**model, "display_name": "Pythia-VL", "scores": {"retrieval": {"accuracy": 0.25}}},
            "mamba": {**model, "display_name": "Mamba-VL", "scores": {"retrieval": {"accuracy": 0.5}}},
        }
    }
    table = results_table(results)
    assert "| Retrieval accuracy | 25.0 | 50.0 |" in table.splitlines()
    assert "Caption" not in table and "Reading" not in table


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--steps", "3", "--train-images", "8", "--eval-images", "2", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"pythia", "mamba"}
    table = (out / "results.md").read_text()
    for backbone, entry in results["models"].items():
        assert set(entry["scores"]) == set(ALL_TASKS)
        assert entry["final_loss"] > 0
        assert f"{entry['language_model_parameters']:,}" in table
        model = AutoModelForImageTextToText.from_pretrained(out / backbone)
        assert model.config.model_type == f"{backbone}_vl"
        AutoProcessor.from_pretrained(out / backbone)
        predictions = (out / backbone / "predictions.jsonl").read_text().splitlines()
        assert len(predictions) == 2 * len(ALL_TASKS)
        assert {json.loads(line)["task"] for line in predictions} == set(ALL_TASKS)
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One row per task family of the paper: both models' scores, then the image-blind baseline's.
    for label, task in (
        ("Caption token F1", "caption"),
        ("Reading accuracy", "reading"),
        ("Retrieval accuracy", "retrieval"),
    ):
        row = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
        metric = "token_f1" if task == "caption" else "accuracy"
        scores = [results["models"][b]["scores"] for b in ("pythia", "mamba")] + [results["image_blind"]]
        assert row == f"| {label} | " + " | ".join(f"{100 * s[task][metric]:.1f}" for s in scores) + " |"
    # The language models are matched in size, as in the paper (within 10%).
    sizes = [entry["language_model_parameters"] for entry in results["models"].values()]
    assert max(sizes) / min(sizes) < 1.1
