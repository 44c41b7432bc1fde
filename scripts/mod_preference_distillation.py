"""Rule script: preference distillation (LLaVA-MoD eq. 8), DPO with the frozen teacher as reference."""

from mmdistill.jobs import snakemake_job
from mmdistill.launch import processes, run_stage
from mmdistill.mod.stages import preference_distill, stage_arguments

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    summary = run_stage(preference_distill, {
        **stage_arguments(job),
        "pairs_path": job.input.pairs,
        "teacher": job.input.teacher,
        "beta": job.params["beta"],
    }, processes(snakemake.resources))  # noqa: F821
    job.log.info("preference distillation: %d pairs, %d steps, final loss %s", summary["examples"],
                 summary["global_steps"], summary["train_loss"])
