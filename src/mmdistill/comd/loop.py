"""One CoMD stage-2 iteration as functions of files (§3.3): what the stage-2 rules run.

Iteration k reads the pools written by iteration k-1 (iteration 0 is the seed pool,
eq. 4, `results/comd/iter0/`) and writes its own under `results/comd/seed<s>/<run>/iter<k>/`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from random import Random
from typing import Any

from mmdistill.comd import competitive
from mmdistill.conversation import IMAGE_PLACEHOLDER
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.io import write_json, write_jsonl

TEACHER_ANSWER_DRAWS = ("fresh", "reused")  # comd.stage2.assess_teacher_answers


def answer_all(backend: GenerationBackend, instructions: list[dict], image_root, temperature: float,
               max_new_tokens: int) -> dict[str, str]:
    """{instruction id: answer} for every instruction, in one batched call."""
    requests = [GenerationRequest(image=str(Path(image_root) / record["image"]), question=record["question"],
                                  temperature=temperature, max_new_tokens=max_new_tokens, id=record["id"])
                for record in instructions]
    return dict(zip((r["id"] for r in instructions), backend.generate(requests)))


def teacher_answers_for(backend: GenerationBackend, cache_pool: list[dict], earlier: dict[str, str], image_root,
                        temperature: float, max_new_tokens: int) -> tuple[dict[str, str], int]:
    """The teacher's training answer to every cache-pool instruction, and how many were generated now.

    The teacher does not change between iterations, so an answer it gave in an
    earlier iteration (`earlier`, id -> answer) is kept rather than drawn again: each
    iteration the teacher answers only the instructions new to the cache pool (the
    tuning pool). Whether the assessor judges these answers or a fresh draw is
    comd.stage2.assess_teacher_answers (`assess_and_augment`).
    """
    missing = [record for record in cache_pool if record["id"] not in earlier]
    fresh = answer_all(backend, missing, image_root, temperature, max_new_tokens) if missing else {}
    return {record["id"]: earlier.get(record["id"], fresh.get(record["id"])) for record in cache_pool}, len(missing)


def tuning_records(tuning_pool: list[dict], teacher_answers: dict[str, str], seed: int,
                   max_turns: int | None = None) -> list[dict]:
    """Phase 1 data (§3.3.1): the single-turn (V, X, A^T) triples turned back into multi-turn dialogues (eq. 1).

    The tuning pool's instructions of one image form one LLaVA conversation, images in
    pool order. The order of its questions is shuffled with `Random(f"{seed}:{image}")`,
    so it is fixed by the seed and does not depend on the other images. With
    `max_turns`, an image with more questions gives several conversations of at most
    `max_turns` turns, in that shuffled order. The `<image>` marker opens the first
    question only (eq. 2). A record's "question_ids" names its instructions in turn order.
    """
    records = []
    for image, group in competitive.group_by_image(tuning_pool).items():
        Random(f"{seed}:{image}").shuffle(group)
        size = max_turns or len(group)
        for part, start in enumerate(range(0, len(group), size)):
            turns = group[start:start + size]
            conversations = []
            for turn, record in enumerate(turns):
                question = f"{IMAGE_PLACEHOLDER}\n{record['question']}" if turn == 0 else record["question"]
                conversations += [{"from": "human", "value": question},
                                  {"from": "gpt", "value": teacher_answers[record["id"]]}]
            records.append({"id": f"{image}#{part}", "image": image, "question_ids": [r["id"] for r in turns],
                            "conversations": conversations})
    return records


def assessment_seed(seed: int, iteration: int) -> int:
    """The teacher's sampling seed in iteration k's assessment job of a run with training seed `seed`.

    It also seeds the draw of easy instructions (`competitive.sample_easy`) in that job.
    It is derived from both (31 bits of a SHA-256), so it differs from every small
    training seed, with which the teacher draws training answers (`teacher_answers_for`):
    a fresh answer for assessment is a new draw, and no other training seed's run draws
    the same answers (with `seed + k`, seed 0's iteration-1 assessment would repeat
    seed 1's training draw).
    """
    digest = hashlib.sha256(f"assessment:{seed}:{iteration}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def assessment_settings(stage2: dict[str, Any], generation: dict[str, Any]) -> dict[str, Any]:
    """The `settings` of `assess_and_augment` from the rule's params: the run's comd.stage2 keys
    (tau already the run's), generation.max_new_tokens, and generation.temperature, one per role
    (teacher, student, assessor, augmentor)."""
    return {**stage2, "max_new_tokens": generation["max_new_tokens"], "temperature": dict(generation["temperature"])}


class JudgeFailedError(RuntimeError):
    """The assessor parsed no judgement at all in an iteration: the loop would stall, copying the student."""


def assess_and_augment(teacher: GenerationBackend, student: GenerationBackend, iteration: int,
                       tuning_pool: list[dict], cache_pool: list[dict], teacher_answers: dict[str, str],
                       image_root, outputs: dict[str, Any], settings: dict[str, Any], seed: int,
                       checkpoints: dict[str, str] | None = None) -> dict[str, Any]:
    """Phases 2 and 3 (§3.3.2-3): judge the cache pool, generate new instructions, refresh both pools.

    `tuning_pool` is the pool the student was just trained on, `teacher_answers` the
    teacher's training answers (`teacher_answers_for`). The teacher answer the assessor
    judges is settings["assess_teacher_answers"]:

    * "fresh" (the default): `teacher` answers every cache-pool instruction anew, at the
      teacher's temperature. Eq. (5) and §3.3.2 have both models answer each instruction
      at assessment time. The student was trained on the training answers, so judging it
      against those measures how well it repeats its own targets and under-rates the
      difficulty of what it was just trained on; a fresh draw is an independent sample of
      the teacher. It costs one generation per cache-pool instruction, on top of the
      three (student answer, two judge orders) the assessment makes anyway. `teacher`
      must be seeded apart from the training draw (`assessment_seed`); at temperature 0
      both draws are the same greedy answer.
    * "reused": the training answers.

    `outputs` names the files to write: assessment, judge_failures,
    assessment_teacher_answers (the answers judged, with their draw), tuning_pool,
    cache_pool, rejects, report. Judgements and failures record the draw as
    "teacher_answer_draw". `checkpoints` (role -> path) goes into the report. Returns the
    iteration report. When the judge fails on every instruction, `JudgeFailedError` stops
    the job before anything is written.
    """
    temperatures, max_new_tokens = settings["temperature"], settings["max_new_tokens"]
    draw = settings["assess_teacher_answers"]
    if draw not in TEACHER_ANSWER_DRAWS:
        raise ValueError(f"assess_teacher_answers must be one of {TEACHER_ANSWER_DRAWS}, got {draw!r}")
    if draw == "fresh":
        teacher_answers = answer_all(teacher, cache_pool, image_root, temperatures["teacher"], max_new_tokens)
    student_answers = answer_all(student, cache_pool, image_root, temperatures["student"], max_new_tokens)
    judgements, failures = competitive.assess(teacher, cache_pool, teacher_answers, student_answers, image_root,
                                       temperatures["assessor"], max_new_tokens,
                                       settings["judge_max_retries"], tau=settings["tau"])
    if failures and not judgements:
        raise JudgeFailedError(
            f"iteration {iteration}: the judge failed on all {len(failures)} instructions of the cache pool "
            f"({settings['judge_max_retries']} retries each; first: {failures[0]['id']!r}, {failures[0]['reason']}); "
            "stopping instead of training the next student on an unchanged pool")
    judgements = [{**record, "teacher_answer_draw": draw} for record in judgements]
    failures = [{**record, "teacher_answer_draw": draw} for record in failures]
    difficult, easy = competitive.split_by_difficulty(cache_pool, judgements)
    sampled_easy = competitive.sample_easy(easy, competitive.easy_sample_size(len(difficult), len(tuning_pool)),
                                    seed=assessment_seed(seed, iteration))
    sources = difficult + sampled_easy
    requests = competitive.augmentation_requests(sources, image_root, temperatures["augmentor"], max_new_tokens)
    candidates = competitive.candidates_from_outputs(sources, teacher.generate(requests), iteration)
    valid, rejects = competitive.filter_new_instructions(candidates, competitive.group_by_image(cache_pool),
                                                  threshold=settings["rouge_l_threshold"])
    new_tuning = competitive.replace_tuning_pool(valid)
    new_cache = competitive.merge_cache_pool(cache_pool, valid)
    report = competitive.iteration_report(iteration, new_tuning, new_cache, judgements, failures, sampled_easy,
                                   candidates, valid, rejects)
    report["teacher_answer_draw"] = draw
    report["checkpoints"] = dict(checkpoints or {})
    write_jsonl(outputs["assessment_teacher_answers"],
                ({"id": record["id"], "answer": teacher_answers[record["id"]], "draw": draw} for record in cache_pool))
    write_jsonl(outputs["assessment"], judgements)
    write_jsonl(outputs["judge_failures"], failures)
    write_jsonl(outputs["tuning_pool"], new_tuning)
    write_jsonl(outputs["cache_pool"], new_cache)
    rejects.write(outputs["rejects"])
    write_json(outputs["report"], report)
    return report
