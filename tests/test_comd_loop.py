"""File-level orchestration of a CoMD iteration, with scripted backends instead of models."""

import json
from pathlib import Path

import pytest
import yaml

from mmdistill.comd.competitive import seed_pool
from mmdistill.comd.loop import (
    JudgeFailedError,
    answer_all,
    assess_and_augment,
    assessment_seed,
    assessment_settings,
    teacher_answers_for,
    tuning_records,
)
from mmdistill.conversation import IGNORE_INDEX, IMAGE_PLACEHOLDER, encode_conversation, from_llava_record
from mmdistill.generation import GenerationBackend
from mmdistill.models.tokenizer import build_word_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SEED_SET = [{"id": "s1", "image": "images/a.png", "tasks": ["color", "count"], "conversations": [
    {"from": "human", "value": "<image>\nwhat color is the circle ?"}, {"from": "gpt", "value": "red"},
    {"from": "human", "value": "how many objects are there ?"}, {"from": "gpt", "value": "2"}]}]
SETTINGS = {"tau": 0.33, "rouge_l_threshold": 0.7, "judge_max_retries": 1, "assess_teacher_answers": "reused",
            "max_new_tokens": 16, "temperature": {"teacher": 0.5, "student": 0.5, "assessor": 0.5, "augmentor": 0.5}}
OUTPUTS = ("assessment", "judge_failures", "assessment_teacher_answers", "tuning_pool", "cache_pool", "rejects",
           "report")


class Scripted(GenerationBackend):
    """Answers by the first rule whose key occurs in the prompt."""

    def __init__(self, rules):
        self.rules = rules
        self.requests = []

    @property
    def prompts(self):
        return [r.question for r in self.requests]

    def generate(self, requests):
        self.requests += requests
        return [next(reply for key, reply in self.rules if key in r.question) for r in requests]


def _outputs(tmp_path):
    return {name: tmp_path / f"{name}.jsonl" for name in OUTPUTS}


def _jsonl(path):
    return [json.loads(line) for line in open(path)]


def _image_pool():
    """Four questions about image a and two about image b, as a tuning pool with teacher answers."""
    questions = {"a": ["what color is the circle ?", "how many objects are there ?", "is there a square ?",
                       "where is the red circle ?"],
                 "b": ["what shape is the blue object ?", "is there a star ?"]}
    records = [{"id": f"s-{image}", "image": f"images/{image}.png", "conversations": [
        turn for question in texts for turn in ({"from": "human", "value": question}, {"from": "gpt", "value": "x"})]}
        for image, texts in questions.items()]
    pool = seed_pool(records)
    answers = {r["id"]: f"answer to {r['question'].removesuffix(' ?')}" for r in pool}
    return pool, answers


def test_tuning_records_regroup_each_images_questions_into_one_conversation():
    pool, answers = _image_pool()
    records = tuning_records(pool, answers, seed=0)
    assert [r["image"] for r in records] == ["images/a.png", "images/b.png"]
    ids = [i for r in records for i in r["question_ids"]]
    assert sorted(ids) == sorted(r["id"] for r in pool)  # every question exactly once
    by_id = {r["id"]: r for r in pool}
    for record in records:
        questions, replies = from_llava_record(record)
        assert {by_id[i]["image"] for i in record["question_ids"]} == {record["image"]}
        assert questions == [by_id[i]["question"] for i in record["question_ids"]]
        assert replies == [answers[i] for i in record["question_ids"]]
        humans = [turn["value"] for turn in record["conversations"][::2]]
        assert humans[0].startswith(IMAGE_PLACEHOLDER) and not any(IMAGE_PLACEHOLDER in h for h in humans[1:])
    assert len(records[0]["question_ids"]) == 4 and len(records[1]["question_ids"]) == 2


def test_regrouped_question_order_is_seeded():
    pool, answers = _image_pool()
    order = [r["question_ids"] for r in tuning_records(pool, answers, seed=0)]
    assert order == [r["question_ids"] for r in tuning_records(pool, answers, seed=0)]
    assert any([r["question_ids"] for r in tuning_records(pool, answers, seed=s)] != order for s in range(1, 10))
    # an image's order does not depend on the other images in the pool
    only_a = tuning_records([r for r in pool if r["image"] == "images/a.png"], answers, seed=0)
    assert only_a[0]["question_ids"] == order[0]


def test_max_turns_splits_an_image_into_several_conversations():
    pool, answers = _image_pool()
    whole = tuning_records(pool, answers, seed=3)
    capped = tuning_records(pool, answers, seed=3, max_turns=3)
    assert [len(r["question_ids"]) for r in capped] == [3, 1, 2]
    assert [i for r in capped for i in r["question_ids"]] == [i for r in whole for i in r["question_ids"]]
    assert len({r["id"] for r in capped}) == 3


