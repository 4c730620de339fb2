"""The synthetic shapes scenes: layout, pixels, captions, questions and boxes read back against the drawing."""

from __future__ import annotations

import random
import re

import datasets
import numpy as np
import pytest
from PIL import Image

from training.synthetic.shapes import (
    BACKGROUND,
    COLORS,
    SceneObject,
    SyntheticShapesConfig,
    build_synthetic_dataset,
    caption_for_scene,
    generate_scene,
    position_of,
    render_scene,
)
from training.templates import CAPTION_PROMPT, format_box

SIZE = 32
NUM_IMAGES = 24
CONFIG = SyntheticShapesConfig(image_size=SIZE)
BOX_RE = re.compile(r"^\[(0\.\d\d|1\.00),(0\.\d\d|1\.00),(0\.\d\d|1\.00),(0\.\d\d|1\.00)\]$")
VQA_RE = re.compile(r"^Answer the question using a single word or phrase\.\nQuestion: (.+\?)\nAnswer:$")
GROUNDING_RE = re.compile(r"^Locate the region that is described by:\n(the [a-z ]+)\.$")


@pytest.fixture(scope="module")
def dataset() -> datasets.Dataset:
    return build_synthetic_dataset(NUM_IMAGES, seed=7, config=CONFIG)


@pytest.fixture(scope="module")
def scenes() -> list[list[SceneObject]]:
    return [generate_scene(7, i, CONFIG) for i in range(NUM_IMAGES)]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int32)


def _matches(obj: SceneObject, expression: str) -> bool:
    """Whether the referring expression "the <attrs>" describes the object."""
    return all(word in (obj.size, obj.color, obj.shape) for word in expression.removeprefix("the ").split())


def test_schema_and_row_layout(dataset: datasets.Dataset) -> None:
    assert set(dataset.column_names) == {"image", "task", "prompt", "answer", "box", "image_id"}
    assert len(dataset) == NUM_IMAGES * 3
    # One row per (image, task), image-major.
    assert dataset["image_id"] == [i for i in range(NUM_IMAGES) for _ in range(3)]
    assert dataset["task"] == ["caption", "vqa", "grounding"] * NUM_IMAGES
    image = dataset[0]["image"]
    assert image.mode == "RGB" and image.size == (SIZE, SIZE)


def test_same_seed_is_identical(dataset: datasets.Dataset) -> None:
    again = build_synthetic_dataset(NUM_IMAGES, seed=7, config=CONFIG)
    text_cols = ["task", "prompt", "answer", "box", "image_id"]
    assert again.select_columns(text_cols).to_list() == dataset.select_columns(text_cols).to_list()
    for a, b in zip(again["image"], dataset["image"], strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))


def test_different_seed_differs(dataset: datasets.Dataset) -> None:
    other = build_synthetic_dataset(NUM_IMAGES, seed=8, config=CONFIG)
    assert other["answer"] != dataset["answer"]
    assert any(
        not np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(other["image"], dataset["image"], strict=True)
    )


def test_scene_regeneration_matches_images(dataset: datasets.Dataset, scenes: list[list[SceneObject]]) -> None:
    for row in dataset.filter(lambda task: task == "caption", input_columns="task"):
        expected = render_scene(scenes[row["image_id"]], SIZE)
        assert np.array_equal(_pixels(row["image"]), _pixels(expected))


def test_scenes_are_valid(scenes: list[list[SceneObject]]) -> None:
    counts = set()
    for objects in scenes:
        counts.add(len(objects))
        assert 1 <= len(objects) <= 3
        assert len({(o.color, o.shape) for o in objects}) == len(objects)
        for i, a in enumerate(objects):
            assert 0 <= a.box[0] < a.box[2] <= SIZE and 0 <= a.box[1] < a.box[3] <= SIZE
            for b in objects[i + 1 :]:
                disjoint = a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]
                assert disjoint
    assert counts == {1, 2, 3}


def test_objects_drawn_inside_their_box(scenes: list[list[SceneObject]]) -> None:
    background = np.array(BACKGROUND)
    for objects in scenes:
        full = _pixels(render_scene(objects, SIZE))
        for obj in objects:
            mask = np.any(_pixels(render_scene([obj], SIZE)) != background, axis=-1)
            ys, xs = np.nonzero(mask)
            x1, y1, x2, y2 = obj.box
            # Tight: the drawn pixels touch all four sides of the box.
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
            # Not hidden by other objects, and exactly the palette colour (no anti-aliasing).
            assert np.all(full[mask] == np.array(COLORS[obj.color]))


def test_format_box() -> None:
    assert format_box((4, 8, 16, 32), 32, 32) == "[0.12,0.25,0.50,1.00]"
    assert format_box((0, 0, 10, 5), 20, 10) == "[0.00,0.00,0.50,0.50]"
    assert format_box((-1, 0, 40, 10), 32, 32) == "[0.00,0.00,1.00,0.31]"  # clamped


