"""CoMD's tables 1-5, Figure 4 and LLaVA-MoD's tables 2-8 from per-seed score records: pooling over seeds, columns, n/a cells, CSV and Markdown."""

import csv

import pytest

from mmdistill.evaluation.intervals import bootstrap_interval, hierarchical_bootstrap_interval
from mmdistill.evaluation.scoring import judge_score_to_percent
from mmdistill.tables import (
    AVERAGE,
    GAP_CLOSED,
    average_cell,
    benchmark_average_cell,
    benchmark_table,
    benchmarks_table,
    category_columns,
    comparison_table,
    gap_closed,
    iteration_series,
    markdown,
    plot_iterations,
    seed_cell,
    write_table,
)


def record(correct, axes=None, **fields):
    """A multiple-choice score record: one sample per entry of `correct`, with its categories (`axes`:
    {axis: value per sample}), its score and its per-category breakdown (for the column names)."""
    axes = axes or {}
    samples = [{"id": str(i), "correct": c, **{axis: values[i] for axis, values in axes.items()}}
               for i, c in enumerate(correct)]
    by_category = {axis: {value: {} for value in values} for axis, values in axes.items()}
    return {"score": 100 * sum(correct) / len(correct), "n": len(correct), "by_category": by_category,
            "samples": samples, **fields}


def judged(scores, **fields):
    """An open-ended score record from judge scores (1-10, None: a failed judgement)."""
    samples = [{"id": str(i), "judge_score": s, "category": "conversation"} for i, s in enumerate(scores)]
    return {"by_category": {"category": {"conversation": {}}}, "samples": samples, **fields}


TOY_AXES = {"subject": ["attributes", "spatial", "attributes", "spatial"], "context_modality": ["txt"] * 4,
            "grade": ["easy", "easy", "hard", "hard"]}


def test_scienceqa_values_get_the_paper_columns_in_its_order():
    axes = {"subject": ["social science", "natural science"], "context_modality": ["no", "img"],
            "grade": ["7-12", "1-6"]}
    names = [name for _, _, name in category_columns("mc", [record([True, False], axes)])]
    assert names == ["NAT", "SOC", "IMG", "NO", "G1-6", "G7-12"]


def test_toy_values_keep_their_names_sorted_within_each_axis():
    names = [name for _, _, name in category_columns("mc", [record([True] * 4, TOY_AXES)])]
    assert names == ["attributes", "spatial", "TXT", "easy", "hard"]


def test_a_cell_is_the_mean_over_seeds_and_the_csv_keeps_each_seed(tmp_path):
    # seed 0: 3 of 4 right (75%), seed 1: 1 of 4 (25%): mean 50%
    per_seed = {0: record([True, True, True, False], TOY_AXES), 1: record([False, True, False, False], TOY_AXES)}
    teacher = {None: record([True, True, True, True], TOY_AXES)}
    table = benchmark_table("t", "mc", [("teacher", "teacher", teacher), ("CoMD", "comd-main-iter1", per_seed),
                                        ("baseline", "unidirectional", {})], extra={"seed": 3})
    assert table.columns == ["attributes", "spatial", "TXT", "easy", "hard", "Average"]
    teacher_row, comd, baseline = table.rows
    average = comd.cells["Average"]
    assert average["score"] == pytest.approx(50.0) and average["n"] == 4 and average["n_seeds"] == 2
    assert average["per_seed"] == {0: pytest.approx(75.0), 1: pytest.approx(25.0)}
    # the category `attributes` holds samples 0 and 2: seed 0 has both right, seed 1 neither
    assert comd.cells["attributes"]["score"] == pytest.approx(50.0) and comd.cells["attributes"]["n"] == 2
    assert teacher_row.cells["Average"]["score"] == 100.0 and teacher_row.cells["Average"]["n_seeds"] == 1
    assert all(value is None for value in baseline.cells.values())
    assert comd.extra == {"seed": 3, "seeds": "0 1", "n_seeds": 2} and teacher_row.extra["seeds"] == ""

    write_table(table, tmp_path / "t.csv", tmp_path / "t.md")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert list(rows[0])[:9] == ["row", "model", "attributes", "attributes_n", "attributes_ci_low",
                                 "attributes_ci_high", "attributes_seed0", "attributes_seed1", "spatial"]
    assert rows[1]["Average"] == "50.0" and rows[1]["Average_n"] == "4"
    assert (rows[1]["Average_seed0"], rows[1]["Average_seed1"]) == ("75.0", "25.0")
    assert float(rows[1]["Average_ci_low"]) <= 50.0 <= float(rows[1]["Average_ci_high"])
    assert rows[0]["Average_seed0"] == "n/a" and rows[0]["n_seeds"] == "1" and rows[0]["seed"] == "3"
    assert rows[2]["Average"] == "n/a" and rows[2]["Average_n"] == "n/a"
    text = (tmp_path / "t.md").read_text()
    assert "| teacher | 100.0 [100.0, 100.0] n=2 |" in text and "| baseline | n/a |" in text
    assert "| CoMD | 50.0 [" in text and "] n=2×2 |" in text
    assert "two-level bootstrap" in text


