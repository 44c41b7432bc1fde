"""The image preflight: every image decoded once before training; bad ones to the rejects, text-only records
pass (they train text-only)."""

import json

import pytest
from PIL import Image

from mmdistill.images import preflight
from mmdistill.io import DataError


def _record(index, image):
    record = {"id": f"r{index}", "conversations": [{"from": "human", "value": "<image>\nwhat color is it ?"},
                                                   {"from": "gpt", "value": "red"}]}
    return {**record, "image": image} if image else record


@pytest.fixture
def image_root(tmp_path):
    Image.new("RGB", (64, 64), "red").save(tmp_path / "good.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "good.png").read_bytes()[:60])
    (tmp_path / "not_an_image.png").write_text("hello")
    return tmp_path


def test_bad_images_go_to_the_rejects_with_file_and_record_and_text_only_records_pass(image_root):
    records = [_record(0, "good.png"), _record(1, "truncated.png"), _record(2, "missing.png"), _record(3, None),
               _record(4, "not_an_image.png"), *(_record(i, "good.png") for i in range(5, 20))]
    kept, rejects = preflight(records, image_root, "data.json", max_reject_rate=0.25)
    assert [r["id"] for r in kept] == ["r0", "r3", *(f"r{i}" for i in range(5, 20))]
    by_source = {r["source"]: r["reason"] for r in rejects.rejects}
    assert by_source["data.json: record 'r1'"].startswith(f"image unreadable: {image_root / 'truncated.png'}")
    assert by_source["data.json: record 'r2'"] == f"image not found: {image_root / 'missing.png'}"
    assert by_source["data.json: record 'r4'"].startswith("image unreadable") and len(rejects) == 3
    with pytest.raises(DataError, match=r"data.json: 3 of 20 records rejected \(15\.0%\), more than `max_reject_rate` "
                                        r"10\.0% .*first: data\.json: record 'r1': image unreadable"):
        preflight(records, image_root, "data.json", max_reject_rate=0.1)


def test_a_truncated_image_is_caught_even_when_lmms_eval_lets_pil_load_truncated_files(image_root):
    from PIL import ImageFile

    import lmms_eval.api.task  # noqa: F401 (sets ImageFile.LOAD_TRUNCATED_IMAGES = True on import)

    assert ImageFile.LOAD_TRUNCATED_IMAGES
    kept, rejects = preflight([_record(0, "truncated.png"), _record(1, "good.png")], image_root, "d", 0.5)
    assert [r["id"] for r in kept] == ["r1"] and rejects.rejects[0]["reason"].startswith("image unreadable")
    assert ImageFile.LOAD_TRUNCATED_IMAGES, "the setting is restored"


def test_training_reports_its_rejects_and_stops_past_the_limit(tiny_checkpoint, benchmark_files, tmp_path):
    from mmdistill.stages import train_llava_stage

    root = benchmark_files["mc"].parent
    (root / "images" / "truncated.png").write_bytes((root / "images" / "0.png").read_bytes()[:60])
    records = [_record(0, "images/truncated.png"), _record(1, "images/gone.png"),
               *(_record(i, "images/0.png") for i in range(2, 8))]
    data = tmp_path / "data.json"
    data.write_text(json.dumps(records))
    arguments = dict(data_path=data, data_format="conversations", image_root=root, trainable=["projector"],
                     train_config={"learning_rate": 1e-3, "epochs": 1, "batch_size": 4}, seed=0,
                     init_checkpoint=tiny_checkpoint)
    summary = train_llava_stage(tmp_path / "out", max_reject_rate=0.25, **arguments)
    assert summary["examples"] == 6 and summary["rejects"]["total"] == 2
    assert summary["rejects"]["by_reason"][f"image not found: {root / 'images/gone.png'}"] == 1
    with pytest.raises(DataError, match=r"data\.json: 2 of 8 records rejected"):  # the default: none may be
        train_llava_stage(tmp_path / "out2", **arguments)
    assert not (tmp_path / "out2").exists()
