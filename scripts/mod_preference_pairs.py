"""Rule script: preference pairs in RLAIF-V's format (LLaVA-MoD eq. 8's data), with rejects and oracle agreement."""

import json

from mmdistill.adapters import rlaif_v_pairs
from mmdistill.generation import load_backend
from mmdistill.io import read_jsonl, write_json, write_jsonl
from mmdistill.jobs import snakemake_job
from mmdistill.mod.preference import (
    COMD_ASSESSMENT,
    RLAIF_V,
    oracle_agreement,
    pairs_from_comd_assessment,
    pairs_from_student_samples,
)

with snakemake_job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    params, generation = job.params, job.params["generation"]
    if params["source"] == RLAIF_V:
        pairs, rejects = rlaif_v_pairs(job.input.rlaif_v, job.input.rlaif_v_images, absolute_images=True)
        prompts = len(pairs) + len(rejects)
    elif params["source"] == COMD_ASSESSMENT:
        pairs, rejects = pairs_from_comd_assessment(list(read_jsonl(job.input.assessment)),
                                                    list(read_jsonl(job.input.judge_failures)))
        prompts = len(pairs) + len(rejects)
    else:
        def backend(checkpoint):
            return load_backend(generation["backend"], checkpoint, batch_size=generation["batch_size"],
                                seed=params["seed"], chat_template=params["chat_template"])

        questions = list(read_jsonl(job.input.prompts))[:params["prompts"]]
        pairs, rejects = pairs_from_student_samples(
            student=backend(job.input.student), judge=backend(job.input.teacher), prompts=questions,
            image_root=params["image_root"], samples_per_prompt=params["samples_per_prompt"],
            temperature=params["temperature"], judge_temperature=params["judge_temperature"],
            max_new_tokens=generation["max_new_tokens"], max_retries=params["judge_max_retries"])
        prompts = len(questions)
    write_jsonl(job.output.pairs, pairs)
    rejects.write(job.output.rejects)
    scenes = list(read_jsonl(job.input.scenes)) if job.input.get("scenes") else None
    report = {"source": params["source"], "prompts": prompts, "pairs": len(pairs), "rejects": rejects.counts,
              "oracle": oracle_agreement(pairs, scenes) if scenes is not None else None}
    write_json(job.output.report, report)
    job.log.info("preference pairs %s", json.dumps(report, sort_keys=True))
