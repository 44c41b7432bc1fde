"""Rule script: the captions of the toy student LLM's readiness step."""

from mmdistill.io import read_jsonl, write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.corpora import make_vision_ready_captions

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    captions = make_vision_ready_captions(list(read_jsonl(job.input.scenes)), job.params["seed"],
                                          job.params["captions_per_scene"])
    write_jsonl(job.output.captions, captions)
    job.log.info("%d caption pairs over %d images", len(captions), len({c["image"] for c in captions}))
