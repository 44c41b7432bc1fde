"""The lmms-eval model class over our LLaVA checkpoints, and its registration.

lmms-eval 0.7.3 resolves model names through `lmms_eval.models.MODEL_REGISTRY_V2`,
filled from built-in manifests and from the `lmms_eval.models` entry-point group.
`register()` adds our manifest to that registry in-process; the lmms-eval CLI finds
the class through the entry point `mmdistill_llava = "mmdistill.evaluation.model:MANIFEST"`.

Why not lmms-eval's own `llava_hf`: it asserts batch size 1, wraps the question in
a different prompt format (`<image>\\n` plus the tokenizer's chat template with
string content) than the one our models are trained on, turns generation errors
into empty answers, and its `loglikelihood` returns the mean loss, not a log-probability.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from PIL import Image
from tqdm import tqdm

from mmdistill.conversation import DEFAULT_TEMPLATE, IGNORE_INDEX, encode_conversation
from mmdistill.generation import GenerationRequest, HFGenerationBackend, load_backend
from mmdistill.models.llava import num_image_tokens

MODEL_ID = "mmdistill_llava"
MANIFEST = ModelManifest(model_id=MODEL_ID, simple_class_path="mmdistill.evaluation.model.MMDistillLlava")
SUPPORTED_GENERATION_KWARGS = {"temperature", "max_new_tokens", "until"}
DEFAULT_MAX_NEW_TOKENS = 48


def register() -> None:
    """Make `MODEL_ID` resolvable by `lmms_eval.models.get_model` (idempotent)."""
    from lmms_eval.models import MODEL_REGISTRY_V2

    MODEL_REGISTRY_V2.register_manifest(MANIFEST, overwrite=True)


@torch.inference_mode()
def answer_loglikelihoods(backend: HFGenerationBackend,
                          requests: Sequence[tuple[Image.Image | None, str, str]]) -> list[tuple[float, bool]]:
    """For each (image, question, answer): the summed log-probability of the answer's tokens
    and its stop token given the prompt, and whether greedy decoding would emit exactly them.
    A None image is a text-only item.

    The ids are the training ids: `encode_conversation` of the one-turn conversation, whose
    prompt is the generation prompt and whose supervised tail is the scored continuation.
    Batches are left-padded (position ids from the attention mask, as in generation), longest first.
    """
    model, tokenizer = backend.model, backend.tokenizer
    encoded = []
    for image, question, answer in requests:
        input_ids, labels = encode_conversation(tokenizer, [question], [answer], num_image_tokens(model.config),
                                                backend.template, image=image is not None)
        encoded.append((input_ids, sum(label != IGNORE_INDEX for label in labels)))
    order = sorted(range(len(requests)), key=lambda index: -len(encoded[index][0]))
    results: list[tuple[float, bool] | None] = [None] * len(requests)
    for start in tqdm(range(0, len(order), backend.batch_size), desc="scoring answers", unit="batch",
                      disable=not backend.progress):
        batch = order[start:start + backend.batch_size]
        inputs = tokenizer.pad({"input_ids": [encoded[i][0] for i in batch]}, return_tensors="pt").to(backend.device)
        images = [requests[i][0] for i in batch if requests[i][0] is not None]
        if images:
            pixels = backend.processor.image_processor(images, return_tensors="pt")["pixel_values"]
            inputs["pixel_values"] = pixels.to(backend.device, model.dtype)
        longest = max(encoded[i][1] for i in batch)
        logits = model(**inputs, position_ids=(inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0),
                       logits_to_keep=longest + 1).logits
        # logits at position t predict token t + 1: the last `longest` tokens from the positions before them
        log_probs = logits[:, :-1].float().log_softmax(-1)
        targets = inputs["input_ids"][:, -longest:]
        token_log_probs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        greedy = log_probs.argmax(-1) == targets
        for row, index in enumerate(batch):
            length = encoded[index][1]
            results[index] = (token_log_probs[row, -length:].sum().item(), bool(greedy[row, -length:].all()))
    return results  # type: ignore[return-value]


def _truncate_at_stops(text: str, stops: list[str]) -> str:
    cut = min((text.find(stop) for stop in stops if stop and stop in text), default=len(text))
    return text[:cut].strip()


def _single_image(visuals: list, task: str, doc_id) -> Image.Image | None:
    """A document's one image, or None for a text-only document (no visuals)."""
    if len(visuals) > 1:
        raise ValueError(f"task {task!r}, doc {doc_id}: expected one image or none, got {len(visuals)}")
    return visuals[0] if visuals else None


class MMDistillLlava(lmms):
    """lmms-eval model over `mmdistill.generation`: `generate_until` and `loglikelihood`.

    Requests carry the task's text (`doc_to_text`) as the human turn and one image, or
    none for a text-only item (`doc_to_visual`); prompts are in `chat_template`
    (`mmdistill.conversation.TEMPLATES`). `loglikelihood`
    returns true log-probabilities (higher is likelier; see `answer_loglikelihoods`), so
    tasks must pick the argmax in their own `process_results`, not lmms-eval's built-in
    `acc` (which takes the argmin, made for models that return a loss).
    """

    is_simple = True

    def __init__(self, pretrained: str, batch_size: int | str = 1, seed: int = 0,
                 device: str | None = None, backend: str = "hf", chat_template: str = DEFAULT_TEMPLATE) -> None:
        super().__init__()
        self.backend = load_backend(backend, pretrained, batch_size=int(batch_size), seed=int(seed), device=device,
                                    chat_template=chat_template)
        self.pretrained = pretrained

    def generate_until(self, requests: list[Instance]) -> list[str]:
        generation_requests, stops = [], []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            unsupported = set(gen_kwargs) - SUPPORTED_GENERATION_KWARGS
            if unsupported:
                raise ValueError(f"task {task!r}: generation_kwargs {sorted(unsupported)} are not supported by "
                                 f"{MODEL_ID} (supported: {sorted(SUPPORTED_GENERATION_KWARGS)})")
            visuals = doc_to_visual(self.task_dict[task][split][doc_id])
            generation_requests.append(GenerationRequest(
                image=_single_image(visuals, task, doc_id),
                question=context,
                temperature=float(gen_kwargs.get("temperature", 0.0)),
                max_new_tokens=int(gen_kwargs.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
                id=f"{task}/{doc_id}",
            ))
            until = gen_kwargs.get("until") or []
            stops.append([until] if isinstance(until, str) else list(until))
        replies = self.backend.generate(generation_requests)
        return [_truncate_at_stops(reply, stop) for reply, stop in zip(replies, stops)]

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        scoring_requests = []
        for request in requests:
            context, continuation, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            if callable(continuation):  # output_type `loglikelihood` passes doc_to_target itself
                continuation = continuation(doc)
            image = _single_image(doc_to_visual(doc), task, doc_id)
            # `multiple_choice` prefixes the option with target_delimiter; training answers are stripped
            scoring_requests.append((image, context, str(continuation).strip()))
        return answer_loglikelihoods(self.backend, scoring_requests)

    def generate_until_multi_round(self, requests):
        raise NotImplementedError(f"{MODEL_ID} does not support multi-round generation")
