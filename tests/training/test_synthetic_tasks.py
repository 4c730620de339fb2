"""The reading, counting, multiple-choice and retrieval synthetic tasks: determinism, answers, schema, scoring."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
import pytest
from PIL import Image

from training.synthetic import BACKGROUND, COLORS, SyntheticShapesConfig, build_synthetic_dataset
from training.synthetic_tasks import (
    NEW_TASKS,
    READING_ALPHABET,
    SyntheticTasksConfig,
    build_synthetic_tasks_dataset,
    counting_row,
    counting_scene,
    multiple_choice_row,
    parse_count,
    reading_row,
    retrieval_row,
    retrieval_scene,
    score_task,
)

CONFIG = SyntheticTasksConfig(image_size=32)
IDS = range(30)
MC_RE = re.compile(
    r"^Answer with the option's letter from the given choices directly\.\nQuestion: (.+\?)\n"
    r"((?:[A-D]: [a-z0-9]+\n){3,4})Answer:$"
)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int32)


def _components(mask: np.ndarray) -> int:
    """Number of 4-connected components of a boolean mask."""
    seen = np.zeros_like(mask, dtype=bool)
    count = 0
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    return count


@pytest.fixture(scope="module")
def dataset() -> datasets.Dataset:
    return build_synthetic_tasks_dataset(8, seed=3, config=CONFIG)


def test_rows_are_deterministic_and_depend_on_the_seed(dataset: datasets.Dataset) -> None:
    again = build_synthetic_tasks_dataset(8, seed=3, config=CONFIG)
    other = build_synthetic_tasks_dataset(8, seed=4, config=CONFIG)
    assert (
        dataset.select_columns(["task", "prompt", "answer"]).to_list()
        == again.select_columns(["task", "prompt", "answer"]).to_list()
    )
    assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(dataset["image"], again["image"], strict=True))
    assert dataset["answer"] != other["answer"]


def test_schema_matches_the_shapes_dataset_so_both_mix(dataset: datasets.Dataset) -> None:
    shapes = build_synthetic_dataset(2, seed=0, config=SyntheticShapesConfig(image_size=32))
    assert dataset.features == shapes.features
    mixed = datasets.concatenate_datasets([shapes, dataset])
    assert set(mixed["task"]) == {"caption", "vqa", "grounding", *NEW_TASKS}
    assert dataset["task"][:4] == ["reading", "counting", "multiple_choice", "retrieval"]
    assert all(box == [] for box in dataset["box"])


def test_reading_renders_a_string_of_the_alphabet() -> None:
    for i in IDS:
        row = reading_row(5, i, CONFIG)
        assert CONFIG.min_chars <= len(row.answer) <= CONFIG.max_chars
        assert set(row.answer) <= set(READING_ALPHABET)
        assert row.prompt.endswith("Question: What is written in the image?\nAnswer:")
        ink = (_pixels(row.image) != BACKGROUND).any(axis=-1)
        assert ink.sum() >= 4 * len(row.answer)
        # The whole string is inside the image: no ink touches the border.
        assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any())


def test_counting_answer_equals_the_number_of_drawn_shapes_of_that_kind() -> None:
    counts = set()
    for i in IDS:
        objects, shape, count = counting_scene(5, i, CONFIG)
        row = counting_row(5, i, CONFIG)
        assert row.answer == str(count) == str(sum(o.shape == shape for o in objects))
        assert f"How many {shape}s are there?" in row.prompt
        pixels = _pixels(row.image)
        assert _components((pixels != BACKGROUND).any(axis=-1)) == len(objects)
        for obj in objects:  # every object is drawn in its own colour inside its box
            x1, y1, x2, y2 = obj.box
            assert (pixels[y1:y2, x1:x2] == COLORS[obj.color]).all(axis=-1).any()
        counts.add(count)
    assert len(counts) >= 3  # the asked counts vary, zero included over enough images


def test_multiple_choice_gold_letter_names_the_true_option() -> None:
    from training.synthetic import generate_scene, position_of

    for i in IDS:
        row = multiple_choice_row(5, i, CONFIG)
        match = MC_RE.match(row.prompt)
        assert match, row.prompt
        question = match.group(1)
        options = dict(line.split(": ") for line in match.group(2).splitlines())
        assert len(set(options.values())) == len(options)
        truth = options[row.answer]
        objects = generate_scene(5, i, SyntheticShapesConfig(image_size=32, max_objects=CONFIG.max_scene_objects))
        if question == "How many objects are there?":
            assert truth == str(len(objects))
        elif question.startswith("What color is the "):
            assert [o.color for o in objects if o.shape == question[18:-1]] == [truth]
        elif question.startswith("What shape is the "):
            assert [o.shape for o in objects if o.color == question.split()[4]] == [truth]
        else:
            color, shape = question[len("Where is the ") : -1].split()
            assert [position_of(o, 32) for o in objects if (o.color, o.shape) == (color, shape)] == [truth]


def test_retrieval_answer_is_the_asked_cells_colour_or_the_asked_colours_cell() -> None:
    cell = CONFIG.image_size // CONFIG.cells
    kinds, counts = set(), set()
    for i in IDS:
        objects, target = retrieval_scene(5, i, CONFIG)
        row = retrieval_row(5, i, CONFIG)
        colors = [o.color for o in objects]
        assert len(set(colors)) == len(colors) and CONFIG.min_items <= len(colors) <= CONFIG.max_items
        pixels = _pixels(row.image)
        # Read the grid back from the pixels: each cell's centre shows its square's colour or the background.
        grid = {}
        for r in range(CONFIG.cells):
            for c in range(CONFIG.cells):
                rgb = tuple(int(v) for v in pixels[r * cell + cell // 2, c * cell + cell // 2])
                if rgb != BACKGROUND:
                    grid[(r + 1, c + 1)] = next(name for name, value in COLORS.items() if value == rgb)
                # Every square keeps a 1 px background border, so a cell's square never touches its neighbours.
                assert (pixels[r * cell, c * cell : (c + 1) * cell] == BACKGROUND).all()
        assert sorted(grid.values()) == sorted(colors)
        question = re.search(r"Question: (.+)\nAnswer:$", row.prompt).group(1)
        cell_question = re.fullmatch(r"Which color is in row (\d), column (\d)\?", question)
        if cell_question:
            kinds.add("color")
            assert row.answer == grid[(int(cell_question.group(1)), int(cell_question.group(2)))] == target.color
        else:
            kinds.add("cell")
            color = re.fullmatch(r"In which cell is the (\w+) square\?", question).group(1)
            (where,) = [key for key, value in grid.items() if value == color]
            assert color == target.color and row.answer == f"row {where[0]}, column {where[1]}"
        counts.add(len(colors))
    assert kinds == {"color", "cell"} and len(counts) >= 3


@pytest.mark.parametrize(
    ("task", "preds", "refs", "expected"),
    [
        ("reading", ["AB3", "ab3", " AB3 \n", "", None, "A" * 5000], ["AB3"] * 6, 2 / 6),
        ("counting", ["3", "three", "There are 3.", "4", "", "x" * 5000], ["3"] * 6, 3 / 6),
        ("multiple_choice", ["B", "(B)", "The answer is B", "A", "b c", None], ["B"] * 6, 3 / 6),
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


def test_parse_count_and_config_validation() -> None:
    assert [parse_count(p) for p in ("0", "zero", "ten apples", "none", 3)] == [0, 0, 10, None, None]
    with pytest.raises(ValueError, match="max_count"):
        SyntheticTasksConfig(max_count=7, max_objects=6)
    with pytest.raises(ValueError, match="min_chars"):
        SyntheticTasksConfig(min_chars=3, max_chars=2)
    with pytest.raises(ValueError, match="max_items=7"):
        SyntheticTasksConfig(max_items=7)  # only six distinct colours
    with pytest.raises(ValueError, match="min_items=0"):
        SyntheticTasksConfig(min_items=0)
    with pytest.raises(ValueError, match="unknown synthetic task"):
        build_synthetic_tasks_dataset(1, tasks=("ocr",))


def test_evaluate_synthetic_dataset_scores_every_task(make_model: Callable, processor: Any) -> None:
    from training.synthetic_tasks import evaluate_synthetic_dataset

    rows = datasets.concatenate_datasets(
        [build_synthetic_dataset(1, seed=0, config=SyntheticShapesConfig(image_size=32)),
         build_synthetic_tasks_dataset(1, seed=0, config=CONFIG)]
    )  # fmt: skip
    scores = evaluate_synthetic_dataset(make_model("pythia"), processor, rows, 6, 2, show_progress=False)
    assert set(scores) == {"caption", "vqa", "grounding", *NEW_TASKS}
    assert all(0.0 <= value <= 1.0 for task in scores.values() for value in task.values())
