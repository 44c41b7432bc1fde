"""Rule script: all of the main CoMD run's tuning data, for the run without stage 1 (table 5)."""

from mmdistill.comd.baselines import without_stage1_records
from mmdistill.io import read_json, write_json
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    records = without_stage1_records([read_json(path) for path in job.input.comd_data])
    write_json(job.output.data, records)
    job.log.info("without stage 1: %d examples from %d iterations", len(records), len(job.input.comd_data))
