"""Rule script: the teacher's top-k log-probs for every response token of a distillation set (LLaVA-MoD §3)."""

from mmdistill.io import read_json, write_json
from mmdistill.jobs import snakemake_job
from mmdistill.models.llava import load_llava, num_image_tokens
from mmdistill.mod.teacher_logits import write_teacher_top_k
from mmdistill.training import ConversationCollator, ConversationDataset

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    teacher, processor = load_llava(job.input.teacher)
    dataset = ConversationDataset(read_json(job.input.data), job.params["image_root"], processor,
                                  num_image_tokens(teacher.config))
    summary = write_teacher_top_k(teacher, dataset, ConversationCollator(processor.tokenizer.pad_token_id),
                                  job.output.logits, k=job.params["k"], batch_size=job.params["batch_size"])
    write_json(job.output.bench, summary)
    job.log.info("teacher top-%d: %d tokens, %.1f B/token (%d B at a 152K vocabulary), KL %.2e nats/token",
                 summary["k"], summary["tokens"], summary["bytes_per_token"],
                 summary["bytes_per_token_152k_vocabulary"], summary["kl_nats_per_token"])
