"""The paper's tables and Figure 4 from measured score files, as CSV, Markdown and PNG.

Every cell comes from a `results/scores/<model>/<bench>.json` the pipeline wrote: a
score in %, its number of test items and its 95% interval (Wilson for accuracies,
bootstrap for judge scores). A cell with no measurement (a benchmark the config does
not evaluate, a category with no judged item) reads `n/a`.

CSV layout: one row per model; for each column `C` the fields `C` (score), `C_n`,
`C_ci_low` and `C_ci_high`, then the row's extra fields (seed, judge, ...).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmdistill.evaluation.runner import benchmark_spec

BENCHMARK_LABELS = {"mc": "MC", "seed": "SEED", "pope": "POPE", "open": "Open-ended"}
AVERAGE = "Average"
# Table 3's hallucination columns (CHAIR-style, on detail descriptions): column -> (rate, count, interval) keys.
HALLUCINATION_COLUMNS = {
    "hallucinated responses": ("response_rate", "responses", "response_ci95"),
    "hallucinated mentions": ("mention_rate", "mentions", "mention_ci95"),
}

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


def cell(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """`{"score", "n", "ci95"}` of a score record or category entry; None when nothing was measured."""
    if record is None or record.get("score") is None:
        return None
    return {"score": record["score"], "n": record["n"], "ci95": record["ci95"]}


def hallucination_cell(record: dict[str, Any] | None, column: str) -> dict[str, Any] | None:
    """One of `HALLUCINATION_COLUMNS` as a cell, from a score record's "hallucination" block."""
    block = (record or {}).get("hallucination")
    if not block:
        return None
    rate, count, interval = HALLUCINATION_COLUMNS[column]
    return cell({"score": block[rate], "n": block[count], "ci95": block[interval]})


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


def benchmark_table(title: str, benchmark: str, rows: Sequence[tuple[str, str, dict[str, Any] | None]],
                    extra: dict[str, Any] | None = None) -> Table:
    """Tables 1-3: one benchmark, a column per category and `Average`.

    `rows` are (label, model, score record or None if the benchmark is not evaluated).
    """
    records = [record for _, _, record in rows if record is not None]
    columns = category_columns(benchmark, records)
    open_ended = benchmark_spec(benchmark).kind == "open_ended"
    hallucination = [name for name in HALLUCINATION_COLUMNS if any(r.get("hallucination") for r in records)]
    table_rows = []
    for label, model, record in rows:
        cells = {name: cell(record["by_category"][axis].get(value)) if record else None for axis, value, name in columns}
        cells[AVERAGE] = cell(record)
        cells.update({name: hallucination_cell(record, name) for name in hallucination})
        described = {"protocol": record["protocol"]} if record and "protocol" in record else {}
        if record and open_ended:
            described["judge"] = record.get("judge")
        if record and record.get("chance") is not None:
            described["chance"] = round(record["chance"], 2)
        table_rows.append(Row(label, model, cells, {**(extra or {}), **described}))
    return Table(title, [name for _, _, name in columns] + [AVERAGE, *hallucination], table_rows,
                 notes=chance_note(records))


def benchmarks_table(title: str, benchmarks: Sequence[str],
                     rows: Sequence[tuple[str, str, dict[str, dict[str, Any] | None], dict[str, Any]]]) -> Table:
    """Tables 4-5: a column per benchmark (its overall score). `rows` are
    (label, model, {benchmark: score record or None}, extra fields)."""
    columns = [BENCHMARK_LABELS[b] for b in benchmarks]
    table_rows = [Row(label, model, {BENCHMARK_LABELS[b]: cell(records.get(b)) for b in benchmarks}, dict(extra))
                  for label, model, records, extra in rows]
    notes = []
    for benchmark in benchmarks:
        found = [records[benchmark] for _, _, records, _ in rows if records.get(benchmark)]
        protocols = sorted({record.get("protocol") or "generation" for record in found})
        notes += [f"{BENCHMARK_LABELS[benchmark]}: {', '.join(protocols)} protocol. {' '.join(chance_note(found))}".strip()
                  ] if found else []
    return Table(title, columns, table_rows, notes=notes)


