"""The papers' tables and CoMD's Figure 4 from measured score files, as CSV, Markdown and PNG.

CoMD's tables 1-5 (`benchmark_table`, `benchmarks_table`) and LLaVA-MoD's tables 2-9
(`comparison_table`).

Every cell pools the `results/scores/seed<s>/<model>/<bench>.json` files the pipeline
wrote for one model, one per training seed (the teacher is one model:
`results/scores/teacher/<bench>.json`): the mean over seeds of each seed's score in %,
a 95% interval that covers both the seeds' spread and the test items' sampling
(`seed_cell`), the number of test items per seed and of seeds, and each seed's score.
A cell with no measurement (a benchmark the config does not evaluate, a category with
no judged item) reads `n/a`.

CSV layout: one row per model; for each column `C` the fields `C` (mean score), `C_n`
(items per seed), `C_ci_low`, `C_ci_high` and `C_seed<s>` for every training seed, then
the row's extra fields (seed, seeds, n_seeds, protocol, judge, ...).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmdistill.evaluation.intervals import hierarchical_bootstrap_interval
from mmdistill.evaluation.runner import benchmark_spec
from mmdistill.evaluation.scoring import judge_score_to_percent

BENCHMARK_LABELS = {"mc": "MC", "seed": "SEED", "pope": "POPE", "open": "Open-ended"}
AVERAGE = "Average"
# Table 3's hallucination columns (CHAIR-style, on detail descriptions), from each detail
# description's sample: the share of responses that hallucinate, the share of mentions hallucinated.
HALLUCINATION_COLUMNS = ("hallucinated responses", "hallucinated mentions")

# Table 1's column names for real ScienceQA category values (Lu et al., 2022), in the
# paper's order; other values (the toy world's analog axes) keep their own names.
SCIENCEQA_COLUMNS = {
    ("subject", "natural science"): "NAT",
    ("subject", "social science"): "SOC",
    ("subject", "language science"): "LAN",
    ("context_modality", "txt"): "TXT",
    ("context_modality", "img"): "IMG",
    ("context_modality", "no"): "NO",
    ("grade", "1-6"): "G1-6",
    ("grade", "7-12"): "G7-12",
}
_PAPER_ORDER = list(SCIENCEQA_COLUMNS)


@dataclass
class Row:
    """One table row: a label, the model it measures, its cells by column, extra CSV fields."""

    label: str
    model: str
    cells: dict[str, dict[str, Any] | None]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


# {training seed: score record} of one model on one benchmark; the teacher's one record has the key None.
SeedRecords = Mapping[int | None, dict[str, Any]]
# Per-sample values in % and their weights, the estimate being sum(values) / sum(weights).
Samples = tuple[list[float], list[float]]


def score_samples(record: dict[str, Any], axis: str | None = None, value: str | None = None) -> Samples:
    """A score record's per-sample scores in % (100 or 0 for a right or wrong answer, the judge
    score mapped to 0-100), of the samples whose `axis` is `value` if given; failed judgements
    are left out, as in the record's own score."""
    values = []
    for sample in record["samples"]:
        if axis is not None and sample.get(axis) != value:
            continue
        if "correct" in sample:
            values.append(100.0 * bool(sample["correct"]))
        elif sample.get("judge_score") is not None:
            values.append(judge_score_to_percent(sample["judge_score"]))
    return values, [1.0] * len(values)


def hallucination_samples(record: dict[str, Any], column: str) -> Samples:
    """One of `HALLUCINATION_COLUMNS` from the detail descriptions' samples: per response, 100 if
    it hallucinates (weight 1), or 100 × its hallucinated mentions (weight: its mentions)."""
    described = [sample for sample in record["samples"] if "object_mentions" in sample]
    if column == "hallucinated responses":
        return [100.0 * (s["hallucinated_mentions"] > 0) for s in described], [1.0] * len(described)
    return [100.0 * s["hallucinated_mentions"] for s in described], [float(s["object_mentions"]) for s in described]


