"""Synthetic "shapes" scenes and their captioning, short-VQA and grounding rows, generated offline.

Each image shows 1-3 non-overlapping coloured shapes (circle, square, triangle) of two sizes on a plain background.
From every scene we derive one sample per task, using the prompt templates of the paper:

* captioning: a deterministic one-sentence description of the scene;
* short VQA: a question that has exactly one correct single word/phrase answer;
* grounding: a referring expression that identifies one object uniquely, answered with its normalised box.

Everything is a pure function of ``(seed, image_id)``: no global random state is touched, so the same seed always
yields identical rows and identical pixels.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import datasets
from PIL import Image, ImageDraw

from ..templates import CAPTION_PROMPT, format_box, grounding_prompt, vqa_prompt
from .rows import SyntheticRow, rows_to_dataset

__all__ = [
    "BACKGROUND",
    "COLORS",
    "SHAPES",
    "SIZES",
    "TASKS",
    "SceneObject",
    "SyntheticShapesConfig",
    "build_synthetic_dataset",
    "caption_for_scene",
    "generate_scene",
    "grounding_for_scene",
    "position_of",
    "render_scene",
    "scene_rows",
    "vqa_for_scene",
]

TASKS: tuple[str, ...] = ("caption", "vqa", "grounding")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
# Saturated, well-separated colours; PIL draws without anti-aliasing, so every object pixel has exactly this RGB.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 70, 220),
    "yellow": (235, 205, 20),
    "purple": (140, 50, 190),
    "orange": (245, 135, 20),
}
BACKGROUND: tuple[int, int, int] = (255, 255, 255)

# Fraction of the image side taken by each size class; far apart so "small"/"large" is never ambiguous.
_SIZE_FRACTION = {"small": 0.2, "large": 0.34}
# Minimum number of background pixels between two objects (and between an object and the border).
_GAP = 2
_MARGIN = 1
_PLACEMENT_TRIES = 200
# A centre closer than this (in normalised units, per axis) to the image centre is called "center".
_CENTER_RADIUS = 0.15
_POSITION_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}


@dataclass(frozen=True)
class SceneObject:
    """One drawn object; ``box`` is ``(x1, y1, x2, y2)`` in pixels with exclusive ``x2``/``y2``."""

    color: str
    shape: str
    size: str
    box: tuple[int, int, int, int]

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the object's box in pixels."""
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass
class SyntheticShapesConfig:
    """Generation options for the synthetic shapes dataset."""

    image_size: int = 64
    max_objects: int = 3
    tasks: tuple[str, ...] = TASKS

    def __post_init__(self) -> None:
        """Validate options early so that errors point at the config rather than deep inside generation."""
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if not 1 <= self.max_objects <= 3:
            # More than three objects do not reliably fit at small image sizes and captions get unwieldy.
            raise ValueError(f"max_objects must be in [1, 3], got {self.max_objects}")
        self.tasks = tuple(self.tasks)
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks}")


def position_of(obj: SceneObject, image_size: int) -> str:
    """Coarse position word (left/right/top/bottom/center) derived from the object's centre."""
    cx, cy = obj.center
    dx, dy = cx / image_size - 0.5, cy / image_size - 0.5
    if max(abs(dx), abs(dy)) < _CENTER_RADIUS:
        return "center"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def _object_side(size: str, image_size: int) -> int:
    """Side length in pixels of an object of the given size class."""
    return max(3, round(_SIZE_FRACTION[size] * image_size))


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes are closer than ``_GAP`` pixels."""
    return not (a[2] + _GAP <= b[0] or b[2] + _GAP <= a[0] or a[3] + _GAP <= b[1] or b[3] + _GAP <= a[1])


def _scene_rng(seed: int, image_id: int) -> random.Random:
    """Independent RNG per image so any image can be regenerated without generating the ones before it."""
    # String seeds are hashed with SHA-512 by ``random``, which is stable across processes and platforms.
    return random.Random(f"synthetic-shapes/{seed}/{image_id}")


def generate_scene(seed: int, image_id: int, config: SyntheticShapesConfig | None = None) -> list[SceneObject]:
    """Sample the objects of image ``image_id``; (color, shape) pairs are unique within a scene."""
    config = config or SyntheticShapesConfig()
    rng = _scene_rng(seed, image_id)
    num_objects = rng.randint(1, config.max_objects)
    # Distinct (color, shape) pairs guarantee that every object has at least one unique description.
    pairs = rng.sample([(c, s) for c in COLORS for s in SHAPES], num_objects)
    objects: list[SceneObject] = []
    for color, shape in pairs:
        size = rng.choice(SIZES)
        side = _object_side(size, config.image_size)
        high = config.image_size - _MARGIN - side
        for _ in range(_PLACEMENT_TRIES):
            x1, y1 = rng.randint(_MARGIN, high), rng.randint(_MARGIN, high)
            box = (x1, y1, x1 + side, y1 + side)
            if not any(_overlaps(box, other.box) for other in objects):
                objects.append(SceneObject(color=color, shape=shape, size=size, box=box))
                break
        # If an object cannot be placed (very crowded small images) it is dropped; the scene stays consistent.
    return objects


def render_scene(objects: Sequence[SceneObject], image_size: int) -> Image.Image:
    """Draw the objects on a plain background; every object pixel lies inside the object's box."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        # PIL coordinates are inclusive, our boxes are exclusive on the right/bottom.
        right, bottom = x2 - 1, y2 - 1
        fill = COLORS[obj.color]
        if obj.shape == "circle":
            draw.ellipse((x1, y1, right, bottom), fill=fill)
        elif obj.shape == "square":
            draw.rectangle((x1, y1, right, bottom), fill=fill)
        elif obj.shape == "triangle":
            draw.polygon([(x1, bottom), (right, bottom), ((x1 + right) / 2, y1)], fill=fill)
        else:
            raise ValueError(f"unknown shape {obj.shape!r}")
    return image


