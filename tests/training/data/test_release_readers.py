"""Readers on files as each dataset releases them (see release_tree for the format sources), and wrong files named."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from tests.training.data.release_tree import GRIT_CAPTION, grit_row, write_img2dataset_shard, write_release_tree
from training.data.images import image_exists, open_image
from training.data.readers import (
    read_coco_captions,
    read_docvqa,
    read_gqa,
    read_grit,
    read_infographicvqa,
    read_llava_conversations,
    read_ocrvqa,
    read_textcaps,
    read_visual7w,
    read_vqav2,
    read_vsr,
)

GROUND = "Locate the region that is described by:\n{}."


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release_tree(tmp_path_factory.mktemp("data-root"))


def _json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------------------------------------------------ GRIT


def test_grit_from_img2dataset_files_and_webdataset_shards(tree: Path) -> None:
    conversations = read_grit(tree / "grit")
    assert [c.image_path for c in conversations] == ["00000/000000000.jpg", "00001.tar/000010000.jpg"]
    assert conversations[0].turns == [
        (GROUND.format("a dog"), "[0.10,0.20,0.50,0.90]"),  # noun chunk [0, 5)
        (GROUND.format("a red ball"), "[0.60,0.55,0.80,0.75]"),  # noun chunk [14, 24)
        (GROUND.format("a dog chasing a red ball"), "[0.10,0.20,0.80,0.90]"),  # the referring expression [0, 24)
    ]
    assert conversations.skipped == {"not downloaded (failed_to_download)": 1}
    for conversation in conversations:  # both image layouts open, the tar member without unpacking
        assert image_exists(tree / "grit", conversation.image_path)
        assert open_image(tree / "grit", conversation.image_path).size == (12, 10)
    assert not image_exists(tree / "grit", "00001.tar/999.jpg")
    with pytest.raises(FileNotFoundError, match=r"'999\.jpg' is not in the tar shard .*00001\.tar"):
        open_image(tree / "grit", "00001.tar/999.jpg")
    assert [c.image_path for c in read_grit(tree / "grit" / "00001.parquet")] == ["00001.tar/000010000.jpg"]


def test_grit_subsamples_and_skips_unusable_boxes(tmp_path: Path) -> None:
    rows = [grit_row(f"{n:09d}") for n in range(30)]
    rows[3] = grit_row("000000003", chunks=[[0, 5, 0.5, 0.2, 0.5, 0.9, 0.7], [0, 5, 0.1, 0.2, 1.5, 0.9, 0.7]])
    rows[3]["ref_exps"] = []
    write_img2dataset_shard(tmp_path, 0, rows, webdataset=False)
    everything = read_grit(tmp_path)
    assert len(everything) == 29 and "00000/000000003.jpg" not in {c.image_path for c in everything}
    assert everything.skipped == {"degenerate or outside box": 2, "no grounded span": 1}
    sample = read_grit(tmp_path, max_records=5, seed=1)
    assert len(sample) == 5 and sample == read_grit(tmp_path, max_records=5, seed=1)
    assert [c.image_path for c in sample] == sorted(c.image_path for c in sample)  # file order kept
    assert sample != read_grit(tmp_path, max_records=5, seed=2)


def test_grit_release_parquet_and_bare_shards_are_named(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # The release's own rows (zzliang/GRIT card "Data Instance"): URLs and spans, no download status, no images.
    release = {"key": "000373938", "clip_similarity_vitb32": 0.35, "clip_similarity_vitl14": 0.29,
               "id": 1795296605919, "url": "https://img.example/x.jpg", "caption": GRIT_CAPTION, "width": 640,
               "height": 480, "noun_chunks": [[0, 5, 0.1, 0.2, 0.5, 0.9, 0.7]], "ref_exps": []}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([release]), tmp_path / "coyo_0_snappy.parquet")
    with pytest.raises(ValueError, match=r"coyo_0_snappy\.parquet is GRIT's release parquet .*img2dataset"):
        read_grit(tmp_path)
    shard = tmp_path / "bare"
    shard.mkdir()
    pq.write_table(pa.Table.from_pylist([{"key": "000000000", "status": "success", "caption": "c"}]),
                   shard / "00000.parquet")  # fmt: skip
    with pytest.raises(ValueError, match=r"without column\(s\) \['noun_chunks'\]; rerun img2dataset"):
        read_grit(shard)


# ------------------------------------------------------------------------------------------------- LLaVA mix665k


def test_llava_mix665k_keeps_text_only_records(tmp_path: Path) -> None:
    # llava_v1_5_mix665k.json (LLaVA docs/Data.md): image records name their dataset folder; ShareGPT ones have none.
    records = [
        {"id": "000000033471", "image": "coco/train2017/000000033471.jpg",
         "conversations": [{"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "A bus."}]},
        {"id": "i6IyJda_0", "model": "",
         "conversations": [{"from": "human", "value": "Write a haiku."}, {"from": "gpt", "value": "Snow falls."}]},
    ]  # fmt: skip
    conversations = read_llava_conversations(_json(tmp_path / "llava_v1_5_mix665k.json", records))
    assert [c.image_path for c in conversations] == ["coco/train2017/000000033471.jpg", None]
    assert conversations[1].turns == [("Write a haiku.", "Snow falls.")]
    assert conversations[1].to_messages()[0]["content"] == [{"type": "text", "text": "Write a haiku."}]
    assert conversations.notes == ["1 text-only conversations (no image)"]


# ------------------------------------------------------------------------------------------------ per-source fixes


def test_ocrvqa_cover_extension_follows_the_image_url(tree: Path) -> None:
    images = {c.image_path for c in read_ocrvqa(tree / "ocrvqa" / "dataset.json")}
    assert images == {"1001.jpg", "1002.png"}  # 1003 is the test split (3)
    assert all((tree / "ocrvqa" / "images" / image).is_file() for image in images)


def test_vsr_images_are_found_in_train2017_or_val2017(tree: Path) -> None:
    conversations = read_vsr(tree / "vsr" / "random" / "train.jsonl")
    assert [c.image_path for c in conversations] == ["train2017/000000050403.jpg", "val2017/000000143546.jpg"]
    assert all((tree / "coco" / c.image_path).is_file() for c in conversations)


def test_infographicvqa_official_names(tree: Path) -> None:
    [conversation] = read_infographicvqa(tree / "infographicvqa" / "infographicsVQA_train_v1.0.json")
    assert (tree / "infographicvqa" / "infographicsvqa_images" / conversation.image_path).is_file()
    assert conversation.turns[0][1] == "pinterest"


# ------------------------------------------------------------------------------------------------------ wrong files


def test_visual7w_pointing_given_to_the_telling_reader_is_named(tmp_path: Path) -> None:
    pointing = {"images": [{"image_id": 1, "filename": "v7w_1.jpg", "split": "train", "qa_pairs": [
        {"qa_id": 5, "image_id": 1, "question": "Which is the cat?", "answer": 11, "multiple_choices": [12, 13, 14],
         "type": "pointing"}]}], "boxes": [{"box_id": 11, "x": 0, "y": 0, "width": 5, "height": 5}]}  # fmt: skip
    with pytest.raises(ValueError, match=r"dataset_v7w_pointing\.json' is Visual7W pointing .*dataset_v7w_telling"):
        read_visual7w(_json(tmp_path / "dataset_v7w_pointing.json", pointing))
    telling = {"images": [{"image_id": 1, "filename": "v7w_1.jpg", "split": "test", "qa_pairs": []}]}
    with pytest.raises(ValueError, match=r"has no image of the split\(s\) \['train'\]: \['test'\]"):
        read_visual7w(_json(tmp_path / "dataset_v7w_telling.json", telling))


@pytest.mark.parametrize(
    ("reader", "name", "data", "message"),
    [
        (read_docvqa, "val_v1.0.json", {"dataset_split": "val", "data": []}, r"is docvqa's 'val' split"),
        (read_infographicvqa, "infographicsVQA_val_v1.0.json", {"dataset_split": "val", "data": []},
         r"is infographicvqa's 'val' split"),
        (read_textcaps, "TextCaps_0.1_val.json", {"dataset_type": "val", "data": []}, r"is TextCaps's 'val' split"),
        (read_gqa, "testdev_balanced_questions.json", {}, r"is GQA's 'testdev' split; training reads 'train'"),
        (read_coco_captions, "captions_train2014.json", {"info": {}, "images": [], "annotations": []},
         r"is COCO's own captions file; coco_captions reads Karpathy's dataset_coco\.json"),
        (read_coco_captions, "dataset_coco.json", {"images": [{"split": "test", "filename": "x.jpg",
                                                               "sentences": []}]},
         r"has no image of the split\(s\) \['train', 'restval'\]: \['test'\]"),
    ],
)  # fmt: skip
def test_evaluation_splits_and_other_files_are_refused(
    tmp_path: Path, reader: Any, name: str, data: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        reader(_json(tmp_path / name, data))


def test_vqav2_val_files_are_refused(tmp_path: Path) -> None:
    questions = _json(tmp_path / "q.json", {"data_subtype": "val2014", "questions": []})
    annotations = _json(tmp_path / "a.json", {"data_subtype": "val2014", "annotations": []})
    with pytest.raises(ValueError, match=r"is VQAv2's 'val2014' split; training reads 'train2014'.*vlm eval"):
        read_vqav2(questions, annotations)
    assert read_vqav2(questions, annotations, data_subtype=None) == []  # explicitly allowed


def test_binary_files_given_to_json_readers_say_what_they_are(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p' is not a JSON text file \(it looks like a pickle\)"):
        read_gqa(tree / "refer" / "refcoco" / "refs(unc).p")  # protocol 0 starts with '(': a pickle by content
    (tmp_path / "x.json").write_bytes(pickle.dumps({"a": "é"}, protocol=2))
    with pytest.raises(ValueError, match="it looks like a pickle"):
        read_gqa(tmp_path / "x.json")
    with pytest.raises(ValueError, match=r"it looks like a parquet file"):
        read_llava_conversations(tree / "grit" / "00000.parquet")
