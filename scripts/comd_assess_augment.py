"""Rule script: assessment and augmentation of one CoMD iteration (§3.3.2-3), refreshing both pools."""

import json

from mmdistill.comd_loop import assess_and_augment
from mmdistill.generation import load_backend
from mmdistill.io import read_jsonl
from mmdistill.jobs import snakemake_job

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    generation, seed = job.params["generation"], job.params["seed"]

    def backend(checkpoint):
        return load_backend(generation["backend"], checkpoint, batch_size=generation["batch_size"], seed=seed)

    settings = {**job.params["stage2"], "max_new_tokens": generation["max_new_tokens"],
                "temperature": {"student": generation["temperature"]["teacher"], **generation["temperature"]}}
    report = assess_and_augment(
        teacher=backend(job.input.teacher),
        student=backend(job.input.student),
        iteration=int(job.wildcards["k"]),
        tuning_pool=list(read_jsonl(job.input.tuning_pool)),
        cache_pool=list(read_jsonl(job.input.cache_pool)),
        teacher_answers={r["id"]: r["answer"] for r in read_jsonl(job.input.answers)},
        image_root=job.params["image_root"],
        outputs=dict(job.output.items()),
        settings=settings,
        seed=seed,
        checkpoints={"teacher": job.input.teacher, "student": job.input.student},
    )
    job.log.info("iteration report %s", json.dumps(report, sort_keys=True))
