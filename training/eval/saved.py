"""What ``vlm eval`` keeps between runs: the predictions file, and the fingerprint of what made its predictions.

``predictions.jsonl`` is append-only, one record per sample: ``{sample_id, prediction, references}``, or
``{sample_id, prediction: null, error}`` for a sample whose image could not be read (generated again on the next
run, scored as wrong in this one). A truncated, malformed or duplicate line is dropped (a later good record of a
sample replaces a failed one).

``fingerprint.json`` beside it records the model (its resolved path and the SHA-256 of its weight files) and every
setting that changes an answer (prompt style, task-aware encoding, new tokens, source, split). Saved predictions are
reused only under the same fingerprint; otherwise they are set aside (``predictions.jsonl.stale-<time>``, never
deleted) and the benchmark starts fresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..files import read_json, set_aside, write_json, write_text

__all__ = [
    "FINGERPRINT_FILE",
    "PREDICTIONS_FILE",
    "check_fingerprint",
    "read_predictions",
    "read_records",
    "weights_digest",
]

PREDICTIONS_FILE = "predictions.jsonl"
FINGERPRINT_FILE = "fingerprint.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weights_digest(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 over the model folder's weight files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).iterdir()):
        if path.is_file() and path.suffix in _WEIGHT_SUFFIXES:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _records(text: str) -> Iterator[dict[str, Any]]:
    for line in text.split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("sample_id"), str):
            yield record


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """``{sample_id: record}`` of ``path`` (the first good record of a sample, else its failure); the file is
    rewritten without its dropped lines, so the next append starts on a fresh line."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    kept: dict[str, dict[str, Any]] = {}
    for record in _records(text):
        previous = kept.get(record["sample_id"])
        if previous is None or ("error" in previous and "error" not in record):
            kept[record["sample_id"]] = record
    clean = "".join(json.dumps(r) + "\n" for r in kept.values())
    if text != clean:
        write_text(path, clean)
    return kept


def read_predictions(path: Path) -> dict[str, Any]:
    """``{sample_id: prediction}`` of the samples answered in ``path`` (failed ones are left out, to be redone)."""
    return {sample_id: r.get("prediction") for sample_id, r in read_records(path).items() if "error" not in r}


def check_fingerprint(out_dir: Path, fingerprint: Mapping[str, Any]) -> str | None:
    """Record `fingerprint` for the benchmark folder; when saved predictions came from another one, set them aside
    and return a message naming what differs (None when they can be reused or there are none)."""
    path, predictions = out_dir / FINGERPRINT_FILE, out_dir / PREDICTIONS_FILE
    saved = read_json(path, "predictions fingerprint")
    message = None
    if predictions.is_file() and saved != dict(fingerprint):
        differs = sorted(k for k in set(fingerprint) | set(saved or {}) if (saved or {}).get(k) != fingerprint.get(k))
        moved = set_aside(predictions, "stale")
        what = ", ".join(differs) if saved else "no fingerprint was saved with them"
        message = f"saved predictions were made by another model or settings ({what}); set aside as {moved}"
    write_json(path, dict(fingerprint))
    return message
