"""Rule script: the instruction seed set, multi-turn conversations about the first instruct scenes."""

from mmdistill.io import read_jsonl, write_json
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.corpora import make_instruction_seed

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    scenes = [s for s in read_jsonl(job.input.scenes) if s["split"] == "instruct"]
    if job.params["scenes"] > len(scenes):
        raise ValueError(f"config: `toy_world.seed_set_scenes` is {job.params['scenes']}, "
                         f"more than the {len(scenes)} scenes of `toy_world.scenes.instruct`")
    min_turns, max_turns = job.params["turns"]
    seed_set = make_instruction_seed(scenes[:job.params["scenes"]], job.params["seed"], min_turns=min_turns,
                                     max_turns=max_turns)
    write_json(job.output.seed_set, seed_set)
    job.log.info("seed set: %d conversations about %d scenes", len(seed_set), job.params["scenes"])
