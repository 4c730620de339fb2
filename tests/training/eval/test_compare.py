"""``vlm compare``: reads eval, demo and probe outputs; per-task table, gaps, task-aware deltas, plots."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from training.cli import main
from training.eval.compare import load_runs, pair_models

PNG = b"\x89PNG\r\n\x1a\n"


def _eval_summary(root: Path, name: str, backbone: str, scores: dict[str, float], **info: Any) -> Path:
    """A ``vlm eval`` model folder: metrics.json in the runner's format."""
    tasks = {"vqav2_val": ("vqa", "vqa_accuracy"), "refcoco_testA": ("grounding", "accuracy")}
    benchmarks = {
        b: {"benchmark": b, "task": tasks[b][0], "primary_metric": tasks[b][1], "primary": v, "scores": {}}
        for b, v in scores.items()
    }
    summary = {"model": name, "backbone": backbone, "benchmarks": benchmarks, "instruction_first": False, **info}
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(summary))
    return root / name


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Paper-sized eval outputs (one also task-aware), a demo run and a text probe run."""
    evals = tmp_path / "eval"
    _eval_summary(evals, "p1b", "pythia", {"vqav2_val": 0.70, "refcoco_testA": 0.75},
                  paper_model="Pythia-VL-1B", model_path="/models/p1b")  # fmt: skip
    _eval_summary(evals, "p1b-instruction-first", "pythia", {"refcoco_testA": 0.7625},
                  paper_model="Pythia-VL-1B", model_path="/models/p1b", instruction_first=True)  # fmt: skip
    _eval_summary(evals, "m790m", "mamba", {"vqav2_val": 0.7125, "refcoco_testA": 0.68},
                  paper_model="Mamba-VL-790M", model_path="/models/m790m")  # fmt: skip
    demo = tmp_path / "demo"
    demo.mkdir()
    demo_models = {
        backbone: {"display_name": display, "language_model_parameters": 1000, "path": f"demo/{backbone}",
                   "scores": {"caption": {"exact_match": 0.1, "token_f1": f1}, "grounding": {"accuracy": g}}}
        for backbone, display, f1, g in (("pythia", "Pythia-VL", 0.5, 0.25), ("mamba", "Mamba-VL", 0.6, 0.2))
    }  # fmt: skip
    (demo / "results.json").write_text(json.dumps({"config": {}, "models": demo_models}))
    probe = tmp_path / "probe"
    probe.mkdir()
    probe_models = {
        backbone: {"display_name": name, "parameters": 10, "accuracy": acc, "by_length": {"20": acc, "100": acc / 2}}
        for backbone, name, acc in (("pythia", "Pythia-VL", 0.9), ("mamba", "Mamba-VL", 0.5))
    }  # fmt: skip
    (probe / "results.json").write_text(
        json.dumps({"probe": "retrieval", "modality": "text", "config": {}, "models": probe_models})
    )
    return [evals, demo, probe]


def test_report_files_hold_the_printed_numbers(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    markdown = (out / "report.md").read_text()
    assert markdown in printed
    report = json.loads((out / "report.json").read_text())
    for row in report["table"].values():
        for value in row.values():
            if value is not None:
                assert f"{value:.2f}" in printed
    # Per-task rows (x100), in family order.
    assert "| vqav2_val | vqa | vqa_accuracy | 71.25 | 70.00 | - | - | - | - | - |" in printed
    assert "| synthetic_caption | captioning | token_f1 | - | - | - | 50.00 | 60.00 | - | - |" in printed
    assert list(report["table"])[:2] == ["synthetic_caption", "vqav2_val"]
    # Gaps are Mamba minus Pythia within each pair: paper sizes, the demo run, the probe run.
    gaps = report["gaps"]
    assert gaps["m790m - p1b"] == {"vqav2_val": 1.25, "refcoco_testA": -7.0}
    assert gaps["Mamba-VL (demo) - Pythia-VL (demo)"] == {"synthetic_caption": 10.0, "synthetic_grounding": -5.0}
    assert gaps["Mamba-VL (probe) - Pythia-VL (probe)"] == {"retrieval_text": -40.0}
    assert re.search(r"\| refcoco_testA \| grounding \| -7\.00 \| .* \|", printed)
    # The task-aware run of the same saved model gives the instruction-first change.
    assert report["instruction_first_deltas"] == {"p1b": {"refcoco_testA": 1.25}}
    assert "| refcoco_testA | grounding | +1.25 |" in printed and "| vqav2_val | vqa | - |" not in printed
    assert "| p1b-instruction-first | Pythia-VL | Pythia-VL-1B | yes | - |" in printed
    # Retrieval by N, and the plots.
    assert "| 100 | text | 45.00 | 25.00 |" in printed
    assert report["plots"] == [f"family_{f}.png" for f in ("captioning", "vqa", "grounding", "retrieval")] + [
        "retrieval.png"
    ]
    for name in report["plots"]:
        assert (out / name).read_bytes()[:8] == PNG


def test_models_without_a_run_or_paper_size_pair_by_closest_size(tmp_path: Path) -> None:
    for name, backbone, size in (("a", "pythia", 100), ("b", "pythia", 1000), ("c", "mamba", 950), ("d", "mamba", 10)):
        _eval_summary(tmp_path, name, backbone, {"vqav2_val": 0.5}, language_model_parameters=size)
    entries, _ = load_runs([tmp_path])
    assert [(p.label, m.label) for p, m in pair_models(entries)] == [("b", "c")]  # "d" has no Pythia within 25%


def test_an_evaluated_demo_model_joins_its_demo_entry(runs: list[Path], tmp_path: Path) -> None:
    demo_model = (runs[1] / "pythia").resolve()
    _eval_summary(tmp_path / "eval2", "pythia", "pythia", {"vqav2_val": 0.3}, model_path=str(demo_model))
    entries, _ = load_runs([runs[1], tmp_path / "eval2"])
    pythia = next(e for e in entries if e.backbone == "pythia")
    assert len(entries) == 2 and pythia.scores == {"synthetic_caption": 0.5, "synthetic_grounding": 0.25,
                                                   "vqav2_val": 0.3}  # fmt: skip


def test_bad_run_folders_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert f"run folder not found: {tmp_path / 'missing'}" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "no results.json" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{")
    assert main(["compare", str(tmp_path / "broken"), "--out", str(tmp_path / "r")]) == 2
    assert f"{tmp_path / 'broken' / 'results.json'}: not valid JSON" in capsys.readouterr().err
