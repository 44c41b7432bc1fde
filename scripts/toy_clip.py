"""Rule script: contrastive pretraining of the tiny CLIP on toy captions."""

from pathlib import Path

from mmdistill.io import write_json
from mmdistill.jobs import snakemake_job
from mmdistill.stages import train_toy_clip

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    summary = train_toy_clip(
        tokenizer_dir=job.input.tokenizer[0],
        captions_path=job.input.captions,
        image_root=Path(job.input.images).parent,
        output_dir=job.output.model,
        image_size=job.params["image_size"],
        architecture=job.params["architecture"],
        train_config=job.params["train"],
        seed=job.params["seed"],
    )
    write_json(job.output.summary, summary)
    job.log.info("final contrastive loss %.4f", summary["train_loss"])
