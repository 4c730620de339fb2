"""``vlm eval`` end to end on tiny models: predictions, metrics, report, resuming, bad input and the paper match."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from configuration import MambaVLConfig, PythiaVLConfig
from training.cli import main
from training.eval.runner import paper_model_for, read_predictions, results_markdown

BENCHMARKS = "vqav2_val,pope_random"
NUM_SAMPLES = {"vqav2_val": 5, "pope_random": 4}


def _image(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), color).save(path)


@pytest.fixture(scope="module")
def benchmark_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VQAv2 val (questions + annotations, COCO_val2014_<id>.jpg images) and POPE random (JSON lines, PNG images)."""
    root = tmp_path_factory.mktemp("benchmarks")
    questions, annotations = [], []
    for qid in range(NUM_SAMPLES["vqav2_val"]):
        image_id = 100 + qid % 3
        questions.append({"question_id": qid, "image_id": image_id, "question": f"What color is object {qid}?"})
        answers = [{"answer": "red", "answer_id": k} for k in range(10)]
        annotations.append({"question_id": qid, "image_id": image_id, "answers": answers, "answer_type": "other"})
        _image(root / "images" / f"COCO_val2014_{image_id:012d}.jpg", (200, 20 * qid, 30))
    (root / "ann" / "v2_OpenEnded_mscoco_val2014_questions.json").parent.mkdir(parents=True)
    (root / "ann" / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps({"questions": questions}))
    (root / "ann" / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": annotations}))
    lines = []
    for qid in range(NUM_SAMPLES["pope_random"]):
        _image(root / "images" / f"pope_{qid}.png", (10, 40 * qid, 200))
        record = {
            "question_id": qid,
            "image": f"pope_{qid}.png",
            "text": "Is there a dog?",
            "label": "yes" if qid % 2 else "no",
        }
        lines.append(json.dumps(record))
    (root / "ann" / "coco_pope_random.json").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory, make_model: Callable, processor: Any) -> dict[str, Path]:
    """Both tiny backbones saved with the test processor, as ``vlm demo`` saves its models."""
    root = tmp_path_factory.mktemp("models")
    paths = {}
    for backbone in ("pythia", "mamba"):
        paths[backbone] = root / f"tiny-{backbone}"
        make_model(backbone).save_pretrained(paths[backbone])
        processor.save_pretrained(paths[backbone])
    return paths


