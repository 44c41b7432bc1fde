"""How well the toy teacher plays its three roles, measured by the oracle on held-out scenes.

The teacher answers questions (with the right and with a swapped image), judges
answer pairs in both orders and writes new questions; the oracle's answers, scores
and answerability checks are the reference.
"""

from __future__ import annotations

from random import Random
from typing import Any

from mmdistill.conversation import from_llava_record
from mmdistill.generation import GenerationBackend, GenerationRequest
from mmdistill.roles import JudgeParseError, judge_prompt, parse_judge_output
from mmdistill.toyworld import oracle
from mmdistill.toyworld.corpora import random_question
from mmdistill.toyworld.language import normalize, task_type_of


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def judge_agreement(backend: GenerationBackend, judge_records: list[dict], image_root, temperature: float,
                    max_new_tokens: int) -> dict[str, Any]:
    """Teacher-as-judge against oracle scores, judged in both answer orders as the CoMD assessor does (eq. 5).

    For each record (a question, two answers and the oracle's scores) the teacher
    scores (answer 1, answer 2) and (answer 2, answer 1); each answer's order-averaged
    score is the mean of its two scores. Reported:

    * `preference_agreement`: over the pairs whose better answer the oracle knows
      (different oracle scores), the share where the order-averaged scores rank that
      answer strictly higher; a pair with an unparsable judgement counts as a miss;
    * `position_bias`: the mean, over answers judged in both orders, of (score in
      position 1 - score in position 2); 0 for an order-blind judge;
    * `mean_abs_score_error`: order-averaged scores against the oracle's, on 1-10;
    * `parse_rate`: the share of single judgements that parse.
    """
    requests, records = [], []
    for record in judge_records:
        answer_1, answer_2 = record["answers"]
        image = f"{image_root}/{record['image']}"
        for first, second in ((answer_1, answer_2), (answer_2, answer_1)):
            requests.append(GenerationRequest(image=image, question=judge_prompt(record["question"], first, second),
                                              temperature=temperature, max_new_tokens=max_new_tokens))
        records.append(record)
    outputs = backend.generate(requests)
    parsed, agree, decided, abs_errors, position_gaps, failures = 0, 0, 0, [], [], []
    for index, record in enumerate(records):
        gold_1, gold_2 = record["scores"]
        decided += gold_1 != gold_2
        try:
            forward = parse_judge_output(outputs[2 * index])
            backward = parse_judge_output(outputs[2 * index + 1])
        except JudgeParseError as error:
            failures.append({"outputs": outputs[2 * index:2 * index + 2], "reason": str(error)})
            parsed += sum(_parses(output) for output in outputs[2 * index:2 * index + 2])
            continue
        parsed += 2
        score_1, score_2 = (forward[0] + backward[1]) / 2, (forward[1] + backward[0]) / 2
        agree += gold_1 != gold_2 and _sign(score_1 - score_2) == _sign(gold_1 - gold_2)
        abs_errors += [abs(score_1 - gold_1), abs(score_2 - gold_2)]
        position_gaps += [forward[0] - backward[1], backward[0] - forward[1]]
    return {
        "items": len(records),
        "decided_pairs": decided,
        "parse_rate": parsed / len(outputs) if outputs else 0.0,
        "preference_agreement": agree / decided if decided else None,
        "position_bias": sum(position_gaps) / len(position_gaps) if position_gaps else None,
        "mean_abs_score_error": sum(abs_errors) / len(abs_errors) if abs_errors else None,
        "unparsable_examples": failures[:10],
    }


def _parses(output: str) -> bool:
    try:
        parse_judge_output(output)
    except JudgeParseError:
        return False
    return True


def answer_diagnostics(backend: GenerationBackend, scenes: list[dict], image_root, seed: int,
                       questions_per_scene: int, max_new_tokens: int) -> dict[str, Any]:
    """Where the teacher's knowledge stops: accuracy by question type, and how much it looks at the image.

    Each scene gets `questions_per_scene` seeded open questions (every open task type),
    answered greedily once with its own image and once with the next scene's image.
    `accuracy_by_task`: the share of answers equal to the oracle's (normalised text).
    `image_sensitivity`: the share of answers that change when the image is swapped (a
    model that ignores the image scores 0); `swapped_accuracy` is the accuracy with the
    wrong image, i.e. what the question's wording alone gets right.
    """
    questions = []
    for scene in scenes:
        rng = Random(f"{seed}:diagnostics:{scene['scene_id']}")
        questions += [(scene, *random_question(scene, rng)) for _ in range(questions_per_scene)]
    swapped_image = {scene["image"]: scenes[(i + 1) % len(scenes)]["image"] for i, scene in enumerate(scenes)}

    def answers(image_of):
        return backend.generate([GenerationRequest(image=f"{image_root}/{image_of(scene)}", question=question,
                                                   max_new_tokens=max_new_tokens) for scene, _, question in questions])

    own, swapped = answers(lambda scene: scene["image"]), answers(lambda scene: swapped_image[scene["image"]])
    by_task: dict[str, list[tuple[bool, bool, bool]]] = {}
    for (scene, task, question), answer, other in zip(questions, own, swapped):
        gold = normalize(oracle.answer(scene, question))
        by_task.setdefault(task, []).append((normalize(answer) == gold, normalize(other) == gold, answer != other))

    def share(rows, column):
        return sum(row[column] for row in rows) / len(rows) if rows else None

    every = [row for rows in by_task.values() for row in rows]
    return {
        "questions": len(every),
        "accuracy": share(every, 0),
        "swapped_accuracy": share(every, 1),
        "image_sensitivity": share(every, 2),
        "by_task": {task: {"questions": len(rows), "accuracy": share(rows, 0), "swapped_accuracy": share(rows, 1),
                           "image_sensitivity": share(rows, 2)} for task, rows in sorted(by_task.items())},
    }


def question_validity(backend: GenerationBackend, augment_records: list[dict], scenes_by_image: dict[str, dict],
                      image_root, temperature: float, max_new_tokens: int) -> dict[str, Any]:
    """Teacher-as-augmentor: share of new questions the oracle can answer, of the same type, and new.

    `examples` are the first ten generated questions, `unanswerable_examples` the first ten the
    oracle cannot answer, so a low share can be read off the file."""
    requests, originals = [], []
    for record in augment_records:
        (prompt,), _ = from_llava_record(record)
        requests.append(GenerationRequest(image=f"{image_root}/{record['image']}", question=prompt,
                                          temperature=temperature, max_new_tokens=max_new_tokens))
        originals.append(record)
    outputs = backend.generate(requests)
    answerable = same_type = novel = 0
    examples, unanswerable_examples = [], []
    for output, record in zip(outputs, originals):
        scene = scenes_by_image[record["image"]]
        original = record["source_question"]
        ok = oracle.is_answerable(scene, output)
        answerable += ok
        same_type += task_type_of(output) == task_type_of(original)
        novel += output.strip() != original.strip()
        example = {"original": original, "generated": output, "answerable": ok}
        if len(examples) < 10:
            examples.append(example)
        if not ok and len(unanswerable_examples) < 10:
            unanswerable_examples.append(example)
    total = len(outputs)
    return {
        "items": total,
        "answerable_share": answerable / total if total else 0.0,
        "same_task_type_share": same_type / total if total else 0.0,
        "novel_share": novel / total if total else 0.0,
        "examples": examples,
        "unanswerable_examples": unanswerable_examples,
    }
