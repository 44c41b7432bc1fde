"""File-level orchestration of a CoMD iteration, with scripted backends instead of models."""

import json

from mmdistill.comd import seed_pool
from mmdistill.comd_loop import answer_all, assess_and_augment, teacher_answers_for, tuning_records
from mmdistill.generation import GenerationBackend

SEED_SET = [{"id": "s1", "image": "images/a.png", "tasks": ["color", "count"], "conversations": [
    {"from": "human", "value": "<image>\nwhat color is the circle ?"}, {"from": "gpt", "value": "red"},
    {"from": "human", "value": "how many objects are there ?"}, {"from": "gpt", "value": "2"}]}]


class Scripted(GenerationBackend):
    """Answers by the first rule whose key occurs in the prompt."""

    def __init__(self, rules):
        self.rules = rules
        self.prompts = []

    def generate(self, requests):
        self.prompts += [r.question for r in requests]
        return [next(reply for key, reply in self.rules if key in r.question) for r in requests]


def test_tuning_records_pair_each_question_with_the_teacher_answer():
    pool = seed_pool(SEED_SET)
    answers = answer_all(Scripted([("color", "red"), ("how many", "2")]), pool, "root", 0.5, 8)
    records = tuning_records(pool, answers)
    assert [r["conversations"][1]["value"] for r in records] == ["red", "2"]
    assert records[0]["conversations"][0]["value"] == "<image>\nwhat color is the circle ?"


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
    outputs = {name: tmp_path / f"{name}.jsonl" for name in
               ("assessment", "judge_failures", "tuning_pool", "cache_pool", "rejects", "report")}
    settings = {"tau": 0.33, "rouge_l_threshold": 0.7, "judge_max_retries": 1, "max_new_tokens": 16,
                "temperature": {"student": 0.5, "assessor": 0.5, "augmentor": 0.5}}
    report = assess_and_augment(teacher, student, 1, pool, pool, teacher_answers, "root", outputs, settings, seed=0,
                                checkpoints={"student": "models/s1"})
    assert report["checkpoints"] == {"student": "models/s1"}
    assert json.loads(open(outputs["report"]).read()) == report
    judgements = [json.loads(line) for line in open(outputs["assessment"])]
    difficulty = {j["id"]: j["S"] for j in judgements}
    assert difficulty["s1-q1"] == (abs(2 - 9) + 1) / 9          # eq. 6: difficult at tau 0.33
    assert abs(difficulty["s1-q2"] - 1 / 9) < 1e-9               # easy
    assert report["difficult"] == 1 and report["easy_sampled"] == 1
    tuning = [json.loads(line) for line in open(outputs["tuning_pool"])]
    cache = [json.loads(line) for line in open(outputs["cache_pool"])]
    assert [r["parent"] for r in tuning] == ["s1-q1", "s1-q2"]
    assert cache == pool + tuning


def test_the_teacher_answers_only_instructions_new_to_the_cache_pool():
    pool = seed_pool(SEED_SET)
    teacher = Scripted([("color", "blue"), ("how many", "3")])
    answers, generated = teacher_answers_for(teacher, pool, {pool[0]["id"]: "red"}, "root", 0.5, 8)
    assert answers == {pool[0]["id"]: "red", pool[1]["id"]: "3"} and generated == 1
    assert teacher.prompts == [pool[1]["question"]]
    answers, generated = teacher_answers_for(teacher, pool, answers, "root", 0.5, 8)
    assert generated == 0 and len(teacher.prompts) == 1
