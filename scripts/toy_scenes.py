"""Rule script: seeded toy scenes for every split, rendered to PNG, with their scene graphs.

The held-out split is drawn last, so that none of its scene graphs occurs in a training split.
"""

from pathlib import Path

from mmdistill.io import write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.toyworld.scenes import generate_scenes, write_scene_images

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    world, splits, held_out = job.params["world"], job.params["splits"], job.params["held_out_split"]
    options = {"seed": job.params["seed"], "grid": world["grid"], "max_objects": world["max_objects"],
               "min_objects": world["min_objects"], "text_probability": world["text_probability"]}
    scenes = {split: generate_scenes(count, split=split, **options)
              for split, count in splits.items() if split != held_out}
    training = [scene for split_scenes in scenes.values() for scene in split_scenes]
    scenes[held_out] = generate_scenes(splits[held_out], split=held_out, held_out_from=training, **options)
    records = []
    for split in splits:
        records.extend(write_scene_images(scenes[split], Path(job.output.images).parent, world["image_size"]))
        job.log.info("split %s: %d scenes", split, len(scenes[split]))
    redrawn = sum("redraws" in scene for scene in scenes[held_out])
    job.log.info("held-out split %s: %d of %d scenes redrawn so that no scene graph occurs in a training split "
                 "or twice", held_out, redrawn, len(scenes[held_out]))
    write_jsonl(job.output.scenes, records)
