"""Each real-data adapter on a small hand-made file in its published format, malformed records rejected."""

import json

import pytest
from PIL import Image

from mmdistill.adapters import (
    img2dataset_captions,
    llava_conversations,
    llava_pretrain_captions,
    main,
    rlaif_v_pairs,
)
from mmdistill.conversation import from_llava_record
from mmdistill.io import DataError, read_jsonl


def image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "blue").save(path)


def turns(*values):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


def test_img2dataset_downloads_of_cc3m_sbu_laion(tmp_path):
    for key, meta, has_image in [
            ("000000000", {"caption": "a dog runs on the beach", "status": "success", "url": "http://x/1"}, True),
            ("000000001", {"caption": "", "status": "success"}, True),
            ("000000002", {"caption": "a cat", "status": "failed_to_download", "error_message": "404"}, False),
            ("000000003", {"caption": "a red bus", "status": "success"}, False)]:
        (tmp_path / "00000").mkdir(exist_ok=True)
        (tmp_path / "00000" / f"{key}.json").write_text(json.dumps({"key": key, **meta}))
        if has_image:
            image(tmp_path / "00000" / f"{key}.jpg")
    (tmp_path / "00000/000000004.json").write_text("{broken")
    records, rejects = img2dataset_captions(tmp_path, "cc3m")
    assert records == [{"id": "cc3m/000000000", "image": "00000/000000000.jpg", "caption": "a dog runs on the beach"}]
    assert rejects.counts == {"download status 'failed_to_download'": 1, "image file missing": 1,
                              "invalid JSON (Expecting property name enclosed in double quotes)": 1,
                              "missing or empty caption": 1}
    with pytest.raises(DataError, match="no img2dataset shards"):
        img2dataset_captions(tmp_path / "00000", "sbu")


@pytest.fixture
def llava_80k(tmp_path):
    image(tmp_path / "coco/000000033471.jpg")
    data = [
        {"id": "000000033471", "image": "000000033471.jpg",
         "conversations": turns("<image>\nWhat are the colors of the bus?", "The bus is white and red.",
                                "What feature can be seen on the back?", "An advertisement.")},
        {"id": "text1", "conversations": turns("Write a haiku about rain.", "Soft rain on the roof.")},
        {"id": "noimage", "image": "missing.jpg", "conversations": turns("<image>\nWhat?", "A dog.")},
        {"id": "twomarkers", "image": "000000033471.jpg",
         "conversations": turns("<image>\nA?", "B", "<image>\nC?", "D")},
        {"id": "stray", "conversations": turns("<image>\nWhat is this?", "A cat.")},
        {"id": "odd", "image": "000000033471.jpg", "conversations": turns("<image>\nWhat?")},
        {"id": "swapped", "conversations": list(reversed(turns("Q?", "A.")))},
        {"id": "empty", "conversations": turns("Q?", "  ")},
        "not a record",
    ]
    (tmp_path / "llava_instruct_80k.json").write_text(json.dumps(data))
    return tmp_path


def test_llava_80k_keeps_text_only_records_and_rejects_malformed_ones(llava_80k):
    records, rejects = llava_conversations(llava_80k / "llava_instruct_80k.json", llava_80k / "coco")
    assert [r["id"] for r in records] == ["000000033471", "text1"]
    assert from_llava_record(records[1]) == (["Write a haiku about rain."], ["Soft rain on the roof."])
    assert len(rejects) == 7
    reasons = [r["reason"] for r in rejects.rejects]
    assert "<image> marker in a record without an image" in reasons and "turn 1 is not from 'human'" in reasons
    assert any("has 2" in r for r in reasons) and "not a JSON object" in reasons


def test_llava_pretrain_captions(llava_80k):
    path = llava_80k / "blip_laion_cc_sbu_558k.json"
    path.write_text(json.dumps([
        {"id": "004539375", "image": "000000033471.jpg",
         "conversations": turns("Render a clear and concise summary of the photo.\n<image>", "a bus on a street")},
        {"id": "x", "image": "000000033471.jpg", "conversations": turns("<image>\nA?", "B", "C?", "D")}]))
    records, rejects = llava_pretrain_captions(path, llava_80k / "coco")
    assert records == [{"id": "004539375", "image": "000000033471.jpg", "caption": "a bus on a street"}]
    assert rejects.counts == {"not one image with one caption turn": 1}


def test_rlaif_v_pairs(tmp_path):
    image(tmp_path / "images/RLAIF-V-Dataset_0.png")
    row = {"ds_name": "OmniLMM-12B", "image_path": "RLAIF-V-Dataset_0.png", "question": "Who is this?",
           "chosen": "A man in a suit.", "rejected": "A woman holding a dog.", "origin_dataset": "VQAv2",
           "origin_split": "{}", "idx": "OmniLMM-12B_0"}
    lines = [row, {**row, "idx": "b", "rejected": row["chosen"]}, {**row, "idx": "c", "chosen": ""},
             {**row, "idx": "d", "image_path": "gone.png"}, row]
    path = tmp_path / "rlaif_v.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + "[1, 2]\n")
    pairs, rejects = rlaif_v_pairs(path, tmp_path / "images")
    assert pairs == [{"id": "OmniLMM-12B_0", "image": "RLAIF-V-Dataset_0.png", "question": "Who is this?",
                      "chosen": "A man in a suit.", "rejected": "A woman holding a dog.", "chosen_score": None,
                      "rejected_score": None, "source": "rlaif-v/OmniLMM-12B"}]
    assert sorted(rejects.counts) == sorted(["chosen and rejected are the same text", "missing or empty chosen",
                                             f"image 'gone.png' not found under {tmp_path / 'images'}",
                                             "duplicate idx 'OmniLMM-12B_0'", "not a JSON object"])
    assert rejects.rejects[-1]["source"] == f"{path}:6"
    absolute, _ = rlaif_v_pairs(path, tmp_path / "images", absolute_images=True)
    assert absolute[0]["image"] == str((tmp_path / "images/RLAIF-V-Dataset_0.png").resolve())


def test_the_command_line_writes_records_and_rejects(llava_80k, capsys):
    out = llava_80k / "seed.json"
    main(["llava-conversations", "--input", str(llava_80k / "llava_instruct_80k.json"),
          "--images", str(llava_80k / "coco"), "--out", str(out)])
    assert json.loads(capsys.readouterr().out)["rejected"] == 7
    assert len(json.loads(out.read_text())) == 2 and len(list(read_jsonl(f"{out}.rejects.jsonl"))) == 7
