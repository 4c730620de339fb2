"""Every metric (the benchmarks' and the synthetic tasks') on hand-computed cases; malformed predictions are wrong."""

from __future__ import annotations

import math

import pytest
from pycocoevalcap.cider.cider import Cider

from training.eval import metrics
from training.eval.metrics import (
    box_iou,
    choose_candidate,
    cider,
    exact_match,
    exact_match_accuracy,
    grounding_accuracy,
    grounding_score,
    multiple_choice_accuracy,
    normalize_answer,
    parse_box,
    parse_choice,
    parse_true_false,
    parse_yes_no,
    pointing_accuracy,
    pope_metrics,
    ptb_like_tokenize,
    token_f1,
    true_false_accuracy,
    vqa_accuracy,
    vqa_normalize,
    vqa_process_punctuation,
    vqa_score,
)

BAD_PREDICTIONS = [None, "", "   ", 42, "x" * (metrics.MAX_PREDICTION_CHARS + 1), "[[[", "\x00"]


# ---------------------------------------------------------------------------------------------------------------- VQA


def _answers(k: int, match: str = "cat", other: str = "dog") -> list[str]:
    """Ten annotator answers, ``k`` of which are ``match``."""
    return [match] * k + [other] * (10 - k)


@pytest.mark.parametrize(
    ("agreeing", "expected"),
    [
        # k agreeing annotators: each of the k sees k-1 matches among the other 9, each of the 10-k sees k.
        (0, 0.0),
        (1, (1 * 0 + 9 * (1 / 3)) / 10),  # 0.3
        (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10),  # 0.6
        (3, (3 * (2 / 3) + 7 * 1) / 10),  # 0.9
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_vqa_score_averages_leave_one_out_subsets(agreeing: int, expected: float) -> None:
    assert vqa_score("cat", _answers(agreeing)) == pytest.approx(expected)


def test_vqa_score_hand_values() -> None:
    assert vqa_score("cat", _answers(2)) == pytest.approx(0.6)
    assert vqa_score("cat", _answers(3)) == pytest.approx(0.9)


def test_vqa_normalisation_matches_official_rules() -> None:
    assert vqa_normalize("Two") == "2"  # manualMap
    assert vqa_normalize("the dog.") == "dog"  # articles, period stripping
    assert vqa_normalize("dont") == "don't"  # contractions
    assert vqa_normalize("3.5") == "3.5"  # a period before a digit stays
    assert vqa_normalize("1,000") == "1000"  # digit,digit: punctuation is deleted, not spaced
    assert vqa_normalize("black/white") == "black white"  # no adjacent space: punctuation becomes a space
    assert vqa_process_punctuation("yes, it is") == "yes it is"  # ", " present: deleted
    assert vqa_normalize("  A\tred\nball! ") == "red ball"


def test_vqa_score_normalises_prediction_and_answers() -> None:
    assert vqa_score("Two.", ["2"] * 10) == 1.0
    assert vqa_score("The Cat", _answers(3, match="cat")) == pytest.approx(0.9)
    # vqaEval.py's own branch normalises only when the annotators disagree.
    assert vqa_score("Two.", ["2"] * 10, always_normalize=False) == 0.0
    assert vqa_score("2", ["2"] * 10, always_normalize=False) == 1.0


@pytest.mark.parametrize("bad", BAD_PREDICTIONS)
def test_vqa_score_bad_prediction_is_wrong(bad: object) -> None:
    assert vqa_score(bad, _answers(10)) == 0.0


def test_vqa_accuracy_mean_and_errors() -> None:
    assert vqa_accuracy(["cat", "cat"], [_answers(2), _answers(3)]) == pytest.approx(0.75)
    assert vqa_accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="2 predictions but 1"):
        vqa_accuracy(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="non-empty"):
        vqa_score("a", [])


# -------------------------------------------------------------------------------------------------------------- CIDEr


def test_cider_hand_computed_cases() -> None:
    refs = [["a red bus parked on the street"], ["two dogs play in the snow"]]
    # An exact copy of the only reference, with all n-grams unique to its image: cosine 1 for n = 1..4, x10.
    exact = cider(["a red bus parked on the street", "two dogs play in the snow"], refs, tokenizer="python")
    assert exact.per_sample == pytest.approx((10.0, 10.0))
    assert exact.score == pytest.approx(10.0)
    assert exact.tokenizer == "python"
    # Three words have no 4-gram: n = 1..3 score 1, n = 4 scores 0 -> mean 3/4, x10 = 7.5 (same length as ref).
    short = cider(["red bus parked", "zebra"], [["red bus parked"], ["two dogs play"]], tokenizer="python")
    assert short.per_sample[0] == pytest.approx(7.5)
    assert short.per_sample[1] == 0.0


def test_cider_matches_pycocoevalcap_called_directly() -> None:
    preds = ["A man riding a wave on a surfboard.", "a plate of food", "Two dogs, playing in the snow!"]
    refs = [
        ["A surfer rides a large wave.", "A man on a surfboard riding a wave in the ocean.", "Man surfing."],
        ["A plate with broccoli and rice.", "Food on a white plate.", "A dinner plate of food."],
        ["Two dogs play in the snow.", "A pair of dogs running in snow.", "Dogs playing outside in winter."],
    ]
    result = cider(preds, refs, tokenizer="python")
    gts = {i: [ptb_like_tokenize(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [ptb_like_tokenize(p)] for i, p in enumerate(preds)}
    score, scores = Cider().compute_score(gts, res)
    assert result.score == pytest.approx(float(score))
    assert result.per_sample == pytest.approx(tuple(float(s) for s in scores))
    assert 0.0 < result.score < 10.0


def test_cider_auto_uses_python_tokenizer_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics.captions.shutil, "which", lambda name: None)
    assert not metrics.java_available()
    result = cider(["a cat"], [["a cat on a mat"]])
    assert result.tokenizer == "python"
    with pytest.raises(RuntimeError, match="Java"):
        cider(["a cat"], [["a cat"]], tokenizer="ptb")


@pytest.mark.skipif(not metrics.java_available(), reason="Java is not installed")
def test_cider_ptb_tokenizer_agrees_with_python_on_plain_captions() -> None:
    preds = ["A man's dog, running (fast) in the park.", "", "He doesn't like New-York; it's 3.5 miles!"]
    refs = [["A dog runs in a park."], ["A cat."], ["He doesn't like the city; it's far."]]
    ptb = cider(preds, refs, tokenizer="ptb")
    python = cider(preds, refs, tokenizer="python")
    assert ptb.tokenizer == "ptb"
    assert ptb.per_sample == pytest.approx(python.per_sample)


@pytest.mark.parametrize("bad", BAD_PREDICTIONS)
def test_cider_bad_prediction_scores_zero(bad: object) -> None:
    result = cider([bad, "a cat on a mat"], [["a dog"], ["a cat on a mat"]], tokenizer="python")
    assert result.per_sample[0] == 0.0
    assert math.isfinite(result.score)


def test_cider_rejects_bad_references() -> None:
    with pytest.raises(ValueError, match=r"references\[0\]"):
        cider(["a"], [[]], tokenizer="python")
    with pytest.raises(ValueError, match="2 predictions but 1"):
        cider(["a", "b"], [["a"]], tokenizer="python")
    assert cider([], [], tokenizer="python").score == 0.0


def test_ptb_like_tokenize() -> None:
    assert ptb_like_tokenize("A man's dog, running (fast)!") == "a man 's dog running -lrb- fast -rrb-"
    assert ptb_like_tokenize("It doesn't cost $5 at 9:30 p.m.") == "it does n't cost $ 5 at 9:30 p.m."


# ------------------------------------------------------------------------------------------- exact match and parsers


def test_exact_match() -> None:
    assert exact_match_accuracy(["Yes.", "red", "blue", None], ["yes", ["Red", "maroon"], "green", "x"]) == 0.5
    assert exact_match_accuracy(["x" * (metrics.MAX_PREDICTION_CHARS + 1)], ["x"]) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", 1),
        ("B.", 1),
        ("(C)", 2),
        ("[A]", 0),
        ("D: a red bus", 3),
        ("C) the cat", 2),
        ("The answer is D.", 3),
        ("Answer: (B)", 1),
        ("A cat on a mat", None),  # free text starting with the article "A" is not option A
        ("the answer is a cat", None),
        ("E", None),  # beyond the 4 options
        ("", None),
        (None, None),
        ("banana", None),
    ],
)
def test_parse_choice(text: object, expected: int | None) -> None:
    assert parse_choice(text, 4) == expected


