"""Turning predictions into scores: answer parsing, accuracies, POPE statistics, judged answers,
object hallucination of toy detail descriptions.

Yes/no answers are scored by exact match of the *first token* of the prediction
(lower-cased, surrounding punctuation removed): "yes, there is" counts as yes.
Multiple-choice answers may name the option by its letter, as real LLaVA models
answer ScienceQA ("B.", "(b) blue"), or by its text, as the toy models are trained
to ("blue"); see `parse_option`. The gold answer of a multiple-choice item is its
option letter. Percentages are on a 0-100 scale.
"""

from __future__ import annotations

import ast
import numbers
import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmdistill.evaluation.intervals import bootstrap_interval, wilson_interval
from mmdistill.roles import JUDGE_SCORE_MAX, JUDGE_SCORE_MIN
from mmdistill.toyworld.hallucination import chair, hallucinated_mentions

OPTION_LETTERS = "abcdefghijklmnopqrstuvwxyz"
YES_NO = ("yes", "no")
DESCRIBE_TASK = "describe"  # the toy task of detail descriptions (see toyworld.language)

Judge = Callable[[Sequence[dict], Sequence[str]], list[dict]]  # see mmdistill.judges


def first_token(prediction: str) -> str:
    """The first whitespace-separated word, lower-cased, without surrounding punctuation."""
    for word in prediction.lower().split():
        word = word.strip(string.punctuation)
        if word:
            return word
    return ""


def normalize_answer(text: str) -> str:
    """Lower-cased, punctuation replaced by spaces, whitespace collapsed: "Top-Left." -> "top left"."""
    return " ".join(re.sub(f"[{re.escape(string.punctuation)}]", " ", text.lower()).split())


def parse_option(prediction: str, options: Sequence[str]) -> str | None:
    """The letter of the option a prediction chooses, or None.

    A leading option letter wins: "b", "B.", "(b)", "b . red" (even if the text after it
    names another option). Otherwise the whole prediction, normalized, must equal the
    normalized text of exactly one option: "Red." chooses the option "red". Anything
    else chooses nothing: "", a letter beyond the options, a text that is no option's or
    several options', and a sentence around an option such as "the answer is red" (no
    search inside free text). A reply starting with the article "a" reads as option a.
    """
    letters = OPTION_LETTERS[: len(options)]
    token = first_token(prediction)
    if len(token) == 1 and token in letters:
        return token
    text = normalize_answer(prediction)
    chosen = [letter for letter, option in zip(letters, options) if normalize_answer(str(option)) == text]
    return chosen[0] if text and len(chosen) == 1 else None


def parse_yes_no(prediction: str) -> str | None:
    """'yes' or 'no' if the prediction starts with it, else None."""
    token = first_token(prediction)
    return token if token in YES_NO else None


def is_correct(benchmark_kind: str, item: dict, prediction: str) -> bool:
    """Whether the parsed prediction is the gold answer (`multiple_choice`: the option
    letter `parse_option` reads from a letter or an option's text; `yes_no`: yes / no)."""
    if benchmark_kind == "multiple_choice":
        return parse_option(prediction, item["options"]) == str(item["answer"]).strip().lower()
    if benchmark_kind == "yes_no":
        return parse_yes_no(prediction) == str(item["answer"]).strip().lower()
    raise ValueError(f"exact-match scoring is defined for multiple_choice and yes_no, not {benchmark_kind!r}")


def answer_choices(benchmark_kind: str, item: dict) -> list[str]:
    """What the likelihood protocol scores: each option's text (what toy models answer), or yes / no."""
    if benchmark_kind == "multiple_choice":
        return [str(option) for option in item["options"]]
    if benchmark_kind == "yes_no":
        return list(YES_NO)
    raise ValueError(f"likelihood scoring is defined for multiple_choice and yes_no, not {benchmark_kind!r}")


def loglikelihood_of(response: tuple[float, bool] | str) -> float:
    """The log-likelihood in an lmms-eval loglikelihood response: a `(log-likelihood, is_greedy)`
    pair, or its `str()`, which lmms-eval 0.7.3 passes on (`api.instance.unwrap_generation_output`
    turns every non-text model output into a string; a float's repr reads back exactly)."""
    loglikelihood, _ = ast.literal_eval(response) if isinstance(response, str) else response
    return float(loglikelihood)


def likelihood_prediction(benchmark_kind: str, item: dict, loglikelihoods: Sequence[float]) -> str:
    """The likeliest answer (the first on a tie) as `is_correct` reads it: its option letter, or yes / no."""
    choices = answer_choices(benchmark_kind, item)
    if len(loglikelihoods) != len(choices):
        raise ValueError(f"item {item.get('id')!r}: {len(loglikelihoods)} log-likelihoods for {len(choices)} choices")
    best = max(range(len(choices)), key=lambda index: loglikelihoods[index])
    return OPTION_LETTERS[best] if benchmark_kind == "multiple_choice" else choices[best]


def accuracy_summary(correct: Sequence[bool]) -> dict[str, Any]:
    """`{"n", "score", "ci95"}`: accuracy in % with its Wilson interval."""
    n, hits = len(correct), sum(bool(c) for c in correct)
    low, high = wilson_interval(hits, n)
    return {"n": n, "score": 100 * hits / n, "ci95": [100 * low, 100 * high]}


