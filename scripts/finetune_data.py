"""Rule script: a benchmark's train split as LLaVA conversations for downstream fine-tuning."""

from mmdistill.evaluation.finetune import finetune_records
from mmdistill.io import write_json
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    records = finetune_records(job.wildcards["bench"], job.input.data)
    write_json(job.output.data, records)
    job.log.info("%s train split: %d conversations", job.wildcards["bench"], len(records))
