"""The paper's templates, box format and chat messages: verbatim strings, lettered options, clamped boxes."""

from __future__ import annotations

import pytest

from training import templates
from training.templates import (
    CAPTION_PROMPT,
    conversation,
    format_box,
    grounding_prompt,
    grounding_turn,
    multiple_choice_options,
    multiple_choice_prompt,
    multiple_choice_turn,
    region_caption_turn,
    user_turn,
    vqa_prompt,
    vqa_turn,
    vsr_prompt,
    vsr_turn,
)


def vqa(question: str, answer: str) -> tuple[str, str]:
    """The short-VQA template as written in shared/paper/README.md."""
    return f"Answer the question using a single word or phrase.\nQuestion: {question}\nAnswer:", answer


def test_templates_are_the_papers() -> None:
    assert CAPTION_PROMPT == "Provide a one-sentence caption for the provided image."
    assert vqa_turn(" What colour? ", " red ") == vqa("What colour?", "red")
    assert grounding_turn("the dog.", "[0.10,0.20,0.30,0.40]") == (
        "Locate the region that is described by:\nthe dog.",
        "[0.10,0.20,0.30,0.40]",
    )
    assert region_caption_turn("[0.10,0.20,0.30,0.40]", "a dog") == (
        "Provide a short description of the region:\n[0.10,0.20,0.30,0.40]",
        "a dog",
    )
    assert vsr_turn("The cat is on the mat.", True) == (
        "Determine if the image matches the description:\nThe cat is on the mat.",
        "True",
    )
    assert vsr_turn("The cat is under the mat", False)[1] == "False"


def test_multiple_choice_letters() -> None:
    prompt, answer = multiple_choice_turn("Which animal?", ["cat", "dog", "bird"], 2)
    assert prompt == (
        "Answer with the option's letter from the given choices directly.\n"
        "Question: Which animal?\nA: cat\nB: dog\nC: bird\nAnswer:"
    )
    assert answer == "C"
    with pytest.raises(ValueError, match="answer_index=3"):
        multiple_choice_turn("q", ["a", "b", "c"], 3)
    with pytest.raises(ValueError, match="2 to 26 options"):
        multiple_choice_turn("q", ["a"], 0)


def test_format_box() -> None:
    assert format_box([64, 48, 128, 96], 640, 480) == "[0.10,0.10,0.20,0.20]"
    assert format_box([64, 48, 64, 48], 640, 480, box_format="xywh") == "[0.10,0.10,0.20,0.20]"
    assert format_box([-0.2, -3, 700, 481], 640, 480) == "[0.00,0.00,1.00,1.00]"  # clamped, never "-0.00"
    assert format_box([1, 2, 3, 4], 3, 7) == "[0.33,0.29,1.00,0.57]"
    with pytest.raises(ValueError, match="4 values"):
        format_box([1, 2, 3], 10, 10)
    with pytest.raises(ValueError, match="positive"):
        format_box([1, 2, 3, 4], 0, 10)
    with pytest.raises(ValueError, match="box_format"):
        format_box([1, 2, 3, 4], 10, 10, box_format="cxcywh")  # type: ignore[arg-type]
    assert templates.OPTION_LETTERS.startswith("ABCD")


def test_multiple_choice_answered_with_the_option() -> None:
    """The demo's variant: the paper's layout, but the instruction asks for the option itself."""
    assert multiple_choice_prompt(" Which animal? ", ["cat", " dog "], answer_with="option") == (
        "Answer with the option from the given choices directly.\nQuestion: Which animal?\nA: cat\nB: dog\nAnswer:"
    )
    # The options read back from either form's prompt; other prompts have none.
    for answer_with in ("letter", "option"):
        prompt = multiple_choice_prompt("Which?", ["red", "blue circle"], answer_with=answer_with)  # type: ignore[arg-type]
        assert multiple_choice_options(prompt) == {"A": "red", "B": "blue circle"}
    assert multiple_choice_options(vqa_prompt("What color is it?")) == {}
    with pytest.raises(ValueError, match="answer_with must be 'letter' or 'option', got 'text'"):
        multiple_choice_prompt("q", ["a", "b"], answer_with="text")  # type: ignore[arg-type]


def test_prompts_are_the_turns_user_side() -> None:
    # The benchmarks ask with the prompt alone; training pairs the same text with the answer.
    assert vqa_prompt(" Is it red? ") == vqa_turn("Is it red?", "yes")[0] == vqa("Is it red?", "")[0]
    assert grounding_prompt("the dog..") == "Locate the region that is described by:\nthe dog."
    assert vsr_prompt(" The cat is on the mat. ") == vsr_turn("The cat is on the mat", True)[0]
    assert multiple_choice_prompt("Which?", ["x", "y"]) == multiple_choice_turn("Which?", ["x", "y"], 1)[0]
    with pytest.raises(ValueError, match="2 to 26 options"):
        multiple_choice_prompt("Which?", [f"o{i}" for i in range(27)])


def test_chat_messages_put_the_image_before_the_prompt() -> None:
    assert user_turn("Describe.") == {
        "role": "user",
        "content": [{"type": "image"}, {"type": "text", "text": "Describe."}],
    }
    assert conversation("Describe.", "A dog.") == [
        user_turn("Describe."),
        {"role": "assistant", "content": [{"type": "text", "text": "A dog."}]},
    ]