def test_grounding_box_encloses_object_pixels(dataset: datasets.Dataset, scenes: list[list[SceneObject]]) -> None:
    background = np.array(BACKGROUND)
    for row in dataset.filter(lambda task: task == "grounding", input_columns="task"):
        assert BOX_RE.match(row["answer"]), row["answer"]
        match = GROUNDING_RE.match(row["prompt"])
        assert match, row["prompt"]
        expression = match.group(1)
        objects = scenes[row["image_id"]]
        # The expression refers to exactly one object in the scene.
        (target,) = [o for o in objects if _matches(o, expression)]
        box = row["box"]
        assert [round(v, 2) for v in box] == [float(v) for v in row["answer"][1:-1].split(",")]
        assert box == pytest.approx([v / SIZE for v in target.box])
        # Check against the dataset's own pixels: every pixel of the target colour that belongs to the target
        # (found by rendering the object alone) lies in the box, and the box edges touch the target.
        pixels = _pixels(row["image"])
        target_mask = np.any(_pixels(render_scene([target], SIZE)) != background, axis=-1)
        assert np.all(pixels[target_mask] == np.array(COLORS[target.color]))
        parsed = [float(v) * SIZE for v in row["answer"][1:-1].split(",")]
        ys, xs = np.nonzero(target_mask)
        tol = 0.5  # two-decimal rounding moves an edge by at most 0.005 * 32 = 0.16 px
        assert xs.min() >= parsed[0] - tol and xs.max() + 1 <= parsed[2] + tol
        assert ys.min() >= parsed[1] - tol and ys.max() + 1 <= parsed[3] + tol
        assert abs(xs.min() - parsed[0]) <= tol and abs(ys.max() + 1 - parsed[3]) <= tol
        # Pixels of the target colour outside the box can only come from another object of the same colour.
        x1, y1, x2, y2 = target.box
        outside = np.ones((SIZE, SIZE), dtype=bool)
        outside[y1:y2, x1:x2] = False
        same_colour = np.all(pixels == np.array(COLORS[target.color]), axis=-1)
        if np.any(same_colour & outside):
            assert sum(o.color == target.color for o in objects) > 1


def test_non_grounding_rows_have_empty_box(dataset: datasets.Dataset) -> None:
    for row in dataset.select_columns(["task", "box"]):
        assert (row["box"] == []) == (row["task"] != "grounding")


def test_captions_describe_scene(dataset: datasets.Dataset, scenes: list[list[SceneObject]]) -> None:
    for row in dataset.select_columns(["task", "prompt", "answer", "image_id"]):
        if row["task"] != "caption":
            continue
        objects = scenes[row["image_id"]]
        caption = row["answer"]
        assert row["prompt"] == CAPTION_PROMPT
        assert caption == caption_for_scene(objects, SIZE)
        assert caption[0].isupper() and caption.endswith(".")
        for obj in objects:
            assert f"{obj.size} {obj.color} {obj.shape}" in caption
        assert caption.count(" and ") == (len(objects) > 1)


def test_caption_phrasing() -> None:
    left = SceneObject("red", "circle", "large", (1, 10, 12, 21))
    right = SceneObject("blue", "square", "small", (25, 12, 31, 18))
    assert (
        caption_for_scene([right, left], SIZE)
        == "A large red circle on the left and a small blue square on the right."
    )
    centre = SceneObject("green", "triangle", "small", (13, 13, 19, 19))
    assert position_of(centre, SIZE) == "center"
    assert caption_for_scene([centre], SIZE) == "A small green triangle in the center."


def _vqa_answer(question: str, objects: list[SceneObject]) -> str:
    """Independent oracle answering the templated questions from the scene."""
    if question == "How many objects are there?":
        return str(len(objects))
    if m := re.fullmatch(r"How many (\w+)s are there\?", question):
        return str(sum(o.shape == m.group(1) for o in objects))
    if m := re.fullmatch(r"Is there a (\w+) (\w+)\?", question):
        return "yes" if any((o.color, o.shape) == m.groups() for o in objects) else "no"
    if m := re.fullmatch(r"What color is the (\w+)\?", question):
        (obj,) = [o for o in objects if o.shape == m.group(1)]  # unique by construction
        return obj.color
    if m := re.fullmatch(r"What shape is the (\w+) object\?", question):
        (obj,) = [o for o in objects if o.color == m.group(1)]
        return obj.shape
    if m := re.fullmatch(r"(Where|What size) is the (\w+) (\w+)\?", question):
        (obj,) = [o for o in objects if (o.color, o.shape) == m.group(2, 3)]
        return position_of(obj, SIZE) if m.group(1) == "Where" else obj.size
    raise AssertionError(f"unexpected question {question!r}")


def test_vqa_answers_unique_and_consistent() -> None:
    # More images than the shared fixture so every question type shows up.
    ds = build_synthetic_dataset(80, seed=3, config=SyntheticShapesConfig(image_size=SIZE, tasks=("vqa",)))
    kinds = set()
    for row in ds.select_columns(["prompt", "answer", "image_id"]):
        match = VQA_RE.match(row["prompt"])
        assert match, row["prompt"]
        question = match.group(1)
        kinds.add(" ".join(question.split()[:2]))
        assert row["answer"] == _vqa_answer(question, generate_scene(3, row["image_id"], CONFIG))
        assert len(row["answer"].split()) == 1
    assert kinds == {"How many", "Is there", "What color", "What shape", "Where is", "What size"}


def test_task_subset_and_config_validation() -> None:
    ds = build_synthetic_dataset(3, seed=0, config=SyntheticShapesConfig(image_size=SIZE, tasks=("grounding",)))
    assert ds["task"] == ["grounding"] * 3
    assert len(build_synthetic_dataset(0, config=CONFIG)) == 0
    with pytest.raises(ValueError):
        SyntheticShapesConfig(tasks=("ocr",))
    with pytest.raises(ValueError):
        SyntheticShapesConfig(max_objects=0)


def test_default_image_size() -> None:
    row = build_synthetic_dataset(1, seed=0)[0]
    assert row["image"].size == (64, 64)


def test_random_module_state_untouched() -> None:
    state = random.getstate()
    np_state = np.random.get_state()[1].copy()
    build_synthetic_dataset(2, seed=1, config=CONFIG)
    assert random.getstate() == state
    assert np.array_equal(np.random.get_state()[1], np_state)
