"""Preference pairs: sampled responses ranked by a judge, CoMD's assessments, rejects and oracle agreement."""

from collections.abc import Sequence

import pytest

from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.mod.preference import (
    COMD_ASSESSMENT,
    STUDENT_SAMPLES,
    oracle_agreement,
    pairs_from_comd_assessment,
    pairs_from_student_samples,
    preference_pairs,
)

SCENE = {"scene_id": "hand-0", "image": "images/0.png", "objects": [
    {"shape": "circle", "color": "red", "size": "large", "row": 0, "col": 0, "text": "cat"},
    {"shape": "square", "color": "blue", "size": "small", "row": 0, "col": 1, "text": None}]}
QUESTION = "what color is the circle ?"


def comparison(prompt_id, responses, scores, reason=None):
    return {"id": prompt_id, "image": "images/0.png", "question": QUESTION, "responses": responses,
            "scores": scores, "reason": reason}


def test_pairs_take_the_best_and_worst_response_and_reject_ties_with_the_reason():
    comparisons = [comparison("clear", ["red", "blue"], [8.0, 3.0]),
                   comparison("tied", ["red", "the red ."], [7.5, 7.5]),
                   comparison("failed", ["red", "blue"], None, reason="judge output unparsable after 3 attempt(s)"),
                   comparison("same", ["red"], None),
                   comparison("three", ["blue", "red", "the red ."], [2.0, 9.0, 9.0])]
    pairs, rejects = preference_pairs(comparisons, STUDENT_SAMPLES)
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs] == [("clear", "red", "blue"),
                                                                        ("three", "red", "blue")]
    assert pairs[0] == {"id": "clear", "image": "images/0.png", "question": QUESTION, "chosen": "red",
                        "rejected": "blue", "chosen_score": 8.0, "rejected_score": 3.0, "source": STUDENT_SAMPLES}
    assert rejects.counts == {"identical_responses": 1, "tie": 1, "unparsable_judgement": 1}
    by_reason = {reject["reason"]: reject["record"]["id"] for reject in rejects.rejects}
    assert by_reason == {"tie": "tied", "unparsable_judgement": "failed", "identical_responses": "same"}


def test_comd_assessments_give_pairs_of_the_teacher_and_student_answer():
    def assessment(record_id, r_teacher, r_student):
        return {"id": record_id, "image": "images/0.png", "question": QUESTION, "teacher_answer": "red",
                "student_answer": "blue", "R_T": r_teacher, "R_S": r_student, "S": 0.5, "difficult": True}

    judgements = [assessment("t", 9.0, 2.5), assessment("s", 3.0, 6.0), assessment("tie", 5.0, 5.0)]
    failures = [{"id": "f", "image": "images/0.png", "question": QUESTION, "teacher_answer": "red",
                 "student_answer": "blue", "reason": "judge output unparsable after 1 attempt(s)"}]
    pairs, rejects = pairs_from_comd_assessment(judgements, failures)
    assert [(p["id"], p["chosen"], p["rejected"], p["source"]) for p in pairs] == [
        ("t", "red", "blue", COMD_ASSESSMENT), ("s", "blue", "red", COMD_ASSESSMENT)]
    assert rejects.counts == {"tie": 1, "unparsable_judgement": 1}


class ScriptedStudent(GenerationBackend):
    """Replies to request `<prompt id>#<sample>` from a script of samples per prompt."""

    def __init__(self, samples: dict[str, list[str]]):
        self.samples = samples
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        self.requests += requests
        return [self.samples[request.id.split("#")[0]][int(request.id.split("#")[1])] for request in requests]


class TableJudge(GenerationBackend):
    """Scores answers from a table, plus 1 for position 1 (a bias order averaging cancels); unparsable for 'broken'."""

    SCORES = {"red": 9, "blue": 3, "green": 5}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        replies = []
        for request in requests:
            lines = dict(line.split(" : ", 1) for line in request.question.splitlines() if " : " in line)
            if "broken" in lines["question"]:
                replies.append("i cannot say")
                continue
            replies.append(f"{self.SCORES[lines['answer 1']] + 1} {self.SCORES[lines['answer 2']]}")
        return replies


def test_student_samples_ranked_by_the_judge():
    prompts = [{"id": "q1", "image": "images/0.png", "question": QUESTION},
               {"id": "q2", "image": "images/0.png", "question": "what color is the square ?"},
               {"id": "q3", "image": "images/0.png", "question": "a broken question"}]
    student = ScriptedStudent({"q1": ["blue", "red", "green", "red"], "q2": ["blue"] * 4,
                               "q3": ["red", "blue", "red", "red"]})
    pairs, rejects = pairs_from_student_samples(student, TableJudge(), prompts, "root", samples_per_prompt=4,
                                                temperature=0.7, judge_temperature=0.0, max_new_tokens=8,
                                                max_retries=1)
    assert len(student.requests) == 12 and {request.temperature for request in student.requests} == {0.7}
    assert str(student.requests[0].image) == "root/images/0.png"
    # red: 9.5 against blue and against green (position bias cancelled), blue: 3.5, green: 5.5
    assert pairs == [{"id": "q1", "image": "images/0.png", "question": QUESTION, "chosen": "red", "rejected": "blue",
                      "chosen_score": 9.5, "rejected_score": 3.5, "source": STUDENT_SAMPLES}]
    assert rejects.counts == {"identical_responses": 1, "unparsable_judgement": 1}
    failed = next(reject["record"] for reject in rejects.rejects if reject["reason"] == "unparsable_judgement")
    assert failed["id"] == "q3" and "unparsable after 2 attempt(s)" in failed["reason"]


def test_a_single_sample_cannot_make_a_pair():
    with pytest.raises(ValueError, match=">= 2 samples"):
        pairs_from_student_samples(ScriptedStudent({}), TableJudge(), [], "root", samples_per_prompt=1,
                                   temperature=0.7, judge_temperature=0.0, max_new_tokens=8, max_retries=0)


def test_oracle_agreement_counts_pairs_the_oracle_decides():
    pair = {"image": "images/0.png", "question": QUESTION}
    pairs = [{**pair, "chosen": "red", "rejected": "blue"}, {**pair, "chosen": "red or blue", "rejected": "red"},
             {**pair, "chosen": "red", "rejected": "the red ."}, {**pair, "chosen": "the answer is red",
                                                                   "rejected": "blue"}]
    assert oracle_agreement(pairs, [SCENE]) == {"pairs": 4, "oracle_prefers_chosen": 2, "oracle_prefers_rejected": 1,
                                                "oracle_ties": 1, "agreement": 2 / 3}
    assert oracle_agreement([], [SCENE])["agreement"] is None