def cell_fields(entry: dict[str, Any] | None, column: str = "") -> dict[str, Any]:
    """A cell as CSV fields: `<column>`, `<column>_n`, `<column>_ci_low`, `<column>_ci_high` (no column:
    `score`, `n`, `ci_low`, `ci_high`), each `n/a` when nothing was measured."""
    names = [column or "score", *(f"{column}_{key}" if column else key for key in ("n", "ci_low", "ci_high"))]
    if entry is None:
        return dict.fromkeys(names, "n/a")
    low, high = entry["ci95"]
    return dict(zip(names, (round(float(entry["score"]), 2), entry["n"], round(float(low), 2), round(float(high), 2))))


def _extra_fields(table: Table) -> list[str]:
    return list(dict.fromkeys(key for row in table.rows for key in row.extra))


def csv_rows(table: Table) -> tuple[list[str], list[dict[str, Any]]]:
    header = ["row", "model", *(name for column in table.columns for name in cell_fields(None, column)),
              *_extra_fields(table)]
    rows = []
    for row in table.rows:
        values: dict[str, Any] = {"row": row.label, "model": row.model}
        for column in table.columns:
            values.update(cell_fields(row.cells.get(column), column))
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
    return f"{entry['score']:.1f} [{low:.1f}, {high:.1f}] n={entry['n']}"


def markdown(table: Table) -> str:
    extra_fields = _extra_fields(table)
    header = ["model", *table.columns, *extra_fields]
    lines = [f"# {table.title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in table.rows:
        values = [row.label, *(_markdown_cell(row.cells.get(c)) for c in table.columns),
                  *(str(row.extra.get(key, "")) for key in extra_fields)]
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", "Scores in %, with the 95% interval in brackets (Wilson for accuracies, bootstrap for "
              "judge scores) and the number of test items.", *table.notes]
    return "\n".join(lines) + "\n"


def write_table(table: Table, csv_path: str | Path, markdown_path: str | Path) -> None:
    write_csv(table, csv_path)
    Path(markdown_path).write_text(markdown(table), encoding="utf-8")


ITERATION_FIELDS = ("benchmark", "iteration", "score", "n", "ci_low", "ci_high")


def iteration_series(records: dict[str, dict[int, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Figure 4's data: {benchmark: {iteration: score record}} as long-format CSV rows (`ITERATION_FIELDS`)."""
    return [{"benchmark": benchmark, "iteration": iteration, **cell_fields(cell(record))}
            for benchmark, by_iteration in records.items() for iteration, record in sorted(by_iteration.items())]


def plot_iterations(records: dict[str, dict[int, dict[str, Any] | None]],
                    references: dict[str, dict[str, dict[str, Any] | None]], path: str | Path) -> None:
    """Figure 4: one panel per benchmark, the score after each iteration (0: after stage 1) with
    its 95% interval; `references` ({label: {benchmark: record}}) are drawn as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = list(records)
    figure, axes = plt.subplots(1, len(benchmarks), figsize=(3.4 * len(benchmarks), 3.0), squeeze=False)
    for axis, benchmark in zip(axes[0], benchmarks):
        points = [(k, cell(r)) for k, r in sorted(records[benchmark].items()) if cell(r) is not None]
        if points:
            xs = [k for k, _ in points]
            ys = [entry["score"] for _, entry in points]
            errors = [[entry["score"] - entry["ci95"][0] for _, entry in points],
                      [entry["ci95"][1] - entry["score"] for _, entry in points]]
            axis.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label="CoMD student")
            axis.set_xticks(xs)
        for style, (label, by_benchmark) in zip(("--", ":", "-."), references.items()):
            entry = cell(by_benchmark.get(benchmark))
            if entry is not None:
                axis.axhline(entry["score"], linestyle=style, color="gray", label=label)
        chance = next((r["chance"] for r in records[benchmark].values() if r and r.get("chance") is not None), None)
        if chance is not None:
            axis.axhline(chance, linestyle="-", linewidth=0.8, color="lightcoral", label="chance")
        axis.set_title(BENCHMARK_LABELS.get(benchmark, benchmark))
        axis.set_xlabel("iteration (0: after stage 1)")
        axis.set_ylabel("score (%)")
        axis.set_ylim(0, 100)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
