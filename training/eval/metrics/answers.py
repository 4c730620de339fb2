"""Text answers: VQA accuracy with the official VQAv2 normalisation, GQA-style exact match, SQuAD-style token F1.

- VQA accuracy (VQAv2, TextVQA): the answer normalisation of the official ``vqaEval.py`` (punctuation, period
  stripping, number words, articles, contractions) and ``min(1, matches / 3)`` averaged over the leave-one-annotator-
  out subsets of the (usually 10) human answers.
- Exact match (GQA) on the first line of an answer, case and final period ignored.
- SQuAD-style normalisation, exact match and bag-of-tokens F1 (the synthetic tasks' captions and short answers).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from .predictions import MAX_PREDICTION_CHARS, check_lengths, clean_prediction, mean

__all__ = [
    "VQA_ARTICLES",
    "VQA_CONTRACTIONS",
    "VQA_MANUAL_MAP",
    "VQA_PUNCTUATION",
    "exact_match",
    "exact_match_accuracy",
    "exact_match_score",
    "normalize_answer",
    "normalize_short_answer",
    "token_f1",
    "vqa_accuracy",
    "vqa_normalize",
    "vqa_process_digit_article",
    "vqa_process_punctuation",
    "vqa_score",
]

# Verbatim from the official VQA evaluation (vqaEval.py), quirks included (e.g. the capitalised keys never match
# after lower-casing, and "somebody'd" maps to "somebodyd").
VQA_CONTRACTIONS: Mapping[str, str] = MappingProxyType(
    {
        "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
        "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
        "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
        "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
        "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
        "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
        "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
        "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
        "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
        "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
        "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
        "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
        "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
        "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
        "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
        "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
        "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
        "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
        "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
        "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
        "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
        "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
        "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
        "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
        "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
        "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
        "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
        "youve": "you've",
    }
)  # fmt: skip
VQA_MANUAL_MAP: Mapping[str, str] = MappingProxyType(
    {
        "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
        "seven": "7", "eight": "8", "nine": "9", "ten": "10",
    }
)  # fmt: skip
VQA_ARTICLES: tuple[str, ...] = ("a", "an", "the")
VQA_PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip
# Verbatim, including the official script's malformed look-behind "(?!<=\d)" (a negative look-ahead in effect).
_VQA_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_VQA_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")


def vqa_process_punctuation(text: str) -> str:
    """``processPunctuation`` of the official VQA evaluation, character for character."""
    out = text
    for p in VQA_PUNCTUATION:
        if (p + " " in text or " " + p in text) or _VQA_COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # The official call passes re.UNICODE (32) positionally, i.e. as `count`: at most 32 periods are stripped.
    return _VQA_PERIOD_STRIP.sub("", out, count=int(re.UNICODE))


def vqa_process_digit_article(text: str) -> str:
    """``processDigitArticle`` of the official VQA evaluation: lower-case, number words to digits, no articles."""
    words = [VQA_MANUAL_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in VQA_ARTICLES]
    return " ".join(VQA_CONTRACTIONS.get(w, w) for w in words)


def vqa_normalize(text: str) -> str:
    """Full official answer normalisation: whitespace cleanup, punctuation, then digits/articles/contractions."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return vqa_process_digit_article(vqa_process_punctuation(text))


def vqa_score(
    prediction: object, answers: Sequence[str], always_normalize: bool = True, max_chars: int = MAX_PREDICTION_CHARS
) -> float:
    """VQA accuracy of one answer: mean over leave-one-annotator-out subsets of ``min(1, matches / 3)``.

    With 10 answers of which k equal the prediction this is ``(k * min(1, (k-1)/3) + (10-k) * min(1, k/3)) / 10``
    (k=2 -> 0.6, k=3 -> 0.9). ``always_normalize=False`` reproduces vqaEval.py's branch that normalises only when the
    annotators disagree; the default normalises the prediction always, as the EvalAI server and LLaVA-style
    evaluations do. A single reference answer is scored by exact match after normalisation.
    """
    if isinstance(answers, str) or not answers:
        raise ValueError(f"answers must be a non-empty list of strings, got {answers!r}")
    pred = clean_prediction(prediction, max_chars)
    if pred is None:
        return 0.0
    gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    pred = pred.replace("\n", " ").replace("\t", " ").strip()
    if always_normalize or len(set(gts)) > 1:
        gts = [vqa_normalize(a) for a in gts]
        pred = vqa_normalize(pred)
    if not pred:
        return 0.0
    if len(gts) == 1:
        return float(gts[0] == pred)
    matches = [gt == pred for gt in gts]
    total = sum(matches)
    # Leaving annotator i out, the other annotators agree with the prediction (total - matches[i]) times.
    return sum(min(1.0, (total - m) / 3) for m in matches) / len(gts)


def vqa_accuracy(
    predictions: Sequence[object], answers: Sequence[Sequence[str]], always_normalize: bool = True
) -> float:
    """Mean :func:`vqa_score` over samples (0.0 for none)."""
    check_lengths(predictions, answers, "answer lists")
    return mean([vqa_score(p, a, always_normalize) for p, a in zip(predictions, answers, strict=True)])


# ------------------------------------------------------------------------------------------------------------
# Exact match
# ------------------------------------------------------------------------------------------------------------


def normalize_short_answer(text: str) -> str:
    """First line, lower-cased, whitespace collapsed, trailing periods and surrounding quotes removed."""
    first_line = text.strip().split("\n", 1)[0]
    return " ".join(first_line.lower().split()).strip("\"'").rstrip(".").strip()


def exact_match_score(
    prediction: object, references: str | Sequence[str], max_chars: int = MAX_PREDICTION_CHARS
) -> float:
    """1.0 if the normalised prediction equals any normalised reference (GQA-style exact match), else 0.0."""
    refs = [references] if isinstance(references, str) else list(references)
    pred = clean_prediction(prediction, max_chars)
    if pred is None:
        return 0.0
    norm = normalize_short_answer(pred)
    return float(bool(norm) and any(norm == normalize_short_answer(r) for r in refs))


def exact_match_accuracy(predictions: Sequence[object], references: Sequence[str | Sequence[str]]) -> float:
    """Mean :func:`exact_match_score` over samples (0.0 for none)."""
    check_lengths(predictions, references)
    return mean([exact_match_score(p, r) for p, r in zip(predictions, references, strict=True)])


# ------------------------------------------------------------------------------------------------------------
# SQuAD-style normalisation, exact match and token F1
# ------------------------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation and articles (a/an/the) and collapse whitespace."""
    # Punctuation goes first, as in the SQuAD script, so "the," still counts as an article.
    s = s.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(pred: str, refs: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference, else 0.0."""
    refs = [refs] if isinstance(refs, str) else refs
    norm = normalize_answer(pred)
    return float(any(norm == normalize_answer(ref) for ref in refs))


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style bag-of-tokens F1 between normalised prediction and reference."""
    pred_tokens, ref_tokens = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not pred_tokens or not ref_tokens:
        # Both empty is a perfect match; exactly one empty cannot share any token.
        return float(pred_tokens == ref_tokens)
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)
