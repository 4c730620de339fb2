"""Release-format fixtures written from the formats' own descriptions, shared by the release, eval and data tests.

- ``py2_pickle``: a pickle as Python 2 writes one, opcode by opcode (the opcode table of CPython's ``pickletools``,
  which documents every protocol): protocol 0 uses ``STRING`` (``S'...'\\n``), ``INT``, ``LIST``/``DICT`` with
  ``APPEND``/``SETITEM``; protocol 2 uses ``SHORT_BINSTRING``/``BINSTRING`` for Python 2 ``str``, ``BININT*``,
  ``EMPTY_LIST``/``EMPTY_DICT`` with ``APPENDS``/``SETITEMS`` and ``BINPUT`` memo entries. Python 3's own
  pickler cannot write these string opcodes, which is why the REFER pickles need care.
- ``write_refer``: a REFER data root (lichengunc/refer ``refer.py``: ``<root>/<dataset>/refs(<splitBy>).p`` +
  ``instances.json``, images under ``images/mscoco/images/train2014``) with refs of the documented shape.
- ``write_ai2d``: an unpacked ``ai2d-all.zip`` (Kembhavi et al., "A Diagram is Worth a Dozen Images", ECCV 2016; the
  release's README at allenai.org/data/diagrams): ``ai2d/images/<n>.png``, ``ai2d/questions/<n>.png.json``
  (``imageName`` and ``questions`` keyed by the question text, each ``{abcLabel, answerTexts, correctAnswer,
  questionId}``), ``ai2d/annotations/<n>.png.json`` (``text`` entries ``{id, rectangle, replacementText, value}``),
  and ``ai2d_test_ids.csv`` (one test image number per line) beside the folder.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from PIL import Image


class _Writer:
    def __init__(self, protocol: int) -> None:
        self.protocol, self.out, self.memo = protocol, bytearray(), 0

    def put(self) -> None:  # cPickle memoises every container it builds
        self.out += f"p{self.memo}\n".encode() if self.protocol == 0 else b"q" + bytes([self.memo % 256])
        self.memo += 1

    def write(self, obj: Any) -> None:
        if obj is None:
            self.out += b"N"
        elif isinstance(obj, bool):
            self.out += (b"I01\n" if obj else b"I00\n") if self.protocol == 0 else (b"\x88" if obj else b"\x89")
        elif isinstance(obj, int):
            self._int(obj)
        elif isinstance(obj, float):
            self.out += f"F{obj!r}\n".encode() if self.protocol == 0 else b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            self._str(obj.encode("utf-8"))
        elif isinstance(obj, (list, tuple)):
            self._list(list(obj))
        elif isinstance(obj, dict):
            self._dict(obj)
        else:
            raise TypeError(type(obj))

    def _int(self, value: int) -> None:
        if self.protocol == 0:
            self.out += f"I{value}\n".encode()
        elif 0 <= value < 256:
            self.out += b"K" + bytes([value])
        elif 0 <= value < 65536:
            self.out += b"M" + struct.pack("<H", value)
        else:
            self.out += b"J" + struct.pack("<i", value)

    def _str(self, data: bytes) -> None:  # a Python 2 str: bytes on the wire, no encoding recorded
        if self.protocol == 0:
            self.out += b"S" + repr(data)[1:].encode("ascii") + b"\n"
        elif len(data) < 256:
            self.out += b"U" + bytes([len(data)]) + data
        else:
            self.out += b"T" + struct.pack("<i", len(data)) + data
        self.put()

    def _list(self, items: list[Any]) -> None:
        self.out += b"(l" if self.protocol == 0 else b"]"
        self.put()
        if self.protocol == 0:
            for item in items:
                self.write(item)
                self.out += b"a"
        elif items:
            self.out += b"("
            for item in items:
                self.write(item)
            self.out += b"e"

    def _dict(self, mapping: dict[str, Any]) -> None:
        self.out += b"(d" if self.protocol == 0 else b"}"
        self.put()
        if self.protocol == 2 and mapping:
            self.out += b"("
        for key, value in mapping.items():
            self.write(key)
            self.write(value)
            if self.protocol == 0:
                self.out += b"s"
        if self.protocol == 2 and mapping:
            self.out += b"u"


def py2_pickle(obj: Any, protocol: int = 2) -> bytes:
    """`obj` pickled as Python 2's cPickle writes it (protocol 0 or 2; strings as Python 2 ``str``)."""
    writer = _Writer(protocol)
    if protocol == 2:
        writer.out += b"\x80\x02"
    writer.write(obj)
    return bytes(writer.out + b".")


def _ref(ref_id: int, ann_id: int, split: str, sentences: list[str], image_id: int = 1) -> dict[str, Any]:
    """One REFER ref, with the fields of the README's example (``sent_ids``, ``file_name`` with an ann suffix)."""
    sents = [{"tokens": text.split(), "raw": text, "sent_id": 10 * ref_id + i, "sent": text.lower()}
             for i, text in enumerate(sentences)]  # fmt: skip
    return {"sent_ids": [s["sent_id"] for s in sents], "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
            "ann_id": ann_id, "ref_id": ref_id, "image_id": image_id, "split": split, "sentences": sents,
            "category_id": 1}  # fmt: skip


