"""Judges for open-ended answers, in the role of the paper's GPT-4 scoring (§4.1).

A judge is a callable ``(items, predictions) -> verdicts``: one verdict per item, a
dict whose "score" is a number in 1..10, or None when the judge failed on that item
(the verdict then says why under "reason"). Failed items are counted and left out of
the mean; they never receive an invented score.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from mmdistill.comd import competitive
from mmdistill.evaluation.scoring import scene_of
from mmdistill.generation import GenerationBackend
from mmdistill.toyworld import oracle

Judge = Callable[[Sequence[dict], Sequence[str]], list[dict]]


def reference_judge(scenes: list[dict]) -> Judge:
    """Scores a prediction against the scene graph with the oracle's rubric (toy world only).

    Plays the paper's GPT-4 scoring with a judge that cannot be wrong, so differences
    between models are the models' own.
    """
    scenes_by_image = {scene["image"]: scene for scene in scenes}

    def judge(items: Sequence[dict], predictions: Sequence[str]) -> list[dict]:
        return [{"score": float(oracle.score_answer(scene_of(item, scenes_by_image), item["question"], prediction))}
                for item, prediction in zip(items, predictions)]

    return judge


def model_judge(backend: GenerationBackend, image_root: str | Path, temperature: float, max_new_tokens: int,
                max_retries: int) -> Judge:
    """A multimodal model (the teacher) as judge: the item's reference answer against the prediction.

    As GPT-4 does on LLaVA-Bench, the judge scores the reference answer and the
    prediction side by side. The pair is judged in both orders and averaged, exactly as
    the CoMD assessment does (`mmdistill.comd.competitive.assess`, eq. 5), with the reference in the
    teacher's place; the prediction's order-averaged score is its verdict. Outputs that
    stay unparsable after `max_retries` retries give a failed verdict.
    """

    def judge(items: Sequence[dict], predictions: Sequence[str]) -> list[dict]:
        references = {item["id"]: str(item["answer"]) for item in items}
        answers = {item["id"]: prediction for item, prediction in zip(items, predictions)}
        judgements, failures = competitive.assess(backend, items, references, answers, image_root, temperature,
                                           max_new_tokens, max_retries)
        by_id = {record["id"]: {"score": record["R_S"], "reference_score": record["R_T"],
                                "judgements": record["judgements"]} for record in judgements}
        by_id.update({record["id"]: {"score": None, "reason": record["reason"],
                                     "judgements": record["judgements"]} for record in failures})
        return [by_id[item["id"]] for item in items]

    return judge
