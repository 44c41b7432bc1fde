"""Rule script: tables 1-3, one benchmark by category with a row per model, pooled over its training seeds."""

from mmdistill.evaluation.runner import benchmark_spec
from mmdistill.jobs import snakemake_job
from mmdistill.report import BENCHMARK_NAMES, load_scores
from mmdistill.tables import benchmark_table, write_table

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    benchmark = job.params["benchmark"]
    scores = load_scores(job.input.scores)
    measure = "judge score" if benchmark_spec(benchmark).kind == "open_ended" else "accuracy"
    table = benchmark_table(f"{BENCHMARK_NAMES[benchmark]}: {measure} by category", benchmark,
                            [(label, model, scores.get(model, {}).get(benchmark, {})) for label, model in job.params["rows"]],
                            extra={"seed": job.params["seed"]}, seed=job.params["seed"],
                            gap_between=tuple(job.params["gap_between"]))
    if not job.input.scores:
        table.notes.append(f"`{benchmark}` is not in `evaluation.benchmarks`: nothing was measured.")
    write_table(table, job.output.csv, job.output.markdown)
    job.log.info("%s: %d rows, columns %s", job.output.csv, len(table.rows), table.columns)
