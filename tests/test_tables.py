"""Tables 1-5 and Figure 4 from score records: columns, n/a cells, CSV and Markdown."""

import csv

import pytest

from mmdistill.tables import (
    benchmark_table,
    benchmarks_table,
    category_columns,
    iteration_series,
    markdown,
    plot_iterations,
    write_table,
)


def entry(score, n=10):
    return {"score": score, "n": n, "ci95": [score - 5, score + 5]}


def mc_record(average, categories):
    return {**entry(average, 20), "by_category": categories}


SCIENCEQA = mc_record(60.0, {"subject": {"social science": entry(50), "natural science": entry(70)},
                             "context_modality": {"no": entry(55), "img": entry(65)},
                             "grade": {"7-12": entry(58), "1-6": entry(62)}})
TOY = mc_record(40.0, {"subject": {"spatial": entry(30), "attributes": entry(50)},
                       "context_modality": {"txt": entry(41)}, "grade": {"hard": entry(35), "easy": entry(45)}})


def test_scienceqa_values_get_the_paper_columns_in_its_order():
    names = [name for _, _, name in category_columns("mc", [SCIENCEQA])]
    assert names == ["NAT", "SOC", "IMG", "NO", "G1-6", "G7-12"]


def test_toy_values_keep_their_names_sorted_within_each_axis():
    names = [name for _, _, name in category_columns("mc", [TOY])]
    assert names == ["attributes", "spatial", "TXT", "easy", "hard"]


def test_benchmark_table_rows_cells_and_missing_models(tmp_path):
    table = benchmark_table("t", "mc", [("teacher", "teacher", TOY), ("baseline", "unidirectional", None)],
                            extra={"seed": 3})
    assert table.columns == ["attributes", "spatial", "TXT", "easy", "hard", "Average"]
    teacher, baseline = table.rows
    assert teacher.cells["spatial"] == entry(30) and teacher.cells["Average"] == entry(40.0, 20)
    assert all(value is None for value in baseline.cells.values())
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert rows[0]["row"] == "teacher" and rows[0]["spatial"] == "30.0" and rows[0]["spatial_n"] == "10"
    assert rows[0]["Average_ci_low"] == "35.0" and rows[0]["seed"] == "3"
    assert rows[1]["Average"] == "n/a" and rows[1]["Average_n"] == "n/a"
    text = (tmp_path / "t.md").read_text()
    assert "| teacher | 50.0 [45.0, 55.0] n=10 |" in text and "| baseline | n/a |" in text


def test_open_ended_rows_name_their_judge():
    record = {**entry(70), "judge": "teacher", "by_category": {"category": {"conversation": entry(70)}}}
    table = benchmark_table("t", "open", [("m", "m", record)])
    assert table.rows[0].extra == {"judge": "teacher"}


def test_a_category_nobody_could_judge_is_na():
    record = {**entry(70), "by_category": {"category": {"conversation": {"n": 0, "score": None, "ci95": None}}}}
    assert benchmark_table("t", "open", [("m", "m", record)]).rows[0].cells["conversation"] is None


def test_benchmarks_table_takes_each_benchmarks_average():
    table = benchmarks_table("t", ["mc", "open"], [("tau = 0.33", "comd-main-iter4", {"mc": entry(61)}, {"tau": 0.33})])
    assert table.columns == ["MC", "Open-ended"]
    assert table.rows[0].cells == {"MC": entry(61), "Open-ended": None}
    assert "| tau = 0.33 | 61.0 [56.0, 66.0] n=10 | n/a | 0.33 |" in markdown(table)


def test_iteration_series_and_figure(tmp_path):
    series = {"mc": {0: entry(20), 1: entry(30), 2: None}}
    rows = iteration_series(series)
    assert [(r["iteration"], r["score"]) for r in rows] == [(0, 20.0), (1, 30.0), (2, "n/a")]
    plot_iterations(series, {"teacher": {"mc": entry(50)}}, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("bad", ["gqa"])
def test_unknown_benchmark_is_an_error(bad):
    with pytest.raises(ValueError, match="unknown benchmark"):
        category_columns(bad, [])


def test_table_three_carries_hallucination_rates_and_rows_name_their_protocol():
    hallucination = {"responses": 40, "response_rate": 25.0, "response_ci95": [14.2, 40.2],
                     "mentions": 120, "mention_rate": 10.0, "mention_ci95": [5.8, 16.7]}
    record = {**entry(70), "judge": "reference", "protocol": "generation", "hallucination": hallucination,
              "by_category": {"category": {"detail description": entry(70)}}}
    table = benchmark_table("t", "open", [("teacher", "teacher", record), ("stage 1", "student_stage1", None)])
    assert table.columns == ["detail description", "Average", "hallucinated responses", "hallucinated mentions"]
    teacher, missing = table.rows
    assert teacher.cells["hallucinated responses"] == {"score": 25.0, "n": 40, "ci95": [14.2, 40.2]}
    assert teacher.cells["hallucinated mentions"] == {"score": 10.0, "n": 120, "ci95": [5.8, 16.7]}
    assert teacher.extra == {"protocol": "generation", "judge": "reference"}
    assert missing.cells["hallucinated mentions"] is None


def test_chance_level_is_a_csv_field_a_note_and_a_line_in_figure_4(tmp_path):
    record = {**mc_record(40.0, {"dimension": {"color": entry(40)}}), "protocol": "likelihood", "chance": 25.0}
    table = benchmark_table("t", "seed", [("teacher", "teacher", record)])
    assert table.rows[0].extra == {"protocol": "likelihood", "chance": 25.0}
    assert "Chance level (a uniform guess among the options): 25.0%." in markdown(table)
    both = benchmarks_table("t4", ["seed", "pope"], [("tau 0", "m", {"seed": record, "pope": None}, {})])
    assert both.notes == ["SEED: likelihood protocol. Chance level (a uniform guess among the options): 25.0%."]
    plot_iterations({"seed": {0: record, 1: record}}, {}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