def test_the_mean_over_seeds_weighs_each_seed_the_same():
    # seed 0 judged 2 items, seed 1 four (two judgements failed on seed 1's six): 50% and 100%
    per_seed = {0: judged([1, 10]), 1: judged([10, 10, None, 10, 10, None])}
    entry = average_cell(per_seed, seed=0)
    assert entry["score"] == pytest.approx(75.0) and entry["n"] == 2 and entry["n_seeds"] == 2


def samples(values):
    return values, [1.0] * len(values)


def test_with_one_seed_the_interval_is_the_item_bootstrap():
    values = [100.0, 0.0, 100.0, 100.0, 0.0, 100.0, 0.0, 100.0]
    entry = seed_cell({None: samples(values)}, seed=7)
    assert entry["ci95"] == pytest.approx(list(bootstrap_interval(values, seed=7)))
    assert hierarchical_bootstrap_interval([values], seed=7) == bootstrap_interval(values, seed=7)


def test_the_interval_widens_when_seeds_disagree():
    agree = {0: samples([100.0] * 6 + [0.0] * 4), 1: samples([100.0] * 6 + [0.0] * 4)}
    disagree = {0: samples([100.0] * 10), 1: samples([100.0] * 2 + [0.0] * 8)}
    same, apart = seed_cell(agree, seed=0), seed_cell(disagree, seed=0)
    assert same["score"] == apart["score"] == pytest.approx(60.0)
    width = [entry["ci95"][1] - entry["ci95"][0] for entry in (same, apart)]
    assert width[1] > width[0] * 1.5
    # seeds that agree: about the item interval of one seed's items (seed spread adds nothing)
    one = seed_cell({0: agree[0]}, seed=0)
    assert width[0] <= one["ci95"][1] - one["ci95"][0] + 1e-9


def test_weighted_samples_pool_a_rate_over_mentions():
    # per response: 100 × hallucinated mentions, weighted by its mentions: 1 of 4 mentions, then 3 of 4
    entry = seed_cell({0: ([100.0, 0.0], [2.0, 2.0]), 1: ([300.0], [4.0])}, seed=0)
    assert entry["per_seed"] == {0: 25.0, 1: 75.0} and entry["score"] == 50.0 and entry["n"] == 4
    assert seed_cell({0: ([], []), 1: ([0.0], [0.0])}, seed=0) is None, "nothing to count in any seed"


def test_open_ended_rows_name_their_judge_and_failed_judgements_are_left_out():
    table = benchmark_table("t", "open", [("m", "m", {0: judged([10, None], judge="teacher")})])
    assert table.rows[0].extra == {"seeds": "0", "n_seeds": 1, "judge": "teacher"}
    assert table.rows[0].cells["Average"]["score"] == 100.0 and table.rows[0].cells["Average"]["n"] == 1


def test_a_category_nobody_could_judge_is_na():
    assert benchmark_table("t", "open", [("m", "m", {0: judged([None])})]).rows[0].cells["conversation"] is None


def test_benchmarks_table_pools_each_benchmarks_average():
    per_seed = {0: record([True, False]), 1: record([True, True])}
    table = benchmarks_table("t", ["mc", "open"], [("tau = 0.33", "comd-main-iter4", {"mc": per_seed}, {"tau": 0.33})])
    assert table.columns == ["MC", "Open-ended"]
    cells = table.rows[0].cells
    assert cells["MC"]["score"] == pytest.approx(75.0) and cells["Open-ended"] is None
    assert table.rows[0].extra == {"tau": 0.33, "seeds": "0 1", "n_seeds": 2}
    assert "| tau = 0.33 | 75.0 [" in markdown(table) and "n=2×2 | n/a | 0.33 | 0 1 | 2 |" in markdown(table)


