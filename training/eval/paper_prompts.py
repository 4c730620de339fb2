"""The paper's own evaluation prompts (``vlm eval --prompt-style paper``), as gpantaz/vl_mamba's scripts build them.

Our default prompts are the paper's templates rendered through the chat template. The paper's evaluation scripts
(``src/vl_mamba/evaluation/evaluate_*.py``) differ in details that move scores: the exact text of each turn, the
question normalisation of ``format_text`` (first letter up, *the rest lowercased*, a final period), each turn
tokenized separately and the ids concatenated after the 601-id image block, and the number of new tokens per benchmark
(``scripts/evaluate_on_all.sh``). This module reproduces them, so that numbers of a converted checkpoint
(``vlm convert``) are comparable with the published table. Read from the scripts at commit c788f5f:

================  ==================================================================================  ==========
benchmark         turns (each tokenized on its own)                                                     new tokens
================  ==================================================================================  ==========
COCO, NoCaps,     ``"{caption prompt}\\n"``                                                            40, 40, 15
TextCaps
VQAv2             ``"{vqa prompt}"``, ``"\\nQuestion: {q}\\nAnswer: "``                                15
TextVQA           ``"{vqa prompt}\\nOCR text:\\n{ocr tokens}\\nQuestion: {q}\\nAnswer: "``              20
GQA               ``"{vqa prompt}\\nQuestion: {q}\\nAnswer: "``                                         20
POPE              ``"{vqa prompt}\\n{q}\\n"``                                                           120
VSR               ``"{itm prompt}\\n{caption}\\n"``                                                     120
RefCOCO/+/g       ``"{grounding prompt}"``, ``"\\n{expression}\\n"``                                   120
Visual7W, AI2D    ``"{mc prompt}"``, ``"\\nQuestion: {q}\\n"``, ``"A: {o}\\n"`` ... ``"D: {o}\\nAnswer: "``   20, 10
================  ==================================================================================  ==========

Not reproducible from the code, so ours stand in: the order of Visual7W's options (an unseeded shuffle when the
paper built its dataset) and AI2D's OCR text (when the annotation does not provide it). Decoding is greedy either way
and stops at the end-of-text token; the paper's Mamba path generated past it, but every script cuts the answer there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..templates import OPTION_LETTERS
from .benchmarks import EvalSample

__all__ = ["PAPER_MAX_NEW_TOKENS", "PAPER_TEMPLATES", "paper_format_text", "paper_input_ids", "paper_turns"]

# TASK_TEMPLATES_MAP[task][0] of src/vl_mamba/datamodels/datamodels.py.
PAPER_TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "captioning": "Provide a one-sentence caption for the provided image.",
        "vqa": "Answer the question using a single word or phrase.",
        "multiple_choice": "Answer with the option's letter from the given choices directly.",
        "grounding": "Locate the region that is described by:",
        "itm": "Determine if the image matches the description:",
    }
)


def paper_format_text(text: str, *, capitalize: bool = True, punctuate: bool = True) -> str:
    """The paper's ``format_text`` (with ``add_bos=add_eos=False``): strip, ``str.capitalize()``, a final period."""
    text = text.strip()
    if capitalize:
        text = text.capitalize()  # first character upper case, the rest lower case
    if punctuate and not text.endswith((".", "?", "!")):
        text = f"{text}."
    return text


def _caption(sample: EvalSample) -> list[str]:
    return [f"{PAPER_TEMPLATES['captioning']}\n"]


def _vqav2(sample: EvalSample) -> list[str]:
    return [PAPER_TEMPLATES["vqa"], f"\nQuestion: {paper_format_text(sample.extra['question'])}\nAnswer: "]


def _textvqa(sample: EvalSample) -> list[str]:
    ocr = " ".join(sample.extra.get("ocr_tokens") or [])
    question = paper_format_text(sample.extra["question"])
    return [f"{PAPER_TEMPLATES['vqa']}\nOCR text:\n{ocr}\nQuestion: {question}\nAnswer: "]


def _gqa(sample: EvalSample) -> list[str]:
    return [f"{PAPER_TEMPLATES['vqa']}\nQuestion: {paper_format_text(sample.extra['question'])}\nAnswer: "]


def _pope(sample: EvalSample) -> list[str]:
    return [f"{PAPER_TEMPLATES['vqa']}\n{paper_format_text(sample.extra['question'])}\n"]


