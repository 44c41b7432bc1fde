"""Rule script: causal-LM pretraining of a tiny Llama on toy text."""

from mmdistill.io import write_json
from mmdistill.jobs import snakemake_job
from mmdistill.stages import train_toy_llm

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    summary = train_toy_llm(
        tokenizer_dir=job.input.tokenizer[0],
        text_path=job.input.text,
        output_dir=job.output.model,
        architecture=job.params["architecture"],
        max_positions=job.params["max_positions"],
        train_config=job.params["train"],
        seed=job.params["seed"],
    )
    write_json(job.output.summary, summary)
    job.log.info("final LM loss %.4f", summary["train_loss"])
