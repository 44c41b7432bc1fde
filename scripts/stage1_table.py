"""Rule script: table 5, CoMD with and without stage-1 pretraining."""

from mmdistill.jobs import snakemake_job
from mmdistill.report import load_scores
from mmdistill.tables import benchmarks_table, write_table

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = load_scores(job.input.scores)
    table = benchmarks_table("Ablation of stage-1 pretraining", job.params["benchmarks"],
                             [(label, model, scores.get(model, {}), {"seed": job.params["seed"]})
                              for label, model in job.params["rows"]])
    write_table(table, job.output.csv, job.output.markdown)
    job.log.info("%s written", job.output.csv)