def _vsr(sample: EvalSample) -> list[str]:
    return [f"{PAPER_TEMPLATES['itm']}\n{paper_format_text(sample.extra['caption'])}\n"]


def _grounding(sample: EvalSample) -> list[str]:
    return [PAPER_TEMPLATES["grounding"], f"\n{paper_format_text(sample.extra['expression'])}\n"]


def _option_turns(options: Sequence[str]) -> list[str]:
    """``"A: {option}\\n"`` per option, ``"Answer: "`` after the last."""
    turns = [f"{letter}: {option}\n" for letter, option in zip(OPTION_LETTERS, options, strict=False)]
    turns[-1] += "Answer: "
    return turns


def _multiple_choice(sample: EvalSample, *, capitalize_question: bool, head: str) -> list[str]:
    options = [paper_format_text(str(o), punctuate=False) for o in sample.extra["options"]]
    question = paper_format_text(sample.extra["question"], capitalize=capitalize_question)
    return [head, f"\nQuestion: {question}\n", *_option_turns(options)]


def _v7w_telling(sample: EvalSample) -> list[str]:
    return _multiple_choice(sample, capitalize_question=True, head=PAPER_TEMPLATES["multiple_choice"])


def _v7w_pointing(sample: EvalSample) -> list[str]:
    # format_bbox of the paper: two decimals, no spaces, a trailing period; the question keeps its case.
    options = ["[" + ",".join(f"{v:.2f}" for v in box) + "]." for box in sample.extra["candidate_boxes"]]
    question = paper_format_text(sample.extra["question"], capitalize=False)
    return [PAPER_TEMPLATES["multiple_choice"], f"\nQuestion: {question}\n", *_option_turns(options)]


def _ai2d(sample: EvalSample) -> list[str]:
    ocr = sample.extra.get("ocr_text")
    head = f"{PAPER_TEMPLATES['multiple_choice']}\n{ocr}" if ocr else PAPER_TEMPLATES["multiple_choice"]
    return _multiple_choice(sample, capitalize_question=False, head=head)


_TURNS: Mapping[str, Callable[[EvalSample], list[str]]] = MappingProxyType(
    {
        "coco_karpathy_test": _caption,
        "nocaps_val": _caption,
        "textcaps_val": _caption,
        "vqav2_val": _vqav2,
        "textvqa_val": _textvqa,
        "gqa_testdev": _gqa,
        **dict.fromkeys(("pope_random", "pope_popular", "pope_adversarial"), _pope),
        "vsr_test": _vsr,
        **dict.fromkeys(("refcoco_testA", "refcoco_testB", "refcoco+_testA", "refcoco+_testB", "refcocog_test"),
                        _grounding),
        "v7w_telling": _v7w_telling,
        "v7w_pointing": _v7w_pointing,
        "ai2d_test": _ai2d,
    }
)  # fmt: skip

PAPER_MAX_NEW_TOKENS: Mapping[str, int] = MappingProxyType(
    {
        "coco_karpathy_test": 40, "nocaps_val": 40, "textcaps_val": 15, "vqav2_val": 15, "textvqa_val": 20,
        "gqa_testdev": 20, "pope_random": 120, "pope_popular": 120, "pope_adversarial": 120, "vsr_test": 120,
        "refcoco_testA": 120, "refcoco_testB": 120, "refcoco+_testA": 120, "refcoco+_testB": 120,
        "refcocog_test": 120, "v7w_telling": 20, "v7w_pointing": 20, "ai2d_test": 10,
    }
)  # fmt: skip
"""New tokens per benchmark: what ``scripts/evaluate_on_all.sh`` passes, else the script's default."""


def paper_turns(benchmark: str, sample: EvalSample) -> list[str]:
    """The text turns the paper's script of `benchmark` builds for `sample`."""
    if benchmark not in _TURNS:
        raise ValueError(f"no paper prompts for {benchmark!r}; known: {', '.join(_TURNS)}")
    return _TURNS[benchmark](sample)


def paper_input_ids(processor: Any, turns: Sequence[str], instruction_first: bool = False) -> list[int]:
    """Image block, then every turn tokenized on its own (no special tokens); the first turn before the image when
    `instruction_first` (the paper's task-aware layout)."""
    tokenized = [processor.tokenizer(turn, add_special_tokens=False)["input_ids"] for turn in turns]
    block = processor.image_block_ids
    if instruction_first:
        return [*tokenized[0], *block, *(i for ids in tokenized[1:] for i in ids)]
    return [*block, *(i for ids in tokenized for i in ids)]