def seed_cell(per_seed: Mapping[int | None, Samples], seed: int) -> dict[str, Any] | None:
    """One cell pooled over training seeds: `{"score", "n", "ci95", "n_seeds", "per_seed"}`, None when
    no seed measured anything.

    * score: the mean over seeds of each seed's score (sum of values / sum of weights: the
      accuracy, mean judge score or hallucination rate that seed's score file reports), each
      seed weighing the same.
    * ci95: a two-level percentile bootstrap, 10,000 resamples seeded with `seed`
      (`intervals.hierarchical_bootstrap_interval`): draw the seeds with replacement, then
      within each drawn seed its test items with replacement, and take the mean over the drawn
      seeds. The interval so covers both how much training seeds disagree and how much a
      finite test set moves each seed's score; with one seed (the teacher) it is the plain
      item bootstrap. Seeds that agree give about the item interval; seeds that disagree widen
      it. Percentile intervals have zero width when every item scores the same (0% or 100%).
    * n: test items per seed (the fewest over seeds where judge failures make them differ; for
      the mention rate, object mentions); n_seeds: the seeds measured.
    * per_seed: each seed's score, by seed (the teacher's None key is not listed).
    """
    measured = {key: samples for key, samples in per_seed.items() if sum(samples[1]) > 0}
    if not measured:
        return None
    estimates = {key: sum(values) / sum(weights) for key, (values, weights) in measured.items()}
    low, high = hierarchical_bootstrap_interval([values for values, _ in measured.values()], seed,
                                                weights=[weights for _, weights in measured.values()])
    return {"score": sum(estimates.values()) / len(estimates),
            "n": min(round(sum(weights)) for _, weights in measured.values()),
            "ci95": [low, high], "n_seeds": len(measured),
            "per_seed": {key: estimate for key, estimate in estimates.items() if key is not None}}


def average_cell(per_seed: SeedRecords, seed: int) -> dict[str, Any] | None:
    """A model's overall score on a benchmark, pooled over its seeds (`seed_cell`)."""
    return seed_cell({key: score_samples(record) for key, record in per_seed.items()}, seed)


def seed_fields(per_seed: SeedRecords) -> dict[str, Any]:
    """A row's `seeds` (its training seeds, space-separated; none for the teacher) and `n_seeds`."""
    if not per_seed:
        return {}
    return {"seeds": " ".join(str(key) for key in per_seed if key is not None), "n_seeds": len(per_seed)}


def chance_level(records: Sequence[dict[str, Any]]) -> float | None:
    """The chance level in % the score records carry, if any."""
    return next((record["chance"] for record in records if record.get("chance") is not None), None)


def chance_note(records: Sequence[dict[str, Any]]) -> list[str]:
    """A Markdown note with the benchmark's chance level, when its score records carry one."""
    levels = sorted({round(record["chance"], 1) for record in records if record.get("chance") is not None})
    return [f"Chance level (a uniform guess among the options): {', '.join(f'{c:.1f}' for c in levels)}%."] if levels else []


