"""The summary page: scores, and cells nothing could be measured for; score files by training seed; learning curves."""

import json

from mmdistill.report import (
    by_seed,
    learning_curve_rows,
    load_scores,
    plot_learning_curves,
    plot_scores,
    summary_markdown,
)

FILTER = {"raw_pairs": 10, "rejected_pairs": {"total": 0}, "unique_phrases": 3, "skipped_phrases": 1, "kept_pairs": 8}


def test_summary_shows_scores_and_unjudged_benchmarks(tmp_path):
    scores = {"teacher": {"mc": {"score": 50.0, "ci95": [40.0, 60.0], "n": 100},
                          "open": {"score": None, "ci95": None, "n": 0, "judge_failures": 30}}}
    text = summary_markdown(scores, None, FILTER)
    assert "| teacher | 50.0 [40.0, 60.0] (n=100) | n/a (n=0, 30 judge failures) |" in text
    plot_scores(scores, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_score_files_load_by_model_benchmark_and_training_seed(tmp_path):
    paths = []
    for model_dir, score in (("teacher", 60.0), ("seed0/student_stage1", 20.0), ("seed2/student_stage1", 30.0)):
        path = tmp_path / "results/scores" / model_dir / "mc.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"score": score, "ci95": [0, 100], "n": 10}))
        paths.append(path)
    scores = load_scores(paths)
    assert {model: {bench: {seed: r["score"] for seed, r in per_seed.items()} for bench, per_seed in by_bench.items()}
            for model, by_bench in scores.items()} == {"teacher": {"mc": {None: 60.0}},
                                                       "student_stage1": {"mc": {0: 20.0, 2: 30.0}}}
    assert list(by_seed(scores)) == ["teacher", "student_stage1 (seed 0)", "student_stage1 (seed 2)"]


def test_learning_curves_keep_every_logged_loss_and_draw_a_panel_per_stage(tmp_path):
    curves = [("teacher", "alignment", 0, [{"step": 10, "loss": 3.0, "learning_rate": 1e-3}, {"step": 20, "loss": 2.0}]),
              ("student stage 1", "stage 1", 1, [{"step": 5, "loss": 4.0}, {"step": 5, "eval_loss": 9.0}]),
              ("student stage 1", "stage 1", 2, [])]
    rows = learning_curve_rows(curves)
    assert rows == [{"panel": "teacher", "series": "alignment", "seed": 0, "step": 10, "loss": 3.0},
                    {"panel": "teacher", "series": "alignment", "seed": 0, "step": 20, "loss": 2.0},
                    {"panel": "student stage 1", "series": "stage 1", "seed": 1, "step": 5, "loss": 4.0}]
    plot_learning_curves(curves, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
