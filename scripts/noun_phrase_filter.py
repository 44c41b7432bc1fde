"""Rule script (reduce): the noun-phrase frequency filter of CoMD §3.2 over all shards."""

import json

from mmdistill.jobs import snakemake_job
from mmdistill.comd.nounphrase import read_shard, write_filtered_captions

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    report = write_filtered_captions(
        job.input.captions,
        [read_shard(path) for path in job.input.shards],
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
