"""Benchmark readers on small fixtures in each benchmark's real file format; registry, scoring and the paper table."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from training.eval import benchmarks, paper
from training.eval.benchmarks import (
    BENCHMARKS,
    EvalSample,
    get_benchmark,
    load_benchmark,
    score_benchmark,
)
from training.eval.metrics import captions

CAPTION = "Provide a one-sentence caption for the provided image."
VQA = "Answer the question using a single word or phrase.\nQuestion: {}\nAnswer:"
MC_HEAD = "Answer with the option's letter from the given choices directly.\nQuestion: "


def _write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as JSON lines to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -------------------------------------------------------------------------------------------------------- captioning


def test_coco_karpathy_reads_test_split(tmp_path: Path) -> None:
    _write_json(
        tmp_path / "dataset_coco.json",
        {
            "images": [
                {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 0, "split": "test",
                 "cocoid": 42, "sentences": [{"raw": "A dog on a couch.", "tokens": ["a"]}, {"raw": " A dog. "}]},
                {"filepath": "train2014", "filename": "x.jpg", "imgid": 1, "split": "restval", "cocoid": 7,
                 "sentences": [{"raw": "Not in test."}]},
            ],
            "dataset": "coco",
        },
    )  # fmt: skip
    samples = load_benchmark("coco_karpathy_test", tmp_path, tmp_path / "images")
    assert len(samples) == 1
    s = samples[0]
    assert (s.sample_id, s.task, s.prompt) == ("42", "caption", CAPTION)
    assert s.references == ["A dog on a couch.", "A dog."]
    assert s.image_path == tmp_path / "images" / "val2014" / "COCO_val2014_000000000042.jpg"


def test_nocaps_groups_captions_by_image(tmp_path: Path) -> None:
    _write_json(
        tmp_path / "nocaps_val_4500_captions.json",
        {
            "images": [{"id": 0, "file_name": "0013ea2087020901.jpg", "domain": "in-domain"},
                       {"id": 1, "file_name": "1.jpg", "domain": "out-domain"}],
            "annotations": [{"image_id": 0, "id": 0, "caption": "A man."}, {"image_id": 1, "id": 1, "caption": "X."},
                            {"image_id": 0, "id": 2, "caption": "A person."}],
        },
    )  # fmt: skip
    samples = load_benchmark("nocaps_val", tmp_path, "/imgs")
    assert [s.references for s in samples] == [["A man.", "A person."], ["X."]]
    assert samples[0].image_path == Path("/imgs/0013ea2087020901.jpg")
    assert samples[1].extra == {"domain": "out-domain"}


def test_textcaps_one_sample_per_image(tmp_path: Path) -> None:
    refs = ["A sign reads STOP.", "A red stop sign."]
    _write_json(
        tmp_path / "TextCaps_0.1_val.json",
        {
            "dataset_type": "val",
            "data": [
                {"image_id": "abc", "caption_str": refs[0], "reference_strs": refs},
                {"image_id": "abc", "caption_str": refs[1], "reference_strs": refs},
                {"image_id": "def", "caption_str": "A book.", "reference_strs": ["A book."]},
            ],
        },
    )
    samples = load_benchmark("textcaps_val", tmp_path, "/tv")
    assert [(s.sample_id, s.references) for s in samples] == [("abc", refs), ("def", ["A book."])]
    assert samples[0].image_path == Path("/tv/abc.jpg")


# --------------------------------------------------------------------------------------------------------------- VQA


def test_vqav2_joins_questions_and_annotations(tmp_path: Path) -> None:
    _write_json(
        tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json",
        {"questions": [{"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000}]},
    )
    answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(["down"] * 10)]
    _write_json(
        tmp_path / "v2_mscoco_val2014_annotations.json",
        {"annotations": [{"question_id": 262148000, "image_id": 262148, "answers": answers,
                          "answer_type": "other", "question_type": "where is", "multiple_choice_answer": "down"}]},
    )  # fmt: skip
    [s] = load_benchmark("vqav2_val", tmp_path, "/coco/val2014")
    assert s.prompt == VQA.format("Where is he looking?")
    assert s.references == ["down"] * 10
    assert s.image_path == Path("/coco/val2014/COCO_val2014_000000262148.jpg")
    assert s.extra["answer_type"] == "other"
    assert score_benchmark("vqav2_val", ["Down."], [s]).primary == 1.0


def test_vqav2_question_without_annotation_names_it(tmp_path: Path) -> None:
    _write_json(tmp_path / "q.json", {"questions": [{"image_id": 1, "question": "Q?", "question_id": 5}]})
    _write_json(tmp_path / "a.json", {"annotations": []})
    with pytest.raises(ValueError, match=r"question_id 5 has no entry in .*a\.json"):
        load_benchmark("vqav2_val", tmp_path, tmp_path, files={"questions": "q.json", "annotations": "a.json"})


def test_textvqa_reads_ten_answers(tmp_path: Path) -> None:
    answers = ["nokia"] * 3 + ["noki"] * 7
    _write_json(
        tmp_path / "TextVQA_0.5.1_val.json",
        {"dataset_name": "textvqa", "data": [{"question": "what brand?", "image_id": "003a8ae2ef43b901",
                                               "question_id": 34602, "answers": answers}]},
    )  # fmt: skip
    [s] = load_benchmark("textvqa_val", tmp_path, "/train_images")
    assert (s.sample_id, s.task, s.prompt) == ("34602", "vqa", VQA.format("what brand?"))
    assert s.image_path == Path("/train_images/003a8ae2ef43b901.jpg")
    assert score_benchmark("textvqa_val", ["Nokia"], [s]).scores["vqa_accuracy"] == pytest.approx(0.9)


def test_gqa_testdev(tmp_path: Path) -> None:
    _write_json(
        tmp_path / "testdev_balanced_questions.json",
        {"20968379": {"imageId": "n288870", "question": "Do the shorts have dark color?", "answer": "yes",
                      "fullAnswer": "Yes, the shorts are dark."}},
    )  # fmt: skip
    [s] = load_benchmark("gqa_testdev", tmp_path, "/gqa/images")
    assert (s.sample_id, s.references, s.task) == ("20968379", ["yes"], "short_answer")
    assert s.image_path == Path("/gqa/images/n288870.jpg")
    assert score_benchmark("gqa_testdev", ["Yes."], [s]).scores == {"accuracy": 1.0}


# ----------------------------------------------------------------------------------------------- multiple choice etc.


def test_v7w_telling_multiple_choice(tmp_path: Path) -> None:
    qa = {"qa_id": 986, "question": "What is in the sky?", "answer": "Clouds.", "type": "what",
          "multiple_choices": ["Birds.", "A plane.", "The sun."]}  # fmt: skip
    _write_json(
        tmp_path / "dataset_v7w_telling.json",
        {"images": [{"image_id": 1, "filename": "v7w_1.jpg", "split": "test", "qa_pairs": [qa]},
                    {"image_id": 2, "filename": "v7w_2.jpg", "split": "train", "qa_pairs": [qa]}]},
    )  # fmt: skip
    [s] = load_benchmark("v7w_telling", tmp_path, "/v7w/images")
    options = s.extra["options"]
    assert sorted(options) == sorted(["Clouds.", "Birds.", "A plane.", "The sun."])
    letter = "ABCD"[options.index("Clouds.")]
    assert s.references == [letter] and s.extra["answer_index"] == options.index("Clouds.")
    lines = "\n".join(f"{'ABCD'[i]}: {o}" for i, o in enumerate(options))
    assert s.prompt == f"{MC_HEAD}What is in the sky?\n{lines}\nAnswer:"
    # The option order is fixed (seeded by the question id), so reloading gives the same prompt.
    assert load_benchmark("v7w_telling", tmp_path, "/v7w/images")[0].prompt == s.prompt
    result = score_benchmark("v7w_telling", [letter, "clouds"], [s, s])
    assert result.per_sample == [1.0, 1.0]  # the option's text counts too


def test_v7w_pointing_candidates_and_scoring(tmp_path: Path) -> None:
    boxes = [
        {"box_id": 10, "x": 0, "y": 0, "width": 50, "height": 50, "name": "cat"},
        {"box_id": 11, "x": 100, "y": 50, "width": 100, "height": 50, "name": "dog"},
        {"box_id": 12, "x": 150, "y": 0, "width": 50, "height": 25, "name": "cup"},
        {"box_id": 13, "x": 0, "y": 60, "width": 40, "height": 40, "name": "hat"},
    ]
    qa = {"qa_id": 5, "question": "Which is the dog?", "answer": 11, "multiple_choices": [10, 12, 13], "type": "which"}
    _write_json(
        tmp_path / "dataset_v7w_pointing.json",
        {"images": [{"image_id": 1, "filename": "v7w_1.jpg", "split": "test", "width": 200, "height": 100,
                     "qa_pairs": [qa]}], "boxes": boxes},
    )  # fmt: skip
    [s] = load_benchmark("v7w_pointing", tmp_path, tmp_path)
    gold = s.extra["answer_index"]
    assert s.extra["box_ids"][gold] == 11
    assert s.extra["candidate_boxes"][gold] == pytest.approx([0.5, 0.5, 1.0, 1.0])
    assert s.extra["options"][gold] == "[0.50,0.50,1.00,1.00]"
    assert f"{'ABCD'[gold]}: [0.50,0.50,1.00,1.00]" in s.prompt and s.prompt.startswith(MC_HEAD + "Which is the dog?")
    assert s.task == "pointing" and s.references == ["ABCD"[gold]]
    result = score_benchmark("v7w_pointing", ["[0.55,0.45,1.0,0.95]", "ABCD"[gold], "[0,0,0.25,0.5]", ""], [s] * 4)
    assert result.per_sample == [1.0, 1.0, 0.0, 0.0]


def test_v7w_pointing_reads_size_from_image_header_when_absent(tmp_path: Path) -> None:
    Image.new("RGB", (200, 100)).save(tmp_path / "v7w_1.png")
    qa = {"qa_id": 5, "question": "Which?", "answer": 1, "multiple_choices": [2, 3, 4]}
    boxes = [{"box_id": i, "x": 0, "y": 0, "width": 100, "height": 100} for i in range(1, 5)]
    images = [{"image_id": 1, "filename": "v7w_1.png", "split": "test", "qa_pairs": [qa]}]
    _write_json(tmp_path / "dataset_v7w_pointing.json", {"images": images, "boxes": boxes})
    [s] = load_benchmark("v7w_pointing", tmp_path, tmp_path)
    assert s.extra["candidate_boxes"][0] == pytest.approx([0.0, 0.0, 0.5, 1.0])
    images[0]["filename"] = "missing.png"
    _write_json(tmp_path / "dataset_v7w_pointing.json", {"images": images, "boxes": boxes})
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        load_benchmark("v7w_pointing", tmp_path, tmp_path)


def test_vsr_true_false(tmp_path: Path) -> None:
    _write_jsonl(
        tmp_path / "random" / "test.jsonl",
        [{"image": "000000085637.jpg", "caption": "The umbrella is under the bed.", "label": 0, "relation": "under"},
         {"image": "000000001.jpg", "caption": "The cat is on the table", "label": 1, "relation": "on"}],
    )  # fmt: skip
    samples = load_benchmark("vsr_test", tmp_path, "/coco2017")
    assert samples[0].prompt == "Determine if the image matches the description:\nThe umbrella is under the bed."
    assert [s.references for s in samples] == [["False"], ["True"]]
    assert samples[0].image_path == Path("/coco2017/000000085637.jpg")
    assert score_benchmark("vsr_test", ["False", "true."], samples).primary == 1.0
    assert score_benchmark("vsr_test", ["True", "banana"], samples).primary == 0.0


@pytest.mark.parametrize("split", ["random", "popular", "adversarial"])
def test_pope_splits(tmp_path: Path, split: str) -> None:
    _write_jsonl(
        tmp_path / f"coco_pope_{split}.json",
        [{"question_id": 1, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard in the image?",
          "label": "yes"},
         {"question_id": 2, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a dog in the image?",
          "label": "no"}],
    )  # fmt: skip
    samples = load_benchmark(f"pope_{split}", tmp_path, "/val2014")
    assert samples[0].prompt == VQA.format("Is there a snowboard in the image?")
    assert [s.references for s in samples] == [["yes"], ["no"]]
    assert samples[0].extra == {"pope_split": split, "question": "Is there a snowboard in the image?"}
    result = score_benchmark(f"pope_{split}", ["Yes, there is.", "Yes"], samples)
    assert result.primary_metric == "f1"
    assert (result.scores["tp"], result.scores["fp"], result.scores["accuracy"]) == (1, 1, 0.5)
    assert result.scores["precision"] == 0.5 and result.scores["recall"] == 1.0
    assert result.primary == pytest.approx(2 / 3)


def test_ai2d_answer_index_forms(tmp_path: Path) -> None:
    _write_jsonl(
        tmp_path / "ai2d_test.jsonl",
        [{"question": "Which stage?", "options": ["egg", "larva", "pupa", "adult"], "answer": "2",
          "image": "images/1.png", "id": "q1"},
         {"question": "What eats grass?", "options": ["cow", "lion"], "answer": 0, "image": "images/2.png"},
         {"question": "Q?", "options": ["x", "y", "z"], "answer": "B", "image": "images/3.png"}],
    )  # fmt: skip
    samples = load_benchmark("ai2d_test", tmp_path, "/ai2d")
    assert [s.references for s in samples] == [["C"], ["A"], ["B"]]
    assert samples[0].sample_id == "q1" and samples[1].sample_id == "1"
    assert samples[1].prompt == f"{MC_HEAD}What eats grass?\nA: cow\nB: lion\nAnswer:"
    assert samples[0].image_path == Path("/ai2d/images/1.png")
    assert score_benchmark("ai2d_test", ["C", "B", "(B)"], samples).per_sample == [1.0, 0.0, 1.0]


# --------------------------------------------------------------------------------------------------------- grounding


def _refcoco_data() -> dict[str, Any]:
    """A two-ref RefCOCO file in the single-JSON form (refs + COCO annotations + images)."""
    return {
        "refs": [
            {"ref_id": 0, "image_id": 1, "ann_id": 100, "split": "testA", "category_id": 1,
             "sentences": [{"sent": "man on left", "sent_id": 7}, {"sent": "left guy.", "sent_id": 8}]},
            {"ref_id": 1, "image_id": 1, "ann_id": 101, "split": "testB", "sentences": [{"sent": "red car"}]},
        ],
        "annotations": [{"id": 100, "image_id": 1, "bbox": [64, 48, 128, 96], "category_id": 1},
                        {"id": 101, "image_id": 1, "bbox": [0, 0, 640, 480], "category_id": 3}],
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 640, "height": 480}],
    }  # fmt: skip


def test_refcoco_one_sample_per_sentence(tmp_path: Path) -> None:
    _write_json(tmp_path / "refcoco.json", _refcoco_data())
    samples = load_benchmark("refcoco_testA", tmp_path, "/coco/train2014")
    assert [s.sample_id for s in samples] == ["0_7", "0_8"]
    assert samples[0].prompt == "Locate the region that is described by:\nman on left."
    assert samples[1].prompt == "Locate the region that is described by:\nleft guy."
    assert samples[0].references == [pytest.approx([0.1, 0.1, 0.3, 0.3])]
    assert samples[0].image_path == Path("/coco/train2014/COCO_train2014_000000000001.jpg")
    result = score_benchmark("refcoco_testA", ["[0.10,0.10,0.30,0.30]", "[0.5,0.5,0.9,0.9]"], samples)
    assert result.per_sample == [1.0, 0.0] and result.primary == 0.5
    assert [s.sample_id for s in load_benchmark("refcoco_testB", tmp_path, "/x")] == ["1_0"]


@pytest.mark.parametrize(("name", "file", "split"), [("refcoco+_testB", "refcoco+.json", "testB"),
                                                     ("refcocog_test", "refcocog.json", "test")])  # fmt: skip
def test_refcoco_plus_and_g_with_separate_instances_file(tmp_path: Path, name: str, file: str, split: str) -> None:
    data = _refcoco_data()
    data["refs"][1]["split"] = split
    _write_json(tmp_path / file, {"refs": data["refs"]})
    with pytest.raises(FileNotFoundError, match="instances"):
        load_benchmark(name, tmp_path, "/x")
    _write_json(tmp_path / "instances.json", {"annotations": data["annotations"], "images": data["images"]})
    [s] = load_benchmark(name, tmp_path, "/x")
    assert s.references == [[0.0, 0.0, 1.0, 1.0]] and s.task == "grounding"


def test_refcoco_missing_annotation_names_it(tmp_path: Path) -> None:
    data = _refcoco_data()
    data["annotations"] = data["annotations"][1:]
    _write_json(tmp_path / "refcoco.json", data)
    with pytest.raises(ValueError, match=r"ann_id 100 .*refcoco\.json"):
        load_benchmark("refcoco_testA", tmp_path, "/x")


# --------------------------------------------------------------------------------------- registry, errors, lazy images


def test_unknown_benchmark_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'coco'") as info:
        get_benchmark("coco")
    for name in ("coco_karpathy_test", "vqav2_val", "refcocog_test", "pope_adversarial"):
        assert name in str(info.value)


def test_missing_annotation_file_names_the_path(tmp_path: Path) -> None:
    _write_json(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json", {"questions": []})
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "v2_mscoco_val2014_annotations.json"))):
        load_benchmark("vqav2_val", tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"elsewhere\.json"):
        load_benchmark("gqa_testdev", tmp_path, tmp_path, files={"questions": tmp_path / "elsewhere.json"})
    with pytest.raises(ValueError, match="unknown annotation file role"):
        load_benchmark("gqa_testdev", tmp_path, tmp_path, files={"answers": "x.json"})


def test_malformed_records_name_file_and_field(tmp_path: Path) -> None:
    _write_json(tmp_path / "testdev_balanced_questions.json", {"1": {"imageId": "n1", "question": "Q?"}})
    with pytest.raises(ValueError, match=r"testdev_balanced_questions\.json \['1'\]: missing field 'answer'"):
        load_benchmark("gqa_testdev", tmp_path, tmp_path)
    (tmp_path / "coco_pope_random.json").write_text('{"question_id": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"coco_pope_random\.json:2"):
        load_benchmark("pope_random", tmp_path, tmp_path)


def test_images_are_loaded_lazily_and_missing_ones_name_their_path(tmp_path: Path) -> None:
    Image.new("L", (8, 6)).save(tmp_path / "present.png")
    _write_jsonl(
        tmp_path / "coco_pope_random.json",
        [{"question_id": 1, "image": "present.png", "text": "Is there a cat?", "label": "no"},
         {"question_id": 2, "image": "absent.jpg", "text": "Is there a cat?", "label": "yes"}],
    )  # fmt: skip
    present, absent = load_benchmark("pope_random", tmp_path, tmp_path)  # no error: images are not opened here
    image = present.load_image()
    assert (image.mode, image.size) == ("RGB", (8, 6))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent.jpg"))):
        absent.load_image()


def test_limit_and_score_validation(tmp_path: Path) -> None:
    _write_json(tmp_path / "testdev_balanced_questions.json",
                {str(i): {"imageId": "n", "question": "Q?", "answer": "a"} for i in range(5)})  # fmt: skip
    samples = load_benchmark("gqa_testdev", tmp_path, tmp_path, limit=2)
    assert len(samples) == 2
    with pytest.raises(ValueError, match="1 predictions for 2 samples"):
        score_benchmark("gqa_testdev", ["a"], samples)
    with pytest.raises(ValueError, match="not 'caption'"):
        score_benchmark("coco_karpathy_test", ["a", "a"], samples)


def test_caption_scoring_reports_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captions.shutil, "which", lambda name: None)
    samples = [EvalSample(str(i), Path(f"{i}.jpg"), CAPTION, [ref], "caption") for i, ref in enumerate(
        ["a red bus parked on the street", "two dogs play in the snow"])]  # fmt: skip
    result = score_benchmark("nocaps_val", ["A red bus parked on the street.", ""], samples)
    assert result.notes == {"tokenizer": "python"}
    assert result.per_sample == pytest.approx([10.0, 0.0]) and result.primary == pytest.approx(5.0)


def test_every_benchmark_maps_to_a_paper_column() -> None:
    assert set(BENCHMARKS) == set(paper.BENCHMARK_TO_PAPER_COLUMN)
    assert set(paper.BENCHMARK_TO_PAPER_COLUMN.values()) == set(paper.PAPER_COLUMNS)
    for name, spec in BENCHMARKS.items():
        assert spec.name == name and spec.task in benchmarks.TASKS
        assert spec.paper_column == paper.BENCHMARK_TO_PAPER_COLUMN[name]
    with pytest.raises(TypeError):
        BENCHMARKS["new"] = BENCHMARKS["vqav2_val"]  # type: ignore[index]


# ------------------------------------------------------------------------------------------------------------- paper


def _results_csv() -> Path | None:
    """The paper's results table in the shared folder, wherever the checkout keeps it."""
    root = Path(__file__).resolve().parents[3]
    for candidate in (root / "shared" / "paper" / "results_table.csv", root.parent / "shared/paper/results_table.csv"):
        if candidate.is_file():
            return candidate
    return None


