"""Rule script: dense-to-sparse mimic distillation (LLaVA-MoD eq. 7), the student upcycled first."""

from mmdistill.jobs import snakemake_job
from mmdistill.launch import processes, run_stage
from mmdistill.mod.stages import distill_sparse

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    summary = run_stage(distill_sparse, {
        "output_dir": job.output.model,
        "summary_path": job.output.summary,
        "init_checkpoint": job.input.init,
        "data_path": job.input.data,
        "image_root": job.params["image_root"],
        "train_config": job.params["train"],
        "seed": job.params["seed"],
        "num_experts": job.params["experts"],
        "top_k": job.params["top_k"],
        "aux_loss_coef": job.params["aux_loss_coef"],
        "teacher_logits": job.params["teacher_logits"],
        "teacher": job.input.get("teacher"),
        "logits_dir": job.input.get("logits"),
        "tokens": job.params["tokens"],
        "trainable": job.params["trainable"],
        "chat_template": job.params["chat_template"],
    }, processes(snakemake.resources))  # noqa: F821
    job.log.info("dense-to-sparse E%dT%d: %d examples, %d steps, final loss %s, parameters %s", job.params["experts"],
                 job.params["top_k"], summary["examples"], summary["global_steps"], summary["train_loss"],
                 summary["parameters"])