def test_parse_choice_by_option_text_and_accuracy() -> None:
    assert parse_choice("a red bus", 3, options=["A red bus.", "A car", "A bike"]) == 0
    assert multiple_choice_accuracy(["B", "(a)", "C. dog", ""], ["B", "A", "C", "D"], 4) == 0.5
    with pytest.raises(ValueError, match="gold_letters"):
        multiple_choice_accuracy(["A"], ["Z"], 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("True", True), ("false.", False), ("True, the cat is left.", True), ("Yes", True), ("maybe", None), ("", None)],
)
def test_parse_true_false(text: str, expected: bool | None) -> None:
    assert parse_true_false(text) is expected


def test_true_false_accuracy() -> None:
    assert true_false_accuracy(["True", "False", "no idea", None], [1, 0, 1, "False"]) == 0.5
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        true_false_accuracy(["True"], ["perhaps"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("Yes, there is a dog.", "yes"),
        ("No.", "no"),
        ("There is no dog in the image.", "no"),
        ("There isn't a dog.", "no"),
        ("I think yes", "yes"),
        ("maybe", None),
        ("", None),
        (None, None),
        ("x" * (metrics.MAX_PREDICTION_CHARS + 1), None),
    ],
)
def test_parse_yes_no(text: object, expected: str | None) -> None:
    assert parse_yes_no(text) == expected


