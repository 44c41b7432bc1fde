"""Rule script: tables 4-5, a row per model with its overall score on each benchmark, pooled over its training seeds."""

from mmdistill.jobs import snakemake_job
from mmdistill.report import load_scores
from mmdistill.tables import benchmarks_table, write_table

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = load_scores(job.input.scores)
    table = benchmarks_table(job.params["title"], job.params["benchmarks"],
                             [(label, model, scores.get(model, {}), {**extra, "seed": job.params["seed"]})
                              for label, model, extra in job.params["rows"]], seed=job.params["seed"])
    write_table(table, job.output.csv, job.output.markdown)
    job.log.info("%s: %d rows", job.output.csv, len(table.rows))
