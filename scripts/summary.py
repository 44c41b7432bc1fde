"""Rule script: the summary page (Markdown) and its bar chart."""

from pathlib import Path

from mmdistill.io import read_json
from mmdistill.jobs import snakemake_job
from mmdistill.report import by_seed, load_scores, plot_scores, summary_markdown

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = by_seed(load_scores(job.input.scores))
    quality = read_json(job.input.teacher_quality[0]) if job.input.teacher_quality else None
    markdown = summary_markdown(scores, quality, read_json(job.input.filter_report))
    Path(job.output.markdown).write_text(markdown)
    plot_scores(scores, job.output.figure)
    job.log.info("\n%s", markdown)