def test_iteration_series_and_figure_show_each_seed(tmp_path):
    cells = {"mc": {0: average_cell({0: record([False, False]), 1: record([True, False])}, seed=0),
                    1: average_cell({0: record([True, True]), 1: record([True, False])}, seed=0), 2: None}}
    header, rows = iteration_series(cells)
    assert header == ["benchmark", "iteration", "score", "n", "ci_low", "ci_high", "seed0", "seed1", "n_seeds"]
    assert [(r["iteration"], r["score"], r["seed0"], r["seed1"]) for r in rows] == [
        (0, 25.0, 0.0, 50.0), (1, 75.0, 100.0, 50.0), (2, "n/a", "n/a", "n/a")]
    teacher = {"mc": average_cell({None: record([True, True, False])}, seed=0)}
    plot_iterations(cells, {"teacher": teacher}, {"mc": 25.0}, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("bad", ["gqa"])
def test_unknown_benchmark_is_an_error(bad):
    with pytest.raises(ValueError, match="unknown benchmark"):
        category_columns(bad, [])


def test_table_three_pools_hallucination_over_seeds_and_rows_name_their_protocol():
    def described(counts):  # (mentions, hallucinated) per detail description
        return {**judged([10] * len(counts), judge="reference", protocol="generation"),
                "hallucination": {"responses": len(counts)},
                "samples": [{"id": str(i), "judge_score": 10, "category": "detail description", "object_mentions": m,
                             "hallucinated_mentions": h} for i, (m, h) in enumerate(counts)],
                "by_category": {"category": {"detail description": {}}}}

    # seed 0: 1 of 2 responses hallucinate, 1 of 4 mentions; seed 1: 0 of 2, 0 of 2
    per_seed = {0: described([(2, 1), (2, 0)]), 1: described([(1, 0), (1, 0)])}
    table = benchmark_table("t", "open", [("CoMD", "comd", per_seed), ("stage 1", "student_stage1", {})])
    assert table.columns == ["detail description", "Average", "hallucinated responses", "hallucinated mentions"]
    comd, missing = table.rows
    assert comd.cells["hallucinated responses"]["score"] == pytest.approx(25.0)
    assert comd.cells["hallucinated responses"]["per_seed"] == {0: 50.0, 1: 0.0}
    assert comd.cells["hallucinated mentions"]["per_seed"] == {0: 25.0, 1: 0.0}
    assert comd.cells["hallucinated mentions"]["n"] == 2, "mentions per seed, the fewest"
    assert comd.extra == {"seeds": "0 1", "n_seeds": 2, "protocol": "generation", "judge": "reference"}
    assert missing.cells["hallucinated mentions"] is None
    assert comd.cells["Average"]["score"] == judge_score_to_percent(10)


def test_chance_level_is_a_csv_field_and_a_note():
    seed_record = {**record([True, False], {"dimension": ["color", "color"]}), "protocol": "likelihood",
                   "chance": 25.0}
    table = benchmark_table("t", "seed", [("teacher", "teacher", {None: seed_record})])
    assert table.rows[0].extra == {"seeds": "", "n_seeds": 1, "protocol": "likelihood", "chance": 25.0}
    assert "Chance level (a uniform guess among the options): 25.0%." in markdown(table)
    both = benchmarks_table("t4", ["seed", "pope"], [("tau 0", "m", {"seed": {0: seed_record}, "pope": {}}, {})])
    assert both.notes == ["SEED: likelihood protocol. Chance level (a uniform guess among the options): 25.0%."]


def described(counts):
    """An open-ended record of detail descriptions, (mentions, hallucinated) per response, all judged 10."""
    return {**judged([10] * len(counts), judge="reference", protocol="generation"),
            "hallucination": {"responses": len(counts)},
            "samples": [{"id": str(i), "judge_score": 10, "category": "detail description", "object_mentions": m,
                         "hallucinated_mentions": h} for i, (m, h) in enumerate(counts)]}


def test_the_average_over_benchmarks_weighs_each_benchmark_the_same_within_each_seed():
    # seed 0: MC 1 of 4 (25%), POPE 1 of 1 (100%): 62.5; seed 1: MC 4 of 4, POPE 0 of 1: 50.0
    by_benchmark = {"mc": {0: record([True, False, False, False]), 1: record([True] * 4)},
                    "pope": {0: record([True]), 1: record([False]), 2: record([True])}}
    cell = benchmark_average_cell(by_benchmark, ["mc", "pope"], seed=0)
    assert cell["per_seed"] == {0: pytest.approx(62.5), 1: pytest.approx(50.0)}, "seed 2 has no MC score"
    assert cell["score"] == pytest.approx(56.25) and cell["n"] == 5 and cell["n_seeds"] == 2
    assert cell["ci95"][0] <= cell["score"] <= cell["ci95"][1]
    assert benchmark_average_cell({"mc": by_benchmark["mc"]}, ["mc", "pope"]) is None
    assert benchmark_average_cell(by_benchmark, ["mc"])["score"] == average_cell(by_benchmark["mc"], 0)["score"]


def test_comparison_table_has_benchmarks_average_hallucination_and_na_columns(tmp_path):
    student = {"mc": {0: record([True, False]), 1: record([True, True])}, "open": {0: described([(2, 1), (2, 0)]),
                                                                             1: described([(1, 0), (1, 0)])}}
    teacher = {"mc": {None: record([True, True])}, "open": {None: described([(1, 0)])}}
    table = comparison_table("t", ["mc", "open", AVERAGE, "hallucinated responses", "MMHal score"],
                             [("teacher", "teacher", teacher, {}), ("LLaVA-MoD", "mod-kd-e4t2-pref", student,
                                                                   {"params_total": 7}),
                              ("missing", "m", {}, {})], seed=0, unavailable={"MMHal score": "no toy analog"})
    assert table.columns == ["MC", "Open-ended", "Average", "hallucinated responses", "MMHal score"]
    teacher_row, row, missing = table.rows
    assert row.cells["MC"]["score"] == pytest.approx(75.0)
    assert row.cells["Average"]["score"] == pytest.approx((75.0 + judge_score_to_percent(10)) / 2)
    assert row.cells["hallucinated responses"]["per_seed"] == {0: 50.0, 1: 0.0}
    assert row.cells["MMHal score"] is None and missing.cells["MC"] is None and missing.cells["Average"] is None
    assert row.extra == {"params_total": 7, "seeds": "0 1", "n_seeds": 2}
    assert teacher_row.extra == {"seeds": "", "n_seeds": 1}
    assert "MMHal score: n/a, no toy analog" in table.notes
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md")
    rows = list(csv.DictReader((tmp_path / "t.csv").read_text().splitlines()))
    assert rows[1]["MMHal score"] == "n/a" and rows[1]["MC_seed1"] == "100.0" and rows[1]["params_total"] == "7"
    with pytest.raises(ValueError, match="unknown column"):
        comparison_table("t", ["gqa"], [("m", "m", {}, {})])


def test_gap_closed_is_the_share_of_the_teacher_student_gap():
    assert gap_closed(60.0, 40.0, 80.0) == pytest.approx(50.0)
    assert gap_closed(40.0, 40.0, 80.0) == 0.0 and gap_closed(80.0, 40.0, 80.0) == 100.0
    assert gap_closed(30.0, 40.0, 80.0) == pytest.approx(-25.0)  # worse than before distillation
    assert gap_closed(50.0, 80.0, 80.0) is None and gap_closed(50.0, 90.0, 80.0) is None  # no gap to close


def test_tables_1_to_3_give_each_rows_gap_closed(tmp_path):
    # teacher 100%, student after stage 1 25%, CoMD 50%: a third of the gap; the baseline has no scores
    table = benchmark_table("t", "mc", [("teacher", "teacher", {None: record([True] * 4)}),
                                        ("stage 1", "student_stage1", {0: record([True, False, False, False])}),
                                        ("CoMD", "comd", {0: record([True, True, False, False])}),
                                        ("baseline", "unidirectional", {})],
                            gap_between=("teacher", "student_stage1"))
    shares = {row.model: row.extra[GAP_CLOSED] for row in table.rows}
    assert shares == {"teacher": 100.0, "student_stage1": 0.0, "comd": pytest.approx(33.3), "unidirectional": "n/a"}
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert rows[2][GAP_CLOSED] == "33.3"
    assert GAP_CLOSED in (tmp_path / "t.md").read_text().splitlines()[2]
