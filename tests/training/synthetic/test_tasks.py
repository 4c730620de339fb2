"""The reading, counting, multiple-choice and retrieval synthetic tasks: determinism, answers read from pixels."""

from __future__ import annotations

import re

import datasets
import numpy as np
import pytest
from PIL import Image

from training.synthetic.shapes import (
    BACKGROUND,
    COLORS,
    SyntheticShapesConfig,
    build_synthetic_dataset,
    generate_scene,
    position_of,
)
from training.synthetic.tasks import (
    READING_ALPHABET,
    TASKS,
    SyntheticTasksConfig,
    build_synthetic_tasks_dataset,
    counting_row,
    counting_scene,
    multiple_choice_row,
    reading_row,
    retrieval_row,
    retrieval_scene,
)

CONFIG = SyntheticTasksConfig(image_size=32)
GRID_2X2 = SyntheticTasksConfig(image_size=32, cells=2, max_objects=4, max_items=4)  # the demo's grids: 16 px cells
GRIDS = pytest.mark.parametrize("config", [CONFIG, GRID_2X2], ids=["4x4-grid", "2x2-grid"])
IDS = range(30)
MC_RE = re.compile(
    r"^Answer with the option's letter from the given choices directly\.\nQuestion: (.+\?)\n"
    r"((?:[A-D]: [a-z0-9]+\n){3,4})Answer:$"
)
MC_OPTION_RE = re.compile(
    r"^Answer with the option from the given choices directly\.\nQuestion: (.+\?)\n"
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
    assert set(mixed["task"]) == {"caption", "vqa", "grounding", *TASKS}
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


@GRIDS
def test_counting_answer_equals_the_number_of_drawn_shapes_of_that_kind(config: SyntheticTasksConfig) -> None:
    counts = set()
    for i in IDS:
        objects, shape, count = counting_scene(5, i, config)
        row = counting_row(5, i, config)
        assert row.answer == str(count) == str(sum(o.shape == shape for o in objects))
        assert f"How many {shape}s are there?" in row.prompt
        pixels = _pixels(row.image)
        assert _components((pixels != BACKGROUND).any(axis=-1)) == len(objects)
        for obj in objects:  # every object is drawn in its own colour inside its box
            x1, y1, x2, y2 = obj.box
            assert (pixels[y1:y2, x1:x2] == COLORS[obj.color]).all(axis=-1).any()
        counts.add(count)
    assert len(counts) >= 3  # the asked counts vary, zero included over enough images


@pytest.mark.parametrize("answer_with", ["letter", "option"])
def test_multiple_choice_gold_answer_names_the_true_option(answer_with: str) -> None:
    config = SyntheticTasksConfig(image_size=32, choice_answer=answer_with)
    for i in IDS:
        row = multiple_choice_row(5, i, config)
        match = (MC_RE if answer_with == "letter" else MC_OPTION_RE).match(row.prompt)
        assert match, row.prompt
        question = match.group(1)
        options = dict(line.split(": ") for line in match.group(2).splitlines())
        assert len(set(options.values())) == len(options)
        truth = options[row.answer] if answer_with == "letter" else row.answer
        assert truth in options.values()
        if answer_with == "option":  # the same question, options and order as the letter-answered row
            letter_row = multiple_choice_row(5, i, CONFIG)
            assert MC_RE.match(letter_row.prompt).group(1, 2) == match.group(1, 2)
            assert options[letter_row.answer] == truth
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


@GRIDS
def test_retrieval_answer_is_the_asked_cells_colour_or_the_asked_colours_cell(config: SyntheticTasksConfig) -> None:
    side = config.cells
    cell = config.image_size // side
    kinds, counts = set(), set()
    for i in IDS:
        objects, target = retrieval_scene(5, i, config)
        row = retrieval_row(5, i, config)
        colors = [o.color for o in objects]
        assert len(set(colors)) == len(colors) and config.min_items <= len(colors) <= config.max_items
        pixels = _pixels(row.image)
        # Read the grid back from the pixels: each cell's centre shows its square's colour or the background.
        grid = {}
        for r in range(side):
            for c in range(side):
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


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_count"):
        SyntheticTasksConfig(max_count=7, max_objects=6)
    with pytest.raises(ValueError, match="min_chars"):
        SyntheticTasksConfig(min_chars=3, max_chars=2)
    with pytest.raises(ValueError, match="max_items=7"):
        SyntheticTasksConfig(max_items=7)  # only six distinct colours
    with pytest.raises(ValueError, match="min_items=0"):
        SyntheticTasksConfig(min_items=0)
    with pytest.raises(ValueError, match="max_items=5"):
        SyntheticTasksConfig(cells=2, max_objects=4, max_items=5)  # four cells hold at most four squares
    with pytest.raises(ValueError, match="choice_answer must be 'letter' or 'option', got 'text'"):
        SyntheticTasksConfig(choice_answer="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown synthetic task"):
        build_synthetic_tasks_dataset(1, tasks=("ocr",))


def test_reading_alphabet_and_length_are_configurable() -> None:
    config = SyntheticTasksConfig(min_chars=1, max_chars=1, alphabet="23456789")
    answers = {reading_row(5, i, config).answer for i in range(200)}
    assert answers == set("23456789")  # one glyph, every digit drawn, nothing else
    with pytest.raises(ValueError, match="alphabet"):
        SyntheticTasksConfig(alphabet="0")  # not in the alphabet (0 and O look alike)
    with pytest.raises(ValueError, match="alphabet"):
        SyntheticTasksConfig(alphabet="22")


def test_centred_reading_puts_the_string_in_the_middle() -> None:
    config = SyntheticTasksConfig(min_chars=1, max_chars=2, alphabet="23456789", center_text=True)
    for i in IDS:
        row = reading_row(5, i, config)
        ys, xs = np.nonzero((_pixels(row.image) != BACKGROUND).any(axis=-1))
        # The ink's bounding box is centred to the pixel (PIL draws the glyphs' own box, so allow 1 px).
        assert abs((xs.min() + xs.max() + 1) / 2 - config.image_size / 2) <= 1.5, row.answer
        assert abs((ys.min() + ys.max() + 1) / 2 - config.image_size / 2) <= 1.5, row.answer
    # The same (seed, id) draws the same string at either placement: only the place changes.
    assert [reading_row(5, i, config).answer for i in IDS] == [
        reading_row(5, i, SyntheticTasksConfig(min_chars=1, max_chars=2, alphabet="23456789")).answer for i in IDS
    ]


def test_multiple_choice_asks_no_count_when_every_scene_holds_one_object() -> None:
    """With one object per scene "How many objects are there?" has one answer, given away by the prompt alone."""
    one = SyntheticTasksConfig(image_size=32, max_scene_objects=1)
    questions = {MC_RE.match(multiple_choice_row(5, i, one).prompt).group(1) for i in range(100)}
    assert "How many objects are there?" not in questions
    assert {q.split(" the ")[0] for q in questions} == {"What color is", "What shape is", "Where is"}
    two = {MC_RE.match(multiple_choice_row(5, i, CONFIG).prompt).group(1) for i in range(100)}
    assert "How many objects are there?" in two


def test_first_image_continues_where_a_shorter_build_stops() -> None:
    longer = build_synthetic_tasks_dataset(6, seed=3, config=CONFIG)
    tail = build_synthetic_tasks_dataset(2, seed=3, config=CONFIG, first_image=4)
    assert tail["image_id"] == longer["image_id"][-len(tail) :] and tail["answer"] == longer["answer"][-len(tail) :]
    scenes = build_synthetic_dataset(6, seed=3, config=SyntheticShapesConfig(image_size=32))
    scenes_tail = build_synthetic_dataset(2, seed=3, config=SyntheticShapesConfig(image_size=32), first_image=4)
    assert scenes_tail["prompt"] == scenes["prompt"][-len(scenes_tail) :]
    assert scenes_tail["answer"] == scenes["answer"][-len(scenes_tail) :]
