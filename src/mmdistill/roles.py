"""Prompts for the three roles one multimodal model plays in CoMD, and the judge parser.

CoMD §3.3 prompts a single model (LLaVA-13B in the paper) as teacher, assessor and
augmentor. Every prompt here is the *human turn* of a one-turn conversation; the
image placeholder is added by `mmdistill.conversation`. The toy teacher learns these
exact strings from gold data, and a real model receives them zero-shot.
"""

from __future__ import annotations

import re

JUDGE_SCORE_MIN = 1
JUDGE_SCORE_MAX = 10


def answer_prompt(question: str) -> str:
    """Teacher/student role: the question itself is the instruction."""
    return question


def caption_prompt() -> str:
    """Stage-1 alignment instruction: caption pairs become one-turn conversations (eq. 2)."""
    return "give a short caption of the image ."


def judge_prompt(question: str, answer_1: str, answer_2: str) -> str:
    """Assessor role (CoMD eq. 5), after the Vicuna pairwise-review template.

    The assessor sees the question and two answers and must output, on its first
    line, two integer scores from 1 to 10 separated by a space: the first for
    answer 1, the second for answer 2.
    """
    return (
        "rate the two answers to the question about the image .\n"
        f"question : {question}\n"
        f"answer 1 : {answer_1}\n"
        f"answer 2 : {answer_2}\n"
        "give two scores from 1 to 10 separated by a space ."
    )


def format_judge_output(score_1: int, score_2: int) -> str:
    """The target text a judge is trained to produce for `judge_prompt`."""
    return f"{score_1} {score_2}"


def augment_prompt(question: str) -> str:
    """Augmentor role (CoMD §3.3.3): a new instruction of the same task type, same image."""
    return f"write a new question of the same type as : {question}"


class JudgeParseError(ValueError):
    """The assessor's output does not hold two scores in the required format."""


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_judge_output(text: str) -> tuple[float, float]:
    """Read the two scores from the first non-empty line of a judge's output.

    Accepted: exactly two numbers on that line, separated by spaces and/or a comma,
    each within [1, 10]. Anything else raises `JudgeParseError` with the reason; the
    caller retries or records the failure, it never invents a score.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise JudgeParseError("empty judge output")
    numbers = _NUMBER.findall(lines[0])
    if len(numbers) != 2:
        raise JudgeParseError(f"expected 2 scores on the first line, found {len(numbers)}: {lines[0]!r}")
    scores = tuple(float(n) for n in numbers)
    for score in scores:
        if not JUDGE_SCORE_MIN <= score <= JUDGE_SCORE_MAX:
            raise JudgeParseError(f"score {score:g} outside [{JUDGE_SCORE_MIN}, {JUDGE_SCORE_MAX}]: {lines[0]!r}")
    return scores[0], scores[1]
