"""Every metric of the project: the paper's benchmarks (CIDEr, VQA accuracy, exact match, POPE, grounding, Visual7W
pointing) and the synthetic tasks (SQuAD-style exact match and token F1, IoU).

Every scorer takes raw model outputs. A prediction that is not a string, is empty, is longer than ``max_chars``
characters or cannot be parsed is scored as wrong; no prediction makes a scorer raise. Reference data that is
malformed (an empty reference list, mismatched lengths) raises ``ValueError`` naming the offending index.

- CIDEr (CIDEr-D as in the COCO caption evaluation): ``pycocoevalcap.cider.cider.Cider`` on captions tokenised by the
  Stanford PTB tokenizer when Java is installed, else by :func:`ptb_like_tokenize`, a pure-Python imitation of it.
  :class:`CiderResult` records which tokenizer was used.
- VQA accuracy (VQAv2, TextVQA): the answer normalisation of the official ``vqaEval.py`` (punctuation, period
  stripping, number words, articles, contractions) and ``min(1, matches / 3)`` averaged over the leave-one-annotator-
  out subsets of the (usually 10) human answers.
- Exact match (GQA), option letters (multiple choice), True/False (VSR), yes/no (POPE) with robust answer parsers.
- Grounding accuracy: IoU > 0.5 between the parsed ``[x1,y1,x2,y2]`` box and the reference box.
- Visual7W pointing: the predicted box (or option letter) picks the candidate box with the highest IoU.
- SQuAD-style normalisation, exact match and bag-of-tokens F1 (the synthetic captions and short answers).
- Confidence intervals of mean scores: the percentile bootstrap over examples, alone and paired (:mod:`.intervals`).

One module per kind of answer: :mod:`.captions` (CIDEr), :mod:`.answers` (free-text answers), :mod:`.choices`
(letters, true/false, yes/no) and :mod:`.boxes` (boxes); :mod:`.predictions` decides what a usable prediction is.
"""

from .answers import (
    VQA_ARTICLES,
    VQA_CONTRACTIONS,
    VQA_MANUAL_MAP,
    VQA_PUNCTUATION,
    exact_match,
    exact_match_accuracy,
    exact_match_score,
    normalize_answer,
    normalize_short_answer,
    token_f1,
    vqa_accuracy,
    vqa_normalize,
    vqa_process_digit_article,
    vqa_process_punctuation,
    vqa_score,
)
from .boxes import (
    box_iou,
    box_ious,
    choose_candidate,
    grounding_accuracy,
    grounding_score,
    mean_iou,
    parse_box,
    pointing_accuracy,
)
from .captions import (
    CiderResult,
    cider,
    java_available,
    ptb_like_tokenize,
)
from .choices import (
    multiple_choice_accuracy,
    parse_choice,
    parse_true_false,
    parse_yes_no,
    pope_metrics,
    pope_official_answer,
    true_false_accuracy,
)
from .intervals import Interval, bootstrap_interval, paired_difference_interval
from .predictions import (
    MAX_PREDICTION_CHARS,
    clean_prediction,
)

__all__ = [
    "MAX_PREDICTION_CHARS",
    "VQA_ARTICLES",
    "VQA_CONTRACTIONS",
    "VQA_MANUAL_MAP",
    "VQA_PUNCTUATION",
    "CiderResult",
    "Interval",
    "bootstrap_interval",
    "box_iou",
    "box_ious",
    "choose_candidate",
    "cider",
    "clean_prediction",
    "exact_match",
    "exact_match_accuracy",
    "exact_match_score",
    "grounding_accuracy",
    "grounding_score",
    "java_available",
    "mean_iou",
    "multiple_choice_accuracy",
    "normalize_answer",
    "normalize_short_answer",
    "paired_difference_interval",
    "parse_box",
    "parse_choice",
    "parse_true_false",
    "parse_yes_no",
    "pointing_accuracy",
    "pope_metrics",
    "pope_official_answer",
    "ptb_like_tokenize",
    "token_f1",
    "true_false_accuracy",
    "vqa_accuracy",
    "vqa_normalize",
    "vqa_process_digit_article",
    "vqa_process_punctuation",
    "vqa_score",
]
