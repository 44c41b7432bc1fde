"""The lmms-eval model class over our LLaVA checkpoints, and its registration.

lmms-eval 0.7.3 resolves model names through `lmms_eval.models.MODEL_REGISTRY_V2`,
filled from built-in manifests and from the `lmms_eval.models` entry-point group.
`register()` adds our manifest to that registry in-process; the lmms-eval CLI finds
the class through the entry point `mmdistill_llava = "mmdistill.evaluation.model:MANIFEST"`.

Why not lmms-eval's own `llava_hf`: it asserts batch size 1, wraps the question in
a different prompt format (`<image>\\n` plus the tokenizer's chat template with
string content) than the one our models are trained on, and turns generation
errors into empty answers.
"""

from __future__ import annotations

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest

from mmdistill.generation import GenerationRequest, load_backend

MODEL_ID = "mmdistill_llava"
MANIFEST = ModelManifest(model_id=MODEL_ID, simple_class_path="mmdistill.evaluation.model.MMDistillLlava")
SUPPORTED_GENERATION_KWARGS = {"temperature", "max_new_tokens", "until"}
DEFAULT_MAX_NEW_TOKENS = 48


def register() -> None:
    """Make `MODEL_ID` resolvable by `lmms_eval.models.get_model` (idempotent)."""
    from lmms_eval.models import MODEL_REGISTRY_V2

    MODEL_REGISTRY_V2.register_manifest(MANIFEST, overwrite=True)


def _truncate_at_stops(text: str, stops: list[str]) -> str:
    cut = min((text.find(stop) for stop in stops if stop and stop in text), default=len(text))
    return text[:cut].strip()


class MMDistillLlava(lmms):
    """Generation-only lmms-eval model: `generate_until` through `mmdistill.generation`.

    Requests carry the task's text (`doc_to_text`) as the human turn and one image
    (`doc_to_visual`); the backend builds the prompt of `mmdistill.conversation`.
    `loglikelihood` is not supported (the toy tasks are all `generate_until`).
    """

    is_simple = True

    def __init__(self, pretrained: str, batch_size: int | str = 1, seed: int = 0,
                 device: str | None = None, backend: str = "hf") -> None:
        super().__init__()
        self.backend = load_backend(backend, pretrained, batch_size=int(batch_size), seed=int(seed), device=device)
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
            if len(visuals) != 1:
                raise ValueError(f"task {task!r}, doc {doc_id}: expected one image, got {len(visuals)}")
            generation_requests.append(GenerationRequest(
                image=visuals[0],
                question=context,
                temperature=float(gen_kwargs.get("temperature", 0.0)),
                max_new_tokens=int(gen_kwargs.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
                id=f"{task}/{doc_id}",
            ))
            until = gen_kwargs.get("until") or []
            stops.append([until] if isinstance(until, str) else list(until))
        replies = self.backend.generate(generation_requests)
        return [_truncate_at_stops(reply, stop) for reply, stop in zip(replies, stops)]

    def loglikelihood(self, requests):
        raise NotImplementedError(f"{MODEL_ID} only generates (generate_until); loglikelihood is not supported")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError(f"{MODEL_ID} does not support multi-round generation")
