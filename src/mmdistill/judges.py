"""Judges for open-ended answers, in the role of the paper's GPT-4 scoring (§4.1).

A judge is a callable ``(items, predictions) -> verdicts``: one verdict per item, a
dict whose "score" is a number in 1..10, or None when the judge failed on that item
(the verdict then says why under "reason"). Failed items are counted and left out of
the mean; they never receive an invented score. A judge may carry `metadata` (a dict),
which the score JSON records as "judge_metadata".

Three judges: the toy oracle (`reference_judge`), a model we load (`model_judge`, the
teacher) and any OpenAI-compatible chat endpoint (`api_judge`: GPT-4, or a local vLLM
server), the last through `ChatClient`, which uses only the standard library.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from mmdistill.comd import competitive
from mmdistill.evaluation.scoring import scene_of
from mmdistill.generation import GenerationBackend
from mmdistill.roles import JudgeParseError, parse_judge_output
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


# After LLaVA-Bench's GPT-4 review rule: two answers, two scores on the first line, then the reasons.
API_JUDGE_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
API_JUDGE_RULE = (
    "We would like your feedback on the performance of two AI assistants in response to the user question "
    "above. The user asks the question while looking at an image{context_note}. Rate the helpfulness, relevance, "
    "accuracy and level of detail of their responses. Each assistant receives an overall score from 1 to 10, "
    "higher meaning better overall performance.\nFirst output a single line containing only the two scores, for "
    "Assistant 1 and Assistant 2, separated by a space. On the following lines explain your evaluation, avoiding "
    "any bias and making sure that the order in which the responses were presented does not affect your judgment."
)


class JudgeCallError(RuntimeError):
    """A judge endpoint call that failed (connection, HTTP status, malformed response)."""


@dataclass(frozen=True)
class ChatReply:
    text: str
    model: str  # the model the endpoint says answered (its version, e.g. gpt-4-0613)
    system_fingerprint: str | None


class ChatEndpoint(Protocol):
    def chat(self, model: str, messages: list[dict], temperature: float, max_tokens: int) -> ChatReply: ...


class ChatClient:
    """`POST <base_url>/chat/completions` of an OpenAI-compatible server (OpenAI, vLLM, ...)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 120.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.timeout_s = timeout_s

    def chat(self, model: str, messages: list[dict], temperature: float, max_tokens: int) -> ChatReply:
        body = json.dumps({"model": model, "messages": messages, "temperature": temperature,
                           "max_tokens": max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read().decode("utf-8"))
            return ChatReply(payload["choices"][0]["message"]["content"], payload.get("model", model),
                             payload.get("system_fingerprint"))
        except urllib.error.HTTPError as error:
            raise JudgeCallError(f"{self.url}: HTTP {error.code} {error.reason}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise JudgeCallError(f"{self.url}: {error}") from error
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise JudgeCallError(f"{self.url}: malformed response ({error!r})") from error


def api_judge_messages(item: dict, answer_1: str, answer_2: str) -> list[dict]:
    """The review request for one order; an item's `caption` (LLaVA-Bench's context) stands in for the image."""
    caption = item.get("caption")
    context = f"[Context]\n{caption}\n\n" if caption else ""
    rule = API_JUDGE_RULE.format(context_note=", described by the context" if caption else "")
    content = (f"{context}[Question]\n{item['question']}\n\n[Assistant 1]\n{answer_1}\n\n[End of Assistant 1]\n\n"
               f"[Assistant 2]\n{answer_2}\n\n[End of Assistant 2]\n\n[System]\n{rule}\n\n")
    return [{"role": "system", "content": API_JUDGE_SYSTEM}, {"role": "user", "content": content}]


def api_judge(endpoint: ChatEndpoint, model: str, temperature: float = 0.2, max_tokens: int = 1024,
              max_retries: int = 2, endpoint_name: str = "") -> Judge:
    """An OpenAI-compatible chat model as judge: the reference answer against the prediction, in both orders.

    As `model_judge`, each order is one request; the prediction's score is its
    order-averaged score, the reference's is kept as "reference_score". A call that fails
    or an output `roles.parse_judge_output` cannot read is retried up to `max_retries`
    times; an item whose orders do not both succeed is a failed verdict with the reason
    (never a filled-in score). `metadata` records the endpoint, the requested model, the
    models and fingerprints the endpoint reported (its version), and the calls made and failed.
    """
    metadata = {"endpoint": endpoint_name, "model": model, "temperature": temperature, "max_tokens": max_tokens,
                "served_models": [], "system_fingerprints": [], "calls": 0, "failed_calls": 0,
                "unparsable_outputs": 0}

    def score_order(item: dict, answer_1: str, answer_2: str) -> tuple[tuple[float, float] | None, list[dict]]:
        attempts = []
        for _ in range(1 + max_retries):
            metadata["calls"] += 1
            try:
                reply = endpoint.chat(model, api_judge_messages(item, answer_1, answer_2), temperature, max_tokens)
            except JudgeCallError as error:
                metadata["failed_calls"] += 1
                attempts.append({"error": str(error)})
                continue
            for key, value in (("served_models", reply.model), ("system_fingerprints", reply.system_fingerprint)):
                if value and value not in metadata[key]:
                    metadata[key].append(value)
            try:
                scores = parse_judge_output(reply.text)
            except JudgeParseError as error:
                metadata["unparsable_outputs"] += 1
                attempts.append({"output": reply.text, "error": str(error)})
                continue
            attempts.append({"output": reply.text, "scores": list(scores)})
            return scores, attempts
        return None, attempts

    def judge(items: Sequence[dict], predictions: Sequence[str]) -> list[dict]:
        verdicts = []
        for item, prediction in zip(items, predictions):
            reference = str(item["answer"])
            prediction_first, prediction_attempts = score_order(item, prediction, reference)
            reference_first, reference_attempts = score_order(item, reference, prediction)
            attempts = {"prediction_first": prediction_attempts, "reference_first": reference_attempts}
            if prediction_first is None or reference_first is None:
                failed = [order for order, scores in (("prediction_first", prediction_first),
                                                      ("reference_first", reference_first)) if scores is None]
                verdicts.append({"score": None, "attempts": attempts,
                                 "reason": f"no readable judgement after {1 + max_retries} attempt(s) in "
                                           f"{', '.join(failed)}: {attempts[failed[0]][-1]['error']}"})
                continue
            score, reference_score = competitive.order_averaged_scores(prediction_first, reference_first)
            verdicts.append({"score": score, "reference_score": reference_score, "attempts": attempts})
        return verdicts

    judge.metadata = metadata  # type: ignore[attr-defined]
    return judge


def api_judge_from_settings(settings: dict) -> Judge:
    """`api_judge` from config `evaluation.judge_api`; the key is read from the environment variable
    `api_key_env` names (none for a local server), never from the config."""
    key_name = settings.get("api_key_env")
    api_key = os.environ.get(key_name) if key_name else None
    if key_name and not api_key:
        raise ValueError(f"config `evaluation.judge_api.api_key_env`: environment variable {key_name} is not set")
    client = ChatClient(settings["base_url"], api_key, settings["timeout_s"])
    return api_judge(client, settings["model"], settings["temperature"], settings["max_tokens"],
                     settings["max_retries"], endpoint_name=settings["base_url"])