def test_pope_counts() -> None:
    preds = ["yes", "no", "Yes, there is.", "No", "maybe", ""]
    labels = ["yes", "yes", "no", "no", "yes", "no"]
    # tp: 1st; fn: 2nd and the unparsable 5th (gold yes); fp: 3rd and the empty 6th (gold no); tn: 4th.
    scores = pope_metrics(preds, labels)
    assert (scores["tp"], scores["fp"], scores["tn"], scores["fn"], scores["invalid"]) == (1, 2, 1, 2, 2)
    assert scores["accuracy"] == pytest.approx(2 / 6)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3)
    assert scores["yes_ratio"] == pytest.approx(2 / 6)


def test_pope_all_no_has_zero_precision_without_crashing() -> None:
    scores = pope_metrics(["no", "no"], ["yes", "no"])
    assert scores["precision"] == 0.0 and scores["f1"] == 0.0 and scores["accuracy"] == 0.5
    assert pope_metrics([], [])["accuracy"] == 0.0


# ------------------------------------------------------------------------------------------------ grounding, pointing


def test_grounding_iou_threshold() -> None:
    ref = [0.0, 0.0, 0.5, 1.0]
    assert grounding_score("[0.00,0.00,0.50,1.00]", ref) == 1.0
    assert grounding_score("The box is [0.0, 0.0, 0.6, 1.0].", ref) == 1.0  # IoU 0.5 / 0.6 = 0.83
    assert grounding_score("[0,0,1,1]", ref) == 0.0  # IoU exactly 0.5 is not > 0.5


@pytest.mark.parametrize("bad", [*BAD_PREDICTIONS, "[0.1,0.2]", "[0.5,0.5,0.1,0.1]", "[a,b,c,d]", "[0.2,0.2,0.2,0.2]"])
def test_grounding_malformed_is_wrong(bad: object) -> None:
    assert grounding_score(bad, [0.0, 0.0, 1.0, 1.0]) == 0.0


def test_grounding_accuracy_and_reference_errors() -> None:
    assert grounding_accuracy(["[0,0,1,1]", "nope"], [[0, 0, 1, 1], [0, 0, 1, 1]]) == 0.5
    with pytest.raises(ValueError, match=r"boxes\[0\]"):
        grounding_accuracy(["[0,0,1,1]"], [[0, 0, 1]])


CANDIDATES = [[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.4, 1.0], [0.6, 0.0, 1.0, 0.3]]


def test_pointing_picks_highest_iou_candidate() -> None:
    assert choose_candidate("[0.05,0.55,0.40,0.95]", CANDIDATES) == 2
    assert choose_candidate("[0.45,0.45,1.00,1.00]", CANDIDATES) == 1
    assert choose_candidate("C", CANDIDATES) == 2  # an option letter picks directly
    assert choose_candidate("[0.41,0.31,0.49,0.49]", CANDIDATES) is None  # overlaps no candidate
    assert choose_candidate("[0,0,1,1]", [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]) is None  # tie: ambiguous
    for bad in BAD_PREDICTIONS:
        assert choose_candidate(bad, CANDIDATES) is None


def test_pointing_accuracy() -> None:
    preds = ["[0.05,0.55,0.40,0.95]", "[0.45,0.45,1.00,1.00]", "garbage", "D"]
    assert pointing_accuracy(preds, [CANDIDATES] * 4, [2, 0, 1, 3]) == 0.5
    with pytest.raises(ValueError, match="out of range"):
        pointing_accuracy(["A"], [CANDIDATES], [4])


# ------------------------------------------------------------------------ SQuAD-style answers, boxes and IoU


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
