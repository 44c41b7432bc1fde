"""Judges for open-ended answers: callables `(item, prediction) -> score in 1..10`."""

from __future__ import annotations

from typing import Callable

from mmdistill.toyworld import oracle

Judge = Callable[[dict, str], float]


def reference_judge(scenes: list[dict]) -> Judge:
    """Scores a prediction against the scene graph with the oracle's rubric (toy world only).

    Plays the paper's GPT-4 scoring with a judge that cannot be wrong, so differences
    between models are the models' own.
    """
    scenes_by_image = {scene["image"]: scene for scene in scenes}

    def judge(item: dict, prediction: str) -> float:
        try:
            scene = scenes_by_image[item["image"]]
        except KeyError:
            raise KeyError(f"item {item.get('id')!r}: no scene for image {item.get('image')!r}") from None
        return float(oracle.score_answer(scene, item["question"], prediction))

    return judge
