"""CoMD's competitive distillation stage (§3.3): pools, assessment, augmentation filter; no models."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mmdistill import roles
from mmdistill.comd.competitive import (
    TEXT_ONLY,
    STUDENT_FIRST,
    TEACHER_FIRST,
    assess,
    assessment_requests,
    augmentation_requests,
    candidates_from_outputs,
    difficulty,
    easy_sample_size,
    filter_new_instructions,
    group_by_image,
    instruction_record,
    is_difficult,
    iteration_report,
    merge_cache_pool,
    order_averaged_scores,
    replace_tuning_pool,
    rouge_l,
    sample_easy,
    scores_from_judgements,
    seed_pool,
    split_by_difficulty,
)
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.io import DataError, RejectLog
from mmdistill.roles import JudgeParseError


class ScriptedBackend(GenerationBackend):
    """Replies from a script: request id -> outputs for successive calls (the last one repeats)."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls: list[list[GenerationRequest]] = []
        self.seen: dict[str, int] = {}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        self.calls.append(list(requests))
        replies = []
        for request in requests:
            outputs = self.script[request.id]
            count = self.seen.get(request.id, 0)
            self.seen[request.id] = count + 1
            replies.append(outputs[min(count, len(outputs) - 1)])
        return replies


def instr(record_id, question, image="img/a.png", task=None, parent=None, iteration=0):
    return instruction_record(record_id, image, question, task, parent, iteration)


# ---------------------------------------------------------------- pools


def test_seed_pool_splits_a_multi_turn_record_and_drops_answers():
    record = {
        "id": "inst-s1", "image": "images/s1.png", "tasks": ["color", "count"],
        "conversations": [
            {"from": "human", "value": "<image>\nwhat color is the circle ?"}, {"from": "gpt", "value": "red"},
            {"from": "human", "value": "how many squares are there ?"}, {"from": "gpt", "value": "2"},
        ],
    }
    untagged = {
        "id": "real-7", "image": "coco/7.jpg",
        "conversations": [
            {"from": "human", "value": "how many circles are there ?\n<image>"}, {"from": "gpt", "value": "3"},
            {"from": "human", "value": "What is the man holding?"}, {"from": "gpt", "value": "an umbrella"},
        ],
    }
    pool = seed_pool([record, untagged])
    assert pool == [
        {"id": "inst-s1-q1", "image": "images/s1.png", "question": "what color is the circle ?", "task": "color",
         "parent": None, "iteration": 0},
        {"id": "inst-s1-q2", "image": "images/s1.png", "question": "how many squares are there ?", "task": "count",
         "parent": None, "iteration": 0},
        {"id": "real-7-q1", "image": "coco/7.jpg", "question": "how many circles are there ?", "task": "count",
         "parent": None, "iteration": 0},
        {"id": "real-7-q2", "image": "coco/7.jpg", "question": "What is the man holding?", "task": None,
         "parent": None, "iteration": 0},
    ]
    assert all("red" not in r["question"] and "answer" not in r for r in pool)


def test_seed_pool_rejects_mismatched_tasks_and_duplicate_ids():
    record = {"id": "r", "image": "i.png", "tasks": ["color"],
              "conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "a"},
                                {"from": "human", "value": "q2"}, {"from": "gpt", "value": "b"}]}
    with pytest.raises(ValueError, match="one task per turn"):
        seed_pool([record])
    single = {"id": "r", "image": "i.png", "conversations": record["conversations"][:2]}
    with pytest.raises(ValueError, match="'r-q1'"):
        seed_pool([single, single])


