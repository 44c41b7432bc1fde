"""Rule script: training loss against steps of the stages a rule lists (learning_curves, mod_learning_curves), as PNG and CSV."""

from mmdistill.io import read_json
from mmdistill.jobs import snakemake_job
from mmdistill.report import learning_curve_rows, plot_learning_curves
from mmdistill.tables import write_rows

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    curves = [(panel, series, seed, read_json(path).get("loss_curve", []))
              for (panel, series, seed), path in zip(job.params["curves"], job.input.summaries)]
    rows = learning_curve_rows(curves)
    write_rows(job.output.csv, ["panel", "series", "seed", "step", "loss"], rows)
    plot_learning_curves(curves, job.output.figure)
    job.log.info("learning curves: %d curves, %d points", len(curves), len(rows))