def test_the_label_mask_supervises_every_answer_of_a_regrouped_conversation():
    pool, answers = _image_pool()
    record = tuning_records(pool, answers, seed=0)[0]
    questions, replies = from_llava_record(record)
    tokenizer = build_word_tokenizer([*questions, *replies, "a chat between a curious user and an assistant that "
                                                            "sees the image . user : assistant :"])
    input_ids, labels = encode_conversation(tokenizer, questions, replies, num_image_tokens=4)
    supervised = [token for token, label in zip(input_ids, labels) if label != IGNORE_INDEX]
    expected = [token for reply in replies
                for token in tokenizer.encode(reply, add_special_tokens=False) + [tokenizer.eos_token_id]]
    assert len(replies) == 4 and supervised == expected


def test_one_iteration_writes_refreshed_pools_and_a_report(tmp_path):
    pool = seed_pool(SEED_SET)
    teacher_answers = {"s1-q1": "red", "s1-q2": "2"}
    # the student is wrong on colour, right on counting; the judge sees it
    student = Scripted([("color", "blue"), ("how many", "2")])
    teacher = Scripted([
        ("answer 1 : blue", "2 9"), ("answer 2 : blue", "9 2"),          # colour: student 2, teacher 9
        ("answer 1 : 2\nanswer 2 : 2", "9 9"),                          # counting: a tie at 9
        ("same type as : what color", "what color is the object in the top left ?"),
        ("same type as : how many", "count every square in this picture ."),
    ])
    outputs = _outputs(tmp_path)
    report = assess_and_augment(teacher, student, 1, pool, pool, teacher_answers, "root", outputs, SETTINGS, seed=0,
                                checkpoints={"student": "models/s1"})
    assert report["checkpoints"] == {"student": "models/s1"}
    assert json.loads(open(outputs["report"]).read()) == report
    judgements = _jsonl(outputs["assessment"])
    difficulty = {j["id"]: j["S"] for j in judgements}
    assert difficulty["s1-q1"] == (abs(2 - 9) + 1) / 9          # eq. 6: difficult at tau 0.33
    assert abs(difficulty["s1-q2"] - 1 / 9) < 1e-9               # easy
    assert report["difficult"] == 1 and report["easy_sampled"] == 1
    assert report["changed"] is True and report["note"] is None
    tuning, cache = _jsonl(outputs["tuning_pool"]), _jsonl(outputs["cache_pool"])
    assert [r["parent"] for r in tuning] == ["s1-q1", "s1-q2"]
    assert cache == pool + tuning


# Everything is easy: the judge ties both answers at 9 (S = 1/9).
EASY_JUDGE = ("rate the two answers", "9 9")


def test_tau_1_augments_easy_instructions(tmp_path):
    pool = seed_pool(SEED_SET)
    answers = {"s1-q1": "red", "s1-q2": "2"}
    teacher = Scripted([EASY_JUDGE, ("same type as : what color", "what color is the object in the top left ?"),
                        ("same type as : how many", "count every square in this picture .")])
    student = Scripted([("color", "red"), ("how many", "2")])
    report = assess_and_augment(teacher, student, 1, pool, pool, answers, "root", _outputs(tmp_path),
                                {**SETTINGS, "tau": 1.0}, seed=0)
    # no difficult instruction: as many easy ones as the tuning pool held are augmented
    assert report["difficult"] == 0 and report["easy_sampled"] == len(pool) == report["generated"]
    assert report["valid"] == 2 and report["changed"] is True
    assert [r["parent"] for r in _jsonl(tmp_path / "tuning_pool.jsonl")] == ["s1-q1", "s1-q2"]


def test_an_iteration_without_valid_new_instructions_reports_no_change(tmp_path):
    pool = seed_pool(SEED_SET)
    answers = {"s1-q1": "red", "s1-q2": "2"}
    # the augmentor repeats its source: every candidate is rejected
    teacher = Scripted([EASY_JUDGE, ("same type as : what color", "what color is the circle ?"),
                        ("same type as : how many", "how many objects are there ?")])
    student = Scripted([("color", "red"), ("how many", "2")])
    report = assess_and_augment(teacher, student, 1, pool, pool, answers, "root", _outputs(tmp_path), SETTINGS,
                                seed=0)
    assert report["generated"] == 2 and report["valid"] == 0
    assert report["changed"] is False and "copy" in report["note"] and "2 generated, all rejected" in report["note"]
    assert _jsonl(tmp_path / "tuning_pool.jsonl") == [] and tuning_records([], answers, seed=0) == []


