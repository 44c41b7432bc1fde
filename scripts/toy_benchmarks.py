"""Rule script: the four toy benchmarks, train and test splits, from disjoint scenes."""

from pathlib import Path

from mmdistill.io import read_jsonl, write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.benchmarks import (
    make_mc_benchmark,
    make_open_benchmark,
    make_pope_benchmark,
    make_seed_benchmark,
)

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    seed = job.params["seed"]
    per_scene = job.params["items_per_scene"]
    all_scenes = list(read_jsonl(job.input.scenes))
    makers = {
        "mc": lambda scenes: make_mc_benchmark(scenes, seed, per_scene["mc"]),
        "seed": lambda scenes: make_seed_benchmark(scenes, seed, per_scene["seed"]),
        "pope": lambda scenes: make_pope_benchmark(scenes, seed, per_scene["pope"], all_scenes),
        "open": lambda scenes: make_open_benchmark(scenes, seed, per_scene["open"]),
    }
    for path in map(Path, job.output):
        bench, split = path.stem.rsplit("_", 1)
        scenes = [s for s in all_scenes if s["split"] == f"bench_{split}"]
        count = write_jsonl(path, makers[bench](scenes))
        job.log.info("%s: %d items from %d scenes", path.name, count, len(scenes))
