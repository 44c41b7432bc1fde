"""Rule script: the raw caption corpus (CC3M+SBU+LAION analog) and detailed captions of the pretraining scenes."""

from mmdistill.io import read_jsonl, write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.corpora import make_detailed_captions, make_raw_captions

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scenes = [s for s in read_jsonl(job.input.scenes) if s["split"] == "pretrain"]
    captions = make_raw_captions(scenes, job.params["captions_per_scene"], seed=job.params["seed"])
    write_jsonl(job.output.raw, captions)
    write_jsonl(job.output.detailed, make_detailed_captions(scenes))
    job.log.info("%d raw caption pairs and %d detailed captions over %d images", len(captions), len(scenes), len(scenes))
