"""Tests for the demo evaluation metrics, on hand-computed cases."""

from __future__ import annotations

import pytest

from training.metrics import (
    box_iou,
    exact_match,
    grounding_accuracy,
    normalize_answer,
    parse_box,
    score_task,
    token_f1,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Red  Circle.", "red circle"),
        ("  an apple, a pear!  ", "apple pear"),
        ("Yes", "yes"),
        ("theory", "theory"),  # articles are removed only as whole words
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_exact_match_single_and_multiple_refs() -> None:
    assert exact_match("The circle.", "circle") == 1.0
    assert exact_match("square", "circle") == 0.0
    assert exact_match("Blue", ["red", "blue"]) == 1.0
    assert exact_match("blue", []) == 0.0


def test_token_f1_hand_computed() -> None:
    # pred tokens {small, red, circle}, ref tokens {large, red, circle}: P = R = 2/3.
    assert token_f1("a small red circle", "a large red circle") == pytest.approx(2 / 3)
    # pred {red}, ref {red, circle}: P = 1, R = 1/2 -> F1 = 2/3.
    assert token_f1("red", "red circle") == pytest.approx(2 / 3)
    assert token_f1("green", "red circle") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "") == 1.0  # both normalise to empty
    assert token_f1("", "red") == 0.0
    assert token_f1("red", "") == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[0.12,0.34,0.56,0.78]", (0.12, 0.34, 0.56, 0.78)),
        ("The box is [ 0.1 , 0.2, 0.3 ,0.4 ] I think", (0.1, 0.2, 0.3, 0.4)),
        ("[1,2,3,4]", (1.0, 2.0, 3.0, 4.0)),
        ("[-0.5,-1,.5,2.]", (-0.5, -1.0, 0.5, 2.0)),
        ("[0.1,0.2] then [0.1,0.2,0.3,0.4] and [0,0,1,1]", (0.1, 0.2, 0.3, 0.4)),
        ("[0.2,0.2,0.2,0.2]", (0.2, 0.2, 0.2, 0.2)),  # zero area but not inverted
    ],
)
def test_parse_box_valid(text: str, expected: tuple[float, float, float, float]) -> None:
    assert parse_box(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no box here",
        "[0.1,0.2,0.3]",
        "[0.1,0.2,0.3,0.4,0.5]",
        "[0.1,0.2,0.3,0.4",
        "0.1,0.2,0.3,0.4]",
        "[a,b,c,d]",
        "[0.1,,0.3,0.4]",
        "[0.5,0.1,0.2,0.4]",  # x2 < x1
        "[0.1,0.5,0.2,0.4]",  # y2 < y1
        "[" + "9" * 400 + ",0,1,1]",  # overflows to inf
        "[0.1.2,0.2,0.3,0.4]",
    ],
)
def test_parse_box_malformed_returns_none(text: str) -> None:
    assert parse_box(text) is None


def test_parse_box_non_string_returns_none() -> None:
    assert parse_box(None) is None  # type: ignore[arg-type]
    assert parse_box(123) is None  # type: ignore[arg-type]


def test_box_iou_hand_computed() -> None:
    # Intersection 0.25*0.25 = 1/16, union 2 * 1/4 - 1/16 = 7/16.
    assert box_iou([0, 0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 1, 1], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert box_iou([0, 0, 1, 1], [0, 0, 0.5, 1]) == pytest.approx(0.5)
    assert box_iou([0, 0, 0.2, 0.2], [0.5, 0.5, 1, 1]) == 0.0
    assert box_iou([0, 0, 0.5, 0.5], [0.5, 0, 1, 0.5]) == 0.0  # touching edges


def test_box_iou_degenerate() -> None:
    assert box_iou([0.3, 0.3, 0.3, 0.3], [0.3, 0.3, 0.3, 0.3]) == 0.0
    assert box_iou([0.5, 0.5, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1]) == 0.0
    # An inverted box counts as empty, so only the valid box contributes to the union.
    assert box_iou([0.5, 0.5, 0.1, 0.1], [0, 0, 1, 1]) == 0.0


def test_grounding_accuracy_counts_malformed_as_wrong() -> None:
    refs = [[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5], [0, 0, 1, 1], [0, 0, 1, 1]]
    preds = [
        "[0.00,0.00,0.50,0.50]",  # IoU 1
        "[0.25,0.25,0.75,0.75]",  # IoU 1/7
        "garbage",
        "[1,1,0,0]",  # inverted
    ]
    assert grounding_accuracy(preds, refs) == pytest.approx(0.25)
    assert grounding_accuracy(preds, refs, threshold=0.1) == pytest.approx(0.5)
    assert grounding_accuracy([], []) == 0.0


def test_grounding_accuracy_threshold_is_strict() -> None:
    # IoU exactly 0.5 is not "> 0.5".
    assert grounding_accuracy(["[0,0,0.5,1]"], [[0, 0, 1, 1]]) == 0.0


def test_grounding_accuracy_length_mismatch() -> None:
    with pytest.raises(ValueError):
        grounding_accuracy(["[0,0,1,1]"], [])


def test_score_task_caption() -> None:
    result = score_task("caption", ["A large red circle.", "a small square"], ["a large red circle", "a blue square"])
    assert set(result) == {"exact_match", "token_f1"}
    assert result["exact_match"] == pytest.approx(0.5)
    # Second pair: pred {small, square}, ref {blue, square} -> F1 = 1/2.
    assert result["token_f1"] == pytest.approx((1.0 + 0.5) / 2)


def test_score_task_caption_multiple_refs_takes_best() -> None:
    result = score_task("caption", ["red circle"], [["blue square", "red circle"]])
    assert result == {"exact_match": 1.0, "token_f1": 1.0}


def test_score_task_vqa() -> None:
    assert score_task("vqa", ["Red.", "2", "yes"], ["red", "3", ["no", "yes"]]) == {"accuracy": pytest.approx(2 / 3)}


def test_score_task_grounding() -> None:
    result = score_task("grounding", ["[0,0,0.5,0.5]", "[0.25,0.25,0.75,0.75]", "oops"], [[0, 0, 0.5, 0.5]] * 3)
    assert result["accuracy"] == pytest.approx(1 / 3)
    assert result["mean_iou"] == pytest.approx((1 + 1 / 7 + 0) / 3)


def test_score_task_empty() -> None:
    assert score_task("vqa", [], []) == {"accuracy": 0.0}
    assert score_task("grounding", [], []) == {"accuracy": 0.0, "mean_iou": 0.0}


def test_score_task_unknown_task_lists_valid_tasks() -> None:
    with pytest.raises(ValueError, match=r"caption.*vqa.*grounding"):
        score_task("ocr", ["x"], ["x"])
