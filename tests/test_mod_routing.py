"""Routing shares by question type: which tokens count, that every top-k choice is counted once, the shares."""

import pytest
import torch
from PIL import Image

from mmdistill.conversation import IGNORE_INDEX
from mmdistill.models.llava import load_llava, num_image_tokens
from mmdistill.mod.routing import IMAGE_TOKENS, plot_routing, routing_counts, routing_shares, token_types
from mmdistill.mod.upcycling import upcycle_llava

from conftest import build_tiny_llava


def test_answer_tokens_take_their_records_task_and_image_tokens_their_own_type():
    image = 9
    batch = {"input_ids": torch.tensor([[5, image, image, 7, 8, 0], [5, image, image, 7, 3, 4]]),
             "labels": torch.tensor([[IGNORE_INDEX] * 4 + [8, IGNORE_INDEX], [IGNORE_INDEX] * 4 + [3, 4]])}
    assert token_types(batch, ["color", "count"], image) == [
        None, IMAGE_TOKENS, IMAGE_TOKENS, None, "color", None,
        None, IMAGE_TOKENS, IMAGE_TOKENS, None, "count", "count"]


def test_shares_are_each_experts_part_of_a_layers_assignments():
    counts = {"color": torch.tensor([[3, 1], [0, 4]])}
    assert routing_shares(counts) == [
        {"type": "color", "layer": 0, "expert": 0, "share": 0.75, "assignments": 3},
        {"type": "color", "layer": 0, "expert": 1, "share": 0.25, "assignments": 1},
        {"type": "color", "layer": 1, "expert": 0, "share": 0.0, "assignments": 0},
        {"type": "color", "layer": 1, "expert": 1, "share": 1.0, "assignments": 4}]


def test_every_routed_token_is_counted_top_k_times_per_layer(tmp_path):
    dense, processor = load_llava(build_tiny_llava(tmp_path / "dense", num_layers=2))
    model = upcycle_llava(dense, num_experts=4, top_k=2, seed=0)
    for name, colour in (("red.png", "red"), ("blue.png", "blue")):
        Image.new("RGB", (64, 64), colour).save(tmp_path / name)
    records = [{"id": str(k), "image": image, "task": task,
                "conversations": [{"from": "human", "value": "<image>\nwhat color is the circle ?"},
                                  {"from": "gpt", "value": answer}]}
               for k, (image, task, answer) in enumerate([("red.png", "color", "red"), ("blue.png", "color", "blue"),
                                                          ("red.png", "shape", "red circle")])]
    counts = routing_counts(model, processor, records, tmp_path, batch_size=2)
    image_tokens = num_image_tokens(model.config)
    assert set(counts) == {"color", "shape", IMAGE_TOKENS}
    assert counts[IMAGE_TOKENS].sum(1).tolist() == [3 * image_tokens * 2] * 2  # three records, top-2, both layers
    answer_tokens = {"color": 2 * 2, "shape": 3}  # each answer's words and EOS
    for task, tokens in answer_tokens.items():
        assert counts[task].sum(1).tolist() == [tokens * 2] * 2
        assert (counts[task] <= tokens).all()  # an expert is chosen at most once per token
    rows = routing_shares(counts)
    assert sum(row["share"] for row in rows if row["type"] == "color" and row["layer"] == 0) == pytest.approx(1.0)
    plot_routing(rows, tmp_path / "routing.png")
    assert (tmp_path / "routing.png").read_bytes()[:4] == b"\x89PNG"