def test_the_student_answers_at_its_own_temperature(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    generation = config["generation"]
    generation["temperature"]["student"] = 0.9
    stage2 = {**config["comd"]["stage2"], "tau": 0.33, "assess_teacher_answers": "fresh"}
    settings = assessment_settings(stage2, generation)
    student = Scripted([("color", "red"), ("how many", "2")])
    teacher = Scripted([EASY_JUDGE, ("same type as", "what color is the big square ?"), ("color", "red"),
                        ("how many", "2")])
    pool = seed_pool(SEED_SET)
    assess_and_augment(teacher, student, 1, pool, pool, {"s1-q1": "red", "s1-q2": "2"}, "root", _outputs(tmp_path),
                       settings, seed=0)
    assert [r.temperature for r in student.requests] == [0.9, 0.9]
    teacher_answering = [r for r in teacher.requests if r.question in {p["question"] for p in pool}]
    assert [r.temperature for r in teacher_answering] == [generation["temperature"]["teacher"]] * 2


def _teacher_drawing(seed):
    """A sampling teacher: its answers carry the seed of the draw; it also judges and augments."""
    return Scripted([EASY_JUDGE, ("same type as", "what color is the big square ?"),
                     ("color", f"red (draw {seed})"), ("how many", f"2 (draw {seed})")])


@pytest.mark.parametrize("draw", ["fresh", "reused"])
def test_fresh_teacher_answers_are_a_new_draw_that_the_assessor_judges(tmp_path, draw):
    pool = seed_pool(SEED_SET)
    training, _ = teacher_answers_for(_teacher_drawing(0), pool, {}, "root", 0.5, 8)
    assert assessment_seed(0, 1) != 0
    teacher = _teacher_drawing(assessment_seed(0, 1))
    student = Scripted([("color", "blue"), ("how many", "2")])
    outputs = _outputs(tmp_path)
    report = assess_and_augment(teacher, student, 1, pool, pool, training, "root", outputs,
                                {**SETTINGS, "assess_teacher_answers": draw}, seed=0)
    judged = {j["id"]: j["teacher_answer"] for j in _jsonl(outputs["assessment"])}
    written = _jsonl(outputs["assessment_teacher_answers"])
    assert {r["id"]: r["answer"] for r in written} == judged and {r["draw"] for r in written} == {draw}
    assert {j["teacher_answer_draw"] for j in _jsonl(outputs["assessment"])} == {draw}
    assert report["teacher_answer_draw"] == draw
    if draw == "fresh":
        fresh = assessment_seed(0, 1)
        assert judged == {"s1-q1": f"red (draw {fresh})", "s1-q2": f"2 (draw {fresh})"}
        assert all(judged[key] != training[key] for key in judged)
        assert teacher.prompts[:2] == [r["question"] for r in pool]  # the teacher answered before judging
    else:
        assert judged == training


def test_an_unknown_teacher_answer_draw_is_an_error(tmp_path):
    pool = seed_pool(SEED_SET)
    with pytest.raises(ValueError, match="assess_teacher_answers"):
        assess_and_augment(Scripted([]), Scripted([]), 1, pool, pool, {}, "root", _outputs(tmp_path),
                           {**SETTINGS, "assess_teacher_answers": "sometimes"}, seed=0)


def test_the_teacher_answers_only_instructions_new_to_the_cache_pool():
    pool = seed_pool(SEED_SET)
    teacher = Scripted([("color", "blue"), ("how many", "3")])
    answers, generated = teacher_answers_for(teacher, pool, {pool[0]["id"]: "red"}, "root", 0.5, 8)
    assert answers == {pool[0]["id"]: "red", pool[1]["id"]: "3"} and generated == 1
    assert teacher.prompts == [pool[1]["question"]]
    answers, generated = teacher_answers_for(teacher, pool, answers, "root", 0.5, 8)
    assert generated == 0 and len(teacher.prompts) == 1


def test_answer_all_pairs_each_instruction_with_its_answer():
    pool = seed_pool(SEED_SET)
    answers = answer_all(Scripted([("color", "red"), ("how many", "2")]), pool, "root", 0.5, 8)
    assert answers == {"s1-q1": "red", "s1-q2": "2"}


def test_assessment_draws_are_seeded_apart_from_every_runs_training_draws():
    training_seeds = range(10)
    drawn = [assessment_seed(seed, k) for seed in training_seeds for k in range(1, 5)]
    assert len(set(drawn)) == len(drawn) and not set(drawn) & set(training_seeds)
    assert all(0 <= value < 2**31 for value in drawn) and assessment_seed(3, 2) == assessment_seed(3, 2)


def test_a_judge_that_fails_on_every_instruction_stops_the_iteration(tmp_path):
    pool = seed_pool(SEED_SET)
    student = Scripted([("", "blue")])
    teacher = Scripted([("rate the two answers", "no idea"), ("", "what color is it ?")])
    outputs = _outputs(tmp_path)
    with pytest.raises(JudgeFailedError, match=r"iteration 2: the judge failed on all 2 instructions of the cache pool "
                                               r"\(1 retries each; first: 's1-q1', "):
        assess_and_augment(teacher, student, 2, pool, pool, {"s1-q1": "red", "s1-q2": "2"}, "root", outputs,
                           SETTINGS, seed=0)
    assert not any(path.exists() for path in outputs.values()), "nothing written"
    # one parsed judgement is enough to go on
    teacher = Scripted([("rate the two answers", "5 5"), ("", "what color is it ?")])
    teacher.rules.insert(0, ("question : how many", "no idea"))  # the counting judgement fails
    report = assess_and_augment(teacher, student, 2, pool, pool, {"s1-q1": "red", "s1-q2": "2"}, "root", outputs,
                                SETTINGS, seed=0)
    assert report["judge_failures"] == 1
