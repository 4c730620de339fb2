"""GRIT-20M as released and as img2dataset downloads it.

The release (https://huggingface.co/datasets/zzliang/GRIT, ``grit-20m/coyo_<n>_snappy.parquet``) holds URLs and
annotations but no images; its card downloads them with img2dataset, keeping the annotations beside each image::

    img2dataset --url_list grit-20m --input_format parquet --url_col url --caption_col caption \\
        --output_format webdataset --output_folder grit ... \\
        --save_additional_columns '["id","noun_chunks","ref_exps","clip_similarity_vitb32","clip_similarity_vitl14"]'

img2dataset's output folder (its README, "Output format")::

    grit/00000.parquet            one row per sample of shard 00000: key, status, url, caption, width, height, ...
                                  and the saved columns (noun_chunks, ref_exps, id, ...)
    grit/00000/000000000.jpg      --output_format files (with .json and .txt beside each image)
    grit/00000.tar                --output_format webdataset: members 000000000.jpg, .json, .txt
    grit/00000_stats.json

A key is the shard number followed by the row within it; only rows whose ``status`` is ``success`` have an image.
``noun_chunks`` and ``ref_exps`` are ``[start, end, x_min, y_min, x_max, y_max, confidence]``: a character span of
the caption and its box, normalised to [0, 1]. Image paths are returned relative to the output folder, a webdataset
member as ``<shard>.tar/<key>.jpg`` (see :func:`training.data.images.open_image`).
"""

from __future__ import annotations

import math
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RELEASE", "SPAN_COLUMNS", "GritRecord", "img2dataset_shards", "read_img2dataset"]

RELEASE = "https://huggingface.co/datasets/zzliang/GRIT (grit-20m/*.parquet; images via img2dataset, see its card)"
SPAN_COLUMNS = ("noun_chunks", "ref_exps")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class GritRecord:
    """One downloaded GRIT image: its path under the output folder, caption and grounded spans."""

    image: str
    caption: str
    spans: tuple[tuple[str, Box], ...]  # (expression, normalised [x1, y1, x2, y2]), duplicates removed


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError for a file that is not parquet
        raise ValueError(f"{path} is not a readable parquet file: {err}") from err


def img2dataset_shards(folder: str | os.PathLike[str]) -> list[Path]:
    """The shard metadata files of an img2dataset output folder; a clear error for GRIT's release parquet files."""
    folder = Path(folder)
    if folder.is_file():
        shards = [folder]
    elif folder.is_dir():
        shards = sorted(p for p in folder.glob("*.parquet"))
    else:
        raise FileNotFoundError(f"{folder} not found: GRIT downloaded with img2dataset (from {RELEASE})")
    if not shards:
        raise FileNotFoundError(f"{folder} holds no <shard>.parquet: is it img2dataset's output folder for GRIT?")
    for shard in shards:
        columns = _parquet_columns(shard)
        if "status" not in columns:
            raise ValueError(
                f"{shard} is GRIT's release parquet (URLs and annotations, no images): download the images with "
                'img2dataset as the GRIT card shows, with --save_additional_columns \'["noun_chunks","ref_exps"]\','
                " and give its output folder"
            )
        missing = [c for c in ("key", "caption", "noun_chunks") if c not in columns]
        if missing:
            raise ValueError(
                f"{shard}: img2dataset shard without column(s) {missing}; rerun img2dataset with --caption_col "
                'caption --save_additional_columns \'["noun_chunks","ref_exps"]\''
            )
    return shards


def _box(span: Any) -> Box | None:
    """The normalised box of a span, or None when it is not a box inside the image."""
    x1, y1, x2, y2 = (float(v) for v in span[2:6])
    inside = all(math.isfinite(v) and -1e-3 <= v <= 1 + 1e-3 for v in (x1, y1, x2, y2))
    return (x1, y1, x2, y2) if inside and x2 > x1 and y2 > y1 else None


def _spans(row: dict[str, Any], where: str, skipped: Counter[str]) -> tuple[tuple[str, Box], ...]:
    caption, seen = str(row["caption"]), {}
    for column in SPAN_COLUMNS:
        for number, span in enumerate(row.get(column) or []):
            if not isinstance(span, (list, tuple)) or len(span) < 6:
                raise ValueError(f"{where} {column}[{number}]: expected [start, end, x1, y1, x2, y2, score]")
            box = _box(span)
            if box is None:
                skipped["degenerate or outside box"] += 1
                continue
            expression = caption[int(span[0]) : int(span[1])].strip()
            if expression:
                seen.setdefault((expression, box), None)
    return tuple(seen)


def _rows(shard: Path, folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(image path under the folder, row) of the shard's rows, in order; `image` is None for failed downloads."""
    import pyarrow.parquet as pq

    table = pq.read_table(shard, columns=[c for c in ("key", "status", "caption", *SPAN_COLUMNS)
                                          if c in _parquet_columns(shard)])  # fmt: skip
    as_tar = not (folder / shard.stem).is_dir() and (folder / f"{shard.stem}.tar").is_file()
    prefix = f"{shard.stem}.tar" if as_tar else shard.stem
    for row in table.to_pylist():
        yield f"{prefix}/{row['key']}.jpg", row


def read_img2dataset(
    folder: str | os.PathLike[str], *, max_records: int | None = None, seed: int = 0
) -> tuple[list[GritRecord], Counter[str]]:
    """The downloaded GRIT records (a uniform sample of `max_records`, seeded, in file order) and what was skipped."""
    if max_records is not None and max_records < 1:
        raise ValueError(f"max_records must be >= 1 or None, got {max_records}.")
    shards = img2dataset_shards(folder)
    root = Path(folder) if Path(folder).is_dir() else Path(folder).parent
    rng, chosen, seen, skipped = random.Random(seed), [], 0, Counter()
    for shard in shards:
        for image, row in _rows(shard, root):
            if row.get("status") != "success":
                skipped[f"not downloaded ({row.get('status')})"] += 1
                continue
            spans = _spans(row, f"{shard} key {row['key']}", skipped)
            if not spans:
                skipped["no grounded span"] += 1
                continue
            record = (seen, GritRecord(image, str(row["caption"]), spans))
            if max_records is None or len(chosen) < max_records:
                chosen.append(record)
            elif (slot := rng.randint(0, seen)) < max_records:
                chosen[slot] = record
            seen += 1
    return [record for _, record in sorted(chosen, key=lambda item: item[0])], skipped
