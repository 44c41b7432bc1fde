"""Rule script: Figure 4, each benchmark's score per CoMD iteration pooled over training seeds, as PNG and CSV."""

from mmdistill.jobs import snakemake_job
from mmdistill.report import load_scores
from mmdistill.tables import average_cell, chance_level, iteration_series, plot_iterations, write_rows

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scores = load_scores(job.input.scores)
    benchmarks, seed = job.params["benchmarks"], job.params["seed"]

    def per_seed(model, bench):
        return scores.get(model, {}).get(bench, {})

    cells = {bench: {k: average_cell(per_seed(model, bench), seed) for k, model in enumerate(job.params["iterations"])}
             for bench in benchmarks}
    references = {label: {bench: average_cell(per_seed(model, bench), seed) for bench in benchmarks}
                  for label, model in job.params["references"].items()}
    chance = {bench: chance_level([r for model in job.params["iterations"] for r in per_seed(model, bench).values()])
              for bench in benchmarks}
    header, rows = iteration_series(cells)
    write_rows(job.output.csv, header, rows)
    plot_iterations(cells, references, chance, job.output.figure)
    job.log.info("figure 4: %d points over %d benchmarks", len(rows), len(benchmarks))
