"""Rule script (reduce): the noun-phrase frequency filter of CoMD §3.2 over all shards."""

import json

from mmdistill.jobs import snakemake_job
from mmdistill.comd.nounphrase import filter_shard_files

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    report = filter_shard_files(
        job.input.captions,
        job.input.shards,
        job.output.filtered,
        job.output.report,
        job.output.rejects,
        model_name=job.params["spacy_model"],
        min_frequency=job.params["min_frequency"],
        max_pairs_per_phrase=job.params["max_pairs_per_phrase"],
        seed=job.params["seed"],
        max_reject_rate=job.params["max_reject_rate"],
    )
    job.log.info("filter report %s", json.dumps(report, sort_keys=True))