def write_refer(root: Path, *, protocol: int = 2, with_images: bool = False) -> Path:
    """A REFER data root holding refcoco (unc, google), refcoco+ (unc) and refcocog (umd, google)."""
    instances = {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 640, "height": 480},
                   {"id": 2, "file_name": "COCO_train2014_000000000002.jpg", "width": 100, "height": 50}],
        "annotations": [{"id": 100, "image_id": 1, "bbox": [64.0, 48.0, 128.0, 96.0], "category_id": 1},
                        {"id": 101, "image_id": 1, "bbox": [0, 0, 640, 480], "category_id": 3},
                        {"id": 102, "image_id": 2, "bbox": [10, 10, 0, 20], "category_id": 3},
                        {"id": 103, "image_id": 2, "bbox": [90, 10, 30, 20], "category_id": 3}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }  # fmt: skip
    refs = {
        ("refcoco", "unc"): [_ref(0, 100, "testA", ["Man on left", "left guy."]), _ref(1, 101, "testB", ["red car"]),
                             _ref(2, 102, "testB", ["flat thing"], 2), _ref(3, 103, "testB", ["cut off"], 2),
                             _ref(4, 101, "train", ["a car"]), _ref(5, 100, "val", ["the man"])],
        ("refcoco", "google"): [_ref(6, 100, "train", ["man"]), _ref(7, 101, "val", ["car"])],
        ("refcoco+", "unc"): [_ref(0, 100, "testA", ["man wearing blue"]), _ref(1, 101, "testB", ["gray vehicle"]),
                              _ref(2, 101, "train", ["silver car"])],
        ("refcocog", "umd"): [_ref(0, 100, "test", ["A man standing on the left side."]), _ref(1, 101, "val", ["c"]),
                              _ref(2, 101, "train", ["A gray car parked by the road."])],
        ("refcocog", "google"): [_ref(0, 100, "val", ["man"])],
    }  # fmt: skip
    for (dataset, split_by), items in refs.items():
        folder = root / dataset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"refs({split_by}).p").write_bytes(py2_pickle(items, protocol))
        (folder / "instances.json").write_text(json.dumps(instances))
    if with_images:
        images = root / "images" / "mscoco" / "images" / "train2014"
        images.mkdir(parents=True, exist_ok=True)
        for image in instances["images"]:
            Image.new("RGB", (image["width"], image["height"]), (90, 120, 150)).save(images / image["file_name"])
    return root


AI2D_QUESTIONS = {
    "0": {"Which stage comes after the egg?": {"abcLabel": False, "answerTexts": ["adult", "larva", "pupa", "nymph"],
                                                "correctAnswer": 1, "questionId": "0.png-0"},
          "Which label shows the larva?": {"abcLabel": True, "answerTexts": ["A", "B", "C", "D"], "correctAnswer": 3,
                                           "questionId": "0.png-1"}},
    "1": {"What eats the grass?": {"abcLabel": False, "answerTexts": ["cow", "lion", "hawk", "snake"],
                                   "correctAnswer": 0, "questionId": "1.png-0"}},
    "2": {"What does the sun give?": {"abcLabel": False, "answerTexts": ["water", "energy", "soil", "air"],
                                      "correctAnswer": 1, "questionId": "2.png-0"}},
}  # fmt: skip
"""Image number -> its questions; images 0 and 2 are the test split of :func:`write_ai2d`."""
AI2D_TEST_IDS = ("0", "2")


def write_ai2d(root: Path, *, test_ids_inside: bool = False) -> Path:
    """An unpacked AI2D release under ``root/ai2d`` (returned), the test ids beside it (or inside it)."""
    folder = root / "ai2d"
    for sub in ("images", "questions", "annotations"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for number, questions in AI2D_QUESTIONS.items():
        Image.new("RGB", (48, 32), (240, 240, 240)).save(folder / "images" / f"{number}.png")
        (folder / "questions" / f"{number}.png.json").write_text(
            json.dumps({"questions": questions, "imageName": f"{number}.png"})
        )
    text = {"T2": {"id": "T2", "rectangle": [[30, 4], [44, 12]], "replacementText": "B", "value": "larva"},
            "T1": {"id": "T1", "rectangle": [[2, 4], [20, 12]], "replacementText": "A", "value": "egg"}}  # fmt: skip
    (folder / "annotations" / "0.png.json").write_text(json.dumps({"text": text, "blobs": {}, "arrows": {}}))
    (folder / "annotations" / "2.png.json").write_text(json.dumps({"text": {}, "blobs": {}}))
    ids = (folder if test_ids_inside else root) / "ai2d_test_ids.csv"
    ids.write_text("".join(f"{n}\n" for n in AI2D_TEST_IDS))
    return folder
