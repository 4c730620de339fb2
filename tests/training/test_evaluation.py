"""Scoring a dataset's predictions per task, and the image-blind baseline of the demo's table."""

from __future__ import annotations

import datasets
import pytest

from training.evaluation import image_blind_answers, score_predictions
from training.synthetic_tasks import score_task


def _rows(*rows: tuple[str, str, str, list[float]]) -> datasets.Dataset:
    columns = dict(zip(("task", "prompt", "answer", "box"), map(list, zip(*rows, strict=True)), strict=True))
    return datasets.Dataset.from_dict(columns)


EVAL = _rows(
    ("vqa", "Is there a red circle?", "yes", []),
    ("vqa", "How many squares are there?", "2", []),
    ("grounding", "Locate the circle.", "[0.00,0.00,0.50,0.50]", [0.0, 0.0, 0.5, 0.5]),
    ("counting", "How many circles are there?", "1", []),
)


def test_score_predictions_groups_by_task_and_scores_grounding_against_boxes() -> None:
    predictions = ["yes", "3", "[0,0,0.5,0.5]", "one"]
    scores = score_predictions(EVAL, predictions, score_task)
    assert scores["vqa"]["accuracy"] == pytest.approx(0.5)
    assert scores["grounding"]["accuracy"] == 1.0 and scores["grounding"]["mean_iou"] == pytest.approx(1.0)
    assert scores["counting"] == {"accuracy": 1.0}
    with pytest.raises(ValueError, match="3 predictions for 4 rows"):
        score_predictions(EVAL, predictions[:3], score_task)


def test_image_blind_answers_take_each_prompts_most_frequent_training_answer() -> None:
    train = _rows(
        ("vqa", "Is there a red circle?", "no", []),
        ("vqa", "Is there a red circle?", "yes", []),
        ("vqa", "Is there a red circle?", "yes", []),
        ("vqa", "How many circles are there?", "0", []),
        ("vqa", "How many circles are there?", "0", []),
        ("vqa", "How many circles are there?", "0", []),
        ("grounding", "Locate the circle.", "[0.10,0.10,0.30,0.30]", [0.1, 0.1, 0.3, 0.3]),
    )
    answers = image_blind_answers(train, EVAL)
    # Seen prompts get their own majority answer; unseen ones the task's; a task never trained on gets "".
    assert answers == ["yes", "0", "[0.10,0.10,0.30,0.30]", ""]
    scores = score_predictions(EVAL, answers, score_task)
    assert scores["vqa"]["accuracy"] == pytest.approx(0.5)
    assert scores["counting"] == {"accuracy": 0.0}
