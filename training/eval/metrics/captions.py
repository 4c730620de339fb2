"""CIDEr (CIDEr-D, as in the COCO caption evaluation) through pycocoevalcap, with its PTB tokenisation.

Captions are tokenised by the Stanford PTB tokenizer when Java is installed, else by :func:`ptb_like_tokenize`, a
pure-Python imitation of it; :class:`CiderResult` records which tokenizer was used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pycocoevalcap.cider.cider import Cider

from .predictions import MAX_PREDICTION_CHARS, check_lengths, clean_prediction

__all__ = ["CiderResult", "cider", "java_available", "ptb_like_tokenize"]

Tokenizer = Literal["auto", "ptb", "python"]

# Tokens the COCO caption evaluation drops after PTB tokenisation (pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS).
_PTB_DROPPED = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# PTB escapes brackets; with -lowerCase the escapes come out lower-cased and so survive the filter above.
_PTB_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}
_PTB_ABBREVIATIONS = frozenset(["mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "etc.", "inc.", "ltd."])
_PTB_INITIALISM = re.compile(r"^(?:[a-z]\.){2,}$")  # u.s.a., a.m.
_PTB_SPLIT_WORDS = {"gonna": ["gon", "na"], "wanna": ["wan", "na"], "gotta": ["got", "ta"], "cannot": ["can", "not"]}
_PTB_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_PTB_LEADING = "'`$<"
_PTB_TRAILING = "'`.,;:!?%>"


def _ptb_split_token(token: str) -> list[str]:
    """Split one whitespace-delimited, lower-cased token the way the PTB tokenizer would (approximately)."""
    head: list[str] = []
    tail: list[str] = []
    while token and token[0] in _PTB_LEADING:
        head.append(token[0])
        token = token[1:]
    while token and token[-1] in _PTB_TRAILING:
        if token.endswith("...") and len(token) > 3:
            tail.insert(0, "...")
            token = token[:-3]
            continue
        if token[-1] == "." and (token in _PTB_ABBREVIATIONS or _PTB_INITIALISM.match(token)):
            break
        tail.insert(0, token[-1])
        token = token[:-1]
    middle: list[str] = []
    if token:
        # Commas and colons inside a token split it unless they sit between digits (1,000 and 9:30 stay whole).
        parts = re.split(r"(?<!\d)([,;])|([,;])(?!\d)", token)
        for part in (p for p in parts if p):
            clitic = _PTB_CLITIC.match(part)
            if part in _PTB_SPLIT_WORDS:
                middle.extend(_PTB_SPLIT_WORDS[part])
            elif clitic and part not in ("'s", "n't"):
                stem, suffix = clitic.groups()
                middle.extend([stem, suffix])
            else:
                middle.append(part)
    return head + middle + tail


def ptb_like_tokenize(text: str) -> str:
    """Pure-Python stand-in for pycocoevalcap's Stanford PTB tokenisation: lower-cased, punctuation dropped."""
    text = text.lower().replace('"', " ")  # PTB turns double quotes into `` and '', which are dropped
    for bracket, escape in _PTB_BRACKETS.items():
        text = text.replace(bracket, f" {escape} ")
    text = re.sub(r"\.\.\.+", " ... ", text)
    text = re.sub(r"--+", " -- ", text)
    text = re.sub(r"([!?;&])", r" \1 ", text)
    tokens = [piece for token in text.split() for piece in _ptb_split_token(token)]
    return " ".join(t for t in tokens if t not in _PTB_DROPPED)


def java_available() -> bool:
    """Whether a ``java`` executable is on PATH (the PTB tokenizer of pycocoevalcap needs one)."""
    return shutil.which("java") is not None


def _tokenize_ptb(captions: Mapping[int, list[str]]) -> dict[int, list[str]]:
    """Tokenise with pycocoevalcap's Java PTB tokenizer; raises RuntimeError if its output does not line up."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # The tokenizer reads one caption per line, so no caption may contain a line break of any kind.
    flat = {key: [{"caption": " ".join(c.split())} for c in caps] for key, caps in captions.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        out = PTBTokenizer().tokenize(flat)
    if any(len(out.get(key, [])) != len(caps) for key, caps in captions.items()):
        raise RuntimeError("the PTB tokenizer returned a different number of captions than it was given")
    return out


@dataclass(frozen=True)
class CiderResult:
    """Corpus CIDEr (pycocoevalcap scale: 1.0 = 100 in papers), per-sample scores and the tokenizer used."""

    score: float
    per_sample: tuple[float, ...]
    tokenizer: Literal["ptb", "python"]


def cider(
    predictions: Sequence[object],
    references: Sequence[Sequence[str]],
    tokenizer: Tokenizer = "auto",
    max_chars: int = MAX_PREDICTION_CHARS,
) -> CiderResult:
    """CIDEr-D of one caption per sample against its references, via ``pycocoevalcap.cider.cider.Cider``.

    ``tokenizer="auto"`` uses the Java PTB tokenizer when ``java`` is on PATH and falls back to
    :func:`ptb_like_tokenize` otherwise (or if the Java run fails); ``"ptb"`` requires Java; ``"python"`` never
    uses it.
    Empty, non-string and overlong predictions are scored as the empty caption (0.0).
    """
    check_lengths(predictions, references)
    if tokenizer not in ("auto", "ptb", "python"):
        raise ValueError(f"tokenizer must be 'auto', 'ptb' or 'python', got {tokenizer!r}")
    refs: dict[int, list[str]] = {}
    for i, sample_refs in enumerate(references):
        if isinstance(sample_refs, str) or not sample_refs or not all(isinstance(r, str) for r in sample_refs):
            raise ValueError(f"references[{i}] must be a non-empty list of strings, got {sample_refs!r}")
        refs[i] = list(sample_refs)
    hyps = {i: [clean_prediction(p, max_chars) or ""] for i, p in enumerate(predictions)}
    use_ptb = tokenizer == "ptb" or (tokenizer == "auto" and java_available())
    if tokenizer == "ptb" and not java_available():
        raise RuntimeError("tokenizer='ptb' needs Java ('java' is not on PATH); use tokenizer='python' or 'auto'")
    if not refs:
        return CiderResult(0.0, (), "ptb" if use_ptb else "python")
    used: Literal["ptb", "python"] = "python"
    if use_ptb:
        try:
            tok_refs, tok_hyps = _tokenize_ptb(refs), _tokenize_ptb(hyps)
            used = "ptb"
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            if tokenizer == "ptb":
                raise RuntimeError(f"the Java PTB tokenizer failed: {err}") from err
            warnings.warn(f"the Java PTB tokenizer failed ({err}); tokenising in Python instead", stacklevel=2)
    if used == "python":
        tok_refs = {k: [ptb_like_tokenize(c) for c in v] for k, v in refs.items()}
        tok_hyps = {k: [ptb_like_tokenize(c) for c in v] for k, v in hyps.items()}
    score, scores = Cider().compute_score(tok_refs, tok_hyps)
    return CiderResult(float(score), tuple(float(s) for s in scores), used)