@pytest.mark.skipif(_results_csv() is None, reason="shared/paper/results_table.csv is not available")
def test_paper_results_match_the_csv() -> None:
    with _results_csv().open() as f:  # type: ignore[union-attr]
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == list(paper.PAPER_MODELS)
    for row in rows:
        assert paper.PAPER_PARAMS[row["model"]] == row["params_lm"]
        assert dict(paper.PAPER_RESULTS[row["model"]]) == {c: float(row[c]) for c in paper.PAPER_COLUMNS}


def test_compare_with_paper_table() -> None:
    ours = {"vqav2_val": 0.7, "pope_random": 0.9, "pope_popular": 0.8, "pope_adversarial": 0.7, "COCO": 1.3}
    table = paper.compare_with_paper(ours, "Mamba-VL-2.8B")
    lines = table.splitlines()
    assert lines[0] == "| Benchmark | Metric | Ours | Mamba-VL-2.8B (paper) | Δ |"
    assert len(lines) == 2 + len(paper.PAPER_COLUMNS)
    assert "| VQAv2 | VQA accuracy (val) | 70.00 | 76.08 | -6.08 |" in lines
    assert "| COCO | CIDEr (Karpathy test) | 130.00 | 135.53 | -5.53 |" in lines
    assert any(line.startswith("| POPE |") and "| 80.00 | 87.33 | -7.33 |" in line for line in lines)  # mean of 3
    assert "| GQA | accuracy (test-dev) | - | 60.41 | - |" in lines
    with pytest.raises(ValueError, match="Pythia-VL-1B"):
        paper.compare_with_paper(ours, "GPT-4")
    with pytest.raises(ValueError, match="unknown score key 'vqa'"):
        paper.compare_with_paper({"vqa": 0.5}, "Mamba-VL-2.8B")
