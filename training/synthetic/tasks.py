"""The reading, counting, multiple-choice and in-context retrieval tasks, generated offline.

With :mod:`training.synthetic.shapes` (captioning, short VQA, grounding) they span the paper's task families offline:

* reading: a short string of digits and capital letters rendered with PIL's default font, at a random place or
  centred (``center_text``); "What is written in the image?" -> the string;
* counting: 0 to ``max_count`` shapes of the asked kind among distractors, one per cell of a coarse grid so they
  never touch; "How many {shape}s are there?" -> the number;
* multiple choice: a question about a shapes scene with three or four lettered options -> the option letter, in the
  paper's template, or the option itself (``choice_answer="option"``, the demo's); no "How many objects are there?"
  when every scene holds one object: its prompt alone gives the answer away;
* retrieval: N (2 to 6) cells of a ``cells`` x ``cells`` grid hold squares of N distinct colours; the question asks
  for the colour in a cell ("Which color is in row r, column c?") or for a colour's cell ("In which cell is the
  {color} square?" -> "row r, column c"). This is the retrieval probe of :mod:`training.synthetic.retrieval` on the
  image tokens at the demo's scale: the answer must be looked up by position or by content among the image tokens in
  context (the paper's hypothesis 2). A cell may be one vision patch or several (the demo: 2 x 2 patches).

Rows are :class:`training.synthetic.rows.SyntheticRow` records (``box`` empty) so they mix with the shapes rows in the
demo's data; :mod:`training.synthetic.scoring` scores all of them. Every row is a pure function of
``(seed, image_id)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import datasets
from PIL import Image, ImageDraw, ImageFont

from ..templates import OPTION_LETTERS, ChoiceAnswer, check_choice_answer, multiple_choice_prompt, vqa_prompt
from .retrieval import CELL_ANSWER
from .rows import SyntheticRow, rows_to_dataset
from .shapes import (
    BACKGROUND,
    COLORS,
    SHAPES,
    SceneObject,
    SyntheticShapesConfig,
    generate_scene,
    position_of,
    render_scene,
)

__all__ = [
    "COUNTING_QUESTION",
    "READING_ALPHABET",
    "READING_QUESTION",
    "RETRIEVAL_CELL_QUESTION",
    "RETRIEVAL_COLOR_QUESTION",
    "TASKS",
    "SyntheticTasksConfig",
    "build_synthetic_tasks_dataset",
    "counting_row",
    "counting_scene",
    "multiple_choice_row",
    "reading_row",
    "render_text",
    "retrieval_row",
    "retrieval_scene",
]

READING_QUESTION = "What is written in the image?"
COUNTING_QUESTION = "How many {shape}s are there?"
# Digits and capitals without the look-alikes (0/O, 1/I) so that every rendered string reads one way only.
READING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RETRIEVAL_COLOR_QUESTION = "Which color is in row {row}, column {column}?"
RETRIEVAL_CELL_QUESTION = "In which cell is the {color} square?"
TASKS: tuple[str, ...] = ("reading", "counting", "multiple_choice", "retrieval")


@dataclass(frozen=True)
class SyntheticTasksConfig:
    """Generation options of the reading, counting and multiple-choice tasks."""

    image_size: int = 32
    min_chars: int = 1  # reading: string length range
    max_chars: int = 3
    alphabet: str = READING_ALPHABET  # reading: the characters strings are drawn from
    cells: int = 4  # counting and retrieval: objects sit in distinct cells of a cells x cells grid
    max_count: int = 4  # counting: at most this many objects of the asked shape
    max_objects: int = 6  # counting: at most this many objects in all
    max_scene_objects: int = 2  # multiple choice: objects per shapes scene (1 to 3)
    choice_answer: ChoiceAnswer = "letter"  # multiple choice: the option's letter or the option
    center_text: bool = False  # reading: the string centred instead of at a random place
    min_items: int = 2  # retrieval: coloured cells per image, at most len(COLORS) (all distinct)
    max_items: int = 6

    def __post_init__(self) -> None:
        """Validate early so that errors name the field rather than fail deep inside generation."""
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if not 1 <= self.min_chars <= self.max_chars:
            raise ValueError(f"need 1 <= min_chars <= max_chars, got {self.min_chars} and {self.max_chars}")
        if not self.alphabet or not set(self.alphabet) <= set(READING_ALPHABET) or len(set(self.alphabet)) < 2:
            raise ValueError(
                f"alphabet must hold at least two distinct characters of {READING_ALPHABET!r}, got {self.alphabet!r}"
            )
        if self.image_size // self.cells < 5:
            raise ValueError(f"cells={self.cells} leaves cells under 5 px in a {self.image_size} px image")
        if not 0 <= self.max_count <= self.max_objects <= self.cells**2:
            raise ValueError(
                f"need 0 <= max_count <= max_objects <= cells**2, got {self.max_count}, {self.max_objects}, "
                f"{self.cells**2}"
            )
        SyntheticShapesConfig(image_size=self.image_size, max_objects=self.max_scene_objects)  # validates
        check_choice_answer("choice_answer", self.choice_answer)
        if not 1 <= self.min_items <= self.max_items <= min(len(COLORS), self.cells**2):
            raise ValueError(
                f"need 1 <= min_items <= max_items <= {min(len(COLORS), self.cells**2)} (distinct colours in "
                f"distinct cells), got min_items={self.min_items}, max_items={self.max_items}"
            )


def _rng(task: str, seed: int, image_id: int) -> random.Random:
    """Independent, platform-stable RNG per task and image (string seeds are hashed with SHA-512)."""
    return random.Random(f"synthetic-tasks/{task}/{seed}/{image_id}")


# ------------------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------------------


def _fitting_font(text: str, image_size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest default-font size (at most half the image) whose rendering of ``text`` fits with a 2 px margin."""
    for size in range(image_size // 2, 5, -1):
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = font.getbbox(text)
        if right - left <= image_size - 4 and bottom - top <= image_size - 4:
            return font
    return ImageFont.load_default()


def render_text(text: str, image_size: int, rng: random.Random, center: bool = False) -> Image.Image:
    """``text`` in one saturated colour on the plain background, at a random place where it fits whole."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _fitting_font(text, image_size)
    left, top, right, bottom = font.getbbox(text)
    if center:
        x, y = (image_size - (right - left)) // 2 - left, (image_size - (bottom - top)) // 2 - top
    else:
        x = rng.randint(2, image_size - 2 - (right - left)) - left
        y = rng.randint(2, image_size - 2 - (bottom - top)) - top
    draw.text((x, y), text, fill=COLORS[rng.choice(sorted(COLORS))], font=font)
    return image


def reading_row(seed: int, image_id: int, config: SyntheticTasksConfig | None = None) -> SyntheticRow:
    """A rendered string and the question "What is written in the image?"; the answer is the string."""
    config = config or SyntheticTasksConfig()
    rng = _rng("reading", seed, image_id)
    alphabet = "".join(sorted(set(config.alphabet)))
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(config.min_chars, config.max_chars)))
    image = render_text(text, config.image_size, rng, center=config.center_text)
    return SyntheticRow(image, "reading", vqa_prompt(READING_QUESTION), text, image_id=image_id)


# ------------------------------------------------------------------------------------------------------------
# Counting
# ------------------------------------------------------------------------------------------------------------


def counting_scene(
    seed: int, image_id: int, config: SyntheticTasksConfig | None = None
) -> tuple[list[SceneObject], str, int]:
    """The drawn objects, the asked shape and its count (uniform in 0..max_count), one object per grid cell."""
    config = config or SyntheticTasksConfig()
    rng = _rng("counting", seed, image_id)
    shape = rng.choice(SHAPES)
    count = rng.randint(0, config.max_count)
    distractors = rng.randint(0 if count else 1, config.max_objects - count)
    others = [s for s in SHAPES if s != shape]
    shapes = [shape] * count + [rng.choice(others) for _ in range(distractors)]
    cell = config.image_size // config.cells
    side = max(3, cell - 3)  # at least 1 px free on every side of an object keeps neighbours apart
    cells = rng.sample(range(config.cells**2), len(shapes))
    objects = []
    for kind, index in zip(shapes, cells, strict=True):
        x1 = (index % config.cells) * cell + rng.randint(1, cell - side - 1)
        y1 = (index // config.cells) * cell + rng.randint(1, cell - side - 1)
        objects.append(SceneObject(rng.choice(sorted(COLORS)), kind, "small", (x1, y1, x1 + side, y1 + side)))
    return objects, shape, count


def counting_row(seed: int, image_id: int, config: SyntheticTasksConfig | None = None) -> SyntheticRow:
    """A counting question ("How many {shape}s are there?") about a scene of up to ``max_objects`` small shapes."""
    config = config or SyntheticTasksConfig()
    objects, shape, count = counting_scene(seed, image_id, config)
    prompt = vqa_prompt(COUNTING_QUESTION.format(shape=shape))
    return SyntheticRow(render_scene(objects, config.image_size), "counting", prompt, str(count), image_id=image_id)


# ------------------------------------------------------------------------------------------------------------
# Multiple choice
# ------------------------------------------------------------------------------------------------------------


def _choice_questions(
    objects: Sequence[SceneObject], image_size: int, max_objects: int
) -> list[tuple[str, str, list[str]]]:
    """(question, correct option, wrong options) pairs whose answer is unique given the scene."""
    shape_counts = {s: sum(o.shape == s for o in objects) for s in SHAPES}
    color_counts = {c: sum(o.color == c for o in objects) for c in COLORS}
    positions = ("left", "right", "top", "bottom", "center")
    questions = []
    if max_objects > 1:  # with one object per scene the count is given away by the question alone
        questions.append(
            ("How many objects are there?", str(len(objects)), [str(n) for n in range(1, 5) if n != len(objects)])
        )
    for o in objects:
        if shape_counts[o.shape] == 1:
            questions.append((f"What color is the {o.shape}?", o.color, [c for c in COLORS if c != o.color]))
        if color_counts[o.color] == 1:
            questions.append((f"What shape is the {o.color} object?", o.shape, [s for s in SHAPES if s != o.shape]))
        where = position_of(o, image_size)
        questions.append((f"Where is the {o.color} {o.shape}?", where, [p for p in positions if p != where]))
    return questions


def multiple_choice_row(seed: int, image_id: int, config: SyntheticTasksConfig | None = None) -> SyntheticRow:
    """A question about a shapes scene with three or four lettered options; the answer is the correct option's letter
    or, with ``config.choice_answer="option"``, the correct option."""
    config = config or SyntheticTasksConfig()
    shapes = SyntheticShapesConfig(image_size=config.image_size, max_objects=config.max_scene_objects)
    objects = generate_scene(seed, image_id, shapes)
    rng = _rng("multiple_choice", seed, image_id)
    question, correct, wrong = rng.choice(_choice_questions(objects, config.image_size, config.max_scene_objects))
    options = [correct, *rng.sample(wrong, min(3, len(wrong)))]
    rng.shuffle(options)
    answer = OPTION_LETTERS[options.index(correct)] if config.choice_answer == "letter" else correct
    prompt = multiple_choice_prompt(question, options, answer_with=config.choice_answer)
    return SyntheticRow(render_scene(objects, config.image_size), "multiple_choice", prompt, answer, image_id=image_id)


# ------------------------------------------------------------------------------------------------------------
# In-context retrieval
# ------------------------------------------------------------------------------------------------------------


def retrieval_scene(
    seed: int, image_id: int, config: SyntheticTasksConfig | None = None
) -> tuple[list[SceneObject], SceneObject]:
    """N squares of distinct colours, each filling a random grid cell but a 1 px border, and the asked one."""
    config = config or SyntheticTasksConfig()
    rng = _rng("retrieval", seed, image_id)
    count = rng.randint(config.min_items, config.max_items)
    colors = rng.sample(sorted(COLORS), count)
    cell = config.image_size // config.cells
    objects = []
    for color, index in zip(colors, rng.sample(range(config.cells**2), count), strict=True):
        x1, y1 = (index % config.cells) * cell + 1, (index // config.cells) * cell + 1
        objects.append(SceneObject(color, "square", "small", (x1, y1, x1 + cell - 2, y1 + cell - 2)))
    return objects, rng.choice(objects)


def retrieval_row(seed: int, image_id: int, config: SyntheticTasksConfig | None = None) -> SyntheticRow:
    """Retrieve from the image in context: a cell's colour, or a colour's cell (half the rows each)."""
    config = config or SyntheticTasksConfig()
    objects, target = retrieval_scene(seed, image_id, config)
    cell = config.image_size // config.cells
    where = {"row": target.box[1] // cell + 1, "column": target.box[0] // cell + 1}
    if _rng("retrieval-kind", seed, image_id).random() < 0.5:
        question, answer = RETRIEVAL_COLOR_QUESTION.format(**where), target.color
    else:
        question, answer = RETRIEVAL_CELL_QUESTION.format(color=target.color), CELL_ANSWER.format(**where)
    image = render_scene(objects, config.image_size)
    return SyntheticRow(image, "retrieval", vqa_prompt(question), answer, image_id=image_id)


# ------------------------------------------------------------------------------------------------------------
# Dataset
# ------------------------------------------------------------------------------------------------------------

_GENERATORS: MappingProxyType[str, Callable[[int, int, SyntheticTasksConfig], SyntheticRow]] = MappingProxyType(
    {
        "reading": reading_row,
        "counting": counting_row,
        "multiple_choice": multiple_choice_row,
        "retrieval": retrieval_row,
    }
)


def build_synthetic_tasks_dataset(
    num_images: int,
    seed: int = 0,
    tasks: Sequence[str] = TASKS,
    config: SyntheticTasksConfig | None = None,
    first_image: int = 0,
) -> datasets.Dataset:
    """``num_images`` rows per task (images ``first_image`` onwards), in the schema of
    :func:`training.synthetic.rows.dataset_features`."""
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    unknown = [t for t in tasks if t not in _GENERATORS]
    if unknown:
        raise ValueError(f"unknown synthetic task(s) {unknown}; valid: {', '.join(_GENERATORS)}")
    config = config or SyntheticTasksConfig()
    images = range(first_image, first_image + num_images)
    rows = (_GENERATORS[task](seed, image_id, config) for image_id in images for task in tasks)
    return rows_to_dataset(rows)
