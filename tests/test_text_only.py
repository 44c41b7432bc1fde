"""Text-only records and items: trained on beside image records, scored beside image items (ScienceQA has
both), and the open-ended answer length taken from the caller (config `evaluation.open_ended_max_new_tokens`)."""

import pytest
import torch
from conftest import sample_items, write_benchmark

from mmdistill.conversation import IGNORE_INDEX
from mmdistill.evaluation import evaluate
from mmdistill.evaluation.model import answer_loglikelihoods
from mmdistill.generation import GenerationRequest, load_backend
from mmdistill.models.llava import load_llava, num_image_tokens
from mmdistill.training import ConversationCollator, ConversationDataset


def record(index, image):
    return {"id": f"r{index}", **({"image": image} if image else {}), "conversations": [
        {"from": "human", "value": ("<image>\n" if image else "") + "what color is the circle ?"},
        {"from": "gpt", "value": "red"}]}


def test_a_batch_mixing_text_only_and_image_records_trains(tiny_checkpoint, benchmark_files):
    model, processor = load_llava(tiny_checkpoint)
    tokens = num_image_tokens(model.config)
    records = [record(0, "images/0.png"), record(1, None), {**record(2, None), "image": None}]
    dataset = ConversationDataset(records, benchmark_files["mc"].parent, processor, tokens)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert [dataset[i]["input_ids"].count(image_id) for i in range(3)] == [tokens, 0, 0]
    assert ["pixel_values" in dataset[i] for i in range(3)] == [True, False, False]
    batch = ConversationCollator(processor.tokenizer.pad_token_id)([dataset[i] for i in range(3)])
    assert batch["pixel_values"].shape[0] == 1
    assert torch.isfinite(model(**batch).loss)
    text_only = ConversationCollator(processor.tokenizer.pad_token_id)([dataset[1], dataset[2]])
    assert "pixel_values" not in text_only and torch.isfinite(model(**text_only).loss)
    supervised = [token for token, label in zip(dataset[1]["input_ids"], dataset[1]["labels"]) if label != IGNORE_INDEX]
    tokenizer = processor.tokenizer
    assert supervised == tokenizer.encode("red", add_special_tokens=False) + [tokenizer.eos_token_id]


def test_text_only_prompts_generate_and_score_beside_image_prompts(tiny_checkpoint, benchmark_files):
    backend = load_backend("hf", tiny_checkpoint, batch_size=4, seed=0, device="cpu")
    image = benchmark_files["mc"].parent / "images/0.png"
    requests = [GenerationRequest(image, "what color is it ?", id="i"),
                GenerationRequest(None, "what is red ?", id="t")]
    assert len(backend.generate(requests)) == 2
    scored = answer_loglikelihoods(backend, [(None, "what is red ?", "red"), (None, "what is red ?", "blue")])
    assert all(value < 0 for value, _ in scored)


def text_only_science_items():
    """ScienceQA-style items, half of them without an image (context_modality 'no' / 'txt')."""
    items = sample_items("mc")
    for index, item in enumerate(items):
        if index % 2:
            item.pop("image")
            item["context_modality"] = "no"
    return items


@pytest.mark.parametrize("protocol", ["generation", "likelihood"])
def test_text_only_science_items_are_scored(answering_checkpoints, tmp_path, protocol):
    data_file = write_benchmark(tmp_path, "mc", text_only_science_items())
    result = evaluate(answering_checkpoints["multiple_choice"], "mc", data_file, tmp_path / "out.json", batch_size=4,
                      seed=0, temperature=0.0, protocol=protocol)
    assert result["n"] == 6 and len(result["samples"]) == 6
    assert result["by_category"]["context_modality"]["no"]["n"] == 3


@pytest.mark.parametrize("length", [1, 3])
def test_the_open_ended_answer_length_comes_from_the_caller(tiny_checkpoint, tmp_path, length):
    data_file = write_benchmark(tmp_path, "open", sample_items("open"))
    judge = lambda items, predictions: [{"score": 5.0} for _ in items]  # noqa: E731
    result = evaluate(tiny_checkpoint, "open", data_file, tmp_path / "out.json", batch_size=6, seed=0,
                      temperature=0.0, judge=judge, judge_name="fixed", open_ended_max_new_tokens=length)
    lengths = [len(sample["prediction"].split()) for sample in result["samples"]]
    assert max(lengths) == length  # the tiny random model never stops early within 3 tokens


def test_text_only_train_items_become_text_only_fine_tuning_conversations(tmp_path):
    from mmdistill.evaluation.finetune import finetune_records

    records = finetune_records("mc", write_benchmark(tmp_path, "mc", text_only_science_items()))
    assert ["image" in r for r in records] == [True, False] * 3
    assert [r["conversations"][0]["value"].startswith("<image>\n") for r in records] == [True, False] * 3


def test_comds_image_instruction_pools_leave_text_only_records_out():
    from mmdistill.comd.competitive import seed_pool, text_only_records

    records = [record(0, "images/0.png"), record(1, None), {**record(2, None), "image": None}]
    assert [item["id"] for item in seed_pool(records)] == ["r0-q1"]
    assert text_only_records(records) == 2