def yes_no_statistics(golds: Sequence[str], predictions: Sequence[str]) -> dict[str, float | None]:
    """POPE's precision, recall, F1 ('yes' is the positive class) and yes-ratio, in %.

    A prediction that is neither yes nor no counts as not-yes. Precision (and F1) is
    None when nothing was predicted 'yes'; recall when no gold answer is 'yes'.
    """
    said_yes = [parse_yes_no(p) == "yes" for p in predictions]
    is_yes = [g.strip().lower() == "yes" for g in golds]
    true_pos = sum(s and y for s, y in zip(said_yes, is_yes))
    precision = 100 * true_pos / sum(said_yes) if any(said_yes) else None
    recall = 100 * true_pos / sum(is_yes) if any(is_yes) else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "yes_ratio": 100 * sum(said_yes) / len(golds)}


def judge_score_to_percent(score: float) -> float:
    """Map a judge score in [1, 10] linearly onto [0, 100]."""
    return 100 * (score - JUDGE_SCORE_MIN) / (JUDGE_SCORE_MAX - JUDGE_SCORE_MIN)


def score_open_ended(items: Sequence[dict], predictions: Sequence[str], judge: Judge) -> list[dict]:
    """The judge's verdicts, one per prediction, checked: each "score" is None (a failed
    judgement, which must say why under "reason") or a number in [1, 10]; anything else
    raises, naming the item."""
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions")
    verdicts = judge(items, predictions)
    if len(verdicts) != len(items):
        raise ValueError(f"the judge returned {len(verdicts)} verdicts for {len(items)} items")
    for item, verdict in zip(items, verdicts):
        score = verdict.get("score")
        if score is None:
            if not verdict.get("reason"):
                raise ValueError(f"item {item.get('id')!r}: a failed judgement must give its reason")
        elif isinstance(score, bool) or not isinstance(score, numbers.Real) or \
                not JUDGE_SCORE_MIN <= score <= JUDGE_SCORE_MAX:
            raise ValueError(f"item {item.get('id')!r}: judge returned {score!r}, "
                             f"expected a number in [{JUDGE_SCORE_MIN}, {JUDGE_SCORE_MAX}]")
    return [{**verdict, "score": None if verdict["score"] is None else float(verdict["score"])} for verdict in verdicts]


def judged_summary(scores: Sequence[float | None], seed: int) -> dict[str, Any]:
    """`{"n", "score", "ci95", "judge_failures"}`: mean judge score on the 0-100 scale with a
    seeded bootstrap interval, over the judged items (None marks a failed judgement; with
    none judged, score and interval are None)."""
    percents = [judge_score_to_percent(s) for s in scores if s is not None]
    failures = len(scores) - len(percents)
    if not percents:
        return {"n": 0, "score": None, "ci95": None, "judge_failures": failures}
    low, high = bootstrap_interval(percents, seed=seed)
    return {"n": len(percents), "score": sum(percents) / len(percents), "ci95": [low, high],
            "judge_failures": failures}


def scene_of(item: dict, scenes_by_image: Mapping[str, dict]) -> dict:
    """The scene graph an item is about, found by its image path (KeyError naming the item if none)."""
    try:
        return scenes_by_image[item["image"]]
    except KeyError:
        raise KeyError(f"item {item.get('id')!r}: no scene for image {item.get('image')!r}") from None


def _percent(rate: float | None) -> float | None:
    return None if rate is None else 100 * rate


def _wilson_percent(hits: int, n: int) -> list[float] | None:
    """Wilson 95% interval of hits / n in %, None when n is 0."""
    return None if n == 0 else [100 * bound for bound in wilson_interval(hits, n)]


def hallucination_summary(items: Sequence[dict], predictions: Sequence[str], scenes: Sequence[dict]) -> dict[str, Any]:
    """Object hallucination (`toyworld.hallucination.chair`) of the detail descriptions: the
    items whose task is "describe", each against its scene (found by image, as the reference
    judge finds it). Counts, rates in % and Wilson 95% intervals; rates and intervals are None
    with nothing to count. The mention interval treats mentions as independent trials, though
    they cluster within responses, so it is somewhat too narrow."""
    scenes_by_image = {scene["image"]: scene for scene in scenes}
    described = [(scene_of(item, scenes_by_image), prediction)
                 for item, prediction in zip(items, predictions) if item.get("task") == DESCRIBE_TASK]
    counts = chair([scene for scene, _ in described], [prediction for _, prediction in described])
    return {"responses": counts["responses"], "hallucinated_responses": counts["hallucinated_responses"],
            "response_rate": _percent(counts["response_rate"]),
            "response_ci95": _wilson_percent(counts["hallucinated_responses"], counts["responses"]),
            "mentions": counts["mentions"], "hallucinated_mentions": counts["hallucinated_mentions"],
            "mention_rate": _percent(counts["mention_rate"]),
            "mention_ci95": _wilson_percent(counts["hallucinated_mentions"], counts["mentions"])}


def mention_counts(items: Sequence[dict], predictions: Sequence[str],
                   scenes: Sequence[dict]) -> list[dict[str, int] | None]:
    """Per item, `{"object_mentions", "hallucinated_mentions"}` of its prediction when it is a
    detail description (as `hallucination_summary` counts them), None for other items."""
    scenes_by_image = {scene["image"]: scene for scene in scenes}
    counts: list[dict[str, int] | None] = []
    for item, prediction in zip(items, predictions):
        if item.get("task") != DESCRIBE_TASK:
            counts.append(None)
            continue
        flags = hallucinated_mentions(scene_of(item, scenes_by_image), prediction)
        counts.append({"object_mentions": len(flags), "hallucinated_mentions": sum(flags)})
    return counts
