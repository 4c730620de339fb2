"""A data root holding small copies of the stage-2 sources as each is released, laid out as the recipes' README says.

Every file is written from its release's own description, not from our readers:

- LLaVA-Instruct-150K: LLaVA's ``docs/Data.md`` and the ``liuhaotian/LLaVA-Instruct-150K`` card (records ``{id,
  image, conversations: [{from: human|gpt, value}]}``, ``<image>`` in the first human turn; images COCO train2017).
- COCO Karpathy ``dataset_coco.json``: Karpathy's neuraltalk release (``images[]: {filepath, filename, imgid, split,
  sentences[]: {tokens, raw, imgid, sentid}, sentids, cocoid}``, ``dataset: "coco"``).
- VQAv2: visualqa.org "Input Questions Format" / "Annotation Format" (``info, task_type, data_type, data_subtype,
  license, questions[]`` and ``annotations[]: {question_id, image_id, question_type, answer_type, answers[10],
  multiple_choice_answer}``); images ``COCO_train2014_<id:012d>.jpg``.
- GQA ``train_balanced_questions.json``: the GQA download page's question format (question id -> ``{imageId,
  question, answer, fullAnswer, isBalanced, groups, types, semantic, ...}``).
- A-OKVQA ``aokvqa_v1p0_train.json``: allenai/aokvqa README (``split, image_id, question_id, question, choices,
  correct_choice_idx, direct_answers, difficult_direct_answer, rationales``); images COCO 2017 ``<id:012d>.jpg``.
- AI2D: :func:`tests.training.releases.release_fixtures.write_ai2d`.
- DocVQA ``train/train_v1.0.json``: the RRC DocVQA task 1 release (``dataset_name, dataset_split, dataset_version,
  data[]: {questionId, question, question_types, image: "documents/<name>.png", docId, answers, data_split}``).
- InfographicVQA ``infographicsVQA_train_v1.0.json`` and ``infographicsvqa_images/``: the RRC InfographicVQA release
  (``data[]: {questionId, question, image_local_name, image_url, ocr_output_file, answers, data_split}``).
- OCR-VQA ``dataset.json`` + ``images/``: anandmishra22/OCR-VQA ``loadDataset.py`` saves each cover as
  ``images/<id><extension of imageURL>`` (some ``.png``); records ``{imageURL, questions, answers, title,
  authorName, genre, split: 1|2|3}``.
- TextCaps ``TextCaps_0.1_train.json``: textvqa.org/textcaps (``dataset_type, dataset_name, data[]: {image_id,
  caption_str, reference_strs, ...}``); images are TextVQA's ``train_images/``.
- GRIT: the zzliang/GRIT card downloads with img2dataset; img2dataset's README "Output format" (``<shard>.parquet``
  with key/status/caption/url and the saved columns; ``--output_format files``: ``<shard>/<key>.jpg``;
  ``webdataset``: ``<shard>.tar`` of ``<key>.jpg/.json/.txt``).
- RefCOCO/+/g: :func:`tests.training.releases.release_fixtures.write_refer` (Python 2 protocol-0 pickles).
- Visual Genome v1.2 ``region_descriptions.json`` / ``image_data.json`` (visualgenome.org API docs: regions
  ``{region_id, image_id, phrase, x, y, width, height}``; images ``{image_id, url, width, height, coco_id,
  flickr_id}``; images under ``VG_100K/`` and ``VG_100K_2/``).
- Visual7W ``dataset_v7w_telling.json``: the Visual7W toolkit README (``images[]: {image_id, filename, split,
  qa_pairs[]: {qa_id, image_id, question, answer, multiple_choices[3], type}}``).
- VSR ``random/train.jsonl``: cambridgeltl/visual-spatial-reasoning ``data/`` README (``{image, image_link, caption,
  label, relation, subj, obj, ...}``); images in COCO 2017 train or val, as ``image_link`` says.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from PIL import Image

from tests.training.releases.release_fixtures import write_ai2d, write_refer

GRIT_CAPTION = "a dog chasing a red ball on the grass"


def _image(path: Path, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (30 + len(path.name) * 7 % 200, 90, 160)).save(path, format=fmt)


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _llava(root: Path) -> None:
    turns = [{"from": "human", "value": "What are the colors of the bus in the image?\n<image>"},
             {"from": "gpt", "value": "The bus in the image is white and red."},
             {"from": "human", "value": "What feature can be seen on the back of the bus?"},
             {"from": "gpt", "value": "The back of the bus features an advertisement."}]  # fmt: skip
    records = [{"id": "000000033471", "image": "000000033471.jpg", "conversations": turns},
               {"id": "000000052846", "image": "000000052846.jpg", "conversations": turns[:2]}]  # fmt: skip
    _json(root / "LLaVA-Instruct-150K" / "llava_instruct_150k.json", records)
    for record in records:
        _image(root / "coco" / "train2017" / record["image"])


def _karpathy(root: Path) -> None:
    def image(cocoid: int, split: str, folder: str) -> dict[str, Any]:
        return {"filepath": folder, "sentids": [cocoid * 10], "filename": f"COCO_{folder}_{cocoid:012d}.jpg",
                "imgid": cocoid, "split": split, "cocoid": cocoid,
                "sentences": [{"tokens": ["a", "man"], "raw": f"A man with a kite {cocoid}.", "imgid": cocoid,
                               "sentid": cocoid * 10}]}  # fmt: skip

    images = [image(391895, "restval", "val2014"), image(522418, "train", "train2014"),
              image(33471, "test", "val2014"), image(184613, "val", "val2014")]  # fmt: skip
    _json(root / "coco" / "dataset_coco.json", {"images": images, "dataset": "coco"})
    for entry in images:
        _image(root / "coco" / entry["filepath"] / entry["filename"])


def _vqav2(root: Path) -> None:
    questions = [
        {"image_id": 458752, "question": "What is this photo taken looking through?", "question_id": 458752000},
        {"image_id": 458752, "question": "What position is this man playing?", "question_id": 458752001},
    ]
    answers = ["net", "pitcher"]
    annotations = [{"question_type": "what", "multiple_choice_answer": a, "image_id": 458752, "answer_type": "other",
                    "question_id": q["question_id"],
                    "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k} for k in range(1, 11)]}
                   for q, a in zip(questions, answers, strict=True)]  # fmt: skip
    common = {"info": {"year": 2017}, "license": {"name": "CC BY 4.0"}, "data_subtype": "train2014",
              "data_type": "mscoco"}  # fmt: skip
    _json(root / "vqav2" / "v2_OpenEnded_mscoco_train2014_questions.json",
          {**common, "task_type": "Open-Ended", "questions": questions})  # fmt: skip
    _json(root / "vqav2" / "v2_mscoco_train2014_annotations.json", {**common, "annotations": annotations})
    _image(root / "coco" / "train2014" / "COCO_train2014_000000458752.jpg")


def _gqa(root: Path) -> None:
    record = {"semantic": [], "entailed": [], "equivalent": ["02930152"], "question": "Is the sky dark?",
              "imageId": "2354786", "isBalanced": True, "groups": {"global": None, "local": "06-sky_dark"},
              "answer": "yes", "semanticStr": "select: sky ->verify color: dark", "annotations": {},
              "types": {"structural": "verify", "semantic": "attr", "detailed": "verifyAttr"},
              "fullAnswer": "Yes, the sky is dark."}  # fmt: skip
    _json(root / "gqa" / "train_balanced_questions.json", {"02930152": record})
    _image(root / "gqa" / "images" / "2354786.jpg")


def _aokvqa(root: Path) -> None:
    record = {"split": "train", "image_id": 299207, "question_id": "22MexNkBPpdZGX6sxbxVBH",
              "question": "What is the man by the bags awaiting?", "choices": ["skateboarder", "train", "delivery",
              "cab"], "correct_choice_idx": 3, "direct_answers": ["ride"] * 10, "difficult_direct_answer": False,
              "rationales": ["A train would not be on the street."]}  # fmt: skip
    _json(root / "aokvqa" / "aokvqa_v1p0_train.json", [record])
    _image(root / "coco" / "train2017" / "000000299207.jpg")


def _docvqa(root: Path) -> None:
    record = {"questionId": 337, "question": "what is the date mentioned in this letter?",
              "question_types": ["handwritten", "form"], "image": "documents/xnbl0037_1.png", "docId": 279,
              "ucsf_document_id": "xnbl0037", "ucsf_document_page_no": "1", "answers": ["1/8/93"],
              "data_split": "train"}  # fmt: skip
    _json(
        root / "docvqa" / "train" / "train_v1.0.json",
        {"dataset_name": "docvqa", "dataset_split": "train", "dataset_version": "1.0", "data": [record]},
    )
    _image(root / "docvqa" / "train" / "documents" / "xnbl0037_1.png")


def _infographicvqa(root: Path) -> None:
    record = {"questionId": 65718, "question": "Which social platform has heavy female audience?",
              "image_local_name": "37313.jpeg", "image_url": "https://blogs.constantcontact.com/x.jpg",
              "ocr_output_file": "37313.json", "answers": ["pinterest"], "data_split": "train"}  # fmt: skip
    _json(
        root / "infographicvqa" / "infographicsVQA_train_v1.0.json",
        {"dataset_name": "infographicVQA", "dataset_version": "1.0", "dataset_split": "train", "data": [record]},
    )
    _image(root / "infographicvqa" / "infographicsvqa_images" / "37313.jpeg", "JPEG")


def _ocrvqa(root: Path) -> None:
    def book(url: str, split: int) -> dict[str, Any]:
        return {"imageURL": url, "questions": ["Who wrote this book?", "Is this a comedy book?"],
                "answers": ["Sandra Boynton", "No"], "title": "Moo, Baa, La La La!", "authorName": "Sandra Boynton",
                "genre": 4, "split": split}  # fmt: skip

    data = {"1001": book("http://ecx.images-amazon.com/images/I/51Y6QeQ7XwL.jpg", 1),
            "1002": book("http://ecx.images-amazon.com/images/I/41xfB2kdG0L.png", 1),
            "1003": book("http://ecx.images-amazon.com/images/I/51ZqjH1nLFL.jpg", 3)}  # fmt: skip
    _json(root / "ocrvqa" / "dataset.json", data)
    _image(root / "ocrvqa" / "images" / "1001.jpg")
    _image(root / "ocrvqa" / "images" / "1002.png")  # loadDataset.py keeps the URL's extension


def _textcaps(root: Path) -> None:
    record = {
        "image_id": "011e7e629fb9ae7b",
        "image_classes": ["Vehicle"],
        "flickr_original_url": "https://x",
        "flickr_300k_url": "https://y",
        "image_width": 1024,
        "image_height": 768,
        "set_name": "train",
        "image_name": "011e7e629fb9ae7b",
        "image_path": "train/011e7e629fb9ae7b.jpg",
        "caption_id": 1,
        "caption_str": "A white van with the word AMBULANCE on it.",
        "caption_tokens": ["a", "white"],
        "reference_strs": ["A white van with the word AMBULANCE on it."],
        "reference_tokens": [["a"]],
    }
    _json(
        root / "textcaps" / "TextCaps_0.1_train.json",
        {"dataset_type": "train", "dataset_name": "textcaps", "dataset_version": "0.1", "data": [record]},
    )
    _image(root / "textvqa" / "train_images" / "011e7e629fb9ae7b.jpg")


def grit_row(key: str, status: str = "success", chunks: list | None = None) -> dict[str, Any]:
    """One img2dataset metadata row of a GRIT sample (the card's example fields, saved columns included)."""
    chunks = chunks if chunks is not None else [[0, 5, 0.1, 0.2, 0.5, 0.9, 0.7], [14, 24, 0.6, 0.55, 0.8, 0.75, 0.6]]
    return {"key": key, "url": f"https://img.example/{key}.jpg", "caption": GRIT_CAPTION, "status": status,
            "error_message": None if status == "success" else "HTTP Error 404", "width": 12, "height": 10,
            "original_width": 640, "original_height": 480, "id": 1795296605919 + int(key),
            "noun_chunks": chunks, "ref_exps": [[0, 24, 0.1, 0.2, 0.8, 0.9, 0.65]],
            "clip_similarity_vitb32": 0.35, "clip_similarity_vitl14": 0.29}  # fmt: skip


def write_img2dataset_shard(folder: Path, shard: int, rows: list[dict[str, Any]], webdataset: bool) -> None:
    """One img2dataset shard: its metadata parquet and its images, as a folder or a webdataset tar."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / f"{shard:05d}.parquet")
    (folder / f"{shard:05d}_stats.json").write_text(json.dumps({"count": len(rows)}))
    done = [row for row in rows if row["status"] == "success"]
    if not webdataset:
        for row in done:
            _image(folder / f"{shard:05d}" / f"{row['key']}.jpg", "JPEG")
            (folder / f"{shard:05d}" / f"{row['key']}.txt").write_text(row["caption"])
        return
    with tarfile.open(folder / f"{shard:05d}.tar", "w") as tar:
        for row in done:
            buffer = io.BytesIO()
            Image.new("RGB", (12, 10), (200, 10, 10)).save(buffer, format="JPEG")
            for suffix, data in ((".jpg", buffer.getvalue()), (".json", json.dumps(row).encode()),
                                 (".txt", row["caption"].encode())):  # fmt: skip
                info = tarfile.TarInfo(f"{row['key']}{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _grit(root: Path) -> None:
    write_img2dataset_shard(root / "grit", 0, [grit_row("000000000"), grit_row("000000001", "failed_to_download")],
                            webdataset=False)  # fmt: skip
    write_img2dataset_shard(root / "grit", 1, [grit_row("000010000")], webdataset=True)


def _refer(root: Path) -> None:
    write_refer(root / "refer", protocol=0)  # the REFER pickles were written by Python 2's default protocol
    for image_id in (1, 2):
        _image(root / "coco" / "train2014" / f"COCO_train2014_{image_id:012d}.jpg")


def _visual_genome(root: Path) -> None:
    regions = [{"id": 1, "regions": [{"region_id": 1382, "width": 82, "height": 139, "image_id": 1,
                                      "phrase": "the clock is green in colour", "y": 57, "x": 421}]},
               {"id": 2, "regions": [{"region_id": 4091, "width": 40, "height": 30, "image_id": 2,
                                      "phrase": "a white sign", "y": 10, "x": 20}]}]  # fmt: skip
    image_data = [{"width": 800, "url": "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg", "height": 600,
                   "image_id": 1, "coco_id": None, "flickr_id": None},
                  {"width": 800, "url": "https://cs.stanford.edu/people/rak248/VG_100K/2.jpg", "height": 600,
                   "image_id": 2, "coco_id": None, "flickr_id": None}]  # fmt: skip
    _json(root / "visual_genome" / "region_descriptions.json", regions)
    _json(root / "visual_genome" / "image_data.json", image_data)
    _image(root / "visual_genome" / "VG_100K_2" / "1.jpg")
    _image(root / "visual_genome" / "VG_100K" / "2.jpg")


def _visual7w(root: Path) -> None:
    qa = {"qa_id": 986922, "image_id": 2407890, "question": "Who is under the umbrella?", "answer": "Two women.",
          "multiple_choices": ["A child.", "An old man.", "A husband and a wife."], "type": "who"}  # fmt: skip
    images = [{"image_id": 2407890, "filename": "v7w_2407890.jpg", "split": "train", "qa_pairs": [qa]},
              {"image_id": 2407891, "filename": "v7w_2407891.jpg", "split": "test", "qa_pairs": [qa]}]  # fmt: skip
    _json(root / "visual7w" / "dataset_v7w_telling.json", {"images": images, "dataset": "v7w"})
    _image(root / "visual7w" / "images" / "v7w_2407890.jpg")


def _vsr(root: Path) -> None:
    records = [
        {"image": "000000050403.jpg", "image_link": "http://images.cocodataset.org/train2017/000000050403.jpg",
         "caption": "The teddy bear is in front of the person.", "label": 1, "relation": "in front of",
         "subj": "teddy bear", "obj": "person", "annotator_id": 31},
        {"image": "000000143546.jpg", "image_link": "http://images.cocodataset.org/val2017/000000143546.jpg",
         "caption": "The cat is on the bed.", "label": 0, "relation": "on", "subj": "cat", "obj": "bed"},
    ]  # fmt: skip
    path = root / "vsr" / "random" / "train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    _image(root / "coco" / "train2017" / "000000050403.jpg")
    _image(root / "coco" / "val2017" / "000000143546.jpg")


def write_release_tree(root: Path) -> Path:
    """The 17 stage-2 sources under `root` (``VLM_DATA_ROOT``), each as released."""
    for writer in (_llava, _karpathy, _vqav2, _gqa, _aokvqa, _docvqa, _infographicvqa, _ocrvqa, _textcaps, _grit,
                   _refer, _visual_genome, _visual7w, _vsr):  # fmt: skip
        writer(root)
    write_ai2d(root)
    return root
