"""The toy question language: generation/parsing round trips and a closed vocabulary."""

from __future__ import annotations

import re
from collections import Counter
from random import Random

import pytest

from mmdistill import conversation, roles
from mmdistill.toyworld import benchmarks, corpora, oracle
from mmdistill.toyworld.language import (
    OPEN_TASK_TYPES,
    TASK_TYPES,
    TEMPLATES,
    Ref,
    format_mc_prompt,
    make_question,
    normalize,
    parse_question,
    task_type_of,
    tokenize,
    toy_vocabulary,
)
from mmdistill.toyworld.scenes import generate_scenes

SCENES = generate_scenes(300, 11, "train")


def test_normalize_spaces_punctuation_and_lowercases():
    assert normalize("  What color is the Circle?") == "what color is the circle ?"
    assert normalize("top-left,yes.") == "top - left , yes ."
    assert tokenize("answer 1 : 10") == ["answer", "1", ":", "10"]


def test_every_task_type_has_two_or_more_phrasings():
    assert set(TEMPLATES) == set(TASK_TYPES)
    assert all(len(templates) >= 2 for templates in TEMPLATES.values())


def test_parse_question_fields():
    query = parse_question("Is the large red circle the same size as the object in the top right?")
    assert query.task == "compare" and query.attribute == "size"
    assert query.ref == Ref(size="large", color="red", shape="circle")
    assert query.other == Ref(cell="top right")
    query = parse_question("how many blue triangles are there ?")
    assert query.task == "count" and query.ref == Ref(color="blue", shape="triangle")
    query = parse_question("what is to the right of the square?")
    assert (query.task, query.direction, query.ref) == ("relation", "to the right of", Ref(shape="square"))
    query = parse_question(
        format_mc_prompt("where is the key ?", ["top left", "top right"], "call the red square the key .")
    )
    assert query.task == "position" and query.options == ("top left", "top right")
    assert query.aliases == (("key", Ref(color="red", shape="square")),)
    for text in (
        "",
        "hello",
        "what color is the ?",
        "is there a key ?",
        "how many circle are there ?",
        "question : what color is the circle ? options : b . red answer with one of the options .",
        "question : what color is the circle ? options : a . red b . blue answer with the option letter .",
    ):
        assert parse_question(text) is None, text


def test_generated_questions_round_trip_and_are_answerable():
    rng = Random(0)
    seen = {task: set() for task in OPEN_TASK_TYPES}
    for scene in SCENES:
        for task in OPEN_TASK_TYPES:
            question = make_question(task, scene, rng)
            if question is None:
                impossible = {
                    "text": not any(obj["text"] for obj in scene["objects"]),
                    "compare": len(scene["objects"]) < 2,
                }
                assert impossible.get(task), (task, scene)
                continue
            seen[task].add(question)
            assert normalize(question) == question
            assert task_type_of(question) == task
            gold = oracle.answer(scene, question)
            assert gold != oracle.UNANSWERABLE, question
            assert oracle.score_answer(scene, question, gold) == 10
    variety = {"list": 3, "describe": 3, "identity": 12}  # all phrasings x cells
    assert all(len(seen[task]) >= variety.get(task, 20) for task in seen), {task: len(q) for task, q in seen.items()}
    assert make_question("category", SCENES[0], rng) is None
    with pytest.raises(ValueError):
        make_question("weather", SCENES[0], rng)


def _texts_of(records):
    for record in records:
        for turn in record.get("conversations", []):
            yield turn["value"]
        for key in ("caption", "question", "answer", "prompt", "context"):
            if record.get(key):
                yield record[key]
        yield from record.get("options", [])


def test_vocabulary_is_closed_over_everything_the_world_writes():
    vocabulary = set(toy_vocabulary())
    scenes = SCENES[:200]
    records = [
        *corpora.make_raw_captions(scenes, 10, 1),
        *corpora.make_instruction_seed(scenes, 1),
        *corpora.make_gold_answer_data(scenes, 1, 3),
        *corpora.make_judge_data(scenes, 1, 3),
        *corpora.make_augment_data(scenes, 1, 2),
        *benchmarks.make_mc_benchmark(scenes, 1, 3),
        *benchmarks.make_seed_benchmark(scenes, 1, 3),
        *benchmarks.make_pope_benchmark(scenes, 1, 2, scenes),
        *benchmarks.make_open_benchmark(scenes, 1, 2),
    ]
    texts = list(_texts_of(records)) + corpora.make_lm_pretraining_text(scenes, 1, 2000)
    texts += [conversation.prompt_text(text) for text in texts[:500]]
    texts += [roles.judge_prompt("what is in the top left ?", "red circle", "nothing"), conversation.SYSTEM_PROMPT]
    texts += [roles.format_judge_output(score, 11 - score) for score in range(1, 11)]
    tokens = (token for text in texts for token in tokenize(text.replace(conversation.IMAGE_PLACEHOLDER, " ")))
    outside = Counter(token for token in tokens if token not in vocabulary)
    assert not outside, outside
    assert len(vocabulary) < 400
    assert all(re.fullmatch(r"[a-z0-9]+|[^\sa-z0-9]", token) for token in vocabulary)