def test_text_only_records_go_to_the_rejects_and_an_empty_seed_set_stops():
    text_only = {"id": "t1", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    with_image = {"id": "r", "image": "i.png", "conversations": text_only["conversations"]}
    rejects = RejectLog()
    assert [r["id"] for r in seed_pool([text_only, with_image], rejects, source="seed.json")] == ["r-q1"]
    assert rejects.rejects == [{"reason": TEXT_ONLY, "source": "seed.json", "record": text_only}]
    with pytest.raises(DataError, match=r"seed.json: no questions about an image \(empty seed set\)"):
        seed_pool([], source="seed.json")
    with pytest.raises(DataError, match=r"\(empty seed set, 1 text-only records left out\)"):
        seed_pool([text_only], RejectLog(), source="seed.json")


def test_tuning_pool_is_replaced_and_cache_pool_merged():
    seed = [instr("a-q1", "what color is the circle ?"), instr("a-q2", "how many circles are there ?")]
    new = [instr("a-q1-it1", "what shape is the red object ?", parent="a-q1", iteration=1)]
    assert replace_tuning_pool(new) == new
    assert replace_tuning_pool([]) == []
    merged = merge_cache_pool(seed, new)
    assert [r["id"] for r in merged] == ["a-q1", "a-q2", "a-q1-it1"]
    assert [r["id"] for r in seed] == ["a-q1", "a-q2"]  # inputs untouched
    with pytest.raises(ValueError, match="'a-q2'"):
        merge_cache_pool(seed, [instr("a-q2", "anything else here")])
    with pytest.raises(ValueError, match="'x'"):
        merge_cache_pool(seed, [instr("x", "one two three"), instr("x", "four five six")])
    with pytest.raises(ValueError, match="'x'"):
        replace_tuning_pool([instr("x", "one two three"), instr("x", "four five six")])


# ---------------------------------------------------------------- difficulty (eq. 6)


def test_difficulty_paper_worked_example():
    # Formula as written: the 1/1 pair gets the HIGHER difficulty, unlike the paper's prose.
    assert difficulty(1, 1) == pytest.approx(1.0)
    assert difficulty(9, 9) == pytest.approx(1 / 9)
    assert is_difficult(difficulty(1, 1))
    assert not is_difficult(difficulty(9, 9))


@pytest.mark.parametrize("r_s, r_t, expected", [
    (5, 5, 0.2),  # equal scores: 1 / score
    (10, 10, 0.1),  # both at the maximum: the lowest possible difficulty
    (10, 1, 1.0),  # largest gap
    (1, 10, 1.0),  # symmetric
    (7.5, 6.0, 2.5 / 7.5),  # order-averaged scores are halves
    (4, 8, 5 / 8),
])
def test_difficulty_edges(r_s, r_t, expected):
    assert difficulty(r_s, r_t) == pytest.approx(expected)
    assert 0.1 <= difficulty(r_s, r_t) <= 1.0


@pytest.mark.parametrize("r_s, r_t", [(0, 5), (5, 0), (11, 5), (-1, 3), (float("nan"), 3), ("7", 3), (True, 3),
                                      (None, 3)])
def test_difficulty_rejects_invalid_scores(r_s, r_t):
    with pytest.raises(ValueError):
        difficulty(r_s, r_t)


def test_is_difficult_threshold_is_inclusive():
    assert is_difficult(0.33)
    assert not is_difficult(0.3299)
    assert is_difficult(0.5, tau=0.5) and not is_difficult(0.49, tau=0.5)


def test_tau_0_makes_everything_difficult_and_tau_1_everything_easy():
    # Table 4: tau = 0 is "w/o easy inst.", tau = 1 "w/o diff. inst.", even for S = 1 (a score of 1)
    assert difficulty(10, 1) == 1.0 and not is_difficult(1.0, tau=1)
    assert all(is_difficult(difficulty(r, r), tau=0) for r in (1, 5, 10))


# ---------------------------------------------------------------- assessment (eq. 5)


def test_swapped_order_averaging_worked_example():
    # Student first: student 6, teacher 9. Teacher first: teacher 8, student 3 (position bias: +1 for position 1).
    assert order_averaged_scores((6, 9), (8, 3)) == (4.5, 8.5)
    assert scores_from_judgements("6 9", "8 3\nthe first answer is better") == (4.5, 8.5)
    r_s, r_t = scores_from_judgements("6 9", "8 3")
    assert difficulty(r_s, r_t) == pytest.approx((4 + 1) / 8.5)
    with pytest.raises(JudgeParseError):
        scores_from_judgements("6 9", "the teacher wins")


def test_assessment_requests_swap_positions():
    instruction = instr("a-q1", "what color is the circle ?", image="images/a.png")
    sf, tf = assessment_requests(instruction, "teacher says red", "student says blue", temperature=0.0,
                                 image_root="/data", max_new_tokens=8)
    assert sf.question == roles.judge_prompt("what color is the circle ?", "student says blue", "teacher says red")
    assert tf.question == roles.judge_prompt("what color is the circle ?", "teacher says red", "student says blue")
    assert (sf.id, tf.id) == (f"a-q1/{STUDENT_FIRST}", f"a-q1/{TEACHER_FIRST}")
    assert sf.image == tf.image == "/data/images/a.png"
    assert sf.max_new_tokens == 8 and sf.temperature == 0.0


def _assessment_inputs():
    instructions = [instr("a", "what color is the circle ?"), instr("b", "how many circles are there ?")]
    teacher = {"a": "red", "b": "two"}
    student = {"a": "blue", "b": "two"}
    return instructions, teacher, student


def test_assess_scores_both_orders_in_one_batch():
    instructions, teacher, student = _assessment_inputs()
    backend = ScriptedBackend({"a/student_first": ["2 9"], "a/teacher_first": ["8 3"],
                               "b/student_first": ["9 9"], "b/teacher_first": ["9 9"]})
    judgements, failures = assess(backend, instructions, teacher, student, image_root=None, temperature=0.0,
                                  max_new_tokens=8, max_retries=2)
    assert failures == []
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 4
    a, b = judgements
    assert (a["R_S"], a["R_T"]) == (2.5, 8.5)
    assert a["S"] == pytest.approx(7 / 8.5) and a["difficult"] is True
    assert b["S"] == pytest.approx(1 / 9) and b["difficult"] is False
    entry = {e["order"]: e for e in a["judgements"]}
    assert entry[TEACHER_FIRST]["scores"] == {"student": 3.0, "teacher": 8.0}
    assert entry[STUDENT_FIRST]["prompt"] == roles.judge_prompt("what color is the circle ?", "blue", "red")
    assert entry[STUDENT_FIRST]["outputs"] == ["2 9"]
    assert (a["teacher_answer"], a["student_answer"]) == ("red", "blue")
    difficult, easy = split_by_difficulty(instructions, judgements)
    assert [r["id"] for r in difficult] == ["a"] and [r["id"] for r in easy] == ["b"]


def test_assess_retries_malformed_output_then_succeeds():
    instructions, teacher, student = _assessment_inputs()
    backend = ScriptedBackend({"a/student_first": ["answer 1 is worse", "11 2", "2 9"], "a/teacher_first": ["8 3"],
                               "b/student_first": ["9 9"], "b/teacher_first": ["9 9"]})
    judgements, failures = assess(backend, instructions, teacher, student, image_root=None, temperature=0.7,
                                  max_new_tokens=8, max_retries=2, retry_temperature=1.0)
    assert failures == []
    # first round batches all four requests; each retry re-generates only the failed one
    assert [len(call) for call in backend.calls] == [4, 1, 1]
    assert backend.calls[1][0].id == "a/student_first" and backend.calls[1][0].temperature == 1.0
    entry = {e["order"]: e for e in judgements[0]["judgements"]}
    assert entry[STUDENT_FIRST]["outputs"] == ["answer 1 is worse", "11 2", "2 9"]
    assert len(entry[STUDENT_FIRST]["errors"]) == 2
    assert (judgements[0]["R_S"], judgements[0]["R_T"]) == (2.5, 8.5)


def test_assess_records_always_malformed_as_failure_without_score():
    instructions, teacher, student = _assessment_inputs()
    backend = ScriptedBackend({"a/student_first": ["2 9"], "a/teacher_first": ["the teacher is better"],
                               "b/student_first": ["9 9"], "b/teacher_first": ["9 9"]})
    judgements, failures = assess(backend, instructions, teacher, student, image_root=None, temperature=0.7,
                                  max_new_tokens=8, max_retries=2)
    assert [j["id"] for j in judgements] == ["b"]
    assert len(failures) == 1
    failure = failures[0]
    assert failure["id"] == "a" and failure["failed_orders"] == [TEACHER_FIRST]
    assert "3 attempt" in failure["reason"] and "found 0" in failure["reason"]
    assert not {"R_S", "R_T", "S", "difficult"} & failure.keys()
    entry = {e["order"]: e for e in failure["judgements"]}
    assert entry[TEACHER_FIRST]["outputs"] == ["the teacher is better"] * 3 and entry[TEACHER_FIRST]["scores"] is None
    assert [len(call) for call in backend.calls] == [4, 1, 1]
    difficult, easy = split_by_difficulty(instructions, judgements)
    assert "a" not in {r["id"] for r in difficult + easy}  # never scored, neither difficult nor easy


def test_assess_with_no_retries_and_missing_answers():
    instructions, teacher, student = _assessment_inputs()
    backend = ScriptedBackend({"a/student_first": ["bad", "2 9"], "a/teacher_first": ["8 3"],
                               "b/student_first": ["9 9"], "b/teacher_first": ["9 9"]})
    judgements, failures = assess(backend, instructions, teacher, student, None, 0.0, 8, max_retries=0)
    assert len(backend.calls) == 1 and [f["id"] for f in failures] == ["a"]
    assert [j["id"] for j in judgements] == ["b"]
    with pytest.raises(ValueError, match="no student answer for instruction 'b'"):
        assess(backend, instructions, teacher, {"a": "x"}, None, 0.0, 8, 1)
    with pytest.raises(ValueError, match="max_retries"):
        assess(backend, instructions, teacher, student, None, 0.0, 8, -1)


# ---------------------------------------------------------------- augmentation


def test_sample_easy_is_seeded_and_takes_all_when_too_few():
    easy = [instr(f"e{k}", f"question number {k} here") for k in range(10)]
    first = sample_easy(easy, 4, seed=3)
    assert len(first) == 4 and len({r["id"] for r in first}) == 4
    assert first == sample_easy(easy, 4, seed=3)  # deterministic in the seed
    assert [r["id"] for r in first] == sorted((r["id"] for r in first), key=lambda i: int(i[1:]))  # input order
    assert any(sample_easy(easy, 4, seed=s) != first for s in range(4, 10))
    # fewer easy than difficult: all easy ones, no repeats
    assert sample_easy(easy[:3], 5, seed=0) == easy[:3]
    assert sample_easy(easy, 10, seed=0) == easy
    assert sample_easy(easy, 0, seed=0) == []
    with pytest.raises(ValueError):
        sample_easy(easy, -1, seed=0)


def test_easy_sample_size_matches_difficult_or_else_the_tuning_pool():
    assert easy_sample_size(3, 10) == 3  # the paper's balance
    assert easy_sample_size(0, 10) == 10  # nothing difficult (e.g. tau = 1): still augment easy ones
    assert easy_sample_size(0, 0) == 0


def test_rouge_l_f_measure():
    assert rouge_l("what color is the circle ?", "what color is the circle ?") == pytest.approx(1.0)
    assert rouge_l("what color is the circle ?", "What color is the circle?") == pytest.approx(1.0)
    assert rouge_l("a b c d e f g h i j", "a b c d e f g x y z") == pytest.approx(0.7)  # LCS 7 of 10 and 10
    assert rouge_l("red circle", "blue square") == 0.0
    assert rouge_l("", "anything") == 0.0


def test_augmentation_candidates_carry_parent_image_and_iteration():
    sources = [instr("a-q1", "what color is the circle ?", image="images/a.png", task="color")]
    (request,) = augmentation_requests(sources, image_root="/data", temperature=0.7, max_new_tokens=16)
    assert request.question == roles.augment_prompt("what color is the circle ?")
    assert request.image == "/data/images/a.png"
    (candidate,) = candidates_from_outputs(sources, ["<image>\n what color is the square ? "], iteration=2)
    assert candidate == {"id": "a-q1-it2", "image": "images/a.png", "question": "what color is the square ?",
                         "task": "color", "parent": "a-q1", "iteration": 2}
    with pytest.raises(ValueError):
        candidates_from_outputs(sources, [], iteration=1)


EXISTING = [
    instr("a-q1", "what color is the circle ?", task="color"),
    instr("a-q2", "how many circles are there ?", task="count"),
]


def cand(question, parent="a-q1", suffix="", image="img/a.png"):
    return instr(f"{parent}-it1{suffix}", question, image=image, parent=parent, iteration=1)


def test_filter_rejects_near_duplicate_and_accepts_novel():
    near = cand("what color is the big circle ?")
    novel = cand("what color is the small triangle in the top left corner ?", suffix="b")
    assert rouge_l(near["question"], "what color is the circle ?") >= 0.7
    assert max(rouge_l(novel["question"], r["question"]) for r in EXISTING) < 0.7
    valid, rejects = filter_new_instructions([near, novel], group_by_image(EXISTING))
    assert valid == [novel]
    assert rejects.counts == {"too_similar": 1}
    rejected = rejects.rejects[0]["record"]
    assert rejected["id"] == near["id"] and rejected["most_similar"] == "what color is the circle ?"
    assert rejected["rouge_l"] >= 0.7


def test_filter_compares_against_accepted_new_instructions_and_only_same_image():
    first = cand("what color is the small triangle in the top left corner ?", suffix="a")
    second = cand("what color is the small triangle in the top right corner ?", suffix="b")
    assert rouge_l(first["question"], second["question"]) >= 0.7
    valid, rejects = filter_new_instructions([first, second], group_by_image(EXISTING))
    assert valid == [first] and rejects.counts == {"too_similar": 1}
    assert rejects.rejects[0]["record"]["most_similar"] == first["question"]
    # the same text on another image is judged only against that image's instructions
    other = [instr("b-q1", "is there a red square in the image ?", image="img/b.png", task="exist")]
    third = cand(second["question"], parent="b-q1", image="img/b.png")
    valid, rejects = filter_new_instructions([first, third], group_by_image(EXISTING + other))
    assert valid == [first, third] and len(rejects) == 0


def test_filter_threshold_is_exclusive():
    existing = [instr("x-q1", "a b c d e f g h i j")]
    candidate = cand("a b c d e f g x y z", parent="x-q1")
    assert rouge_l(candidate["question"], existing[0]["question"]) == pytest.approx(0.7)
    valid, rejects = filter_new_instructions([candidate], group_by_image(existing), threshold=0.7)
    assert valid == [] and rejects.counts == {"too_similar": 1}
    valid, rejects = filter_new_instructions([candidate], group_by_image(existing), threshold=0.7001)
    assert valid == [candidate] and len(rejects) == 0


def test_filter_rejection_reasons_are_counted():
    candidates = [
        cand("", suffix="1"),
        cand("   ", suffix="2"),
        cand("this question is unanswerable", suffix="3"),
        cand("I'm sorry, I cannot answer that about the image.", suffix="4"),
        cand("color ?", suffix="5"),
        cand("circle circle circle circle what", suffix="6"),
        cand("What color is the circle?", suffix="7"),  # the source, up to case and punctuation
        cand("what shape is the red object ?", suffix="8"),  # a shape question from a color question
        cand("describe the weather near the scene please", suffix="9"),  # type unknown: not checked by default
    ]
    valid, rejects = filter_new_instructions(candidates, group_by_image(EXISTING))
    assert [c["id"] for c in valid] == ["a-q1-it19"]
    assert rejects.counts == {"degenerate": 2, "empty": 2, "same_as_source": 1, "task_type_changed": 1,
                              "unanswerable": 2}
    assert len(valid) + len(rejects) == len(candidates)
    changed = next(r["record"] for r in rejects.rejects if r["reason"] == "task_type_changed")
    assert (changed["source_task"], changed["detected_task"]) == ("color", "shape")
    valid, rejects = filter_new_instructions(candidates[-1:], group_by_image(EXISTING), require_known_task=True)
    assert valid == [] and rejects.counts == {"task_type_unknown": 1}


def test_filter_same_type_question_is_valid_and_unknown_parent_is_an_error():
    same_type = cand("what color is the small triangle in the top left corner ?")
    valid, _ = filter_new_instructions([same_type], group_by_image(EXISTING))
    assert valid == [same_type]
    with pytest.raises(ValueError, match="parent 'nope'"):
        filter_new_instructions([cand("what color is the big square ?", parent="nope")], group_by_image(EXISTING))


def test_iteration_report_counts():
    instructions, teacher, student = _assessment_inputs()
    backend = ScriptedBackend({"a/student_first": ["2 9"], "a/teacher_first": ["8 3"],
                               "b/student_first": ["9 9"], "b/teacher_first": ["bad"]})
    judgements, failures = assess(backend, instructions, teacher, student, None, 0.0, 8, 1)
    candidates = [cand("what color is the circle ?"),
                  cand("what color is the small triangle in the corner ?", suffix="b")]
    valid, rejects = filter_new_instructions(candidates, group_by_image(EXISTING))
    tuning = replace_tuning_pool(valid)
    cache = merge_cache_pool(EXISTING, valid)
    report = iteration_report(1, tuning, cache, judgements, failures, [], candidates, valid, rejects)
    assert report == {
        "iteration": 1, "tuning_pool_size": 1, "cache_pool_size": 3, "assessed": 2, "scored": 1,
        "difficult": 1, "easy": 0, "easy_sampled": 0, "judge_failures": 1,
        "judge_failed_orders": {TEACHER_FIRST: 1}, "generated": 2, "valid": 1, "rejected": 1,
        "rejected_by_reason": {"same_as_source": 1}, "changed": True, "note": None,
    }
    with pytest.raises(ValueError, match="2 candidates"):
        iteration_report(1, tuning, cache, judgements, failures, [], candidates, [], rejects)


def test_iteration_report_says_when_nothing_changed():
    candidates = [cand("what color is the circle ?")]
    valid, rejects = filter_new_instructions(candidates, group_by_image(EXISTING))
    report = iteration_report(2, [], EXISTING, [], [], [], candidates, valid, rejects)
    assert report["changed"] is False
    assert report["note"] == ("no valid new instruction (1 generated, all rejected): the next tuning pool is "
                              "empty, so iteration 3's student is a copy of iteration 2's")
    report = iteration_report(2, [], EXISTING, [], [], [], [], [], RejectLog())
    assert report["changed"] is False and "nothing was augmented" in report["note"]
