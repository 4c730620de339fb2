"""The synthetic tasks' scorer, scoring a dataset's predictions per task, and the image-blind baseline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import pytest

from training.synthetic import shapes, tasks
from training.synthetic.scoring import (
    ALL_TASKS,
    evaluate_dataset,
    image_blind_answers,
    parse_count,
    score_predictions,
    score_task,
)


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


def test_image_blind_answers_guess_among_the_options_of_an_unseen_prompt() -> None:
    """A blind model that reads the prompt picks the likeliest of its options, never an answer the prompt rules out."""

    def choice(options: str, answer: str, letters: bool = False) -> tuple[str, str, str, list[float]]:
        lines = "\n".join(f"{'ABCD'[i]}: {o}" for i, o in enumerate(options.split()))
        head = "letter" if letters else "option"
        return ("multiple_choice", f"Answer with the {head}.\nQuestion: What color?\n{lines}\nAnswer:", answer, [])

    options = _rows(choice("red blue", "red"), choice("red blue", "red"), choice("blue green", "green"))
    unseen = _rows(
        choice("green blue", "blue"),  # "red" is commoner but not an option: the likeliest option is "green"
        choice("pink purple", "pink"),  # no option was ever an answer: the task's commonest answer
        choice("red blue", "blue"),  # seen: its own majority answer
    )  # fmt: skip
    assert image_blind_answers(options, unseen) == ["green", "red", "red"]
    letters = _rows(
        choice("red yellow blue", "A", letters=True), choice("red blue green yellow", "D", letters=True),
        choice("red blue green yellow", "D", letters=True),
    )  # fmt: skip
    unseen = _rows(choice("red green yellow", "A", letters=True), choice("red blue green yellow", "D", letters=True))
    # "D" is commoner, but the first prompt has no option D; the second was seen.
    assert image_blind_answers(letters, unseen) == ["A", "D"]


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


@pytest.mark.parametrize(
    ("task", "preds", "refs", "expected"),
    [
        ("reading", ["AB3", "ab3", " AB3 \n", "", None, "A" * 5000], ["AB3"] * 6, 2 / 6),
        ("counting", ["3", "three", "There are 3.", "4", "", "x" * 5000], ["3"] * 6, 3 / 6),
        ("multiple_choice", ["B", "(B)", "The answer is B", "A", "b c", None], ["B"] * 6, 3 / 6),
        # Answered with the option itself (the demo's variant): the first line, ignoring case; a letter is not it.
        ("multiple_choice", ["red", " Red \nblue", "A", "red circle", "", None], ["red"] * 6, 2 / 6),
        (
            "retrieval",
            ["row 2, column 3", "Row 2, column 3 ", "row 3, column 2", "", None],
            ["row 2, column 3"] * 5,
            2 / 5,
        ),
        ("retrieval", ["red", "Red\nblue", "blue", "x" * 5000], ["red"] * 4, 2 / 4),
    ],
)
def test_new_tasks_are_scored_and_bad_predictions_count_as_wrong(
    task: str, preds: list, refs: list, expected: float
) -> None:
    assert score_task(task, preds, refs) == {"accuracy": pytest.approx(expected)}


def test_score_task_delegates_the_demo_tasks_and_rejects_unknown_ones() -> None:
    assert score_task("vqa", ["red"], ["red"]) == {"accuracy": 1.0}
    assert score_task("grounding", ["[0,0,1,1]"], [[0.0, 0.0, 1.0, 1.0]])["accuracy"] == 1.0
    with pytest.raises(ValueError, match="reading, counting, multiple_choice, retrieval"):
        score_task("ocr", [], [])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        score_task("counting", ["1", "2"], ["1"])


def test_parse_count() -> None:
    assert [parse_count(p) for p in ("0", "zero", "ten apples", "none", 3)] == [0, 0, 10, None, None]


def test_evaluate_dataset_scores_every_task(make_model: Callable, processor: Any) -> None:
    rows = datasets.concatenate_datasets(
        [shapes.build_synthetic_dataset(1, seed=0, config=shapes.SyntheticShapesConfig(image_size=32)),
         tasks.build_synthetic_tasks_dataset(1, seed=0, config=tasks.SyntheticTasksConfig(image_size=32))]
    )  # fmt: skip
    scores, predictions = evaluate_dataset(make_model("pythia"), processor, rows, 6, 2, show_progress=False)
    assert set(scores) == {"caption", "vqa", "grounding", *tasks.TASKS}
    assert all(0.0 <= value <= 1.0 for task in scores.values() for value in task.values())
    assert [p["task"] for p in predictions] == rows["task"]
    assert all(isinstance(p["prediction"], str) for p in predictions)


def test_no_task_is_answered_by_its_prompt_alone() -> None:
    # The image-blind baseline as the demo fits it (each prompt's most frequent answer in the demo's 1500 training
    # rows per task), scored on other rows: every task must leave most of its answers to the image (the answers
    # themselves are read back from the pixels in test_shapes.py / test_tasks.py).
    from training.demo import DemoConfig, build_demo_dataset

    train = build_demo_dataset(DemoConfig(), num_images=1500, seed=7)
    rows = build_demo_dataset(DemoConfig(), num_images=300, seed=8)
    blind = image_blind_answers(train, rows)
    for task in ALL_TASKS:
        indices = [i for i, t in enumerate(rows["task"]) if t == task]
        hits = sum(blind[i] == rows["answer"][i] for i in indices) / len(indices)
        assert hits < 0.5, f"{task}: the prompt alone gives {hits:.0%} of the answers"
