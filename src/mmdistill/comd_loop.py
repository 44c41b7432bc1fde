"""One CoMD stage-2 iteration as functions of files (§3.3): what the stage-2 rules run.

Iteration k reads the pools written by iteration k-1 (iteration 0 is the seed pool,
eq. 4) and writes its own under `results/comd/<run>/iter<k>/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdistill import comd
from mmdistill.conversation import IMAGE_PLACEHOLDER
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.io import write_json, write_jsonl


def answer_all(backend: GenerationBackend, instructions: list[dict], image_root, temperature: float,
               max_new_tokens: int) -> dict[str, str]:
    """{instruction id: answer} for every instruction, in one batched call."""
    requests = [GenerationRequest(image=str(Path(image_root) / record["image"]), question=record["question"],
                                  temperature=temperature, max_new_tokens=max_new_tokens, id=record["id"])
                for record in instructions]
    return dict(zip((r["id"] for r in instructions), backend.generate(requests)))


def teacher_answers_for(backend: GenerationBackend, cache_pool: list[dict], earlier: dict[str, str], image_root,
                        temperature: float, max_new_tokens: int) -> tuple[dict[str, str], int]:
    """The teacher's answer to every cache-pool instruction, and how many were generated now.

    The teacher does not change between iterations, so an answer it gave in an
    earlier iteration (`earlier`, id -> answer) is kept rather than drawn again: each
    iteration the teacher answers only the instructions new to the cache pool (the
    tuning pool), and the student is judged against the answer it was trained on.
    """
    missing = [record for record in cache_pool if record["id"] not in earlier]
    fresh = answer_all(backend, missing, image_root, temperature, max_new_tokens) if missing else {}
    return {record["id"]: earlier.get(record["id"], fresh.get(record["id"])) for record in cache_pool}, len(missing)


def tuning_records(tuning_pool: list[dict], teacher_answers: dict[str, str]) -> list[dict]:
    """Phase 1 data (§3.3.1): (image, question, teacher answer) as one-turn LLaVA conversations."""
    return [{"id": record["id"], "image": record["image"],
             "conversations": [{"from": "human", "value": f"{IMAGE_PLACEHOLDER}\n{record['question']}"},
                               {"from": "gpt", "value": teacher_answers[record["id"]]}]}
            for record in tuning_pool]


def assess_and_augment(teacher: GenerationBackend, student: GenerationBackend, iteration: int,
                       tuning_pool: list[dict], cache_pool: list[dict], teacher_answers: dict[str, str],
                       image_root, outputs: dict[str, Any], settings: dict[str, Any], seed: int,
                       checkpoints: dict[str, str] | None = None) -> dict[str, Any]:
    """Phases 2 and 3 (§3.3.2-3): judge the cache pool, generate new instructions, refresh both pools.

    `outputs` names the files to write: assessment, judge_failures, tuning_pool,
    cache_pool, rejects, report. `checkpoints` (role -> path) goes into the report.
    Returns the iteration report.
    """
    temperatures = settings["temperature"]
    student_answers = answer_all(student, cache_pool, image_root, temperatures["student"], settings["max_new_tokens"])
    judgements, failures = comd.assess(teacher, cache_pool, teacher_answers, student_answers, image_root,
                                       temperatures["assessor"], settings["max_new_tokens"],
                                       settings["judge_max_retries"], tau=settings["tau"])
    difficult, easy = comd.split_by_difficulty(cache_pool, judgements)
    sampled_easy = comd.sample_easy(easy, len(difficult), seed=seed + iteration)
    sources = difficult + sampled_easy
    requests = comd.augmentation_requests(sources, image_root, temperatures["augmentor"], settings["max_new_tokens"])
    candidates = comd.candidates_from_outputs(sources, teacher.generate(requests), iteration)
    valid, rejects = comd.filter_new_instructions(candidates, comd.group_by_image(cache_pool),
                                                  threshold=settings["rouge_l_threshold"])
    new_tuning = comd.replace_tuning_pool(valid)
    new_cache = comd.merge_cache_pool(cache_pool, valid)
    report = comd.iteration_report(iteration, new_tuning, new_cache, judgements, failures, sampled_easy,
                                   candidates, valid, rejects)
    report["checkpoints"] = dict(checkpoints or {})
    write_jsonl(outputs["assessment"], judgements)
    write_jsonl(outputs["judge_failures"], failures)
    write_jsonl(outputs["tuning_pool"], new_tuning)
    write_jsonl(outputs["cache_pool"], new_cache)
    rejects.write(outputs["rejects"])
    write_json(outputs["report"], report)
    return report
