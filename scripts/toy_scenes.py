"""Rule script: seeded toy scenes for every split, rendered to PNG, with their scene graphs."""

from pathlib import Path

from mmdistill.io import write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.scenes import generate_scenes, write_scene_images

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    world = job.params["world"]
    records = []
    for split, count in job.params["splits"].items():
        scenes = generate_scenes(count, seed=job.params["seed"], split=split, grid=world["grid"],
                                 max_objects=world["max_objects"], min_objects=world["min_objects"],
                                 text_probability=world["text_probability"])
        records.extend(write_scene_images(scenes, Path(job.output.images).parent, world["image_size"]))
        job.log.info("split %s: %d scenes", split, len(scenes))
    write_jsonl(job.output.scenes, records)
