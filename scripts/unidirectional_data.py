"""Rule script: the unidirectional baseline's training data (same example count as the CoMD run)."""

from mmdistill.comd_baselines import unidirectional_records
from mmdistill.io import read_json, write_json
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    initial = read_json(job.input.initial)
    per_iteration = [len(read_json(path)) for path in job.input.comd_data]
    records = unidirectional_records(initial, sum(per_iteration), seed=job.params["seed"])
    write_json(job.output.data, records)
    write_json(job.output.report, {"initial_pool": len(initial), "comd_examples_per_iteration": per_iteration,
                                   "examples": len(records)})
    job.log.info("unidirectional baseline: %d examples from %d initial instructions (CoMD: %s)",
                 len(records), len(initial), per_iteration)