def category_columns(benchmark: str, records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(axis, value, column name) for every category found in `records`, axis by axis.

    Known ScienceQA values come in the paper's order under its names; other values
    follow in sorted order under their own names.
    """
    columns = []
    for axis in benchmark_spec(benchmark).axes:
        values = {value for record in records for value in record.get("by_category", {}).get(axis, {})}
        known = [value for key_axis, value in _PAPER_ORDER if key_axis == axis and value in values]
        columns += [(axis, value, SCIENCEQA_COLUMNS.get((axis, value), value))
                    for value in known + sorted(values - set(known))]
    return columns


GAP_CLOSED = "gap closed %"


def gap_closed(score: float, student: float, teacher: float) -> float | None:
    """The share in % of the teacher-student gap a model closes: 100 (score - student) / (teacher - student),
    `student` being the student before distillation (after stage 1); None when that student is not below
    the teacher, as there is no gap to close. 0: no better than before; 100: as good as the teacher."""
    if teacher <= student:
        return None
    return 100.0 * (score - student) / (teacher - student)


def benchmark_table(title: str, benchmark: str, rows: Sequence[tuple[str, str, SeedRecords]],
                    extra: dict[str, Any] | None = None, seed: int = 0,
                    gap_between: tuple[str, str] | None = None) -> Table:
    """Tables 1-3: one benchmark, a column per category and `Average`, each cell pooled over the
    row's seeds (`seed_cell`, bootstrap seeded with `seed`).

    `rows` are (label, model, {training seed: score record}; empty if the benchmark is not evaluated).
    `gap_between` (teacher model, student model before distillation) adds each row's `gap_closed` on
    the Average (`GAP_CLOSED`, n/a where either has no score or there is no gap).
    """
    records = [record for _, _, per_seed in rows for record in per_seed.values()]
    columns = category_columns(benchmark, records)
    open_ended = benchmark_spec(benchmark).kind == "open_ended"
    hallucination = [name for name in HALLUCINATION_COLUMNS if any(r.get("hallucination") for r in records)]
    table_rows = []
    for label, model, per_seed in rows:
        cells = {name: seed_cell({key: score_samples(r, axis, value) for key, r in per_seed.items()}, seed)
                 for axis, value, name in columns}
        cells[AVERAGE] = average_cell(per_seed, seed)
        cells.update({name: seed_cell({key: hallucination_samples(r, name) for key, r in per_seed.items()}, seed)
                      for name in hallucination})
        first = next(iter(per_seed.values()), None)
        described = {"protocol": first["protocol"]} if first and "protocol" in first else {}
        if first and open_ended:
            described["judge"] = first.get("judge")
        if first and first.get("chance") is not None:
            described["chance"] = round(first["chance"], 2)
        table_rows.append(Row(label, model, cells, {**(extra or {}), **seed_fields(per_seed), **described}))
    notes = chance_note(records)
    if gap_between:
        notes += _add_gap_closed(table_rows, *gap_between)
    return Table(title, [name for _, _, name in columns] + [AVERAGE, *hallucination], table_rows, notes=notes)


def _add_gap_closed(rows: Sequence[Row], teacher: str, student: str) -> list[str]:
    """Each row's `GAP_CLOSED` on the Average, between the rows of models `teacher` and `student`."""
    averages = {row.model: row.cells[AVERAGE]["score"] for row in rows if row.cells.get(AVERAGE)}
    for row in rows:
        known = row.model in averages and teacher in averages and student in averages
        share = gap_closed(averages[row.model], averages[student], averages[teacher]) if known else None
        row.extra[GAP_CLOSED] = "n/a" if share is None else round(share, 1)
    return [f"{GAP_CLOSED}: the share of the Average's gap between the teacher and the student before "
            "distillation (after stage 1) that a row closes; 0 is no gain, 100 the teacher's score."]


def benchmarks_table(title: str, benchmarks: Sequence[str],
                     rows: Sequence[tuple[str, str, dict[str, SeedRecords], dict[str, Any]]], seed: int = 0) -> Table:
    """Tables 4-5: a column per benchmark (its overall score, pooled over the row's seeds as in
    `seed_cell`). `rows` are (label, model, {benchmark: {training seed: score record}}, extra fields)."""
    columns = [BENCHMARK_LABELS[b] for b in benchmarks]
    table_rows = []
    for label, model, by_benchmark, extra in rows:
        measured = next((per_seed for per_seed in by_benchmark.values() if per_seed), {})
        table_rows.append(Row(label, model, {BENCHMARK_LABELS[b]: average_cell(by_benchmark.get(b, {}), seed)
                                             for b in benchmarks}, {**extra, **seed_fields(measured)}))
    return Table(title, columns, table_rows, notes=benchmark_notes(benchmarks, rows))


def benchmark_notes(benchmarks: Sequence[str],
                    rows: Sequence[tuple[str, str, dict[str, SeedRecords], Any]]) -> list[str]:
    """A note per benchmark the rows measured: its protocol(s) and chance level."""
    notes = []
    for benchmark in benchmarks:
        found = [record for _, _, by_benchmark, _ in rows for record in by_benchmark.get(benchmark, {}).values()]
        protocols = sorted({record.get("protocol") or "generation" for record in found})
        notes += [f"{BENCHMARK_LABELS[benchmark]}: {', '.join(protocols)} protocol. {' '.join(chance_note(found))}".strip()
                  ] if found else []
    return notes


def benchmark_average_cell(by_benchmark: Mapping[str, SeedRecords], benchmarks: Sequence[str],
                           seed: int = 0) -> dict[str, Any] | None:
    """The mean of a model's scores over `benchmarks` (the paper's AVG column), pooled over its seeds.

    Each seed's estimate is the plain mean of its benchmark scores, every benchmark weighing
    the same: item i of a benchmark with n items enters with value score_i / n and weight 1 / n,
    so `seed_cell`'s sum(values) / sum(weights) is that mean and its bootstrap draws the seeds,
    then the items of all benchmarks together. Only seeds measured on every benchmark count;
    None when there is none. `n` is the items per seed over all benchmarks.
    """
    if not benchmarks:
        return None
    per_seed: dict[int | None, Samples] = {}
    items: dict[int | None, int] = {}
    keys = set.intersection(*(set(by_benchmark.get(b, {})) for b in benchmarks))
    for key in sorted(keys, key=lambda k: -1 if k is None else k):
        values, weights = [], []
        for benchmark in benchmarks:
            scores, _ = score_samples(by_benchmark[benchmark][key])
            if not scores:
                break
            values += [score / len(scores) for score in scores]
            weights += [1.0 / len(scores)] * len(scores)
        else:
            per_seed[key], items[key] = (values, weights), len(values)
    cell = seed_cell(per_seed, seed)
    if cell is not None:
        cell["n"] = min(items.values())
    return cell


def comparison_table(title: str, columns: Sequence[str],
                     rows: Sequence[tuple[str, str, dict[str, SeedRecords], dict[str, Any]]], seed: int = 0,
                     unavailable: Mapping[str, str] | None = None) -> Table:
    """LLaVA-MoD's tables 2-9: a row per model, columns by name, each cell pooled over the row's seeds.

    A column is a benchmark (`mc`, `seed`, `pope`, `open`: its overall score, under its
    `BENCHMARK_LABELS` name), `AVERAGE` (the mean over the table's benchmark columns,
    `benchmark_average_cell`), one of `HALLUCINATION_COLUMNS` (from the open-ended detail
    descriptions, as table 3 of CoMD), or a key of `unavailable`: a measure of the paper the
    toy world has no analog of, `n/a` in every row, its reason a note. `rows` are (label,
    model, {benchmark: {training seed: score record}}, extra fields).
    """
    unavailable = dict(unavailable or {})
    benchmarks = [column for column in columns if column in BENCHMARK_LABELS]
    measured = [b for b in benchmarks if any(by_benchmark.get(b) for _, _, by_benchmark, _ in rows)]
    names = [BENCHMARK_LABELS.get(column, column) for column in columns]
    table_rows = []
    for label, model, by_benchmark, extra in rows:
        cells: dict[str, dict[str, Any] | None] = {}
        for column, name in zip(columns, names):
            if column in BENCHMARK_LABELS:
                cells[name] = average_cell(by_benchmark.get(column, {}), seed)
            elif column == AVERAGE:
                cells[name] = benchmark_average_cell(by_benchmark, measured, seed)
            elif column in HALLUCINATION_COLUMNS:
                cells[name] = seed_cell({key: hallucination_samples(record, column)
                                         for key, record in by_benchmark.get("open", {}).items()}, seed)
            elif column in unavailable:
                cells[name] = None
            else:
                raise ValueError(f"unknown column {column!r}: a benchmark, {AVERAGE!r}, a hallucination "
                                 "column or one named unavailable")
        first = next((per_seed for per_seed in by_benchmark.values() if per_seed), {})
        table_rows.append(Row(label, model, cells, {**extra, **seed_fields(first)}))
    notes = benchmark_notes(benchmarks, rows)
    if AVERAGE in columns:
        notes.append(f"{AVERAGE}: the mean of {', '.join(BENCHMARK_LABELS[b] for b in measured) or 'no benchmark'}, "
                     "each benchmark weighing the same; n counts their items together.")
    if any(column in HALLUCINATION_COLUMNS for column in columns):
        notes.append("Hallucinated responses and mentions (Object HalBench's Resp and Ment, lower is better): "
                     "CHAIR-style, the open-ended detail descriptions checked against the scene graph.")
    notes += [f"{column}: n/a, {reason}" for column, reason in unavailable.items() if column in columns]
    return Table(title, names, table_rows, notes=notes)


def table_seeds(cells: Sequence[dict[str, Any] | None]) -> list[int]:
    """The training seeds any of `cells` has a score for, in order."""
    return sorted({key for entry in cells if entry for key in entry["per_seed"]})


def cell_fields(entry: dict[str, Any] | None, column: str = "", seeds: Sequence[int] = ()) -> dict[str, Any]:
    """A cell as CSV fields: `<column>`, `<column>_n`, `<column>_ci_low`, `<column>_ci_high` and
    `<column>_seed<s>` for each of `seeds` (no column: `score`, `n`, `ci_low`, `ci_high`,
    `seed<s>`), each `n/a` when nothing was measured."""
    keys = ["n", "ci_low", "ci_high", *(f"seed{s}" for s in seeds)]
    names = [column or "score", *(f"{column}_{key}" if column else key for key in keys)]
    if entry is None:
        return dict.fromkeys(names, "n/a")
    low, high = entry["ci95"]
    per_seed = [round(entry["per_seed"][s], 2) if s in entry["per_seed"] else "n/a" for s in seeds]
    return dict(zip(names, (round(float(entry["score"]), 2), entry["n"], round(float(low), 2), round(float(high), 2),
                            *per_seed)))


def _extra_fields(table: Table) -> list[str]:
    return list(dict.fromkeys(key for row in table.rows for key in row.extra))


def csv_rows(table: Table) -> tuple[list[str], list[dict[str, Any]]]:
    seeds = table_seeds([entry for row in table.rows for entry in row.cells.values()])
    header = ["row", "model", *(name for column in table.columns for name in cell_fields(None, column, seeds)),
              *_extra_fields(table)]
    rows = []
    for row in table.rows:
        values: dict[str, Any] = {"row": row.label, "model": row.model}
        for column in table.columns:
            values.update(cell_fields(row.cells.get(column), column, seeds))
        values.update({key: row.extra.get(key, "") for key in _extra_fields(table)})
        rows.append(values)
    return header, rows


def write_rows(path: str | Path, header: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)


def write_csv(table: Table, path: str | Path) -> None:
    write_rows(path, *csv_rows(table))


def _markdown_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "n/a"
    low, high = entry["ci95"]
    seeds = f"×{entry['n_seeds']}" if entry["n_seeds"] > 1 else ""
    return f"{entry['score']:.1f} [{low:.1f}, {high:.1f}] n={entry['n']}{seeds}"


INTERVAL_NOTE = ("Scores in %: the mean over training seeds, in brackets a 95% interval from a two-level bootstrap "
                 "(seeds, then test items within each seed), n test items per seed (×seeds); the teacher is one "
                 "model. Call a difference only where intervals do not overlap. Each seed's score is in the CSV.")


def markdown(table: Table) -> str:
    extra_fields = _extra_fields(table)
    header = ["model", *table.columns, *extra_fields]
    lines = [f"# {table.title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in table.rows:
        values = [row.label, *(_markdown_cell(row.cells.get(c)) for c in table.columns),
                  *(str(row.extra.get(key, "")) for key in extra_fields)]
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", INTERVAL_NOTE, *table.notes]
    return "\n".join(lines) + "\n"


def write_table(table: Table, csv_path: str | Path, markdown_path: str | Path) -> None:
    write_csv(table, csv_path)
    Path(markdown_path).write_text(markdown(table), encoding="utf-8")


def iteration_series(cells: dict[str, dict[int, dict[str, Any] | None]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Figure 4's data: {benchmark: {iteration: cell}} as long-format CSV rows: benchmark, iteration,
    the cell's fields (`cell_fields`, one `seed<s>` column per training seed) and n_seeds."""
    seeds = table_seeds([entry for by_iteration in cells.values() for entry in by_iteration.values()])
    header = ["benchmark", "iteration", *cell_fields(None, seeds=seeds), "n_seeds"]
    rows = [{"benchmark": benchmark, "iteration": iteration, **cell_fields(entry, seeds=seeds),
             "n_seeds": entry["n_seeds"] if entry else "n/a"}
            for benchmark, by_iteration in cells.items() for iteration, entry in sorted(by_iteration.items())]
    return header, rows


def plot_iterations(cells: dict[str, dict[int, dict[str, Any] | None]],
                    references: dict[str, dict[str, dict[str, Any] | None]], chance: dict[str, float | None],
                    path: str | Path) -> None:
    """Figure 4: one panel per benchmark, the mean score over seeds after each iteration (0: after
    stage 1) with its 95% interval (`seed_cell`) and each seed's score as a dot; `references`
    ({label: {benchmark: cell}}) are dashed lines at their mean with their interval as a band,
    `chance` ({benchmark: level in %}) a thin line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = list(cells)
    figure, axes = plt.subplots(1, len(benchmarks), figsize=(3.4 * len(benchmarks), 3.0), squeeze=False)
    for axis, benchmark in zip(axes[0], benchmarks):
        points = [(k, entry) for k, entry in sorted(cells[benchmark].items()) if entry is not None]
        if points:
            xs = [k for k, _ in points]
            ys = [entry["score"] for _, entry in points]
            errors = [[entry["score"] - entry["ci95"][0] for _, entry in points],
                      [entry["ci95"][1] - entry["score"] for _, entry in points]]
            axis.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label="CoMD student (mean over seeds)")
            seed_points = [(k, score) for k, entry in points for score in entry["per_seed"].values()]
            axis.scatter([k + 0.08 for k, _ in seed_points], [score for _, score in seed_points], s=10,
                         color="tab:blue", alpha=0.4, label="one seed")
            axis.set_xticks(xs)
        for style, (label, by_benchmark) in zip(("--", ":", "-."), references.items()):
            entry = by_benchmark.get(benchmark)
            if entry is not None:
                line = axis.axhline(entry["score"], linestyle=style, color="gray", label=label)
                axis.axhspan(*entry["ci95"], color=line.get_color(), alpha=0.12)
        if chance.get(benchmark) is not None:
            axis.axhline(chance[benchmark], linestyle="-", linewidth=0.8, color="lightcoral", label="chance")
        axis.set_title(BENCHMARK_LABELS.get(benchmark, benchmark))
        axis.set_xlabel("iteration (0: after stage 1)")
        axis.set_ylabel("score (%)")
        axis.set_ylim(0, 100)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
