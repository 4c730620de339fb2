"""The REFER release reader on fixtures in the release's own layout and pickle format (see release_fixtures)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.training.releases.release_fixtures import py2_pickle, write_refer
from training.releases.plain_pickle import UnsafePickleError
from training.releases.refer import read_refer, refer_files, select_split


@pytest.mark.parametrize("protocol", [0, 2])
def test_every_expression_of_the_three_datasets_reads_from_python2_pickles(tmp_path: Path, protocol: int) -> None:
    root = write_refer(tmp_path, protocol=protocol)
    refcoco = read_refer(root, "refcoco", "unc")
    assert [(e.ref_id, e.sent_id, e.text, e.split) for e in refcoco] == [
        (0, 0, "man on left", "testA"), (0, 1, "left guy.", "testA"), (1, 10, "red car", "testB"),
        (2, 20, "flat thing", "testB"), (3, 30, "cut off", "testB"), (4, 40, "a car", "train"),
        (5, 50, "the man", "val"),
    ]  # fmt: skip
    first = refcoco[0]
    assert (first.ann_id, first.image_id, first.bbox) == (100, 1, (64.0, 48.0, 128.0, 96.0))
    # The image's file name and size come from instances.json, not from the ref's own file_name (which has a suffix).
    assert (first.file_name, first.width, first.height) == ("COCO_train2014_000000000001.jpg", 640.0, 480.0)
    assert [e.text for e in read_refer(root, "refcoco+", "unc")] == ["man wearing blue", "gray vehicle", "silver car"]
    assert [e.split for e in read_refer(root, "refcocog", "umd")] == ["test", "val", "train"]
    assert [e.split for e in read_refer(root, "refcocog", "google")] == ["val"]


def test_splits_follow_refer_getrefids(tmp_path: Path) -> None:
    expressions = read_refer(write_refer(tmp_path), "refcoco", "unc")
    assert [e.ref_id for e in select_split(expressions, "testA", "x")] == [0, 0]
    assert [e.ref_id for e in select_split(expressions, "testB", "x")] == [1, 2, 3]
    assert [e.ref_id for e in select_split(expressions, "test", "x")] == [0, 0, 1, 2, 3]  # every test split
    assert [e.ref_id for e in select_split(expressions, "val", "x")] == [5]
    with pytest.raises(ValueError, match=r"x: no expression of split 'testC'; this release has: test, testA, testB, "
                                         r"train, val"):  # fmt: skip
        select_split(expressions, "testC", "x")


def test_unknown_dataset_or_split_by_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"refcoco\+ is released split by unc, not 'google'"):
        refer_files(tmp_path, "refcoco+", "google")
    with pytest.raises(ValueError, match="unknown REFER dataset 'refclef'; valid: refcoco, refcoco"):
        refer_files(tmp_path, "refclef", "unc")


def test_missing_files_name_their_path_and_release(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "refcoco" / "refs(unc).p")) + ".*lichengunc"):
        read_refer(tmp_path, "refcoco", "unc")
    root = write_refer(tmp_path)
    (root / "refcoco" / "instances.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"instances\.json not found: REFER's instances\.json"):
        read_refer(root, "refcoco", "unc")


def test_refs_pointing_at_unknown_annotations_name_them(tmp_path: Path) -> None:
    root = write_refer(tmp_path)
    ref = {"ref_id": 9, "ann_id": 999, "image_id": 1, "split": "testA", "sentences": [{"sent": "x", "sent_id": 1}]}
    (root / "refcoco" / "refs(unc).p").write_bytes(py2_pickle([ref]))
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p refs\[0\]: ann_id 999 is not in the annotations of"):
        read_refer(root, "refcoco", "unc")
    del ref["sentences"]
    ref["ann_id"] = 100
    (root / "refcoco" / "refs(unc).p").write_bytes(py2_pickle([ref]))
    with pytest.raises(ValueError, match=r"refs\[0\]: missing field 'sentences'"):
        read_refer(root, "refcoco", "unc")
    (root / "refcoco" / "refs(unc).p").write_bytes(py2_pickle({"refs": []}))
    with pytest.raises(ValueError, match="expected a list of refs, got dict"):
        read_refer(root, "refcoco", "unc")


def test_a_malicious_refs_pickle_is_refused_unrun(tmp_path: Path) -> None:
    root = write_refer(tmp_path)
    marker = tmp_path / "ran"
    (root / "refcocog" / "refs(umd).p").write_bytes(f"cposix\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(UnsafePickleError, match=r"refs\(umd\)\.p: the pickle asks for posix\.system"):
        read_refer(root, "refcocog", "umd")
    assert not marker.exists()
