"""How well the toy teacher plays the assessor and augmentor roles, measured by the oracle.

The teacher judges answer pairs and writes new questions for held-out scenes; the
oracle's scores and answerability checks are the reference.
"""

from __future__ import annotations

from typing import Any

from mmdistill.conversation import from_llava_record
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.roles import JudgeParseError, parse_judge_output
from mmdistill.toyworld import oracle
from mmdistill.toyworld.language import task_type_of


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def judge_agreement(backend: GenerationBackend, judge_records: list[dict], image_root, temperature: float,
                    max_new_tokens: int) -> dict[str, Any]:
    """Teacher-as-judge against oracle scores: parse rate, preference agreement, mean abs. error."""
    requests, targets = [], []
    for record in judge_records:
        (prompt,), (target,) = from_llava_record(record)
        requests.append(GenerationRequest(image=f"{image_root}/{record['image']}", question=prompt,
                                          temperature=temperature, max_new_tokens=max_new_tokens))
        targets.append(parse_judge_output(target))
    outputs = backend.generate(requests)
    parsed, agree, abs_errors, failures = 0, 0, [], []
    for output, (gold_1, gold_2) in zip(outputs, targets):
        try:
            score_1, score_2 = parse_judge_output(output)
        except JudgeParseError as error:
            failures.append({"output": output, "reason": str(error)})
            continue
        parsed += 1
        agree += _sign(score_1 - score_2) == _sign(gold_1 - gold_2)
        abs_errors += [abs(score_1 - gold_1), abs(score_2 - gold_2)]
    total = len(outputs)
    return {
        "items": total,
        "parse_rate": parsed / total if total else 0.0,
        "preference_agreement": agree / total if total else 0.0,
        "mean_abs_score_error": sum(abs_errors) / len(abs_errors) if abs_errors else None,
        "unparsable_examples": failures[:10],
    }


def question_validity(backend: GenerationBackend, augment_records: list[dict], scenes_by_image: dict[str, dict],
                      image_root, temperature: float, max_new_tokens: int) -> dict[str, Any]:
    """Teacher-as-augmentor: share of new questions the oracle can answer, of the same type, and new."""
    requests, originals = [], []
    for record in augment_records:
        (prompt,), _ = from_llava_record(record)
        requests.append(GenerationRequest(image=f"{image_root}/{record['image']}", question=prompt,
                                          temperature=temperature, max_new_tokens=max_new_tokens))
        originals.append(record)
    outputs = backend.generate(requests)
    answerable = same_type = novel = 0
    examples = []
    for output, record in zip(outputs, originals):
        scene = scenes_by_image[record["image"]]
        original = record["source_question"]
        ok = oracle.is_answerable(scene, output)
        answerable += ok
        same_type += task_type_of(output) == task_type_of(original)
        novel += output.strip() != original.strip()
        if len(examples) < 10:
            examples.append({"original": original, "generated": output, "answerable": ok})
    total = len(outputs)
    return {
        "items": total,
        "answerable_share": answerable / total if total else 0.0,
        "same_task_type_share": same_type / total if total else 0.0,
        "novel_share": novel / total if total else 0.0,
        "examples": examples,
    }
