"""Open-ended judges: the oracle reference judge and a model (the teacher) as judge."""

from collections.abc import Sequence

import pytest
from conftest import sample_items

from mmdistill.evaluation import summarize
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.judges import model_judge, reference_judge
from mmdistill.toyworld.oracle import score_answer


class PromptJudge(GenerationBackend):
    """Scores 9 for an answer that equals the reference ("gold"), 3 otherwise, and 1 more for position 1
    (a position bias the order averaging must cancel); answers `garbage` where the question says so."""

    def __init__(self):
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        self.requests += requests
        replies = []
        for request in requests:
            lines = dict(line.split(" : ", 1) for line in request.question.splitlines() if " : " in line)
            if "unjudgeable" in lines["question"]:
                replies.append("no scores here")
                continue
            first, second = (9 if lines[key] == "gold" else 3 for key in ("answer 1", "answer 2"))
            replies.append(f"{first + 1} {second}")
        return replies


def open_items():
    items = sample_items("open", 3)
    for item in items:
        item["answer"] = "gold"
    items[2]["question"] = "an unjudgeable question"
    return items


def test_model_judge_averages_both_orders_against_the_reference():
    backend = PromptJudge()
    verdicts = model_judge(backend, "root", temperature=0.5, max_new_tokens=8, max_retries=1)(
        open_items(), ["gold", "wrong", "gold"])
    assert verdicts[0]["score"] == pytest.approx(9.5) and verdicts[0]["reference_score"] == pytest.approx(9.5)
    assert verdicts[1]["score"] == pytest.approx(3.5) and verdicts[1]["reference_score"] == pytest.approx(9.5)
    assert {entry["order"] for entry in verdicts[0]["judgements"]} == {"student_first", "teacher_first"}
    assert verdicts[2]["score"] is None and "unparsable after 2 attempt(s)" in verdicts[2]["reason"]
    assert len(verdicts[2]["judgements"][0]["outputs"]) == 2  # the first try and one retry
    assert all(str(request.image).startswith("root/") for request in backend.requests)


def test_model_judge_failures_are_counted_in_the_score():
    judge = model_judge(PromptJudge(), "root", temperature=0.5, max_new_tokens=8, max_retries=0)
    result = summarize("open", open_items(), ["gold", "wrong", "gold"], seed=0, judge=judge)
    assert result["n"] == 2 and result["judge_failures"] == 1
    assert result["score"] == pytest.approx((100 * 8.5 / 9 + 100 * 2.5 / 9) / 2)


def test_reference_judge_uses_the_oracle_and_names_unknown_images():
    scene = {"image": "images/0.png", "objects": [{"color": "red", "shape": "circle", "size": "big", "cell": [0, 0],
                                                   "text": None}], "grid": 2}
    item = {"id": "o1", "image": "images/0.png", "question": "what color is the circle ?", "answer": "red"}
    verdict = reference_judge([scene])([item], ["red"])
    assert verdict == [{"score": float(score_answer(scene, item["question"], "red"))}]
    with pytest.raises(KeyError, match="o2.*images/9.png"):
        reference_judge([scene])([{**item, "id": "o2", "image": "images/9.png"}], ["red"])
