"""lmms-eval's benchmark datasets, read from local parquet copies written here in the datasets' own schemas.

Column names and types come from each dataset's card (``dataset_info.features``) and the lmms-eval task files that
read them (EvolvingLMMs-Lab/lmms-eval ``lmms_eval/tasks/<task>/``):

- VQAv2: https://huggingface.co/datasets/lmms-lab/VQAv2/blob/main/README.md (``vqav2/utils.py``)
- TextVQA: https://huggingface.co/datasets/lmms-lab/textvqa (``textvqa/utils.py``)
- POPE: https://huggingface.co/datasets/lmms-lab/POPE, config ``Full`` (``pope/pope_random.yaml``, ``pope/utils.py``)
- RefCOCO: https://huggingface.co/datasets/lmms-lab/RefCOCO/blob/main/README.md; ``bbox`` is [x, y, w, h] in pixels
  and there is no width/height column (``refcoco/utils_rec.py`` reads the size off the image)
- AI2D: https://huggingface.co/datasets/lmms-lab/ai2d/blob/main/README.md; ``answer`` is the option index as a string
- GQA: https://huggingface.co/datasets/lmms-lab/GQA, configs ``testdev_balanced_instructions`` and
  ``testdev_balanced_images`` joined on ``imageId == id`` (``gqa/utils.py``)
- NoCaps: https://huggingface.co/datasets/lmms-lab/NoCaps/blob/main/README.md (hash-suffixed shard names)
- TextCaps: https://huggingface.co/datasets/lmms-lab/TextCaps/blob/main/README.md; split ``val``

Shards are laid out as on the Hub: ``data/<split>-0000K-of-0000N.parquet`` or ``<config>/<split>-*.parquet``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import datasets
import pytest
from PIL import Image

from training.eval.benchmarks import score_benchmark
from training.eval.benchmarks.lmms_eval import load_lmms_eval

VQA = "Answer the question using a single word or phrase.\nQuestion: {}\nAnswer:"
IMAGE = datasets.Image()


def _png(size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> dict[str, Any]:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _write(path: Path, rows: dict[str, list], features: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(str(path))
    return path


S = datasets.Value("string")
I64 = datasets.Value("int64")


def test_vqav2_validation(tmp_path: Path) -> None:
    answers = datasets.List({"answer": S, "answer_confidence": S, "answer_id": I64})
    features = {"question_type": S, "multiple_choice_answer": S, "answers": answers, "image_id": I64,
                "answer_type": S, "question_id": I64, "question": S, "image": IMAGE}  # fmt: skip
    rows = {"question_type": ["what color"] * 2, "multiple_choice_answer": ["red", "2"],
            "answers": [[{"answer": "red", "answer_confidence": "yes", "answer_id": k} for k in range(1, 11)],
                        [{"answer": "two", "answer_confidence": "yes", "answer_id": k} for k in range(1, 11)]],
            "image_id": [9, 10], "answer_type": ["other", "number"], "question_id": [9000, 10001],
            "question": ["What color is the bus?", "How many?"],
            "image": [_png((40, 30)), _png((20, 10))]}  # fmt: skip
    _write(tmp_path / "VQAv2" / "data" / "validation-00000-of-00002.parquet", rows, features)
    samples, skipped = load_lmms_eval("vqav2_val", root=tmp_path)
    assert [s.sample_id for s in samples] == ["9000", "10001"] and not skipped
    assert samples[0].prompt == VQA.format("What color is the bus?") and samples[0].references == ["red"] * 10
    assert samples[1].load_image().size == (20, 10) and samples[1].embedded
    assert score_benchmark("vqav2_val", ["Red", "2"], samples).per_sample == [1.0, 1.0]  # "two" normalises to 2


def test_pope_full_config_under_either_org(tmp_path: Path) -> None:
    features = {"id": S, "question_id": S, "question": S, "answer": S, "image_source": S, "image": IMAGE,
                "category": S}  # fmt: skip
    rows = {"id": ["0", "1"], "question_id": ["1", "2"], "question": ["Is there a snowboard in the image?"] * 2,
            "answer": ["yes", "no"], "image_source": ["COCO_val2014_000000310196"] * 2,
            "image": [_png((16, 16))] * 2, "category": ["popular"] * 2}  # fmt: skip
    _write(tmp_path / "lmms-lab-encoder" / "POPE" / "Full" / "popular-00000-of-00001.parquet", rows, features)
    samples, _ = load_lmms_eval("pope_popular", root=tmp_path)
    assert [s.references for s in samples] == [["yes"], ["no"]]
    assert samples[0].extra["pope_split"] == "popular"
    assert score_benchmark("pope_popular", ["Yes", "There is no snowboard."], samples).primary == 1.0
    with pytest.raises(FileNotFoundError, match=r"no Full/random-\*\.parquet under .*POPE"):
        load_lmms_eval("pope_random", root=tmp_path)


def test_refcoco_boxes_normalised_by_the_image_size_one_sample_per_expression(tmp_path: Path) -> None:
    f32 = datasets.Value("float32")
    features = {"question_id": S, "image": IMAGE, "question": S, "answer": datasets.List(S),
                "segmentation": datasets.List(f32), "bbox": datasets.List(f32), "iscrowd": datasets.Value("int8"),
                "file_name": S}  # fmt: skip
    rows = {"question_id": ["1537681", "7", "8"], "image": [_png((200, 100))] * 3,
            "question": ["Please carefully observe the area circled in the image and come up with a caption for the "
                         "area."] * 3,
            "answer": [["bowl behind the others", "dish in top right corner"], ["flat"], ["outside"]],
            "segmentation": [[0.0] * 6] * 3, "bbox": [[20.0, 10.0, 100.0, 50.0], [5, 5, 0, 5], [150, 0, 80, 10]],
            "iscrowd": [0] * 3, "file_name": ["COCO_train2014_000000580957_4.jpg"] * 3}  # fmt: skip
    _write(tmp_path / "RefCOCOplus" / "data" / "testA-00000-of-00001.parquet", rows, features)
    samples, skipped = load_lmms_eval("refcoco+_testA", root=tmp_path)
    assert [s.sample_id for s in samples] == ["1537681_0", "1537681_1"]
    assert samples[1].prompt == "Locate the region that is described by:\ndish in top right corner."
    assert samples[0].references == [pytest.approx([0.1, 0.1, 0.6, 0.6])]  # [20,10,100,50] in 200 x 100
    assert skipped == {"degenerate box (zero or negative width or height)": 1, "box outside the image": 1}


def test_ai2d_answer_index_becomes_the_letter(tmp_path: Path) -> None:
    features = {"question": S, "options": datasets.List(S), "answer": S, "image": IMAGE}
    rows = {"question": ["Which stage?", "What eats grass?"], "options": [["egg", "larva", "pupa"], ["cow", "lion"]],
            "answer": ["2", "0"], "image": [_png((10, 10))] * 2}  # fmt: skip
    _write(tmp_path / "ai2d" / "data" / "test-00000-of-00002.parquet", rows, features)
    samples, _ = load_lmms_eval("ai2d_test", root=tmp_path)
    assert [s.references for s in samples] == [["C"], ["A"]]
    head = "Answer with the option's letter from the given choices directly.\nQuestion: "
    assert samples[1].prompt == f"{head}What eats grass?\nA: cow\nB: lion\nAnswer:"


def test_gqa_joins_instructions_to_images_on_image_id(tmp_path: Path) -> None:
    questions = {"id": ["201307251", "201640614"], "imageId": ["n1", "n2"], "question": ["Is it a dog?", "Color?"],
                 "answer": ["no", "blue"], "fullAnswer": ["No, it is a cat.", "It is blue."],
                 "isBalanced": [True, True]}  # fmt: skip
    q_features = {
        "id": S,
        "imageId": S,
        "question": S,
        "answer": S,
        "fullAnswer": S,
        "isBalanced": datasets.Value("bool"),
    }
    _write(
        tmp_path / "GQA" / "testdev_balanced_instructions" / "testdev-00000-of-00001.parquet", questions, q_features
    )
    images = {"id": ["n2", "n1"], "image": [_png((30, 20)), _png((12, 8))]}
    _write(tmp_path / "GQA" / "testdev_balanced_images" / "testdev-00000-of-00001.parquet", images,
           {"id": S, "image": IMAGE})  # fmt: skip
    samples, _ = load_lmms_eval("gqa_testdev", root=tmp_path)
    assert [(s.sample_id, s.references) for s in samples] == [("201307251", ["no"]), ("201640614", ["blue"])]
    assert [s.load_image().size for s in samples] == [(12, 8), (30, 20)]  # n1, n2: joined by id, not by row


def test_textvqa_nocaps_textcaps(tmp_path: Path) -> None:
    _write(tmp_path / "textvqa" / "data" / "validation-00000-of-00003.parquet",
           {"image_id": ["003a8ae2ef43b901"], "question_id": [34602], "question": ["what is the brand?"],
            "image": [_png((8, 8))], "answers": [["nokia"] * 10], "ocr_tokens": [["nokia", "phone"]]},
           {"image_id": S, "question_id": datasets.Value("int32"), "question": S, "image": IMAGE,
            "answers": datasets.List(S), "ocr_tokens": datasets.List(S)})  # fmt: skip
    [tv], _ = load_lmms_eval("textvqa_val", root=tmp_path)
    assert (tv.sample_id, tv.references[0], tv.extra["ocr_tokens"]) == ("34602", "nokia", ["nokia", "phone"])
    _write(tmp_path / "NoCaps" / "data" / "validation-00000-of-00003-55b5edbf01d47b39.parquet",
           {"image": [_png((8, 8))], "image_file_name": ["0013ea2087020901.jpg"], "image_id": [0],
            "annotations_ids": [[0, 1]], "annotations_captions": [["A man.", "A person."]]},
           {"image": IMAGE, "image_file_name": S, "image_id": datasets.Value("int32"),
            "annotations_ids": datasets.List(datasets.Value("int32")),
            "annotations_captions": datasets.List(S)})  # fmt: skip
    [nc], _ = load_lmms_eval("nocaps_val", root=tmp_path)
    assert (nc.sample_id, nc.references, nc.task) == ("0", ["A man.", "A person."], "caption")
    _write(tmp_path / "TextCaps" / "data" / "val-00000-of-00002.parquet",
           {"question_id": ["q"], "question": ["caption"], "image": [_png((8, 8))], "image_id": ["abc"],
            "caption_id": [[1, 2]], "caption_str": [["A sign.", "A red sign."]],
            "reference_strs": [["A sign.", "A red sign."]]},
           {"question_id": S, "question": S, "image": IMAGE, "image_id": S, "caption_id": datasets.List(I64),
            "caption_str": datasets.List(S), "reference_strs": datasets.List(S)})  # fmt: skip
    [tc], _ = load_lmms_eval("textcaps_val", root=tmp_path)
    assert (tc.sample_id, tc.references) == ("abc", ["A sign.", "A red sign."])


def test_the_hub_path_reads_the_cached_snapshot_of_either_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    # The Hub cache's layout (huggingface_hub "Manage the cache"): datasets--org--name/refs/main holds the commit,
    # snapshots/<commit>/ the files. Only lmms-lab-encoder/POPE is cached: lmms-lab/POPE fails offline, then this one.
    commit = "4db1276663dfa5eb8ad16a52d24c31a09e470896"
    repo = tmp_path / "hub" / "datasets--lmms-lab-encoder--POPE"
    rows = {"question_id": ["7"], "question": ["Is there a cat in the image?"], "answer": ["no"],
            "image": [_png((8, 8))], "category": ["adversarial"]}  # fmt: skip
    features = {"question_id": S, "question": S, "answer": S, "image": IMAGE, "category": S}
    _write(repo / "snapshots" / commit / "Full" / "adversarial-00000-of-00001.parquet", rows, features)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    [sample], _ = load_lmms_eval("pope_adversarial")
    assert (sample.sample_id, sample.references) == ("7", ["no"])
    assert str(sample.image_path).startswith("lmms-lab-encoder/POPE/adversarial/")
    with pytest.raises(FileNotFoundError, match=r"cannot load lmms-eval's POPE \(Full, random\): lmms-lab/POPE: .*"
                                                r"lmms-lab-encoder/POPE: no Full/random-\*\.parquet"):  # fmt: skip
        load_lmms_eval("pope_random")


def test_benchmarks_without_an_lmms_eval_dataset_say_so() -> None:
    with pytest.raises(ValueError, match=r"vsr_test has no lmms-eval dataset with images.*--source files"):
        load_lmms_eval("vsr_test")
