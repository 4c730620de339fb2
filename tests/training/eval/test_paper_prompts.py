"""The paper's evaluation prompts, on the cases written out in gpantaz/vl_mamba's evaluate_*.py scripts.

Expected strings come from the scripts at commit c788f5f (e.g. evaluate_vqav2.py:105
``[f"{prompt}", f"\\nQuestion: {question}\\nAnswer: "]``, evaluate_pope.py:93 ``[f"{prompt}\\n{question}\\n"]``,
evaluate_visual7w.py:204-234, evaluate_textvqa.py:110) and their ``format_text`` (datasets/base_dataset.py:6-31).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training.eval.benchmarks import BENCHMARKS, EvalSample
from training.eval.paper_prompts import PAPER_MAX_NEW_TOKENS, paper_format_text, paper_input_ids, paper_turns

VQA = "Answer the question using a single word or phrase."
MC = "Answer with the option's letter from the given choices directly."


def _sample(**extra: Any) -> EvalSample:
    return EvalSample("0", Path("x.jpg"), "", [], "vqa", extra)


def test_format_text_is_the_papers() -> None:
    assert paper_format_text("  what does the sign say about NYC? ") == "What does the sign say about nyc?"
    assert paper_format_text("is this a dog") == "Is this a dog."
    assert paper_format_text("which label shows the STEM", capitalize=False) == "which label shows the STEM."
    assert paper_format_text("root system", punctuate=False) == "Root system"


@pytest.mark.parametrize(
    ("benchmark", "extra", "turns"),
    [
        ("vqav2_val", {"question": "what color is the cat?"}, [VQA, "\nQuestion: What color is the cat?\nAnswer: "]),
        ("gqa_testdev", {"question": "Is it red"}, [f"{VQA}\nQuestion: Is it red.\nAnswer: "]),
        ("pope_random", {"question": "Is there a dog in the image?"}, [f"{VQA}\nIs there a dog in the image?\n"]),
        ("textvqa_val", {"question": "what brand is the phone", "ocr_tokens": ["NOKIA", "3310", "menu"]},
         [f"{VQA}\nOCR text:\nNOKIA 3310 menu\nQuestion: What brand is the phone.\nAnswer: "]),
        ("vsr_test", {"caption": "the cat is on the table"},
         ["Determine if the image matches the description:\nThe cat is on the table.\n"]),
        ("refcocog_test", {"expression": "man on the left"}, ["Locate the region that is described by:",
                                                               "\nMan on the left.\n"]),
        ("coco_karpathy_test", {}, ["Provide a one-sentence caption for the provided image.\n"]),
        ("v7w_telling", {"question": "How many dogs are there?", "options": ["Two.", "three.", "One.", "Four."]},
         [MC, "\nQuestion: How many dogs are there?\n", "A: Two.\n", "B: Three.\n", "C: One.\n",
          "D: Four.\nAnswer: "]),
        ("v7w_pointing", {"question": "Which is the Dog?", "candidate_boxes": [[0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]]},
         [MC, "\nQuestion: Which is the Dog?\n", "A: [0.10,0.20,0.30,0.40].\n",
          "B: [0.00,0.00,1.00,1.00].\nAnswer: "]),
        ("ai2d_test", {"question": "which label shows the stem", "options": ["A", "photosynthesis", "root system"],
                       "ocr_text": "OCR text:\nA: leaf"},
         [f"{MC}\nOCR text:\nA: leaf", "\nQuestion: which label shows the stem.\n", "A: A\n", "B: Photosynthesis\n",
          "C: Root system\nAnswer: "]),
    ],
)  # fmt: skip
def test_turns_are_the_scripts(benchmark: str, extra: dict[str, Any], turns: list[str]) -> None:
    assert paper_turns(benchmark, _sample(**extra)) == turns


def test_every_benchmark_has_paper_prompts_and_budgets() -> None:
    assert set(PAPER_MAX_NEW_TOKENS) == set(BENCHMARKS)
    assert (PAPER_MAX_NEW_TOKENS["vqav2_val"], PAPER_MAX_NEW_TOKENS["coco_karpathy_test"]) == (15, 40)
    assert (PAPER_MAX_NEW_TOKENS["gqa_testdev"], PAPER_MAX_NEW_TOKENS["textcaps_val"]) == (20, 15)
    with pytest.raises(ValueError, match="no paper prompts for 'mmmu'"):
        paper_turns("mmmu", _sample())


def test_turns_are_tokenized_one_by_one_after_the_image(processor: Any) -> None:
    turns = [VQA, "\nQuestion: Is it red?\nAnswer: "]
    pieces = [processor.tokenizer(t, add_special_tokens=False)["input_ids"] for t in turns]
    assert paper_input_ids(processor, turns) == processor.image_block_ids + pieces[0] + pieces[1]
    assert paper_input_ids(processor, turns, instruction_first=True) == (
        pieces[0] + processor.image_block_ids + pieces[1]
    )
