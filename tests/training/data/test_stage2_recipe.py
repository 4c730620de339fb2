"""The shipped stage-2 recipe, unchanged, on a data root of its 17 sources as released; ``vlm train --dry-run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from processing import VLProcessor
from tests.training.data.release_tree import write_release_tree
from training.cli import main
from training.data.check import check_data
from training.data.dataset import ConversationDataset
from training.data.sources import read_sources
from training.recipe import load_recipe, recipe_from_dict

STAGE2 = Path(__file__).resolve().parents[3] / "training" / "recipes" / "stage2_instruction.yaml"
SOURCES = {
    "llava_instruct", "coco_captions", "vqav2", "gqa", "aokvqa", "ai2d", "docvqa", "infographicvqa", "ocrvqa",
    "textcaps", "grit", "refcoco", "refcoco+", "refcocog", "visual_genome", "visual7w", "vsr",
}  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release_tree(tmp_path_factory.mktemp("VLM_DATA_ROOT"))


@pytest.fixture
def stage2(tree: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("VLM_DATA_ROOT", str(tree))
    return load_recipe(STAGE2)


def test_every_source_reads_and_every_record_builds(stage2: Any, processor: VLProcessor, tmp_path: Path) -> None:
    read = read_sources(stage2.data.train, tmp_path, "train", 0)
    assert {r.source.name for r in read} == SOURCES
    for source in read:
        dataset = ConversationDataset(source.conversations, source.image_root, processor, stage2.max_length)
        assert dataset.validate() == {}, source.source.name  # every image found, every record fits
    by_name = {r.source.name: r.conversations for r in read}
    assert by_name["ai2d"].notes == ["3 test questions (ai2d_test_ids.csv) left out"]
    assert {c.image_path for c in by_name["ai2d"]} == {"1.png"}  # the test diagrams 0 and 2 are not trained on
    assert {c.image_path for c in by_name["grit"]} == {"00000/000000000.jpg", "00001.tar/000010000.jpg"}
    assert {c.image_path for c in by_name["ocrvqa"]} == {"1001.jpg", "1002.png"}


def test_dry_run_reports_each_source_without_a_model(
    stage2: Any, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    assert main(["train", str(STAGE2), "--dry-run", "--json", str(report_path)]) == 0
    printed = capsys.readouterr().out
    report = {r["name"]: r for r in json.loads(report_path.read_text())}
    assert set(report) == SOURCES and not any(r["error"] for r in report.values())
    assert report["grit"]["skipped"] == {"not downloaded (failed_to_download)": 1}
    assert report["llava_instruct"]["examples"][0].startswith("[image: 000000033471.jpg]\nuser: What are the colors")
    assert len(report["vqav2"]["examples"]) == 1 and report["vqav2"]["turns"] == 2
    # 000000033471 is in LLaVA-Instruct (COCO train2017) and is a Karpathy test image (COCO val2014): reported.
    [karpathy] = report["llava_instruct"]["leaks"]
    assert (karpathy["benchmark"], karpathy["status"], karpathy["shared_images"]) == (
        "coco_karpathy_test", "shared images", 1
    )  # fmt: skip
    assert report["coco_captions"]["leaks"][0]["status"] == "clean"
    assert report["ai2d"]["leaks"][0]["status"] == "clean"
    assert report["vqav2"]["leaks"][0]["status"] == "not checked"  # no VQAv2 val files in this root
    assert "train/ai2d (ai2d): 1 conversations, 1 turns, 1 images" in printed
    assert "no test leak found" in printed
    assert not (tmp_path / "runs").exists()


def _recipe(tree: Path, **ai2d: Any) -> Any:
    data = {"root": str(tree), "train": [{"reader": "ai2d", "files": {"path": "ai2d"}, "image_root": "ai2d/images",
                                          "kwargs": ai2d}]}  # fmt: skip
    return recipe_from_dict({"model": {"backbone": "pythia", "preset": "tiny"}, "data": data})


def test_training_on_the_test_split_is_reported_as_a_leak(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [report] = check_data(_recipe(tree, split="all"))
    [leak] = report.leaks
    assert (leak.status, leak.shared_items, leak.shared_images) == ("leak", 3, 2)  # diagrams 0 and 2, 3 questions
    assert "0.png" in leak.examples[0]
    [clean] = check_data(_recipe(tree))
    assert clean.leaks[0].status == "clean"


def test_an_unreadable_source_is_reported_and_fails_the_dry_run(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "bad.yaml"
    sources = [
        {"reader": "refcoco", "files": {"path": "refer/refcoco/instances.json"}, "image_root": "coco/train2014"},
        {"reader": "vsr", "files": {"path": "vsr/random/train.jsonl"}, "image_root": "coco"},
    ]
    model = {"backbone": "pythia", "preset": "tiny"}
    recipe.write_text(json.dumps({"model": model, "data": {"root": str(tree), "train": sources}}))
    assert main(["train", str(recipe), "--dry-run"]) == 1
    printed = capsys.readouterr().out
    assert "train/refcoco (refcoco): ERROR: " in printed and "is JSON; refcoco reads REFER's release" in printed
    assert "train/vsr (vsr): 2 conversations" in printed and "UNREADABLE: refcoco" in printed
