"""The paper's instruction templates, box format and chat messages: one home for every prompt the project writes.

Training data (:mod:`training.data`), the benchmarks (:mod:`training.eval.benchmarks`) and the synthetic tasks
(:mod:`training.synthetic`) all build their prompts here. Templates are verbatim from the paper (see
``shared/paper/README.md``), but for :data:`MULTIPLE_CHOICE_OPTION_PROMPT`, the demo's variant of multiple choice.
Boxes are ``[x1,y1,x2,y2]`` divided by the image width/height, with 2 decimals and no spaces. A training turn is a
``(user text, assistant text)`` pair; :func:`user_turn` and :func:`conversation` give the chat-message form that
:meth:`processing.VLProcessor.apply_chat_template` reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "CAPTION_PROMPT",
    "GROUNDING_PROMPT",
    "MULTIPLE_CHOICE_OPTION_PROMPT",
    "MULTIPLE_CHOICE_PROMPT",
    "MULTIPLE_CHOICE_TEMPLATES",
    "OPTION_LETTERS",
    "REGION_CAPTION_PROMPT",
    "VQA_PROMPT",
    "VSR_PROMPT",
    "ChoiceAnswer",
    "Turn",
    "caption_turn",
    "check_choice_answer",
    "conversation",
    "format_box",
    "grounding_prompt",
    "grounding_turn",
    "multiple_choice_options",
    "multiple_choice_prompt",
    "multiple_choice_turn",
    "region_caption_turn",
    "user_turn",
    "vqa_prompt",
    "vqa_turn",
    "vsr_prompt",
    "vsr_turn",
]

Turn = tuple[str, str]
"""One exchange: (user text, assistant text)."""

CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
VQA_PROMPT = "Answer the question using a single word or phrase.\nQuestion: {question}\nAnswer:"
MULTIPLE_CHOICE_PROMPT = (
    "Answer with the option's letter from the given choices directly.\nQuestion: {question}\n{options}\nAnswer:"
)
# Not the paper's: multiple choice answered with the option itself rather than its letter (see :mod:`training.demo`).
MULTIPLE_CHOICE_OPTION_PROMPT = (
    "Answer with the option from the given choices directly.\nQuestion: {question}\n{options}\nAnswer:"
)
ChoiceAnswer = Literal["letter", "option"]
"""What a multiple-choice answer names: the option's letter (the paper's template) or the option itself."""
MULTIPLE_CHOICE_TEMPLATES: MappingProxyType[str, str] = MappingProxyType(
    {"letter": MULTIPLE_CHOICE_PROMPT, "option": MULTIPLE_CHOICE_OPTION_PROMPT}
)
GROUNDING_PROMPT = "Locate the region that is described by:\n{expression}."
REGION_CAPTION_PROMPT = "Provide a short description of the region:\n{box}"
VSR_PROMPT = "Determine if the image matches the description:\n{caption}."
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _without_final_period(text: str) -> str:
    """Strip whitespace and trailing periods, so that templates ending in ``{x}.`` never produce ``..``."""
    return text.strip().rstrip(".").rstrip()


def vqa_prompt(question: str) -> str:
    """Short VQA: the question in the single-word-or-phrase template."""
    return VQA_PROMPT.format(question=question.strip())


_OPTION_LINE = re.compile(r"^([A-Z]): (.+)$", re.MULTILINE)


def check_choice_answer(name: str, value: object) -> None:
    """Raise naming the field ``name`` unless ``value`` is a :data:`ChoiceAnswer`."""
    if value not in MULTIPLE_CHOICE_TEMPLATES:
        raise ValueError(f"{name} must be {' or '.join(map(repr, MULTIPLE_CHOICE_TEMPLATES))}, got {value!r}.")


def multiple_choice_prompt(question: str, options: Sequence[str], answer_with: ChoiceAnswer = "letter") -> str:
    """Multiple choice: the question and its lettered options (``A: ...``, one per line).

    ``answer_with="letter"`` is the paper's template; ``"option"`` asks for the option itself
    (:data:`MULTIPLE_CHOICE_OPTION_PROMPT`).
    """
    check_choice_answer("answer_with", answer_with)
    if not 2 <= len(options) <= len(OPTION_LETTERS):
        raise ValueError(f"A multiple-choice question needs 2 to {len(OPTION_LETTERS)} options, got {len(options)}.")
    lines = "\n".join(f"{OPTION_LETTERS[i]}: {str(option).strip()}" for i, option in enumerate(options))
    return MULTIPLE_CHOICE_TEMPLATES[answer_with].format(question=question.strip(), options=lines)


def multiple_choice_options(prompt: str) -> dict[str, str]:
    """The lettered options of a :func:`multiple_choice_prompt` (``{"A": "red", ...}``); empty for other prompts."""
    return {match.group(1): match.group(2).strip() for match in _OPTION_LINE.finditer(prompt)}


def grounding_prompt(expression: str) -> str:
    """Grounding: the referring expression to locate."""
    return GROUNDING_PROMPT.format(expression=_without_final_period(expression))


def vsr_prompt(caption: str) -> str:
    """Visual spatial reasoning: does the image match the statement?"""
    return VSR_PROMPT.format(caption=_without_final_period(caption))


def caption_turn(caption: str) -> Turn:
    """Captioning: the fixed prompt -> the caption."""
    return CAPTION_PROMPT, caption.strip()


def vqa_turn(question: str, answer: str) -> Turn:
    """Short VQA: the question in the single-word-or-phrase template -> the answer."""
    return vqa_prompt(question), answer.strip()


def multiple_choice_turn(question: str, options: Sequence[str], answer_index: int) -> Turn:
    """Multiple choice: question and lettered options (``A: ...``) -> the letter of the option at `answer_index`."""
    prompt = multiple_choice_prompt(question, options)
    if not 0 <= answer_index < len(options):
        raise ValueError(f"answer_index={answer_index} is out of range for {len(options)} options.")
    return prompt, OPTION_LETTERS[answer_index]


def grounding_turn(expression: str, box: str) -> Turn:
    """Grounding: the referring expression -> its formatted box (see :func:`format_box`)."""
    return grounding_prompt(expression), box


def region_caption_turn(box: str, description: str) -> Turn:
    """Region captioning: a formatted box -> a short description of that region."""
    return REGION_CAPTION_PROMPT.format(box=box), description.strip()


def vsr_turn(caption: str, label: bool) -> Turn:
    """Visual spatial reasoning: a statement about the image -> ``"True"`` or ``"False"``."""
    return vsr_prompt(caption), "True" if label else "False"


def format_box(
    box: Sequence[float], width: float, height: float, *, box_format: Literal["xyxy", "xywh"] = "xyxy"
) -> str:
    """Pixel box (``xyxy`` corners or ``xywh`` COCO-style) -> ``[x1,y1,x2,y2]`` normalised to [0, 1], 2 decimals."""
    if len(box) != 4:
        raise ValueError(f"A box needs 4 values, got {len(box)}: {list(box)!r}.")
    if not (width > 0 and height > 0):
        raise ValueError(f"Image width and height must be positive to normalise a box, got {width}x{height}.")
    if box_format not in ("xyxy", "xywh"):
        raise ValueError(f"box_format must be 'xyxy' or 'xywh', got {box_format!r}.")
    x1, y1, a, b = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, a, b)):
        raise ValueError(f"Box values must be finite, got {list(box)!r}.")
    x2, y2 = (x1 + a, y1 + b) if box_format == "xywh" else (a, b)
    values = (x1 / width, y1 / height, x2 / width, y2 / height)
    # Clamp: annotation boxes may overhang the border by a pixel; the paper's values always lie in [0, 1].
    # `+ 0.0` turns -0.0 into 0.0, which would otherwise print as "-0.00".
    return "[" + ",".join(f"{min(max(v, 0.0), 1.0) + 0.0:.2f}" for v in values) + "]"


def user_turn(prompt: str) -> dict[str, Any]:
    """A user message holding the image followed by the prompt text."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def conversation(prompt: str, answer: str) -> list[dict[str, Any]]:
    """One question-answer exchange about an image, in chat-message form."""
    return [user_turn(prompt), {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
