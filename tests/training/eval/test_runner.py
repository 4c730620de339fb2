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
from tests.training.releases.release_fixtures import write_ai2d, write_refer
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
    assert "vqav2_val: resuming, reusing 2 of 5 saved predictions" in capsys.readouterr().out
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
    assert main(_eval_args(saved_models["pythia"], benchmark_dir, out, benchmarks="vqav2_val")) == 0  # fingerprint
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


# ------------------------------------------------------------------------------------------------------------------
# One data root, per-benchmark locations, splits, lmms-eval
# ------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coco_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root as ``vlm eval --list`` documents it: COCO 2014 images once, each benchmark's release beside them.

    Karpathy's image paths start at the COCO root (``val2014/...``) while VQAv2's and POPE's start inside
    ``val2014/``, and the REFER refs find their images in ``coco/train2014``: one ``--images`` cannot serve them all.
    """
    root = tmp_path_factory.mktemp("data-root")
    karpathy = []
    for image_id in (1, 2):
        _image(root / "coco" / "val2014" / f"COCO_val2014_{image_id:012d}.jpg", (200, 90 * image_id, 30))
        karpathy.append({"filepath": "val2014", "filename": f"COCO_val2014_{image_id:012d}.jpg", "split": "test",
                         "cocoid": image_id, "sentences": [{"raw": "A red square."}]})  # fmt: skip
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"images": karpathy}))
    questions = [{"question_id": q, "image_id": 1 + q % 2, "question": "What color?"} for q in range(3)]
    annotations = [{"question_id": q, "answers": [{"answer": "red"}] * 10} for q in range(3)]
    (root / "vqav2").mkdir()
    (root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps({"questions": questions}))
    (root / "vqav2" / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": annotations}))
    (root / "pope").mkdir()
    pope = [{"question_id": q, "image": f"COCO_val2014_{1 + q:012d}.jpg", "text": "Is there a cat?", "label": "no"}
            for q in range(2)]  # fmt: skip
    (root / "pope" / "coco_pope_random.json").write_text("".join(json.dumps(r) + "\n" for r in pope))
    write_refer(root / "refer")
    for image_id in (1, 2):  # REFER's images, found in the second of its image folders
        _image(root / "coco" / "train2014" / f"COCO_train2014_{image_id:012d}.jpg", (0, 0, 0))
    write_ai2d(root)
    return root


def test_one_data_root_runs_a_mixed_suite_in_one_command(
    coco_tree: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = "coco_karpathy_test,vqav2_val,pope_random,refcoco_testB,ai2d_test"
    args = ["eval", "--model", str(saved_models["mamba"]), "--benchmarks", names, "--data-root", str(coco_tree),
            "--out", str(tmp_path), "--batch-size", "4", "--max-new-tokens", "2", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    model_dir = tmp_path / "tiny-mamba"
    counts = {name: json.loads((model_dir / name / "metrics.json").read_text())["num_samples"] for name in
              names.split(",")}  # fmt: skip
    assert counts == {"coco_karpathy_test": 2, "vqav2_val": 3, "pope_random": 2, "refcoco_testB": 1, "ai2d_test": 3}
    refcoco = json.loads((model_dir / "refcoco_testB" / "metrics.json").read_text())
    assert refcoco["split"] == "unc/testB" and refcoco["source"] == "files"
    assert refcoco["skipped"] == {"degenerate box (zero or negative width or height)": 1, "box outside the image": 1}
    assert "refcoco_testB: skipped 1 annotation(s), not scored: box outside the image" in printed
    assert (
        "refcoco_testB: 1 annotation(s) skipped, not scored (box outside the image)"
        in (model_dir / "results.md").read_text()
    )


def test_data_and_split_options_point_one_benchmark_elsewhere(
    coco_tree: Path, benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    base = ["eval", "--model", str(saved_models["pythia"]), "--out", str(tmp_path), "--max-new-tokens", "2",
            "--no-progress", "--data-root", str(coco_tree)]  # fmt: skip
    pope = f"pope_random={benchmark_dir / 'ann'}:{benchmark_dir / 'images'}"
    args = [*base, "--benchmarks", "pope_random,refcoco_testA", "--data", pope, "--split", "refcoco_testA=unc/val"]
    assert main(args) == 0
    model_dir = tmp_path / "tiny-pythia"
    assert (
        len(_lines(model_dir / "pope_random" / "predictions.jsonl")) == NUM_SAMPLES["pope_random"]
    )  # not the root's 2
    assert [r["sample_id"] for r in _lines(model_dir / "refcoco_testA" / "predictions.jsonl")] == ["5_50"]
    assert json.loads((model_dir / "refcoco_testA" / "metrics.json").read_text())["split"] == "unc/val"
    capsys.readouterr()
    for bad, message in [
        (["--split", "vsr_test=test"], "vsr_test: unknown split 'test'; valid splits: random, zeroshot"),
        (["--data", "imagenet=/x"], "unknown benchmark 'imagenet'"),
        (["--data", "pope_random"], "--data 'pope_random' must read BENCHMARK=VALUE"),
    ]:
        assert main([*base, "--benchmarks", "pope_random", *bad]) == 2
        assert message in capsys.readouterr().err
    no_location = [a for a in base if a not in ("--data-root", str(coco_tree))]
    assert main([*no_location, "--benchmarks", "pope_random"]) == 2
    assert "pope_random: no data location: pass --data-root DIR" in capsys.readouterr().err


def test_lmms_eval_source_reads_local_parquet_copies(
    saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    import datasets

    def png(color: tuple[int, int, int]) -> dict[str, Any]:
        buffer = io.BytesIO()
        Image.new("RGB", (24, 24), color).save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}

    # lmms-lab/POPE, config Full, split random (card: id, question_id, question, answer, image_source, image, category)
    features = datasets.Features({"id": datasets.Value("string"), "question_id": datasets.Value("string"),
                                  "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                  "image": datasets.Image(), "category": datasets.Value("string")})  # fmt: skip
    rows = {"id": ["0", "1", "2"], "question_id": ["1", "2", "3"], "question": ["Is there a dog in the image?"] * 3,
            "answer": ["yes", "no", "no"], "image": [png((9, 9, 9)), png((200, 0, 0)), png((0, 200, 0))],
            "category": ["random"] * 3}  # fmt: skip
    path = tmp_path / "hub" / "lmms-lab" / "POPE" / "Full" / "random-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    base = ["eval", "--model", str(saved_models["pythia"]), "--out", str(tmp_path / "out"), "--max-new-tokens", "2",
            "--no-progress", "--source", "lmms-eval", "--data-root", str(tmp_path / "hub")]  # fmt: skip
    assert main([*base, "--benchmarks", "pope_random"]) == 0
    model_dir = tmp_path / "out" / "tiny-pythia-lmms-eval"  # the datasets' own sample ids: kept apart on resume
    assert [r["sample_id"] for r in _lines(model_dir / "pope_random" / "predictions.jsonl")] == ["1", "2", "3"]
    metrics = json.loads((model_dir / "pope_random" / "metrics.json").read_text())
    assert metrics["source"] == "lmms-eval" and metrics["num_samples"] == 3
    capsys.readouterr()
    assert main([*base, "--benchmarks", "vsr_test"]) == 2
    assert "vsr_test has no lmms-eval dataset with images: read it from its release files with --data vsr_test=" in (
        capsys.readouterr().err
    )


def test_list_prints_every_benchmark_with_its_files_and_folders(capsys: pytest.CaptureFixture[str]) -> None:
    from training.eval.benchmarks import BENCHMARKS

    assert main(["eval", "--list"]) == 0
    blocks = {block.split(":")[0]: block for block in capsys.readouterr().out.split("\n\n")[1:]}
    assert set(blocks) == set(BENCHMARKS)
    refcoco = blocks["refcoco_testA"]
    assert "files:     refcoco/refs(unc).p, refcoco/instances.json   (in DATA_ROOT/refer/)" in refcoco
    assert "images:    DATA_ROOT/refer/images/mscoco/images/train2014/ or DATA_ROOT/coco/train2014/" in refcoco
    assert "split:     unc/testA (splitBy: unc, google)" in refcoco and "lichengunc/refer" in refcoco
    assert "lmms-eval: lmms-lab/RefCOCO (or lmms-lab-encoder/RefCOCO), split testA" in refcoco
    assert "files:     questions, ai2d_test_ids.csv (optional)   (in DATA_ROOT/ai2d/)" in blocks["ai2d_test"]
    assert "split:     random (or zeroshot)" in blocks["vsr_test"]
    assert "lmms-eval: none (release files only)" in blocks["vsr_test"]
    assert "images:    DATA_ROOT/coco/val2014/" in blocks["vqav2_val"]


# ------------------------------------------------------------------------------------------------------------------
# Hardening: stale predictions, unreadable images and metrics, one image loader
# ------------------------------------------------------------------------------------------------------------------


def test_predictions_of_another_model_or_setting_are_never_reused(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    model = tmp_path / "checkpoint-500"  # two runs' checkpoints share a folder name
    shutil.copytree(saved_models["pythia"], model)
    out = tmp_path / "eval"
    args = _eval_args(model, benchmark_dir, out, benchmarks="vqav2_val")
    assert main(args) == 0
    path = out / "checkpoint-500" / "vqav2_val" / "predictions.jsonl"
    records = _lines(path)
    path.write_text("".join(json.dumps({**r, "prediction": "MARKER"}) + "\n" for r in records))
    capsys.readouterr()
    assert main(args) == 0  # same model, same settings: reused
    assert "reusing 5 of 5 saved predictions" in capsys.readouterr().out
    assert {r["prediction"] for r in _lines(path)} == {"MARKER"}
    shutil.rmtree(model)
    shutil.copytree(saved_models["mamba"], model)  # another model in the same folder
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "saved predictions were made by another model or settings (weights_sha256)" in printed
    assert "MARKER" not in {r["prediction"] for r in _lines(path)} and len(_lines(path)) == 5
    [stale] = path.parent.glob("predictions.jsonl.stale-*")  # set aside, not deleted
    assert {r["prediction"] for r in _lines(stale)} == {"MARKER"}
    assert main([*args[:-3], "--max-new-tokens", "2", "--no-progress"]) == 0
    assert "(max_new_tokens)" in capsys.readouterr().out


def test_an_unreadable_image_is_recorded_scored_wrong_and_retried(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(benchmark_dir, data)
    (data / "images" / "pope_2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "eval"
    args = _eval_args(saved_models["pythia"], data, out, benchmarks="pope_random")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "pope_random: 1 image(s) could not be read; scored as wrong" in printed
    metrics = json.loads((out / "tiny-pythia" / "pope_random" / "metrics.json").read_text())
    assert metrics["unreadable_images"] == 1 and metrics["num_samples"] == 4
    failed = [r for r in _lines(out / "tiny-pythia" / "pope_random" / "predictions.jsonl") if "error" in r]
    assert [r["sample_id"] for r in failed] == ["2"] and "pope_2.png" in failed[0]["error"]
    _image(data / "images" / "pope_2.png", (1, 2, 3))  # fixed: the next run answers it
    assert main(args) == 0
    assert "reusing 3 of 4 saved predictions" in capsys.readouterr().out
    records = _lines(out / "tiny-pythia" / "pope_random" / "predictions.jsonl")
    assert len(records) == 4 and not any("error" in r for r in records)


def test_an_unreadable_metrics_file_is_reported_not_fatal(
    benchmark_dir: Path, saved_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    assert main(_eval_args(saved_models["pythia"], benchmark_dir, out)) == 0
    (out / "tiny-pythia" / "pope_random" / "metrics.json").write_text('{"benchmark": "pope_ra')  # a cut write
    capsys.readouterr()
    assert main(_eval_args(saved_models["pythia"], benchmark_dir, out, benchmarks="vqav2_val")) == 0
    assert "pope_random/metrics.json is unreadable or incomplete; left out of the summary" in capsys.readouterr().out
    summary = json.loads((out / "tiny-pythia" / "metrics.json").read_text())
    assert list(summary["benchmarks"]) == ["vqav2_val"]


def test_eval_images_are_converted_as_in_training(tmp_path: Path) -> None:
    from processing import load_image
    from training.eval.benchmarks import EvalSample

    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "clear.png")
    sample = EvalSample("1", tmp_path / "clear.png", "p", ["yes"], "pope")
    assert sample.load_image().getpixel((0, 0)) == load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255,) * 3
    embedded = EvalSample(
        "2", Path("x/0"), "p", ["yes"], "pope", image_loader=lambda: Image.open(tmp_path / "clear.png")
    )
    assert embedded.load_image().getpixel((0, 0)) == (255, 255, 255)
