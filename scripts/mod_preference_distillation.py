"""Rule script: preference distillation (LLaVA-MoD eq. 8), DPO with the frozen teacher as reference."""

from mmdistill.jobs import snakemake_job
from mmdistill.launch import processes, run_stage
from mmdistill.mod.stages import preference_distill

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    summary = run_stage(preference_distill, {
        "output_dir": job.output.model,
        "summary_path": job.output.summary,
        "init_checkpoint": job.input.init,
        "pairs_path": job.input.pairs,
        "image_root": job.params["image_root"],
        "teacher": job.input.teacher,
        "train_config": job.params["train"],
        "seed": job.params["seed"],
        "beta": job.params["beta"],
        "trainable": job.params["trainable"],
        "chat_template": job.params["chat_template"],
    }, processes(snakemake.resources))  # noqa: F821
    job.log.info("preference distillation: %d pairs, %d steps, final loss %s", summary["examples"],
                 summary["global_steps"], summary["train_loss"])
