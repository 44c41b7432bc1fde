"""The data of the runs CoMD is compared with: the unidirectional baseline and no stage 1."""

import pytest

from mmdistill.comd.baselines import answer_count, unidirectional_records, without_stage1_records


def conversation(turns):
    return [{"from": speaker, "value": f"{speaker} {t}"} for t in range(turns) for speaker in ("human", "gpt")]


def records(n, prefix="q", turns=1):
    return [{"id": f"{prefix}{i}", "image": f"img/{i}.png", "conversations": conversation(turns)} for i in range(n)]


def test_unidirectional_matches_the_comd_example_count_with_whole_passes_first():
    initial = records(4)
    data = unidirectional_records(initial, total_answers=10, seed=0)
    assert len(data) == 10
    assert [r["id"] for r in data[:8]] == ["q0", "q1", "q2", "q3"] * 2
    assert [r["repeat"] for r in data] == [0] * 4 + [1] * 4 + [2] * 2
    tail = [r["id"] for r in data[8:]]
    assert len(set(tail)) == 2 and set(tail) <= {"q0", "q1", "q2", "q3"}


def test_unidirectional_remainder_is_seeded():
    initial = records(50)
    first = [r["id"] for r in unidirectional_records(initial, 75, seed=1)]
    assert first == [r["id"] for r in unidirectional_records(initial, 75, seed=1)]
    assert first != [r["id"] for r in unidirectional_records(initial, 75, seed=2)]


def test_unidirectional_fewer_examples_than_the_pool_takes_a_sample():
    data = unidirectional_records(records(10), total_answers=3, seed=0)
    assert len(data) == 3 and len({r["id"] for r in data}) == 3


def test_unidirectional_bad_requests():
    assert unidirectional_records([], 0, seed=0) == []
    with pytest.raises(ValueError, match="no initial answers"):
        unidirectional_records([], 5, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        unidirectional_records(records(2), -1, seed=0)


def test_unidirectional_counts_answers_of_multi_turn_conversations_and_cuts_the_last_one():
    initial = [{**record, "question_ids": [f"{record['id']}-{t}" for t in range(3)]} for record in records(4, turns=3)]
    data = unidirectional_records(initial, total_answers=17, seed=0)
    assert sum(answer_count(record) for record in data) == 17
    assert [record["repeat"] for record in data] == [0] * 4 + [1, 1]
    cut = data[-1]
    assert answer_count(cut) == 2 and len(cut["question_ids"]) == 2
    assert cut["conversations"] == conversation(3)[:4]


def test_without_stage1_concatenates_iterations_in_order():
    data = without_stage1_records([records(2, "a"), records(0, "b"), records(1, "c")])
    assert [(r["id"], r["iteration"]) for r in data] == [("a0", 1), ("a1", 1), ("c0", 3)]
