"""Readers: one small annotation file per dataset, written here in that dataset's real format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.training.releases.release_fixtures import write_ai2d, write_refer
from training.data.readers import (
    READERS,
    Conversation,
    get_reader,
    read_ai2d,
    read_aokvqa,
    read_coco_captions,
    read_docvqa,
    read_gqa,
    read_grit,
    read_infographicvqa,
    read_llava_conversations,
    read_llava_pretrain,
    read_ocrvqa,
    read_refcoco,
    read_textcaps,
    read_visual7w,
    read_visual_genome,
    read_vqav2,
    read_vsr,
)
from training.releases.plain_pickle import UnsafePickleError
from training.templates import (
    CAPTION_PROMPT,
)


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def vqa(question: str, answer: str) -> tuple[str, str]:
    return f"Answer the question using a single word or phrase.\nQuestion: {question}\nAnswer:", answer


# ----------------------------------------------------------------------------------------------------------------
# Conversations
# ----------------------------------------------------------------------------------------------------------------
def test_conversation_messages_carry_the_image_in_the_first_user_turn() -> None:
    messages = Conversation("a.jpg", [("q1", "a1"), ("q2", "a2")], "test").to_messages()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == [{"type": "image"}, {"type": "text", "text": "q1"}]
    assert messages[2]["content"] == [{"type": "text", "text": "q2"}]
    assert messages[3]["content"] == [{"type": "text", "text": "a2"}]
    with pytest.raises(ValueError, match="at least one turn"):
        Conversation("a.jpg", [], "test")


# ----------------------------------------------------------------------------------------------------------------
# LLaVA-style
# ----------------------------------------------------------------------------------------------------------------
LLAVA_PRETRAIN = [
    {
        "id": "004539375",
        "image": "00453/004539375.jpg",
        "conversations": [
            {"from": "human", "value": "Render a clear and concise summary of the photo.\n<image>"},
            {"from": "gpt", "value": "select luxury furniture 3 - inch gel memory foam mattress topper"},
        ],
    }
]
LLAVA_INSTRUCT = [
    {
        "id": "000000033471",
        "image": "000000033471.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat are the colors of the bus in the image?"},
            {"from": "gpt", "value": "The bus in the image is white and red."},
            {"from": "human", "value": "What feature can be seen on the back of the bus?"},
            {"from": "gpt", "value": "The back of the bus features an advertisement."},
        ],
    }
]


def test_llava_pretrain(tmp_path: Path) -> None:
    path = write_json(tmp_path / "blip_laion_cc_sbu_558k.json", LLAVA_PRETRAIN)
    caption = "select luxury furniture 3 - inch gel memory foam mattress topper"
    assert read_llava_pretrain(path) == [
        Conversation(
            "00453/004539375.jpg", [("Render a clear and concise summary of the photo.", caption)], "llava_pretrain"
        )
    ]
    assert read_llava_pretrain(path, use_caption_prompt=True)[0].turns == [(CAPTION_PROMPT, caption)]


def test_llava_instruct_json_and_jsonl(tmp_path: Path) -> None:
    expected = [
        Conversation(
            "000000033471.jpg",
            [
                ("What are the colors of the bus in the image?", "The bus in the image is white and red."),
                ("What feature can be seen on the back of the bus?", "The back of the bus features an advertisement."),
            ],
            "llava_instruct",
        )
    ]
    assert read_llava_conversations(write_json(tmp_path / "llava_instruct_150k.json", LLAVA_INSTRUCT)) == expected
    assert read_llava_conversations(write_jsonl(tmp_path / "llava.jsonl", LLAVA_INSTRUCT)) == expected


def test_llava_rejects_broken_alternation(tmp_path: Path) -> None:
    record = json.loads(json.dumps(LLAVA_INSTRUCT[0]))
    record["conversations"][1]["from"] = "human"
    path = write_json(tmp_path / "bad.json", [LLAVA_PRETRAIN[0], record])
    with pytest.raises(ValueError, match=r"bad\.json.*record 1 conversations\[1\].*'from'='human'"):
        read_llava_conversations(path)
    record["conversations"] = record["conversations"][:3]
    with pytest.raises(ValueError, match=r"record 1 field 'conversations'.*even"):
        read_llava_conversations(write_json(path, [LLAVA_PRETRAIN[0], record]))


# ----------------------------------------------------------------------------------------------------------------
# Captioning
# ----------------------------------------------------------------------------------------------------------------
def test_coco_karpathy(tmp_path: Path) -> None:
    def image(split: str, cocoid: int, captions: list[str]) -> dict[str, Any]:
        sentences = [
            {"tokens": c.lower().split(), "raw": c, "imgid": cocoid, "sentid": i} for i, c in enumerate(captions)
        ]
        name = f"COCO_val2014_{cocoid:012d}.jpg"
        return {"filepath": "val2014", "filename": name, "split": split, "sentences": sentences, "cocoid": cocoid}

    data = {
        "images": [
            image("test", 1, ["A man on a moped. "]),
            image("restval", 2, ["A dog.", "A brown dog running. "]),
            image("train", 3, ["Two cats."]),
        ],
        "dataset": "coco",
    }
    conversations = read_coco_captions(write_json(tmp_path / "dataset_coco.json", data))
    assert [(c.image_path, c.turns) for c in conversations] == [
        ("val2014/COCO_val2014_000000000002.jpg", [(CAPTION_PROMPT, "A dog.")]),
        ("val2014/COCO_val2014_000000000002.jpg", [(CAPTION_PROMPT, "A brown dog running.")]),
        ("val2014/COCO_val2014_000000000003.jpg", [(CAPTION_PROMPT, "Two cats.")]),
    ]
    assert {c.source for c in conversations} == {"coco_captions"}


def test_textcaps(tmp_path: Path) -> None:
    data = {
        "dataset_type": "train",
        "dataset_name": "textcaps",
        "data": [
            {
                "image_id": "011e7e629fb9ae7b",
                "image_width": 1024,
                "caption_str": "A sign that says STOP.",
                "set_name": "train",
            }
        ],
    }
    conversations = read_textcaps(write_json(tmp_path / "TextCaps_0.1_train.json", data))
    assert conversations == [
        Conversation("011e7e629fb9ae7b.jpg", [(CAPTION_PROMPT, "A sign that says STOP.")], "textcaps")
    ]


# ----------------------------------------------------------------------------------------------------------------
# Short-answer VQA
# ----------------------------------------------------------------------------------------------------------------
def write_vqav2(tmp_path: Path, n_first: int) -> tuple[Path, Path]:
    image_ids = [458752] * n_first + [262146]
    questions = [{"image_id": i, "question": f"q{n}?", "question_id": 1000 + n} for n, i in enumerate(image_ids)]
    annotations = [
        {
            "question_id": 1000 + n,
            "image_id": i,
            "question_type": "what",
            "answer_type": "other",
            "answers": [{"answer": "x", "answer_confidence": "yes", "answer_id": 1}],
            "multiple_choice_answer": f"a{n}",
        }
        for n, i in enumerate(image_ids)
    ]
    q_path = write_json(
        tmp_path / "v2_OpenEnded_mscoco_train2014_questions.json",
        {
            "info": {},
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "data_subtype": "train2014",
            "questions": questions,
        },
    )
    a_path = write_json(tmp_path / "v2_mscoco_train2014_annotations.json", {"annotations": annotations})
    return q_path, a_path


def test_vqav2_packs_up_to_20_questions_per_image(tmp_path: Path) -> None:
    questions, annotations = write_vqav2(tmp_path, n_first=25)
    conversations = read_vqav2(questions, annotations)
    assert [(c.image_path, len(c.turns)) for c in conversations] == [
        ("COCO_train2014_000000458752.jpg", 20),
        ("COCO_train2014_000000458752.jpg", 5),
        ("COCO_train2014_000000262146.jpg", 1),
    ]
    assert conversations[0].turns[0] == vqa("q0?", "a0")
    assert conversations[1].turns[-1] == vqa("q24?", "a24")
    assert [len(c.turns) for c in read_vqav2(questions, annotations, max_turns_per_image=10)] == [10, 10, 5, 1]
    with pytest.raises(ValueError, match="max_turns_per_image"):
        read_vqav2(questions, annotations, max_turns_per_image=0)


def test_vqav2_question_without_annotation(tmp_path: Path) -> None:
    questions, annotations = write_vqav2(tmp_path, n_first=2)
    write_json(annotations, {"annotations": []})
    with pytest.raises(ValueError, match=r"questions\.json.*record 0 field 'question_id'=1000 has no annotation"):
        read_vqav2(questions, annotations)


def test_gqa(tmp_path: Path) -> None:
    data = {
        f"{n:08d}": {"imageId": "n161313" if n < 22 else "2354786", "question": f"Is it q{n}?", "answer": "yes",
                     "fullAnswer": "Yes, it is.", "types": {}}
        for n in range(23)
    }  # fmt: skip
    conversations = read_gqa(write_json(tmp_path / "train_balanced_questions.json", data))
    assert [(c.image_path, len(c.turns)) for c in conversations] == [
        ("n161313.jpg", 20),
        ("n161313.jpg", 2),
        ("2354786.jpg", 1),
    ]
    assert conversations[2].turns == [vqa("Is it q22?", "yes")]


def test_docvqa_and_infographicvqa(tmp_path: Path) -> None:
    doc = {
        "dataset_name": "docvqa",
        "dataset_split": "train",
        "data": [
            {"questionId": 1, "question": "What is the date?", "image": "documents/ffbf0023_4.png",
             "docId": 4, "answers": ["1/8/93", "01/08/93"]},
        ],
    }  # fmt: skip
    info = {"data": [{"questionId": 2, "question": "How many?", "image_local_name": "37313.jpeg", "answers": ["9"]}]}
    assert read_docvqa(write_json(tmp_path / "train_v1.0.json", doc)) == [
        Conversation("documents/ffbf0023_4.png", [vqa("What is the date?", "1/8/93")], "docvqa")
    ]
    assert read_infographicvqa(write_json(tmp_path / "infographicVQA_train_v1.0.json", info)) == [
        Conversation("37313.jpeg", [vqa("How many?", "9")], "infographicvqa")
    ]
    doc["data"][0]["answers"] = []
    with pytest.raises(ValueError, match="record 0 field 'answers' should be a non-empty list"):
        read_docvqa(write_json(tmp_path / "train_v1.0.json", doc))


def test_ocrvqa(tmp_path: Path) -> None:
    def book(split: int, n: int) -> dict[str, Any]:
        questions = [f"Who wrote this book {k}?" for k in range(n)]
        answers = [f"Author {k}" for k in range(n)]
        return {"imageURL": "http://x/1.jpg", "questions": questions, "answers": answers, "title": "T", "split": split}

    path = write_json(tmp_path / "dataset.json", {"1234": book(1, 3), "5678": book(3, 1)})
    conversations = read_ocrvqa(path)
    assert [c.image_path for c in conversations] == ["1234.jpg"] * 3
    assert conversations[1].turns == [vqa("Who wrote this book 1?", "Author 1")]
    packed = read_ocrvqa(path, splits=None, max_turns_per_image=5)
    assert [(c.image_path, len(c.turns)) for c in packed] == [("1234.jpg", 3), ("5678.jpg", 1)]


# ----------------------------------------------------------------------------------------------------------------
# Multiple choice and VSR
# ----------------------------------------------------------------------------------------------------------------
def test_aokvqa(tmp_path: Path) -> None:
    record = {
        "split": "train",
        "image_id": 299207,
        "question_id": "22MexNkBPpdZGX6sxbxVBH",
        "question": "What is the man by the bags awaiting?",
        "choices": ["skateboarder", "train", "delivery", "cab"],
        "correct_choice_idx": 3,
        "direct_answers": ["ride"] * 10,
        "rationales": ["A train would not be on the street."],
    }
    [conversation] = read_aokvqa(write_json(tmp_path / "aokvqa_v1p0_train.json", [record]))
    assert conversation.image_path == "000000299207.jpg"
    assert conversation.turns == [
        (
            "Answer with the option's letter from the given choices directly.\n"
            "Question: What is the man by the bags awaiting?\nA: skateboarder\nB: train\nC: delivery\nD: cab\nAnswer:",
            "D",
        )
    ]
    record["correct_choice_idx"] = 4
    with pytest.raises(ValueError, match=r"aokvqa_v1p0_train\.json.*record 0.*answer_index=4"):
        read_aokvqa(write_json(tmp_path / "aokvqa_v1p0_train.json", [record]))


def test_ai2d_reads_the_release_without_its_test_images(tmp_path: Path) -> None:
    folder = write_ai2d(tmp_path)  # test ids 0 and 2 in ai2d_test_ids.csv beside the folder
    conversations = read_ai2d(folder)
    assert [c.image_path for c in conversations] == ["1.png"]
    assert conversations[0].turns[0][0].endswith("Question: What eats the grass?\nA: cow\nB: lion\nC: hawk\nD: snake"
                                                 "\nAnswer:")  # fmt: skip
    assert conversations[0].turns[0][1] == "A"
    assert conversations.notes == ["3 test questions (ai2d_test_ids.csv) left out"]
    assert [c.image_path for c in read_ai2d(folder / "questions")] == ["1.png"]  # the questions/ folder works too
    assert len(read_ai2d(folder, split="all")) == 4
    (tmp_path / "ai2d_test_ids.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"ai2d_test_ids\.csv not found: AI2D's test ids"):
        read_ai2d(folder)  # never silently trains on the test split
    with pytest.raises(ValueError, match=r"is a file; ai2d reads the release folder"):
        read_ai2d(folder / "questions" / "0.png.json")


def test_visual7w_telling(tmp_path: Path) -> None:
    qa_pairs = [
        {"qa_id": 100 + n, "image_id": 2512, "question": f"What is {n}?", "answer": f"right {n}",
         "multiple_choices": [f"wrong {n}a", f"wrong {n}b", f"wrong {n}c"], "type": "what"}
        for n in range(12)
    ]  # fmt: skip
    data = {
        "images": [
            {"image_id": 2512, "filename": "v7w_2512.jpg", "split": "train", "qa_pairs": qa_pairs},
            {"image_id": 7, "filename": "v7w_7.jpg", "split": "test", "qa_pairs": qa_pairs[:1]},
        ]
    }
    path = write_json(tmp_path / "dataset_v7w_telling.json", data)
    conversations = read_visual7w(path)
    assert len(conversations) == 12 and {c.image_path for c in conversations} == {"v7w_2512.jpg"}
    letters = []
    for n, conversation in enumerate(conversations):
        [(prompt, letter)] = conversation.turns
        assert f"\n{letter}: right {n}\n" in prompt
        assert sum(f"wrong {n}" in line for line in prompt.split("\n")) == 3
        letters.append(letter)
    assert len(set(letters)) > 1  # options are shuffled, the answer is not always "D"
    assert read_visual7w(path) == conversations  # deterministic
    assert read_visual7w(path, seed=1) != conversations


def test_vsr(tmp_path: Path) -> None:
    records = [
        {"image": "000000050403.jpg", "caption": "The teddy bear is in front of the person.", "label": 1,
         "relation": "in front of", "subj": "teddy bear", "obj": "person"},
        {"image": "000000050403.jpg", "caption": "The person is on the teddy bear.", "label": 0},
    ]  # fmt: skip
    conversations = read_vsr(write_jsonl(tmp_path / "train.jsonl", records))
    assert [c.turns[0] for c in conversations] == [
        ("Determine if the image matches the description:\nThe teddy bear is in front of the person.", "True"),
        ("Determine if the image matches the description:\nThe person is on the teddy bear.", "False"),
    ]
    records[1]["label"] = "maybe"
    with pytest.raises(ValueError, match=r"train\.jsonl.*record 1 field 'label' should be 0 or 1"):
        read_vsr(write_jsonl(tmp_path / "train.jsonl", records))


# ----------------------------------------------------------------------------------------------------------------
# Grounding and region captioning
# ----------------------------------------------------------------------------------------------------------------
def grit_record(key: str) -> dict[str, Any]:
    caption = "a dog chasing a red ball"
    return {
        "key": key,
        "url": f"http://x/{key}.jpg",
        "caption": caption,
        "width": 640,
        "height": 480,
        "noun_chunks": [[0, 5, 0.1234, 0.2, 0.5, 0.9, 0.7], [14, 24, 0.6, 0.55, 0.8, 0.75, 0.6]],
        "ref_exps": [],
    }


def test_grit(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "grit.jsonl", [grit_record(f"{n:09d}") for n in range(50)])
    conversations = read_grit(path)
    assert len(conversations) == 50
    assert conversations[0] == Conversation(
        "000000000.jpg",
        [
            ("Locate the region that is described by:\na dog.", "[0.12,0.20,0.50,0.90]"),
            ("Locate the region that is described by:\na red ball.", "[0.60,0.55,0.80,0.75]"),
        ],
        "grit",
    )
    sample = read_grit(path, max_records=7, seed=3)
    assert len(sample) == 7 and len({c.image_path for c in sample}) == 7
    assert sample == read_grit(path, max_records=7, seed=3)
    assert sample != read_grit(path, max_records=7, seed=4)
    assert [c.image_path for c in sample] == sorted(c.image_path for c in sample)  # file order kept
    assert [len(c.turns) for c in read_grit(path, max_records=1, max_turns_per_image=1)] == [1, 1]


@pytest.mark.parametrize("protocol", [0, 2])
def test_refcoco_from_the_refer_release(tmp_path: Path, protocol: int) -> None:
    root = write_refer(tmp_path, protocol=protocol)
    conversations = read_refcoco(root / "refcoco" / "refs(unc).p")  # train: ref 4, "a car", ann 101 = whole image
    box = "[0.00,0.00,1.00,1.00]"
    assert [c.turns for c in conversations] == [
        [("Locate the region that is described by:\na car.", box)],
        [(f"Provide a short description of the region:\n{box}", "a car")],
    ]
    assert {c.image_path for c in conversations} == {"COCO_train2014_000000000001.jpg"}
    # the dataset folder or the REFER root name the paper's splitBy (unc; umd for RefCOCOg)
    assert read_refcoco(root / "refcoco") == read_refcoco(root) == conversations
    assert get_reader("refcocog")(root)[0].turns[0][0].endswith("a gray car parked by the road.")
    testb = read_refcoco(root / "refcoco" / "refs(unc).p", splits=["testB"], tasks=["grounding"])
    assert [c.turns[0][0].split("\n")[1] for c in testb] == ["red car."]
    assert testb.skipped == {"degenerate box (zero or negative width or height)": 1, "box outside the image": 1}
    [conversation] = read_refcoco(root, splits=["testA"], tasks=["grounding"], max_turns_per_image=5)
    assert [answer for _, answer in conversation.turns] == [
        "[0.10,0.10,0.30,0.30]"
    ] * 2  # [64, 48, 128, 96] xywh in 640 x 480
    with pytest.raises(ValueError, match="tasks must be"):
        read_refcoco(root, tasks=["captioning"])


def test_refcoco_wrong_files_and_splits_say_so(tmp_path: Path) -> None:
    root = write_refer(tmp_path)
    with pytest.raises(ValueError, match=r"is JSON; refcoco reads REFER's release: refs\(<splitBy>\)\.p"):
        read_refcoco(root / "refcoco" / "instances.json")
    with pytest.raises(ValueError, match=r"has no ref of the split\(s\) \['trainval'\]; it has: \['testA', 'testB', "
                                         r"'train', 'val'\]"):  # fmt: skip
        read_refcoco(root / "refcoco" / "refs(unc).p", splits=["trainval"])
    marker = tmp_path / "ran"
    (root / "refcoco" / "refs(unc).p").write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(UnsafePickleError, match=r"refs\(unc\)\.p: the pickle asks for os\.system"):
        read_refcoco(root / "refcoco" / "refs(unc).p")
    assert not marker.exists()


def test_visual_genome(tmp_path: Path) -> None:
    regions = [
        {"id": 1, "regions": [
            {"region_id": n, "image_id": 1, "x": 80, "y": 60, "width": 160, "height": 120, "phrase": f"thing {n}"}
            for n in range(12)
        ]},
    ]  # fmt: skip
    image_data = [
        {"image_id": 1, "width": 800, "height": 600, "url": "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg"}
    ]
    conversations = read_visual_genome(
        write_json(tmp_path / "region_descriptions.json", regions),
        write_json(tmp_path / "image_data.json", image_data),
    )
    assert [(c.image_path, len(c.turns)) for c in conversations] == [("VG_100K_2/1.jpg", n) for n in (10, 2, 10, 2)]
    assert conversations[0].turns[3] == (
        "Provide a short description of the region:\n[0.10,0.10,0.30,0.30]",
        "thing 3",
    )
    assert conversations[2].turns[0] == ("Locate the region that is described by:\nthing 0.", "[0.10,0.10,0.30,0.30]")


# ----------------------------------------------------------------------------------------------------------------
# Registry and errors
# ----------------------------------------------------------------------------------------------------------------
def test_registry() -> None:
    expected = {
        "llava_pretrain", "llava_instruct", "coco_captions", "vqav2", "gqa", "aokvqa", "ai2d", "docvqa",
        "infographicvqa", "ocrvqa", "textcaps", "grit", "refcoco", "refcoco+", "refcocog", "visual_genome",
        "visual7w", "vsr",
    }  # fmt: skip
    assert set(READERS) == expected
    assert get_reader("vqav2") is read_vqav2
    with pytest.raises(ValueError, match=r"Unknown dataset reader 'cocoo'; valid names: .*coco_captions.*vsr"):
        get_reader("cocoo")


@pytest.mark.parametrize("name", sorted(READERS))
def test_missing_annotation_file(tmp_path: Path, name: str) -> None:
    missing = tmp_path / ("nowhere.p" if name.startswith("refcoco") else "nowhere.json")
    arguments = [missing, missing] if name in ("vqav2", "visual_genome") else [missing]
    with pytest.raises(FileNotFoundError, match=r"nowhere\.(json|p)"):
        get_reader(name)(*arguments)


@pytest.mark.parametrize(
    ("reader", "file_name", "records", "where", "field"),
    [
        (read_llava_conversations, "llava.json", [LLAVA_INSTRUCT[0], {"image": "a.jpg"}], "1", "conversations"),
        (read_aokvqa, "aokvqa.json", [{"image_id": 1, "choices": ["a", "b"], "correct_choice_idx": 0}], "0",
         "question"),
        (read_vsr, "vsr.jsonl", [{"image": "a.jpg", "label": 1}], "0", "caption"),
        (read_textcaps, "textcaps.json", {"data": [{"image_id": "x", "caption_str": "c"}, {"image_id": "y"}]}, "1",
         "caption_str"),
        (read_gqa, "gqa.json", {"q1": {"imageId": "n1", "question": "q?"}}, "'q1'", "answer"),
        (read_grit, "grit.jsonl", [grit_record("1"), {"key": "2", "caption": "c"}], "1", "noun_chunks"),
        (read_coco_captions, "coco.json", {"images": [{"split": "train", "sentences": []}]}, "0", "filename"),
    ],
)  # fmt: skip
def test_missing_field_names_file_record_and_field(
    tmp_path: Path, reader: Any, file_name: str, records: Any, where: str, field: str
) -> None:
    path = tmp_path / file_name
    write_jsonl(path, records) if file_name.endswith(".jsonl") else write_json(path, records)
    with pytest.raises(ValueError, match=rf"{file_name}.*record {where} has no field '{field}'"):
        reader(path)


def test_missing_top_level_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dataset_coco\.json.*top-level field 'images'"):
        read_coco_captions(write_json(tmp_path / "dataset_coco.json", {"dataset": "coco"}))
