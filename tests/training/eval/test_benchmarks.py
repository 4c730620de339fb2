"""Benchmark readers on small fixtures in each benchmark's real file format; registry, scoring and the paper table."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.training.releases.release_fixtures import py2_pickle, write_ai2d, write_refer
from training.eval import benchmarks, metrics, paper
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


def test_pope_primary_scores_follow_the_official_rule_and_strict_ones_ours(tmp_path: Path) -> None:
    # AoiDragon/POPE evaluate.py: keep the first sentence, drop commas, split on spaces; "no" when a word is exactly
    # "No", "no" or "not", else "yes" -- so a rambling or empty answer counts as "yes".
    cases = [("No, there is not.", "no"), ("Yes.", "yes"), ("There is no dog", "no"), ("Not at all", "yes"),
             ("NO", "yes"), ("", "yes"), ("Yes. No", "yes"), ("I do not know", "no"), ("Nope", "yes"),
             ("no.", "no"), ("a cat, not", "no")]  # fmt: skip
    assert [metrics.pope_official_answer(text) for text, _ in cases] == [answer for _, answer in cases]
    _write_jsonl(tmp_path / "coco_pope_random.json",
                 [{"question_id": i, "image": "x.jpg", "text": "Is there a dog?", "label": label}
                  for i, label in enumerate(["no", "yes", "no", "yes"])])  # fmt: skip
    samples = load_benchmark("pope_random", tmp_path, tmp_path)
    result = score_benchmark("pope_random", ["There is no dog.", "Maybe", "a dog", "Yes"], samples)
    # official answers: no, yes, yes, yes -> tp 2, fp 1, tn 1, fn 0
    assert result.per_sample == [1.0, 1.0, 0.0, 1.0]
    assert (result.scores["accuracy"], result.scores["precision"], result.scores["recall"]) == (0.75, 2 / 3, 1.0)
    assert result.primary == pytest.approx(0.8)
    assert result.scores["strict_accuracy"] == 0.5 and result.scores["strict_invalid"] == 2  # "Maybe", "a dog"
    assert "official POPE rule" in result.notes["pope"]


def test_nocaps_reports_cider_per_domain_beside_the_overall(tmp_path: Path) -> None:
    domains = ["in-domain", "near-domain", "out-domain", "in-domain"]
    _write_json(tmp_path / "nocaps_val_4500_captions.json", {
        "images": [{"id": i, "file_name": f"{i}.jpg", "domain": d} for i, d in enumerate(domains)],
        "annotations": [{"image_id": i, "id": 10 * i + k, "caption": c} for i in range(4)
                        for k, c in enumerate([f"a red bus number {i}", f"the red bus {i} on a road"])],
    })  # fmt: skip
    samples = load_benchmark("nocaps_val", tmp_path, tmp_path)
    predictions = ["a red bus number 0", "a green tree", "the red bus 2 on a road", "a dog"]
    scores = score_benchmark("nocaps_val", predictions, samples).scores
    assert set(scores) == {"cider", "cider_in-domain", "cider_near-domain", "cider_out-domain"}
    for domain in ("in-domain", "near-domain", "out-domain"):
        chosen = [i for i, d in enumerate(domains) if d == domain]
        alone = metrics.cider([predictions[i] for i in chosen], [samples[i].references for i in chosen])
        assert scores[f"cider_{domain}"] == pytest.approx(alone.score)  # each domain scored as its own corpus


def test_vsr_zero_shot_split_is_selectable(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "random" / "test.jsonl", [{"image": "1.jpg", "caption": "A is on B.", "label": 1}])
    _write_jsonl(tmp_path / "zeroshot" / "test.jsonl",
                 [{"image": "2.jpg", "caption": "C is under D.", "label": 0}] * 2)  # fmt: skip
    assert [s.references for s in get_benchmark("vsr_test").load(tmp_path, tmp_path)] == [["True"]]
    zero_shot = get_benchmark("vsr_test").load(tmp_path, [tmp_path / "train2017", tmp_path], split="zeroshot")
    assert [s.references for s in zero_shot] == [["False"], ["False"]]
    assert zero_shot[0].image_path == tmp_path / "train2017" / "2.jpg"  # not in either folder: the first one's path
    (tmp_path / "2.jpg").write_bytes(b"")
    assert get_benchmark("vsr_test").load(tmp_path, [tmp_path / "x", tmp_path], split="zeroshot")[0].image_path == (
        tmp_path / "2.jpg"
    )  # found in the second folder (VSR spans COCO train2017 and val2017)
    with pytest.raises(ValueError, match="vsr_test: unknown split 'test'; valid splits: random, zeroshot"):
        get_benchmark("vsr_test").load(tmp_path, tmp_path, split="test")


# --------------------------------------------------------------------------------------------------- AI2D release


def test_ai2d_reads_the_release_folders_with_lettered_options(tmp_path: Path) -> None:
    folder = write_ai2d(tmp_path)
    samples = load_benchmark("ai2d_test", folder, folder / "images")
    assert [s.sample_id for s in samples] == ["0.png-0", "0.png-1", "2.png-0"]  # the images of ai2d_test_ids.csv
    assert samples[0].prompt == (
        f"{MC_HEAD}Which stage comes after the egg?\nA: adult\nB: larva\nC: pupa\nD: nymph\nAnswer:"
    )
    assert [s.references for s in samples] == [["B"], ["D"], ["B"]]
    assert samples[0].image_path == folder / "images" / "0.png"
    assert samples[0].extra["ocr_text"] == "OCR text:\nA: egg\nB: larva"
    assert score_benchmark("ai2d_test", ["B", "(D)", "C"], samples).per_sample == [1.0, 1.0, 0.0]
    train = get_benchmark("ai2d_test").load(folder, folder / "images", split="train")
    assert [s.sample_id for s in train] == ["1.png-0"]
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "questions")) + ".*ai2d-all.zip"):
        load_benchmark("ai2d_test", tmp_path, tmp_path)  # the folder above the release: names what it looked for


# ---------------------------------------------------------------------------------------------- REFER release


@pytest.mark.parametrize("protocol", [0, 2])
def test_refcoco_reads_the_refer_release_one_sample_per_expression(tmp_path: Path, protocol: int) -> None:
    root = write_refer(tmp_path, protocol=protocol)
    images = root / "images" / "mscoco" / "images" / "train2014"
    samples = load_benchmark("refcoco_testA", root, images)
    assert [s.sample_id for s in samples] == ["0_0", "0_1"]
    assert samples[0].prompt == "Locate the region that is described by:\nman on left."
    assert samples[1].prompt == "Locate the region that is described by:\nleft guy."
    # bbox [64, 48, 128, 96] (x, y, w, h pixels) in a 640 x 480 image -> [0.1, 0.1, 0.3, 0.3]
    assert samples[0].references == [pytest.approx([0.1, 0.1, 0.3, 0.3])]
    assert samples[0].image_path == images / "COCO_train2014_000000000001.jpg"
    result = score_benchmark("refcoco_testA", ["[0.10,0.10,0.30,0.30]", "[0.5,0.5,0.9,0.9]"], samples)
    assert result.per_sample == [1.0, 0.0] and result.primary == 0.5
    assert [s.prompt.split("\n")[1] for s in load_benchmark("refcoco+_testA", root, images)] == ["man wearing blue."]
    [g] = load_benchmark("refcocog_test", root, images)  # RefCOCOg: umd split by default
    assert g.prompt.endswith("a man standing on the left side.") and g.references == [
        pytest.approx([0.1] * 2 + [0.3] * 2)
    ]


def test_refcoco_degenerate_and_outside_boxes_are_skipped_and_counted(tmp_path: Path) -> None:
    root = write_refer(tmp_path)
    samples, skipped = get_benchmark("refcoco_testB").load_with_report(root, root)
    assert [s.sample_id for s in samples] == ["1_10"]
    assert samples[0].references == [[0.0, 0.0, 1.0, 1.0]]
    assert skipped == {"degenerate box (zero or negative width or height)": 1, "box outside the image": 1}


def test_refcoco_other_splits_are_selectable_and_unknown_ones_listed(tmp_path: Path) -> None:
    root = write_refer(tmp_path)
    spec = get_benchmark("refcocog_test")
    assert [s.sample_id for s in spec.load(root, root, split="google/val")] == ["0_0"]
    assert [s.sample_id for s in get_benchmark("refcoco_testA").load(root, root, split="unc/val")] == ["5_50"]
    with pytest.raises(ValueError, match=r"refcocog refs\(umd\)\.p: no expression of split 'testA'; this release "
                                         r"has: test, train, val"):  # fmt: skip
        spec.load(root, root, split="umd/testA")
    with pytest.raises(
        ValueError, match="refcocog_test: unknown splitBy 'unc' in split 'unc/test'; valid: umd, google"
    ):
        spec.load(root, root, split="unc/test")
    with pytest.raises(ValueError, match=r"must read <splitBy>/<split>, e.g\. umd/test"):
        spec.load(root, root, split="test")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere" / "refcocog" / "refs(umd).p"))
                       + r" \(from https://github.com/lichengunc/refer"):  # fmt: skip
        spec.load(tmp_path / "nowhere", root)


def test_a_benchmark_with_no_samples_is_an_error_naming_files_and_split(tmp_path: Path) -> None:
    root = write_refer(tmp_path)
    refs = [{"ref_id": 0, "ann_id": 102, "image_id": 2, "split": "testB", "sentences": [{"sent": "x", "sent_id": 0}]}]
    (root / "refcoco+" / "refs(unc).p").write_bytes(py2_pickle(refs))  # its only testB box is degenerate
    with pytest.raises(ValueError, match=re.escape(f"refcoco+_testB: no samples in {root / 'refcoco+'}") +
                       r".*for split 'unc/testB' \(\{'degenerate box.*': 1\} skipped\)"):  # fmt: skip
        load_benchmark("refcoco+_testB", root, root)
    (tmp_path / "coco_pope_popular.json").write_text("")
    with pytest.raises(ValueError, match=r"pope_popular: no samples in .*coco_pope_popular\.json for split None"):
        load_benchmark("pope_popular", tmp_path, tmp_path)


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
