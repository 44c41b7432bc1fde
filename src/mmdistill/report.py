"""The human-readable summary page: scores per model and benchmark, teacher quality, filter counts."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from mmdistill.io import read_json

BENCHMARK_NAMES = {
    "mc": "MC (ScienceQA-like)",
    "seed": "SEED-like",
    "pope": "POPE-like",
    "open": "Open-ended (LLaVA-test-like)",
}


def training_seed(score_path: str | Path) -> int | None:
    """The training seed of a score file, `results/scores/seed<s>/<model>/<bench>.json`; None for
    the teacher's (`results/scores/teacher/<bench>.json`), one model trained with the world's seed."""
    match = re.fullmatch(r"seed(\d+)", Path(score_path).parent.parent.name)
    return int(match.group(1)) if match else None


def load_scores(paths: list[str | Path]) -> dict[str, dict[str, dict[int | None, dict[str, Any]]]]:
    """Score files as {model: {bench: {training seed: score record}}} (the teacher's seed: None)."""
    scores: dict[str, dict[str, dict[int | None, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for path in map(Path, paths):
        scores[path.parent.name][path.stem][training_seed(path)] = read_json(path)
    return {model: dict(by_bench) for model, by_bench in scores.items()}


def by_seed(scores: dict[str, dict[str, dict[int | None, dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """`load_scores`' result as {"<model>" or "<model> (seed <s>)": {bench: score record}}, a row per seed."""
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for model, by_bench in scores.items():
        for bench, per_seed in by_bench.items():
            for key, record in sorted(per_seed.items(), key=lambda item: -1 if item[0] is None else item[0]):
                rows[model if key is None else f"{model} (seed {key})"][bench] = record
    return dict(rows)


def _cell(record: dict[str, Any]) -> str:
    if record["score"] is None:
        return f"n/a (n=0, {record.get('judge_failures', 0)} judge failures)"
    low, high = record["ci95"]
    return f"{record['score']:.1f} [{low:.1f}, {high:.1f}] (n={record['n']})"


def scores_table(scores: dict[str, dict[str, dict[str, Any]]]) -> str:
    benches = [b for b in BENCHMARK_NAMES if any(b in by_bench for by_bench in scores.values())]
    lines = ["| model | " + " | ".join(BENCHMARK_NAMES[b] for b in benches) + " |",
             "|---" * (len(benches) + 1) + "|"]
    for model, by_bench in scores.items():
        cells = [_cell(by_bench[b]) if b in by_bench else "n/a" for b in benches]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(scores, teacher_quality: dict[str, Any] | None, filter_report: dict[str, Any]) -> str:
    parts = [
        "# mmdistill summary",
        "",
        "Scores in % with 95% intervals (Wilson for accuracies, bootstrap for judge scores).",
        "",
        scores_table(scores),
        "",
        "## Stage-1 noun-phrase filter",
        "",
        "| raw pairs | rejected | unique phrases | skipped phrases (freq < min) | kept pairs |",
        "|---|---|---|---|---|",
        f"| {filter_report['raw_pairs']} | {filter_report['rejected_pairs']['total']} | "
        f"{filter_report['unique_phrases']} | {filter_report['skipped_phrases']} | {filter_report['kept_pairs']} |",
    ]
    if teacher_quality:
        answers, judge, augment = teacher_quality["answers"], teacher_quality["judge"], teacher_quality["augmentor"]
        parts += [
            "",
            "## The teacher in its three roles (against the oracle, held-out scenes)",
            "",
            "| role | items | measure | value |",
            "|---|---|---|---|",
            f"| answerer | {answers['questions']} | answers equal to the oracle's | {_share(answers['accuracy'])} |",
            f"| answerer | {answers['questions']} | ... with another scene's image | {_share(answers['swapped_accuracy'])} |",
            f"| answerer | {answers['questions']} | answers that change with the image swapped | "
            f"{_share(answers['image_sensitivity'])} |",
            f"| assessor | {2 * judge['items']} | parsable outputs (both orders) | {_share(judge['parse_rate'])} |",
            f"| assessor | {judge['decided_pairs']} | order-averaged preference agrees with oracle | "
            f"{_share(judge['preference_agreement'])} |",
            f"| assessor | {judge['items']} | position bias (score in position 1 - position 2) | "
            f"{'n/a' if judge['position_bias'] is None else format(judge['position_bias'], '+.2f')} |",
            f"| augmentor | {augment['items']} | generated questions the oracle can answer | "
            f"{_share(augment['answerable_share'])} |",
            f"| augmentor | {augment['items']} | same task type as the source | {_share(augment['same_task_type_share'])} |",
            "",
            "| question type | questions | accuracy | with a swapped image | image sensitivity |",
            "|---|---|---|---|---|",
            *(f"| {task} | {row['questions']} | {_share(row['accuracy'])} | {_share(row['swapped_accuracy'])} | "
              f"{_share(row['image_sensitivity'])} |" for task, row in answers["by_task"].items()),
        ]
    return "\n".join(parts) + "\n"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def plot_scores(scores, path: str | Path) -> None:
    """Grouped bars: one group per benchmark, one bar per model, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = [b for b in BENCHMARK_NAMES if any(b in by_bench for by_bench in scores.values())]
    models = list(scores)
    width = 0.8 / max(1, len(models))
    figure, axis = plt.subplots(figsize=(1.8 + 1.6 * len(benches), 3.2))
    for index, model in enumerate(models):
        xs, ys, errors = [], [], [[], []]
        for position, bench in enumerate(benches):
            record = scores[model].get(bench)
            if record is None or record["score"] is None:
                continue
            xs.append(position + index * width)
            ys.append(record["score"])
            errors[0].append(record["score"] - record["ci95"][0])
            errors[1].append(record["ci95"][1] - record["score"])
        axis.bar(xs, ys, width, yerr=errors, capsize=3, label=model)
    axis.set_xticks([p + width * (len(models) - 1) / 2 for p in range(len(benches))])
    axis.set_xticklabels([BENCHMARK_NAMES[b].split(" (")[0] for b in benches])
    axis.set_ylabel("score (%)")
    axis.set_ylim(0, 100)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# (panel, series, training seed, loss curve: [{"step", "loss", ...}] as a training summary keeps it)
Curve = tuple[str, str, int, list[dict[str, Any]]]


def learning_curve_rows(curves: list[Curve]) -> list[dict[str, Any]]:
    """One CSV row per logged point: panel, series, seed, step, loss."""
    return [{"panel": panel, "series": series, "seed": seed, "step": point["step"], "loss": round(point["loss"], 5)}
            for panel, series, seed, points in curves for point in points if "loss" in point]


def plot_learning_curves(curves: list[Curve], path: str | Path) -> None:
    """One panel per stage, the loss against steps; a colour per series, a line per training seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(panel for panel, *_ in curves))
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.6 * max(len(panels), 1), 3.0), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        colours = {}
        for name, series, seed, points in curves:
            points = [p for p in points if "loss" in p]
            if name != panel or not points:
                continue
            label = None if series in colours else series
            colours.setdefault(series, f"C{len(colours) % 10}")
            axis.plot([p["step"] for p in points], [p["loss"] for p in points], color=colours[series], alpha=0.7,
                      linewidth=1, label=label)
        axis.set_title(panel, fontsize=9)
        axis.set_xlabel("step")
        axis.set_ylabel("training loss")
        if colours:
            axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
