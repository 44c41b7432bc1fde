"""Rule script: assessment and augmentation of one CoMD iteration (§3.3.2-3), refreshing both pools."""

import json

from mmdistill.comd.loop import assess_and_augment, assessment_seed, assessment_settings
from mmdistill.generation import load_backend
from mmdistill.io import read_jsonl
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    generation, seed, iteration = job.params["generation"], job.params["seed"], int(job.wildcards["k"])

    def backend(checkpoint, seed):
        return load_backend(generation["backend"], checkpoint, batch_size=generation["batch_size"], seed=seed,
                            chat_template=job.params["chat_template"])

    report = assess_and_augment(
        # seeded apart from the teacher's training answers, so a fresh answer is a new draw
        teacher=backend(job.input.teacher, assessment_seed(seed, iteration)),
        student=backend(job.input.student, seed),
        iteration=iteration,
        tuning_pool=list(read_jsonl(job.input.tuning_pool)),
        cache_pool=list(read_jsonl(job.input.cache_pool)),
        teacher_answers={r["id"]: r["answer"] for r in read_jsonl(job.input.answers)},
        image_root=job.params["image_root"],
        outputs=dict(job.output.items()),
        settings=assessment_settings(job.params["stage2"], generation),
        seed=seed,
        checkpoints={"teacher": job.input.teacher, "student": job.input.student},
    )
    job.log.info("iteration report %s", json.dumps(report, sort_keys=True))
