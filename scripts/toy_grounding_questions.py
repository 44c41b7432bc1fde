"""Rule script: the questions of the teacher's grounding stage, over the pretrain and instruct scenes."""

from mmdistill.io import read_jsonl, write_json
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.corpora import make_grounding_stage_data

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scenes = [s for s in read_jsonl(job.input.scenes) if s["split"] in ("pretrain", "instruct")]
    records = make_grounding_stage_data(
        scenes, job.params["seed"], job.params["existence_per_scene"], job.params["search_per_scene"],
        job.params["search_word_per_scene"],
    )
    write_json(job.output.questions, records)
    job.log.info("grounding stage: %d questions (existence, search and words) about %d scenes", len(records), len(scenes))
