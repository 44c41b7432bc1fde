"""Rule script: table 4, the tau ablation across the three benchmarks."""

from mmdistill.jobs import snakemake_job
from mmdistill.report import load_scores
from mmdistill.tables import benchmarks_table, write_table

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = load_scores(job.input.scores)
    table = benchmarks_table("Tau ablation: the student after the last iteration", job.params["benchmarks"],
                             [(label, model, scores.get(model, {}), {"tau": tau, "seed": job.params["seed"]})
                              for label, model, tau in job.params["rows"]])
    write_table(table, job.output.csv, job.output.markdown)
    job.log.info("%s: %d tau values", job.output.csv, len(table.rows))
