"""Toy-world benchmarks: oracle-consistent answers, balanced letters and POPE negatives."""

from __future__ import annotations

from collections import Counter

import pytest

from mmdistill.toyworld import benchmarks, oracle
from mmdistill.toyworld.language import OPTION_LETTERS, task_type_of
from mmdistill.toyworld.scenes import generate_scenes

TRAIN = generate_scenes(300, 4, "train")
TEST = generate_scenes(300, 4, "test")
SCENES = {scene["scene_id"]: scene for scene in TRAIN + TEST}


@pytest.fixture(scope="module")
def mc():
    return benchmarks.make_mc_benchmark(TEST, 0, 4)


def _check_items(items):
    assert len({item["id"] for item in items}) == len(items)
    for item in items:
        scene = SCENES[item["scene_id"]]
        assert item["split"] == scene["split"] and item["image"] == f"images/{item['scene_id']}.png"
        if "options" in item:  # the gold letter, and the text of that option the oracle answers
            assert item["answer"] in OPTION_LETTERS[: len(item["options"])]
            assert item["answer_text"] == item["options"][OPTION_LETTERS.index(item["answer"])]
            assert oracle.answer(scene, item["prompt"]) == item["answer_text"]
            assert len(set(item["options"])) == len(item["options"])
            if item["task"] != "category" and not item.get("context"):
                assert oracle.answer(scene, item["question"]) == item["answer_text"]
        else:
            assert oracle.answer(scene, item["question"]) == item["answer"] != oracle.UNANSWERABLE
        assert task_type_of(item["question"]) == item["task"]


def _assert_uniform_letters(items):
    by_size = {}
    for item in items:
        by_size.setdefault(len(item["options"]), Counter())[item["answer"]] += 1
    for size, letters in by_size.items():
        total = sum(letters.values())
        if total >= 200:
            assert set(letters) == set(OPTION_LETTERS[:size])
            assert all(abs(count - total / size) < 0.2 * total / size for count in letters.values()), (size, letters)


def test_mc_benchmark_items_and_axes(mc):
    _check_items(mc)
    assert len(mc) == 4 * len(TEST)
    assert {item["subject"] for item in mc} == set(benchmarks.MC_SUBJECTS)
    assert {item["context_modality"] for item in mc} == set(benchmarks.CONTEXT_MODALITIES)
    assert {item["grade"] for item in mc} == set(benchmarks.GRADES)
    _assert_uniform_letters(mc)
    for item in mc:
        assert item["prompt"] == benchmarks.format_mc_prompt(item["question"], item["options"], item["context"])
        assert 2 <= len(item["options"]) <= 4
        if item["context_modality"] == "txt":
            # the context matters: without it the question names an undefined alias
            assert item["context"] and oracle.answer(SCENES[item["scene_id"]], item["question"]) == oracle.UNANSWERABLE
        elif item["context_modality"] == "no":
            assert item["task"] == "category" and all(
                oracle.answer(scene, item["prompt"]) == item["answer_text"] for scene in TRAIN[:20]
            )  # the same answer whatever the image


def test_seed_benchmark():
    items = benchmarks.make_seed_benchmark(TEST, 0, 7)
    _check_items(items)
    dimensions = Counter(item["dimension"] for item in items)
    assert set(dimensions) == set(benchmarks.SEED_DIMENSIONS)
    assert all(len(item["options"]) == 4 for item in items)
    _assert_uniform_letters(items)


def test_pope_negatives_are_absent_balanced_and_typed():
    items = benchmarks.make_pope_benchmark(TEST, 0, 3, TRAIN + TEST)
    _check_items(items)
    for negative_type in benchmarks.POPE_NEGATIVE_TYPES:
        subset = [item for item in items if item["negative_type"] == negative_type]
        answers = Counter(item["answer"] for item in subset)
        assert answers["yes"] == answers["no"] > 300
    frequency = Counter(f"{obj['color']} {obj['shape']}" for scene in TRAIN + TEST for obj in scene["objects"])
    for item in items:
        present = {f"{obj['color']} {obj['shape']}" for obj in SCENES[item["scene_id"]]["objects"]}
        assert (item["object"] in present) == (item["answer"] == "yes")
        assert item["question"] == f"is there a {item['object']} in the image ?"
        if item["answer"] == "no" and item["negative_type"] == "adversarial":
            color, shape = item["object"].split()
            assert any(name.split()[0] == color or name.split()[1] == shape for name in present)
        if item["answer"] == "no" and item["negative_type"] == "popular":
            absent = [name for name in frequency if name not in present]
            assert (
                frequency[item["object"]]
                >= sorted((frequency[n] for n in absent), reverse=True)[min(2, len(absent) - 1)]
            )


def test_open_benchmark_categories():
    items = benchmarks.make_open_benchmark(TEST, 0, 3)
    _check_items(items)
    categories = Counter(item["category"] for item in items)
    assert set(categories) == set(benchmarks.OPEN_CATEGORIES)
    assert min(categories.values()) > 0.2 * len(items)
    for item in items:
        assert item["task"] in benchmarks.OPEN_CATEGORIES[item["category"]]


def test_benchmarks_are_deterministic():
    for make in (
        lambda seed: benchmarks.make_mc_benchmark(TEST[:50], seed, 3),
        lambda seed: benchmarks.make_seed_benchmark(TEST[:50], seed, 3),
        lambda seed: benchmarks.make_pope_benchmark(TEST[:50], seed, 2, TRAIN),
        lambda seed: benchmarks.make_open_benchmark(TEST[:50], seed, 2),
    ):
        assert make(5) == make(5) and make(5) != make(6)


def test_adversarial_negatives_share_a_colour_or_a_shape_in_the_given_order():
    present = [("red", "circle"), ("blue", "square")]
    absent = [("green", "triangle"), ("blue", "circle"), ("yellow", "square"), ("red", "triangle"), ("green", "circle")]
    assert benchmarks.adversarial_negatives(absent, present) == [
        ("blue", "circle"), ("yellow", "square"), ("red", "triangle"), ("green", "circle")]
    assert benchmarks.adversarial_negatives([("green", "triangle")], present) == []
