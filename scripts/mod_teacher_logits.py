"""Rule script: the teacher's top-k log-probs for every distilled token of a distillation set (LLaVA-MoD §3)."""

from mmdistill.io import write_json
from mmdistill.jobs import snakemake_job
from mmdistill.models.llava import load_llava, num_image_tokens
from mmdistill.mod.data import DistillationCollator, DistillationDataset
from mmdistill.mod.teacher_logits import vocabulary_digest, write_teacher_top_k
from mmdistill.stages import conversation_records

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    teacher, processor = load_llava(job.input.teacher)
    # the dataset the student distils on (mmdistill.mod.stages), so rows line up with its distilled tokens
    dataset = DistillationDataset(conversation_records(job.input.data), job.params["image_root"], processor,
                                  num_image_tokens(teacher.config), tokens=job.params.get("tokens", "response"),
                                  chat_template=job.params["chat_template"])
    summary = write_teacher_top_k(teacher, dataset, DistillationCollator(processor.tokenizer.pad_token_id),
                                  job.output.logits, k=job.params["k"], batch_size=job.params["batch_size"],
                                  vocabulary=vocabulary_digest(processor.tokenizer))
    write_json(job.output.bench, summary)
    job.log.info("teacher top-%d: %d tokens, %.1f B/token (%d B at a 152K vocabulary), KL %.2e nats/token",
                 summary["k"], summary["tokens"], summary["bytes_per_token"],
                 summary["bytes_per_token_152k_vocabulary"], summary["kl_nats_per_token"])
