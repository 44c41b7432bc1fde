"""Rule script: one LLaVA training stage (alignment, instruction tuning, fine-tuning), one process per GPU."""

from mmdistill.io import write_json
from mmdistill.jobs import snakemake_job
from mmdistill.launch import processes, run_stage
from mmdistill.stages import train_llava_stage

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    stage = {
        "output_dir": job.output.model,
        "data_path": job.input.data,
        "data_format": job.params["data_format"],
        "image_root": job.params["image_root"],
        "trainable": job.params["trainable"],
        "train_config": job.params["train"],
        "seed": job.params["seed"],
        "init_checkpoint": job.input.get("init"),
        "vision_tower": job.input.get("vision_tower"),
        "llm": job.input.get("llm"),
        "allow_empty": job.params.get("allow_empty_data", False),
        "chat_template": job.params["chat_template"],
        "max_reject_rate": job.params["max_reject_rate"],
    }
    summary = run_stage(train_llava_stage, stage, processes(snakemake.resources))  # noqa: F821
    write_json(job.output.summary, summary)
    job.log.info("training summary: %d examples, %d steps, %d process(es), final loss %s, rejected records %s",
                 summary["examples"], summary["global_steps"], summary.get("processes", 1), summary["train_loss"],
                 summary.get("rejects", {}).get("by_reason"))
