"""Rule script: the initial instruction tuning and cache pools (CoMD eq. 4), from the seed set."""

from mmdistill.comd import competitive
from mmdistill.io import RejectLog, read_json, write_jsonl
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    rejects = RejectLog()
    pool = competitive.seed_pool(read_json(job.input.seed_set), rejects, source=job.input.seed_set)
    write_jsonl(job.output.tuning_pool, pool)
    write_jsonl(job.output.cache_pool, pool)
    rejects.write(job.output.rejects)
    job.log.info("seed pools: %d single-turn questions; %d text-only records left out (%s)", len(pool), len(rejects),
                 job.output.rejects)
