"""Rule script: Figure 4, each benchmark's score per CoMD iteration, as PNG and CSV."""

from mmdistill.jobs import snakemake_job
from mmdistill.report import load_scores
from mmdistill.tables import ITERATION_FIELDS, iteration_series, plot_iterations, write_rows

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = load_scores(job.input.scores)
    benchmarks = job.params["benchmarks"]
    series = {bench: {k: scores.get(model, {}).get(bench) for k, model in enumerate(job.params["iterations"])}
              for bench in benchmarks}
    references = {label: scores.get(model, {}) for label, model in job.params["references"].items()}
    rows = iteration_series(series)
    write_rows(job.output.csv, ITERATION_FIELDS, rows)
    plot_iterations(series, references, job.output.figure)
    job.log.info("figure 4: %d points over %d benchmarks", len(rows), len(benchmarks))