def _describe(obj: SceneObject) -> str:
    """Size, colour and shape, e.g. ``large red circle``."""
    return f"{obj.size} {obj.color} {obj.shape}"


def caption_for_scene(objects: Sequence[SceneObject], image_size: int) -> str:
    """Deterministic one-sentence caption listing the objects from left to right."""
    ordered = sorted(objects, key=lambda o: (o.center[0], o.center[1]))
    # Every description starts with the size word, so the article is always "a".
    parts = [f"a {_describe(o)} {_POSITION_PHRASES[position_of(o, image_size)]}" for o in ordered]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + "."


def vqa_for_scene(objects: Sequence[SceneObject], image_size: int, rng: random.Random) -> tuple[str, str]:
    """Sample a (question, answer) pair whose answer is unique given the scene."""
    shape_counts = {s: sum(o.shape == s for o in objects) for s in SHAPES}
    color_counts = {c: sum(o.color == c for o in objects) for c in COLORS}
    # Candidates grouped by question type so that each type is equally likely, whatever the scene.
    candidates: list[list[tuple[str, str]]] = [
        [("How many objects are there?", str(len(objects)))],
        [(f"How many {s}s are there?", str(n)) for s, n in shape_counts.items()],
        [(f"Where is the {o.color} {o.shape}?", position_of(o, image_size)) for o in objects],
        [(f"What size is the {o.color} {o.shape}?", o.size) for o in objects],
        # Only ask about a colour/shape that occurs exactly once, otherwise the answer would be ambiguous.
        [(f"What color is the {o.shape}?", o.color) for o in objects if shape_counts[o.shape] == 1],
        [(f"What shape is the {o.color} object?", o.shape) for o in objects if color_counts[o.color] == 1],
    ]
    present = {(o.color, o.shape) for o in objects}
    absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
    # Balance yes/no answers instead of letting the (large) number of absent combinations dominate.
    if rng.random() < 0.5:
        color, shape = rng.choice(sorted(present))
        candidates.append([(f"Is there a {color} {shape}?", "yes")])
    else:
        color, shape = rng.choice(absent)
        candidates.append([(f"Is there a {color} {shape}?", "no")])
    group = rng.choice([g for g in candidates if g])
    return rng.choice(group)


def grounding_for_scene(objects: Sequence[SceneObject], rng: random.Random) -> tuple[str, SceneObject]:
    """Sample a target object and a referring expression that matches only that object."""
    target = rng.choice(list(objects))
    attribute_sets = (("shape",), ("color", "shape"), ("size", "shape"), ("size", "color", "shape"))
    unique = [
        attrs
        for attrs in attribute_sets
        if sum(all(getattr(o, a) == getattr(target, a) for a in attrs) for o in objects) == 1
    ]
    # ("color", "shape") is always unique because scenes never repeat a (color, shape) pair.
    attrs = rng.choice(unique)
    return "the " + " ".join(getattr(target, a) for a in attrs), target


def scene_rows(seed: int, image_id: int, config: SyntheticShapesConfig | None = None) -> Iterator[SyntheticRow]:
    """The rows of scene ``image_id``: one per task of ``config.tasks``, all on the same image."""
    config = config or SyntheticShapesConfig()
    size = config.image_size
    objects = generate_scene(seed, image_id, config)
    image = render_scene(objects, size)
    # A separate stream for question sampling keeps scene layout independent of which tasks are enabled.
    task_rng = random.Random(f"synthetic-shapes-tasks/{seed}/{image_id}")
    for task in config.tasks:
        box: tuple[float, ...] = ()
        if task == "caption":
            prompt, answer = CAPTION_PROMPT, caption_for_scene(objects, size)
        elif task == "vqa":
            question, answer = vqa_for_scene(objects, size, task_rng)
            prompt = vqa_prompt(question)
        else:
            expression, target = grounding_for_scene(objects, task_rng)
            prompt, answer = grounding_prompt(expression), format_box(target.box, size, size)
            box = tuple(v / size for v in target.box)
        yield SyntheticRow(image, task, prompt, answer, box, image_id)


def build_synthetic_dataset(
    num_images: int, seed: int = 0, config: SyntheticShapesConfig | None = None, first_image: int = 0
) -> datasets.Dataset:
    """Generate ``num_images`` scenes (images ``first_image`` onwards) and one (image, task, prompt, answer, box) row
    per image and task."""
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    config = config or SyntheticShapesConfig()
    images = range(first_image, first_image + num_images)
    return rows_to_dataset(row for image_id in images for row in scene_rows(seed, image_id, config))
