"""The summary page: scores, and cells nothing could be measured for."""

from mmdistill.report import plot_scores, summary_markdown

FILTER = {"raw_pairs": 10, "rejected_pairs": {"total": 0}, "unique_phrases": 3, "skipped_phrases": 1, "kept_pairs": 8}


def test_summary_shows_scores_and_unjudged_benchmarks(tmp_path):
    scores = {"teacher": {"mc": {"score": 50.0, "ci95": [40.0, 60.0], "n": 100},
                          "open": {"score": None, "ci95": None, "n": 0, "judge_failures": 30}}}
    text = summary_markdown(scores, None, FILTER)
    assert "| teacher | 50.0 [40.0, 60.0] (n=100) | n/a (n=0, 30 judge failures) |" in text
    plot_scores(scores, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"
