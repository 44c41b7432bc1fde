"""Rule script (map): spaCy noun phrases of one shard of the raw captions."""

from tqdm import tqdm

from mmdistill.jobs import snakemake_job
from mmdistill.comd.nounphrase import extract_shard, write_shard

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    with tqdm(desc=f"noun phrases, shard {job.params['shard']}", unit="caption") as bar:
        results = extract_shard(job.input[0], job.params["shard"], job.params["shards"],
                                model_name=job.params["spacy_model"], batch_size=job.params["batch_size"],
                                on_progress=bar.update)
    write_shard(job.output[0], results)
    job.log.info("%d captions parsed", len(results))