def _eval_args(model: Path, data: Path, out: Path, *extra: str, **paths: Path | str) -> list[str]:
    """``vlm eval`` arguments; ``paths`` may override ``benchmarks``, ``annotations`` or ``images``."""
    options = {"benchmarks": BENCHMARKS, "annotations": data / "ann", "images": data / "images", **paths}
    return [
        "eval", "--model", str(model), "--benchmarks", options["benchmarks"], "--annotations",
        str(options["annotations"]), "--images", str(options["images"]), "--out", str(out), "--batch-size", "2",
        "--max-new-tokens", "3", "--no-progress", *extra,
    ]  # fmt: skip


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_eval_both_backbones_end_to_end(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    for backbone, model in saved_models.items():
        assert main(_eval_args(model, benchmark_dir, out)) == 0
        printed = capsys.readouterr().out
        model_dir = out / f"tiny-{backbone}"
        summary = json.loads((model_dir / "metrics.json").read_text())
        assert summary["backbone"] == backbone and summary["paper_model"] is None
        report = (model_dir / "results.md").read_text()
        assert report in printed and "Compared with the paper" not in report
        for name, count in NUM_SAMPLES.items():
            records = _lines(model_dir / name / "predictions.jsonl")
            assert sorted(r["sample_id"] for r in records) == [str(i) for i in range(count)]
            metrics = json.loads((model_dir / name / "metrics.json").read_text())
            assert metrics["num_samples"] == count and 0.0 <= metrics["primary"] <= 1.0
            assert summary["benchmarks"][name]["primary"] == metrics["primary"]
            score = f"{100 * metrics['primary']:.2f}"
            assert f"| {name} | {metrics['task']} | {metrics['primary_metric']} | {score} | {count} |" in report
            assert f"{name}: {metrics['primary_metric']} = {score}" in printed
    # The two tiny models are matched in size, so the comparison report pairs them.
    assert main(["compare", str(out), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert list(report["gaps"]) == ["tiny-mamba - tiny-pythia"]
    assert set(report["gaps"]["tiny-mamba - tiny-pythia"]) == set(NUM_SAMPLES)


def test_eval_resumes_from_saved_predictions(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, model = tmp_path / "eval", saved_models["mamba"]
    assert main(_eval_args(model, benchmark_dir, out, "--limit", "2", "--instruction-first")) == 0
    model_dir = out / "tiny-mamba-instruction-first"
    path = model_dir / "vqav2_val" / "predictions.jsonl"
    records = _lines(path)
    assert [r["sample_id"] for r in records] == ["0", "1"]
    # Mark a saved answer, and leave a line cut short as an interrupted write would.
    records[0]["prediction"] = "MARKER"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"sample_id": "2", "predic')
    capsys.readouterr()
    assert main(_eval_args(model, benchmark_dir, out, "--instruction-first")) == 0
    assert "resuming, 2 of 5 predictions already saved" in capsys.readouterr().out
    records = _lines(path)
    assert [r["sample_id"] for r in records] == ["0", "1", "2", "3", "4"]  # no duplicates, the cut line redone
    assert records[0]["prediction"] == "MARKER"  # saved answers are not generated again
    metrics = json.loads((model_dir / "vqav2_val" / "metrics.json").read_text())
    assert metrics["num_samples"] == 5 and metrics["instruction_first"] is True
    assert len(_lines(model_dir / "pope_random" / "predictions.jsonl")) == 4


def test_bad_saved_predictions_score_as_wrong_and_are_kept(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    path = out / "tiny-pythia" / "vqav2_val" / "predictions.jsonl"
    path.parent.mkdir(parents=True)
    bad = ["", None, "red " * 2000, 42, "Red."]  # empty, missing, overlong, not text; the last one is right
    path.write_text("".join(json.dumps({"sample_id": str(i), "prediction": p}) + "\n" for i, p in enumerate(bad)))
    assert main(_eval_args(saved_models["pythia"], benchmark_dir, out, benchmarks="vqav2_val")) == 0
    metrics = json.loads((path.parent / "metrics.json").read_text())
    assert metrics["primary"] == pytest.approx(0.2) and metrics["num_samples"] == 5


def test_read_predictions_drops_malformed_duplicate_and_truncated_lines(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"sample_id": "a", "prediction": "x"}\nnot json\n{"sample_id": "a", "prediction": "y"}\n'
                    '{"prediction": "no id"}\n{"sample_id": "b", "prediction": "z"}\n{"sample_id": "c"')  # fmt: skip
    assert read_predictions(path) == {"a": "x", "b": "z"}
    assert path.read_text().splitlines() == [
        '{"sample_id": "a", "prediction": "x"}',
        '{"sample_id": "b", "prediction": "z"}',
    ]
    assert read_predictions(tmp_path / "missing.jsonl") == {}


def test_unknown_benchmark_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--model", "m", "--benchmarks", "vqav2_val,imagenet", "--annotations", "a", "--images", "i"])
    err = capsys.readouterr().err
    assert "imagenet" in err and "refcocog_test" in err and "pope_adversarial" in err


def test_missing_files_are_named(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = saved_models["pythia"]
    assert main(_eval_args(model, benchmark_dir, tmp_path, annotations=tmp_path / "nowhere")) == 2
    assert str(tmp_path / "nowhere" / "v2_OpenEnded_mscoco_val2014_questions.json") in capsys.readouterr().err
    assert main(_eval_args(model, benchmark_dir, tmp_path, images=tmp_path / "no-images")) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"vqav2_val: 5 image file\(s\) not found, the first: .*no-images/COCO_val2014_000000000100\.jpg", err
    )
    assert main(_eval_args(tmp_path / "no-model", benchmark_dir, tmp_path)) == 2
    assert f"model folder not found: {tmp_path / 'no-model'}" in capsys.readouterr().err


def test_paper_model_matches_by_backbone_width_and_depth() -> None:
    assert paper_model_for(PythiaVLConfig.from_preset("1b")) == "Pythia-VL-1B"
    assert paper_model_for(PythiaVLConfig.from_preset("2.8b")) == "Pythia-VL-2.8B"
    assert paper_model_for(MambaVLConfig.from_preset("790m")) == "Mamba-VL-790M"
    assert paper_model_for(MambaVLConfig.from_preset("tiny")) is None


def test_results_markdown_adds_the_paper_table_for_a_paper_sized_model() -> None:
    record = {"task": "vqa", "primary_metric": "vqa_accuracy", "primary": 0.7012, "num_samples": 10, "notes": {}}
    summary = {"model": "m", "paper_model": "Mamba-VL-1.4B", "benchmarks": {"vqav2_val": record}}
    text = results_markdown(summary)
    assert "| vqav2_val | vqa | vqa_accuracy | 70.12 | 10 |" in text
    assert "## Compared with the paper's Mamba-VL-1.4B" in text
    assert "| VQAv2 | VQA accuracy (val) | 70.12 | 74.46 | -4.34 |" in text
    assert "Compared with the paper" not in results_markdown({**summary, "paper_model": None})


def test_paper_prompt_style_generates_from_the_papers_ids_with_its_budgets(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.eval.runner as runner

    seen: list[tuple[list[list[int]], int]] = []
    original = runner.generate_from_ids

    def recording(model: Any, processor: Any, images: Any, ids: list[list[int]], max_new_tokens: int) -> Any:
        seen.append((ids, max_new_tokens))
        return original(model, processor, images, ids, 2)  # the budgets are recorded; two tokens keep this short

    monkeypatch.setattr(runner, "generate_from_ids", recording)
    out, model = tmp_path / "eval", saved_models["pythia"]
    args = _eval_args(model, benchmark_dir, out, "--prompt-style", "paper", "--limit", "2")
    args.remove("--max-new-tokens"), args.remove("3")
    assert main(args) == 0
    model_dir = out / "tiny-pythia-paper-prompts"
    metrics = {name: json.loads((model_dir / name / "metrics.json").read_text()) for name in NUM_SAMPLES}
    assert {n: (m["prompt_style"], m["max_new_tokens"]) for n, m in metrics.items()} == {
        "vqav2_val": ("paper", 15), "pope_random": ("paper", 120)
    }  # fmt: skip
    assert [budget for _, budget in seen] == [15, 120]
    from processing import VLProcessor

    processor = VLProcessor.from_pretrained(model)
    tokens = processor.tokenizer
    # VQAv2: the image block, the template, then "\nQuestion: {q}\nAnswer: " tokenized on its own.
    first = seen[0][0][0]
    expected = (processor.image_block_ids + tokens("Answer the question using a single word or phrase.",
                add_special_tokens=False)["input_ids"] + tokens("\nQuestion: What color is object 0?\nAnswer: ",
                add_special_tokens=False)["input_ids"])  # fmt: skip
    assert first == expected
