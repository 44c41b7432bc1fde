"""Preference pairs for preference distillation (eq. 8), in RLAIF-V's format, built in the toy world.

RLAIF-V ranks a model's own sampled responses by AI feedback. Here:

1. `sample_responses`: the student answers each prompt several times (temperature > 0).
2. `judge_responses`: the teacher judges every two distinct responses of a prompt with
   CoMD's assessor prompt, in both orders (`mmdistill.comd.competitive.assess`, eq. 5);
   a response's score is its mean order-averaged score over its comparisons.
3. `preference_pairs`: the best-scored response is chosen, the worst rejected.

`pairs_from_comd_assessment` takes the pairs from CoMD's assessment records instead
(the teacher's and the student's answer, judged by the same prompt), so the two
methods meet. Both go through `preference_pairs`, from *comparisons*: per prompt
``{"id", "image", "question", "responses", "scores", "reason"}``, with `scores`
parallel to `responses`, or None and a `reason` when the judge failed.

A pair record is ``{"id", "image", "question", "chosen", "rejected", "chosen_score",
"rejected_score", "source"}``. Prompts without a pair go to a `RejectLog` (source
"preference") with one of `REJECT_REASONS`. `oracle_agreement` measures the pairs
against the toy world's oracle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from mmdistill.comd import competitive
from mmdistill.evaluation.scoring import scene_of
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.io import RejectLog
from mmdistill.roles import answer_prompt
from mmdistill.toyworld import oracle

# Why a prompt gives no pair, in the order they are checked.
REJECT_REASONS = ("unparsable_judgement", "identical_responses", "tie")
STUDENT_SAMPLES = "student_samples"
COMD_ASSESSMENT = "comd_assessment"
RLAIF_V = "rlaif_v"  # published RLAIF-V pairs, read by mmdistill.adapters.rlaif_v_pairs


def sample_responses(backend: GenerationBackend, prompts: Sequence[dict], samples_per_prompt: int,
                     temperature: float, image_root: str | Path, max_new_tokens: int) -> dict[str, list[str]]:
    """Prompt id -> `samples_per_prompt` sampled answers, all requests in one batched call."""
    if samples_per_prompt < 2 or temperature <= 0:
        raise ValueError(f"preference pairs need >= 2 samples at temperature > 0, got {samples_per_prompt} "
                         f"at {temperature}")
    requests = [GenerationRequest(image=Path(image_root) / prompt["image"],
                                  question=answer_prompt(prompt["question"]), temperature=temperature,
                                  max_new_tokens=max_new_tokens, id=f"{prompt['id']}#{sample}")
                for prompt in prompts for sample in range(samples_per_prompt)]
    outputs = iter(backend.generate(requests))
    return {prompt["id"]: [next(outputs) for _ in range(samples_per_prompt)] for prompt in prompts}


def judge_responses(judge: GenerationBackend, prompts: Sequence[dict], responses: Mapping[str, Sequence[str]],
                    image_root: str | Path, temperature: float, max_new_tokens: int,
                    max_retries: int) -> list[dict]:
    """Comparisons of each prompt's distinct responses, every two judged by `judge` in both orders.

    A response's score is the mean of its order-averaged scores (eq. 5) against each
    other response. A prompt with any judgement left unparsable after `max_retries`
    retries gets no scores but the judge's reason: a ranking from some of its
    comparisons only would favour the responses that were judged. A prompt whose
    responses are all the same is not judged (no scores, no reason).
    """
    comparisons, matches, first_answers, second_answers = [], [], {}, {}
    for prompt in prompts:
        distinct = list(dict.fromkeys(responses[prompt["id"]]))
        comparisons.append({"id": prompt["id"], "image": prompt["image"], "question": prompt["question"],
                            "responses": distinct, "scores": None, "reason": None})
        for first, second in combinations(range(len(distinct)), 2):
            match_id = _match_id(prompt["id"], first, second)
            matches.append({"id": match_id, "image": prompt["image"], "question": prompt["question"]})
            first_answers[match_id], second_answers[match_id] = distinct[first], distinct[second]
    # assess's "teacher" answer is the first response of a match, its "student" answer the second
    judgements, failures = competitive.assess(judge, matches, first_answers, second_answers, image_root, temperature,
                                              max_new_tokens, max_retries)
    match_scores = {record["id"]: (record["R_T"], record["R_S"]) for record in judgements}
    failed = {record["id"].rsplit("/", 1)[0]: record["reason"] for record in failures}
    for comparison in comparisons:
        count = len(comparison["responses"])
        if comparison["id"] in failed:
            comparison["reason"] = failed[comparison["id"]]
        elif count > 1:
            own: list[list[float]] = [[] for _ in range(count)]
            for first, second in combinations(range(count), 2):
                first_score, second_score = match_scores[_match_id(comparison["id"], first, second)]
                own[first].append(first_score)
                own[second].append(second_score)
            comparison["scores"] = [sum(values) / len(values) for values in own]
    return comparisons


def _match_id(prompt_id: str, first: int, second: int) -> str:
    return f"{prompt_id}/{first}-{second}"


def preference_pairs(comparisons: Sequence[dict], source: str) -> tuple[list[dict], RejectLog]:
    """One pair per prompt: the best-scored response chosen, the worst rejected (the first of equals).

    Rejected, with the first reason that holds: the judge failed
    ("unparsable_judgement"), fewer than two distinct responses
    ("identical_responses"), or all scores equal ("tie").
    """
    pairs, rejects = [], RejectLog()
    for comparison in comparisons:
        responses, scores = comparison["responses"], comparison["scores"]
        if comparison.get("reason"):
            rejects.add("unparsable_judgement", comparison, source="preference")
        elif len(set(responses)) < 2:
            rejects.add("identical_responses", comparison, source="preference")
        elif max(scores) == min(scores):
            rejects.add("tie", comparison, source="preference")
        else:
            best, worst = scores.index(max(scores)), scores.index(min(scores))
            pairs.append({"id": comparison["id"], "image": comparison["image"], "question": comparison["question"],
                          "chosen": responses[best], "rejected": responses[worst], "chosen_score": scores[best],
                          "rejected_score": scores[worst], "source": source})
    return pairs, rejects


def pairs_from_student_samples(student: GenerationBackend, judge: GenerationBackend, prompts: Sequence[dict],
                               image_root: str | Path, samples_per_prompt: int, temperature: float,
                               judge_temperature: float, max_new_tokens: int,
                               max_retries: int) -> tuple[list[dict], RejectLog]:
    """RLAIF-V's way: the student's sampled responses ranked by the teacher as judge (`judge`)."""
    responses = sample_responses(student, prompts, samples_per_prompt, temperature, image_root, max_new_tokens)
    comparisons = judge_responses(judge, prompts, responses, image_root, judge_temperature, max_new_tokens,
                                  max_retries)
    return preference_pairs(comparisons, STUDENT_SAMPLES)


def pairs_from_comd_assessment(judgements: Sequence[dict], failures: Sequence[dict]) -> tuple[list[dict], RejectLog]:
    """CoMD's way: its assessment records (`competitive.assess`), the teacher's against the student's answer."""
    comparisons = [{"id": record["id"], "image": record["image"], "question": record["question"],
                    "responses": [record["teacher_answer"], record["student_answer"]],
                    "scores": [record["R_T"], record["R_S"]], "reason": None} for record in judgements]
    comparisons += [{"id": record["id"], "image": record["image"], "question": record["question"],
                     "responses": [record["teacher_answer"], record["student_answer"]],
                     "scores": None, "reason": record["reason"]} for record in failures]
    return preference_pairs(comparisons, COMD_ASSESSMENT)


def oracle_agreement(pairs: Sequence[dict], scenes: Sequence[dict]) -> dict[str, Any]:
    """How often the oracle's rubric (`toyworld.oracle.score_answer`) also prefers the chosen response.

    `agreement` is over the pairs the oracle decides (its two scores differ); None without any.
    """
    scenes_by_image = {scene["image"]: scene for scene in scenes}
    agree = disagree = 0
    for pair in pairs:
        scene = scene_of(pair, scenes_by_image)
        chosen = oracle.score_answer(scene, pair["question"], pair["chosen"])
        rejected = oracle.score_answer(scene, pair["question"], pair["rejected"])
        agree += chosen > rejected
        disagree += chosen < rejected
    decided = agree + disagree
    return {"pairs": len(pairs), "oracle_prefers_chosen": agree, "oracle_prefers_rejected": disagree,
            "oracle_ties": len(pairs) - decided, "agreement": agree / decided if decided else None}
