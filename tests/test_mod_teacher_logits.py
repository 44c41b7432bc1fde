import json
import math

import numpy as np
import pytest
import torch

from mmdistill.conversation import IGNORE_INDEX
from mmdistill.models.llava import load_llava, num_image_tokens
from mmdistill.mod.losses import TopK, mimic_distillation_loss, predicting_positions, sparse_mimic_distillation_loss
from mmdistill.mod.teacher_logits import (
    QWEN_VOCAB_SIZE,
    TeacherLogitsReader,
    TeacherLogitsWriter,
    approximation_kl,
    bytes_per_token,
    index_dtype,
    response_top_k,
    stored_bytes_per_token,
    top_k,
    write_teacher_top_k,
)
from mmdistill.training import ConversationCollator, ConversationDataset


def random_examples(count, vocab_size, k, seed=0):
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for number in range(count):
        logits = torch.randn(number % 5 * 3, vocab_size, generator=generator)  # lengths 0, 3, ..., 12
        examples.append(top_k(logits.log_softmax(dim=-1), k))
    return examples


def write(directory, examples, vocab_size, k, tokens_per_shard):
    with TeacherLogitsWriter(directory, vocab_size, k, tokens_per_shard) as writer:
        for top in examples:
            writer.add(top)


def test_round_trip_over_several_shards(tmp_path):
    examples = random_examples(12, vocab_size=300, k=4)
    write(tmp_path, examples, 300, 4, tokens_per_shard=20)
    reader = TeacherLogitsReader(tmp_path)
    assert len(reader) == 12 and len(reader.index["shards"]) > 2
    assert reader.index["index_dtype"] == "uint16"
    for written, read in zip(examples, reader, strict=True):
        assert all(torch.equal(read_part, part) for read_part, part in zip(read, written, strict=True))
    assert torch.equal(reader[7].indices, examples[7].indices)


def test_reading_one_example_opens_only_its_shard(tmp_path, monkeypatch):
    write(tmp_path, random_examples(12, vocab_size=300, k=4), 300, 4, tokens_per_shard=20)
    opened = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda path, **kwargs: opened.append(path.name) or real_load(path, **kwargs))
    reader = TeacherLogitsReader(tmp_path)
    shards = reader.index["shards"]
    last = len(reader) - 1
    reader[last]
    parts = ("indices", "log_probs", "log_residual", "offsets")
    assert sorted(opened) == sorted(f"{shards[-1]['name']}.{part}.npy" for part in parts)
    opened.clear()
    list(reader)
    assert len(opened) == len(parts) * len(shards)  # in order, each shard is opened once


def test_bytes_per_token_for_the_toy_and_for_a_152k_vocabulary(tmp_path):
    assert index_dtype(300) == np.uint16 and index_dtype(65_536) == np.uint16
    assert index_dtype(QWEN_VOCAB_SIZE) == np.uint32  # 152K ids need 18 bits
    assert bytes_per_token(300, 16) == 16 * (2 + 2) + 2 == 66
    assert bytes_per_token(QWEN_VOCAB_SIZE, 16) == 16 * (4 + 2) + 2 == 98
    assert bytes_per_token(QWEN_VOCAB_SIZE, 24) == 146 <= 150
    write(tmp_path, random_examples(40, vocab_size=300, k=16), 300, 16, tokens_per_shard=10_000)
    tokens = json.loads((tmp_path / "index.json").read_text())["tokens"]
    assert 66 < stored_bytes_per_token(tmp_path) < 66 + 3000 / tokens  # the rest: npy headers, offsets, index


def peaked_log_probs(rows, vocab_size, seed=0):
    """A confident teacher: one token near 0.97, a few runners-up, a long tail holding about 1e-5."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab_size, generator=generator)
    head = torch.randperm(vocab_size, generator=generator)[:6].expand(rows, 6)
    logits.scatter_(1, head, torch.tensor([26.0, 22.0, 21.0, 20.0, 19.0, 18.0]).expand(rows, 6))
    return logits.log_softmax(dim=-1)


def test_top_k_kl_error_is_below_its_bound_and_1e_3_on_a_peaked_teacher():
    """KL(p || approximation) <= (tail mass) * log(V - k): the tail's KL to a uniform spread is at most log(V - k)."""
    for log_probs in (peaked_log_probs(16, QWEN_VOCAB_SIZE), torch.randn(16, 2000).mul(3).log_softmax(dim=-1)):
        k = 16
        tail_mass = 1 - log_probs.topk(k, dim=-1).values.exp().sum(dim=-1)
        bound = (tail_mass * math.log(log_probs.shape[-1] - k)).mean().item()
        assert 0 <= approximation_kl(log_probs, k) <= bound + 1e-6
    assert approximation_kl(peaked_log_probs(16, QWEN_VOCAB_SIZE), 16) < 1e-3


def test_stored_top_k_of_a_batch_gives_the_full_teacher_loss_to_within_the_kl_error(tmp_path):
    generator = torch.Generator().manual_seed(0)
    vocab_size, k = 50, 8
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 5, 7, 2], [IGNORE_INDEX, 3, 4, IGNORE_INDEX, IGNORE_INDEX]])
    teacher = peaked_log_probs(10, vocab_size).reshape(2, 5, vocab_size)
    student = torch.randn(2, 5, vocab_size, generator=generator)
    write(tmp_path, response_top_k(teacher, labels, k), vocab_size, k, tokens_per_shard=2)
    reader = TeacherLogitsReader(tmp_path)
    assert [len(reader[row].indices) for row in range(2)] == predicting_positions(labels).sum(dim=1).tolist()
    batch = TopK(*(torch.cat(parts) for parts in zip(*reader)))
    sparse = sparse_mimic_distillation_loss(student, batch, labels)
    assert sparse.item() == pytest.approx(mimic_distillation_loss(student, teacher, labels).item(), abs=1e-3)
    with pytest.raises(ValueError, match="truncated"):
        sparse_mimic_distillation_loss(student, TopK(*(part[:-1] for part in batch)), labels)


def test_teacher_top_k_of_a_dataset_lines_up_with_the_training_labels(tiny_checkpoint, benchmark_files, tmp_path):
    model, processor = load_llava(tiny_checkpoint)
    records = [{"id": str(i), "image": f"images/{i % 4}.png",
                "conversations": [{"from": "human", "value": "<image>\nwhat color is the circle ?"},
                                  {"from": "gpt", "value": "red circle" + " circle" * i}]} for i in range(5)]
    dataset = ConversationDataset(records, benchmark_files["mc"].parent, processor, num_image_tokens(model.config))
    collator = ConversationCollator(processor.tokenizer.pad_token_id)
    summary = write_teacher_top_k(model, dataset, collator, tmp_path, k=4, batch_size=2, tokens_per_shard=8)
    reader = TeacherLogitsReader(tmp_path)
    labels = [collator([dataset[i]])["labels"] for i in range(len(dataset))]
    assert [len(top.indices) for top in reader] == [int(predicting_positions(row).sum()) for row in labels]
    assert summary["tokens"] == reader.index["tokens"] and summary["bytes_per_token_152k_vocabulary"] == 4 * 6 + 2
    assert summary["kl_nats_per_token"] >= 0
    example = collator([dataset[3]])  # alone, unpadded: the same rows as in its padded batch
    with torch.no_grad():
        logits = model(**{key: value for key, value in example.items() if key != "labels"}).logits
    alone = response_top_k(logits, example["labels"], 4)[0]
    assert torch.equal(reader[3].indices, alone.indices)
    torch.testing.assert_close(reader[3].log_probs, alone.log_probs, atol=1e-2, rtol=1e-3)
