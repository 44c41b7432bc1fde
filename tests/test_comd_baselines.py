"""The data of the runs CoMD is compared with: the unidirectional baseline and no stage 1."""

import pytest

from mmdistill.comd_baselines import unidirectional_records, without_stage1_records


def records(n, prefix="q"):
    return [{"id": f"{prefix}{i}", "image": f"img/{i}.png", "conversations": []} for i in range(n)]


def test_unidirectional_matches_the_comd_example_count_with_whole_passes_first():
    initial = records(4)
    data = unidirectional_records(initial, total_examples=10, seed=0)
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
    data = unidirectional_records(records(10), total_examples=3, seed=0)
    assert len(data) == 3 and len({r["id"] for r in data}) == 3


def test_unidirectional_bad_requests():
    assert unidirectional_records([], 0, seed=0) == []
    with pytest.raises(ValueError, match="no initial records"):
        unidirectional_records([], 5, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        unidirectional_records(records(2), -1, seed=0)


def test_without_stage1_concatenates_iterations_in_order():
    data = without_stage1_records([records(2, "a"), records(0, "b"), records(1, "c")])
    assert [(r["id"], r["iteration"]) for r in data] == [("a0", 1), ("a1", 1), ("c0", 3)]
