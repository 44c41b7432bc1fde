"""Toy-world corpora: LLaVA format, gold answers from the oracle, judge / augment targets, captions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from mmdistill import conversation, roles
from mmdistill.toyworld import corpora, oracle
from mmdistill.toyworld.language import (
    CAPTION_ADJECTIVES,
    CAPTION_NOUNS,
    MC_INSTRUCTION,
    OPEN_TASK_TYPES,
    parse_question,
    task_type_of,
)
from mmdistill.toyworld.scenes import COLORS, SHAPES, SIZES, all_cell_names, generate_scenes, image_path

SCENES = generate_scenes(150, 3, "train")


@pytest.fixture(scope="module")
def datasets():
    return {
        "seed": corpora.make_instruction_seed(SCENES, 0),
        "gold": corpora.make_gold_answer_data(SCENES, 0, 4),
        "category": corpora.make_category_data(SCENES, 0, 2),
        "grounding": corpora.make_grounding_data(SCENES, 0, 6),
        "word": corpora.make_word_data(SCENES, 0, 3),
        "grounding_stage": corpora.make_grounding_stage_data(SCENES, 0, 6, 6, 4),
        "judge": corpora.make_judge_data(SCENES, 0, 4),
        "augment": corpora.make_augment_data(SCENES, 0, 3),
    }


@pytest.fixture(scope="module")
def augment_sets(datasets):
    """The augment examples naming objects by any unique description, and by their cell."""
    return {"by description": datasets["augment"], "by cell": corpora.make_augment_data(SCENES, 0, 3, by_cell=True)}


def _scene(record):
    return SCENES[int(record["scene_id"].split("-")[1])]


def test_every_generator_is_deterministic_in_its_seed():
    for make in (
        lambda seed: corpora.make_raw_captions(SCENES, 3, seed),
        lambda seed: corpora.make_instruction_seed(SCENES, seed),
        lambda seed: corpora.make_gold_answer_data(SCENES, seed, 2),
        lambda seed: corpora.make_category_data(SCENES, seed, 1),
        lambda seed: corpora.make_grounding_data(SCENES, seed, 2),
        lambda seed: corpora.make_word_data(SCENES, seed, 2),
        lambda seed: corpora.make_grounding_stage_data(SCENES, seed, 2, 3, 2),
        lambda seed: corpora.make_judge_data(SCENES, seed, 2),
        lambda seed: corpora.make_augment_data(SCENES, seed, 2),
        lambda seed: corpora.make_lm_pretraining_text(SCENES, seed, 300),
    ):
        assert make(1) == make(1)
        assert make(1) != make(2)


def test_records_are_valid_llava_conversations(datasets):
    for name, records in datasets.items():
        assert len({record["id"] for record in records}) == len(records), name
        for record in records:
            turns = record["conversations"]
            assert turns[0]["value"].startswith(conversation.IMAGE_PLACEHOLDER + "\n")
            assert [turn["from"] for turn in turns] == ["human", "gpt"] * (len(turns) // 2)
            assert sum(turn["value"].count(conversation.IMAGE_PLACEHOLDER) for turn in turns) == 1
            questions, answers = conversation.from_llava_record(record)
            assert all(answers) or name == "judge"
            assert record["image"] == f"images/{record['scene_id']}.png"
            assert record["role"] == {"seed": "answer", "gold": "answer", "category": "answer", "grounding": "answer",
                                      "word": "answer", "grounding_stage": "answer", "judge": "judge", "augment": "augment"}[name]
            tasks = record.get("tasks") or [record["task"]]
            assert len(tasks) == len(questions) and set(tasks) <= set(OPEN_TASK_TYPES) | {"category"}


def test_instruction_seed_turns_and_gold_answers(datasets):
    records = datasets["seed"]
    assert len(records) == len(SCENES)
    assert Counter(len(record["tasks"]) for record in records).keys() <= {2, 3, 4}
    for record in records:
        questions, answers = conversation.from_llava_record(record)
        assert len(set(questions)) == len(questions)
        for task, question, answer in zip(record["tasks"], questions, answers):
            assert task_type_of(question) == task
            assert oracle.answer(_scene(record), question) == answer != oracle.UNANSWERABLE


def test_gold_answer_data_covers_all_task_types_and_multiple_choice(datasets):
    records = datasets["gold"]
    assert len(records) == 4 * len(SCENES)
    formats = Counter(record["format"] for record in records)
    assert set(formats) == {"single", "multi", "mc", "seed"}
    assert {task for record in records for task in record["tasks"]} == set(OPEN_TASK_TYPES) | {"category"}
    for record in records:
        questions, answers = conversation.from_llava_record(record)
        for question, answer in zip(questions, answers):
            assert oracle.answer(_scene(record), question) == answer
        if record["format"] in ("mc", "seed"):  # answered with the text of the right option
            query = parse_question(questions[0])
            assert questions[0].endswith(MC_INSTRUCTION) and answers[0] in query.options


def test_category_data_is_text_only_multiple_choice_answered_with_the_one_option_of_the_asked_kind(datasets):
    records = datasets["category"]
    assert len(records) == 2 * len(SCENES)
    kinds = Counter()
    for record in records:
        assert record["format"] == "category" and record["tasks"] == ["category"]
        (question,), (answer,) = conversation.from_llava_record(record)
        query = parse_question(question)
        kind = re.search(r"(color|shape|size|position) \?", question).group(1)
        kinds[kind] += 1
        of_kind = {"color": COLORS, "shape": SHAPES, "size": SIZES, "position": all_cell_names(2)}[kind]
        assert question.endswith(MC_INSTRUCTION) and len(query.options) == 4
        assert [option for option in query.options if option in of_kind] == [answer]
        assert oracle.answer(_scene(record), question) == answer
    assert set(kinds) == {"color", "shape", "size", "position"}
    assert 0.4 < kinds["position"] / len(records) < 0.6  # the spatial subject's one kind, as in the MC benchmark


def test_grounding_data_is_one_oracle_answered_content_search_question_per_record(datasets):
    records = datasets["grounding"]
    assert len(records) == 6 * len(SCENES)
    assert Counter(record["tasks"][0] for record in records) == {
        "exist": 3 * len(SCENES), "position": len(SCENES), "relation": len(SCENES), "count": len(SCENES)}
    existence = Counter()
    for record in records:
        (question,), (answer,) = conversation.from_llava_record(record)
        assert record["format"] == "grounding" and task_type_of(question) == record["tasks"][0]
        assert oracle.answer(_scene(record), question) == answer != oracle.UNANSWERABLE
        if record["tasks"][0] == "exist":
            existence[answer] += 1
    assert set(existence) == {"yes", "no"} and 0.4 < existence["yes"] / sum(existence.values()) < 0.6


def test_grounding_stage_existence_questions_alternate_present_and_absent_kinds_half_of_them_adversarial(datasets):
    records = [record for record in datasets["grounding_stage"] if record["format"] == "existence"]
    assert len(records) == 6 * len(SCENES)
    answers, adversarial = Counter(), Counter()
    for k, record in enumerate(records):
        (question,), (answer,) = conversation.from_llava_record(record)
        assert task_type_of(question) == "exist"
        assert oracle.answer(_scene(record), question) == answer == ("yes" if k % 2 == 0 else "no")
        answers[answer] += 1
        if answer == "no":
            color, shape = parse_question(question).ref.color, parse_question(question).ref.shape
            objects = _scene(record)["objects"]
            adversarial[any(obj["color"] == color or obj["shape"] == shape for obj in objects)] += 1
    assert answers["yes"] == answers["no"]
    assert 0.5 < adversarial[True] / sum(adversarial.values()) < 0.9  # half chosen so, and some random ones share too


def test_grounding_stage_search_questions_cycle_position_word_relation_answered_by_the_oracle(datasets):
    records = [record for record in datasets["grounding_stage"] if record["format"] == "search"]
    assert len(records) == 6 * len(SCENES)
    scenes_with_words = sum(any(obj["text"] for obj in scene["objects"]) for scene in SCENES)
    assert 0 < scenes_with_words < len(SCENES)
    tasks = Counter(record["tasks"][0] for record in records)
    assert tasks == {"text": 2 * scenes_with_words, "relation": 2 * len(SCENES),
                     "position": 2 * len(SCENES) + 2 * (len(SCENES) - scenes_with_words)}
    for record in records:
        (question,), (answer,) = conversation.from_llava_record(record)
        assert task_type_of(question) == record["tasks"][0]
        assert oracle.answer(_scene(record), question) == answer != oracle.UNANSWERABLE
        if record["tasks"][0] == "text":
            assert answer in {obj["text"] for obj in _scene(record)["objects"]}


@pytest.mark.parametrize("dataset, record_format", [("word", "word"), ("grounding_stage", "search-word")])
def test_word_questions_ask_what_a_word_says_in_scenes_with_words(datasets, dataset, record_format):
    records = [record for record in datasets[dataset] if record["format"] == record_format]
    per_scene = 3 if dataset == "word" else 4
    scenes_with_words = [scene for scene in SCENES if any(obj["text"] for obj in scene["objects"])]
    assert Counter(record["scene_id"] for record in records) == {scene["scene_id"]: per_scene for scene in scenes_with_words}
    for record in records:
        (question,), (answer,) = conversation.from_llava_record(record)
        assert record["tasks"] == ["text"] and task_type_of(question) == "text"
        assert oracle.answer(_scene(record), question) == answer
        assert answer in {obj["text"] for obj in _scene(record)["objects"]}
    assert len({record["conversations"][0]["value"] for record in records}) > len(scenes_with_words)


def test_word_questions_leave_the_other_grounding_records_unchanged():
    """Adding `search_word_per_scene` appends records: the measured existence and search questions stay as they were."""
    without = corpora.make_grounding_stage_data(SCENES, 0, 6, 6)
    with_words = corpora.make_grounding_stage_data(SCENES, 0, 6, 6, 4)
    assert [record for record in with_words if record["format"] != "search-word"] == without


def test_judge_targets_are_oracle_scores_in_both_orders(datasets):
    records = datasets["judge"]
    orders = Counter()
    for record in records:
        human, target = record["conversations"][0]["value"], record["conversations"][1]["value"]
        question = re.search(r"question : (.*)\n", human).group(1)
        answer_1 = re.search(r"answer 1 : (.*)\n", human).group(1)
        answer_2 = re.search(r"answer 2 : (.*)\n", human).group(1)
        assert human == conversation.IMAGE_PLACEHOLDER + "\n" + roles.judge_prompt(question, answer_1, answer_2)
        assert task_type_of(question) == record["task"]
        scores = [oracle.score_answer(_scene(record), question, answer) for answer in (answer_1, answer_2)]
        assert (record["question"], record["answers"], record["scores"]) == (question, [answer_1, answer_2], scores)
        assert roles.parse_judge_output(target) == tuple(float(score) for score in scores)
        orders[(scores[0] > scores[1]) - (scores[0] < scores[1])] += 1
    assert min(orders[-1], orders[1]) > 0.2 * len(records) and orders[0] > 0.1 * len(records)
    all_scores = Counter(score for record in records for score in record["scores"])
    assert {1, 2, 10} <= set(all_scores) and any(3 <= score <= 9 for score in all_scores)


@pytest.mark.parametrize("references", ["by description", "by cell"])
def test_augment_targets_are_new_answerable_questions_of_the_same_type(augment_sets, references):
    for record in augment_sets[references]:
        human, new_question = record["conversations"][0]["value"], record["conversations"][1]["value"]
        prefix = conversation.IMAGE_PLACEHOLDER + "\n" + roles.augment_prompt("")
        assert human.startswith(prefix)
        original = human[len(prefix) :]
        assert original == record["source_question"] and new_question != original
        assert task_type_of(original) == task_type_of(new_question) == record["task"]
        assert oracle.is_answerable(_scene(record), new_question)


def test_augment_targets_by_cell_name_each_object_by_its_cell_where_the_task_allows(augment_sets):
    by_description, by_cell = augment_sets["by description"], augment_sets["by cell"]
    references = {"color": 1, "shape": 1, "size": 1, "text": 1, "relation": 1, "compare": 2}
    cell_pattern = re.compile("in the (?:" + "|".join(all_cell_names(2)) + ")")

    def named_cells(records):
        return [(len(cell_pattern.findall(r["conversations"][1]["value"])), references[r["task"]])
                for r in records if r["task"] in references]

    assert len(named_cells(by_cell)) > 150 and all(found == wanted for found, wanted in named_cells(by_cell))
    assert sum(found < wanted for found, wanted in named_cells(by_description)) > 0.3 * len(named_cells(by_description))


def test_raw_captions_have_a_long_tail_of_noun_phrases():
    captions = corpora.make_raw_captions(generate_scenes(1000, 0, "train"), 10, 0)
    assert len(captions) == 10000 and {"id", "image", "caption"} <= set(captions[0])
    text = "\n".join(record["caption"] for record in captions)
    rare = Counter(re.findall(rf"\b(?:{'|'.join(CAPTION_ADJECTIVES)}) (?:{'|'.join(CAPTION_NOUNS)})\b", text))
    assert sum(count < 3 for count in rare.values()) > 150  # seen once or twice
    assert sum(count >= 3 for count in rare.values()) > 50
    assert text.count("a red circle") > 100 and len(set(text.splitlines())) > 3000


def test_vision_ready_captions_are_detailed_ones_of_pretraining_scenes_and_raw_ones_of_instruct_scenes():
    scenes = generate_scenes(30, 0, "pretrain") + generate_scenes(20, 1, "instruct") + generate_scenes(10, 2, "bench_test")
    captions = corpora.make_vision_ready_captions(scenes, 0, 3)
    by_split = Counter(record["image"].split("/")[-1].split("-")[0] for record in captions)
    assert by_split == {"pretrain": 30, "instruct": 60}, "no held-out image, one detailed caption per pretraining image"
    scene_of = {image_path(scene): scene for scene in scenes}
    for record in captions:
        scene = scene_of[record["image"]]
        if scene["split"] == "pretrain":
            assert record["caption"] == oracle.describe(scene)
        else:
            assert record["caption"] in {c["caption"] for c in corpora.make_raw_captions([scene], 3, 0)}
    assert captions == corpora.make_vision_ready_captions(scenes, 0, 3) != corpora.make_vision_ready_captions(scenes, 1, 3)


def test_lm_pretraining_text_mixes_captions_qa_and_descriptions():
    texts = corpora.make_lm_pretraining_text(SCENES, 0, 600)
    assert len(texts) == 600 and all(texts)
    assert sum(text.startswith("question : ") for text in texts) > 150
    assert sum(text.startswith("there ") for text in texts) > 60


def test_outputs_do_not_depend_on_python_hash_seed():
    """Set iteration order varies with PYTHONHASHSEED; generated data must not."""
    script = (
        "import json; from mmdistill.toyworld import scenes, corpora, benchmarks; "
        "s = scenes.generate_scenes(40, 0, 'train'); "
        "print(json.dumps([corpora.make_gold_answer_data(s, 0, 3), corpora.make_judge_data(s, 0, 2), "
        "benchmarks.make_mc_benchmark(s, 0, 2), benchmarks.make_seed_benchmark(s, 0, 2), "
        "benchmarks.make_pope_benchmark(s, 0, 2, s), corpora.make_raw_captions(s, 3, 0)]))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1000
