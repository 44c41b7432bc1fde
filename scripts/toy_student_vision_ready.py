"""Rule script: the toy student LLM made ready to read image tokens (trained with a throwaway projector)."""

from mmdistill.io import write_json
from mmdistill.jobs import snakemake_job
from mmdistill.stages import make_llm_vision_ready

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    summary = make_llm_vision_ready(job.output.model, job.input.llm, job.input.vision_tower, job.input.data,
                                    job.params["image_root"], job.params["train"], job.params["seed"],
                                    chat_template=job.params["chat_template"],
                                    max_reject_rate=job.params["max_reject_rate"])
    write_json(job.output.summary, summary)
    job.log.info("vision-ready student LLM: %d caption pairs, %d steps, final loss %.4f", summary["examples"],
                 summary["global_steps"], summary["train_loss"])
