"""The AI2D release reader on an unpacked ``ai2d-all.zip`` fixture (see release_fixtures for the format's source)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.training.releases.release_fixtures import write_ai2d
from training.releases.ai2d import read_ai2d


@pytest.mark.parametrize("test_ids_inside", [False, True])
def test_the_test_split_is_the_images_of_the_test_ids(tmp_path: Path, test_ids_inside: bool) -> None:
    folder = write_ai2d(tmp_path, test_ids_inside=test_ids_inside)
    test = read_ai2d(folder, "test")
    assert [(q.image, q.question_id, q.answer_index) for q in test] == [
        ("0.png", "0.png-0", 1), ("0.png", "0.png-1", 3), ("2.png", "2.png-0", 1)
    ]  # fmt: skip
    assert test[0].question == "Which stage comes after the egg?"
    assert test[0].options == ("adult", "larva", "pupa", "nymph")  # release order, never shuffled
    assert (test[0].abc_label, test[1].abc_label) == (False, True)
    assert [q.image for q in read_ai2d(folder, "train")] == ["1.png"]
    assert len(read_ai2d(folder, "all")) == 4


def test_ocr_text_is_the_papers_sorted_label_lines(tmp_path: Path) -> None:
    folder = write_ai2d(tmp_path)
    by_image = {q.image: q.ocr_text for q in read_ai2d(folder, "all")}
    assert by_image["0.png"] == "OCR text:\nA: egg\nB: larva"  # sorted by replacementText, not file order
    assert by_image["1.png"] == "" and by_image["2.png"] == ""  # no annotation file / no text entries


def test_bad_release_input_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "questions")) + ".*ai2d-all.zip"):
        read_ai2d(tmp_path)
    folder = write_ai2d(tmp_path)
    with pytest.raises(ValueError, match="unknown AI2D split 'val'; valid: test, train, all"):
        read_ai2d(folder, "val")
    (tmp_path / "ai2d_test_ids.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"ai2d_test_ids\.csv not found: AI2D's test ids"):
        read_ai2d(folder, "test")
    path = folder / "questions" / "1.png.json"
    path.write_text(json.dumps({"questions": {"Q?": {"answerTexts": ["a", "b"], "correctAnswer": 2}}}))
    with pytest.raises(ValueError, match=r"1\.png\.json \['Q\?'\]: needs answerTexts .* and correctAnswer"):
        read_ai2d(folder, "all")
