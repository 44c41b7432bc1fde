"""Downstream fine-tuning data (CoMD §4.1): a benchmark's train split as conversations."""

import pytest
from conftest import sample_items, write_benchmark

from mmdistill.conversation import IMAGE_PLACEHOLDER
from mmdistill.evaluation.finetune import finetune_records, target_text
from mmdistill.evaluation.scoring import parse_option
from mmdistill.evaluation.tasks.utils import doc_to_text
from mmdistill.io import DataError


def test_multiple_choice_items_teach_the_gold_option_text(tmp_path):
    items = sample_items("mc", 4)
    path = write_benchmark(tmp_path, "mc", items)
    records = finetune_records("mc", path)
    assert [r["id"] for r in records] == [item["id"] for item in items]
    for record, item in zip(records, items):
        human, gpt = record["conversations"]
        assert human == {"from": "human", "value": f"{IMAGE_PLACEHOLDER}\n{doc_to_text(item)}"}
        assert parse_option(gpt["value"], item["options"]) == item["answer"]
        assert record["image"] == item["image"]


@pytest.mark.parametrize("benchmark", ["pope", "open"])
def test_other_kinds_teach_the_answer_as_written(benchmark):
    item = sample_items(benchmark, 1)[0]
    assert target_text("yes_no" if benchmark == "pope" else "open_ended", item) == str(item["answer"]).strip()


def test_bad_train_items_are_rejected_with_file_and_key(tmp_path):
    item = sample_items("mc", 1)[0]
    path = write_benchmark(tmp_path, "mc", [{k: v for k, v in item.items() if k != "options"}])
    with pytest.raises(DataError, match=r"mc_test\.jsonl: item 1"):
        finetune_records("mc", path)


def test_an_option_text_that_reads_as_another_letter_is_taught_as_its_letter():
    item = {"options": ["a solid", "a liquid", "a gas"], "answer": "c"}
    assert target_text("multiple_choice", item) == "c"
    assert parse_option(target_text("multiple_choice", item), item["options"]) == "c"
    assert target_text("multiple_choice", {"options": ["red", "blue"], "answer": "B"}) == "blue"
