"""Answer generation behind one interface, so pipeline steps do not care which engine runs.

A `GenerationRequest` is one image (or none, text-only) plus the human turn of a one-turn
conversation; backends wrap it in a chat template of `mmdistill.conversation` and return the
assistant's reply. `HFGenerationBackend` runs batched `transformers` generation,
`VLLMGenerationBackend` the same prompts through vLLM (GPU only; its package is imported
when the backend is made); `load_backend` picks a backend by name.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from mmdistill.conversation import DEFAULT_TEMPLATE, get_template, prompt_text

BACKEND_KINDS = ("hf", "vllm")


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt: an image (a path, an already loaded PIL image, or None for a text-only prompt) and the human turn.

    `question` is the text of the human turn without the `<image>` marker.
    Temperature 0 means greedy decoding.
    """

    image: str | Path | Image.Image | None
    question: str
    temperature: float = 0.0
    max_new_tokens: int = 48
    id: str | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"request {self.id!r}: temperature must be >= 0, got {self.temperature}")
        if self.max_new_tokens < 1:
            raise ValueError(f"request {self.id!r}: max_new_tokens must be >= 1, got {self.max_new_tokens}")


class GenerationBackend(abc.ABC):
    """Turns requests into replies."""

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """One reply per request, in the order of `requests`."""


def _batch_seed(seed: int, call_index: int, batch_index: int) -> int:
    """A torch seed for one batch, mixed from the run seed, the `generate` call and the batch position.

    The call index makes a retry (a second call with the same requests) sample anew,
    while a rerun of the same sequence of calls reproduces every text.
    """
    return int(np.random.SeedSequence([seed, call_index, batch_index]).generate_state(1)[0])


def _load_image(request: GenerationRequest) -> Image.Image:  # for requests with an image
    if isinstance(request.image, Image.Image):
        return request.image.convert("RGB")
    path = Path(request.image)
    if not path.is_file():
        raise FileNotFoundError(f"request {request.id!r}: image file {path} does not exist")
    with Image.open(path) as image:
        return image.convert("RGB")


class HFGenerationBackend(GenerationBackend):
    """Batched `model.generate` on a LLaVA model with KV cache and left padding.

    Requests are grouped by (temperature, max_new_tokens) and, within a group,
    sorted by prompt length so a batch holds prompts of similar length; replies come
    back in input order. Sampling (temperature > 0) is pure temperature sampling
    (no top-k/top-p) and each batch is seeded from `seed` and its position, so a
    rerun with the same requests and batch size gives the same text. Prompts are in the
    `chat_template` format; generation stops at the template's stop token.
    """

    def __init__(self, model, processor, batch_size: int = 32, seed: int = 0,
                 device: str | torch.device | None = None, progress: bool = True,
                 chat_template: str = DEFAULT_TEMPLATE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.template = get_template(chat_template)
        self.stop_token_id = self.template.stop_token_id(self.tokenizer)
        if self.tokenizer.padding_side != "left":
            raise ValueError("batched generation needs a tokenizer with padding_side='left' "
                             "(mmdistill.models.llava.load_llava sets it)")
        self.batch_size = batch_size
        self.seed = seed
        self.calls = 0
        self.progress = progress

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        replies: list[str | None] = [None] * len(requests)
        with tqdm(total=len(requests), desc="generating", unit="prompt", disable=not self.progress) as bar:
            for batch_index, batch in enumerate(self._batches(requests)):
                for index, reply in zip(batch, self._generate_batch([requests[i] for i in batch], batch_index)):
                    replies[index] = reply
                bar.update(len(batch))
        self.calls += 1
        return replies  # type: ignore[return-value]

    def _batches(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        """Request indices in batches of equal settings, longest prompts first."""

        def settings(index: int) -> tuple[float, int]:
            return requests[index].temperature, requests[index].max_new_tokens

        lengths = [len(self.tokenizer.tokenize(request.question)) for request in requests]
        batches = []
        for _, group in groupby(sorted(range(len(requests)), key=settings), key=settings):
            ordered = sorted(group, key=lambda index: -lengths[index])
            batches.extend(ordered[start:start + self.batch_size] for start in range(0, len(ordered), self.batch_size))
        return batches

    def encode(self, batch: Sequence[GenerationRequest]):
        """Left-padded model inputs for a batch: the chat template's prompt, images expanded (text-only
        requests have none)."""
        images = [_load_image(request) for request in batch if request.image is not None]
        return self.processor(
            images=images or None,
            text=[prompt_text(request.question, self.template, image=request.image is not None) for request in batch],
            padding=True,
            return_tensors="pt",
        ).to(self.device, self.model.dtype)

    @torch.inference_mode()
    def _generate_batch(self, batch: list[GenerationRequest], batch_index: int) -> list[str]:
        inputs = self.encode(batch)
        temperature, max_new_tokens = batch[0].temperature, batch[0].max_new_tokens
        options = {
            "max_new_tokens": max_new_tokens,
            "use_cache": True,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.stop_token_id,
        }
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            options.update(do_sample=False)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_batch_seed(self.seed, self.calls, batch_index))
            output = self.model.generate(**inputs, **options)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


@dataclass(frozen=True)
class VLLMRequest:
    """What vLLM gets for one `GenerationRequest`: its prompt (text and image) and its sampling settings."""

    prompt: dict
    sampling: dict


def vllm_requests(requests: Sequence[GenerationRequest], seed: int, call_index: int,
                  chat_template: str = DEFAULT_TEMPLATE) -> list[VLLMRequest]:
    """vLLM's inputs for `requests`: the `mmdistill.conversation` prompt with one `<image>` marker, which vLLM's
    LLaVA expands as the HF processor does, and the HF backend's sampling contract: temperature 0 is greedy, otherwise
    pure temperature sampling (no top-k/top-p), seeded per request from the run seed, the call and its position, so a
    rerun reproduces every text and a retry (the next call) samples anew. Text-only requests carry no image."""
    template = get_template(chat_template)
    return [VLLMRequest(prompt={"prompt": prompt_text(request.question, template, image=request.image is not None),
                                **({"multi_modal_data": {"image": _load_image(request)}}
                                   if request.image is not None else {})},
                        sampling={"temperature": request.temperature, "top_k": 0, "top_p": 1.0,
                                  "max_tokens": request.max_new_tokens,
                                  "seed": _batch_seed(seed, call_index, index) if request.temperature > 0 else None,
                                  "skip_special_tokens": True})
            for index, request in enumerate(requests)]


class VLLMGenerationBackend(GenerationBackend):
    """The same prompts and sampling contract as `HFGenerationBackend`, generated by vLLM's engine, which
    schedules its own batches (so `batch_size` is not one of its settings)."""

    def __init__(self, checkpoint: str | Path, seed: int = 0, progress: bool = True,
                 chat_template: str = DEFAULT_TEMPLATE) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as error:
            raise RuntimeError("generation backend 'vllm' needs the vllm package, which runs on a CUDA GPU only "
                               "and is not in requirements.lock; use backend 'hf' elsewhere") from error
        self.llm = LLM(model=str(checkpoint), seed=seed, limit_mm_per_prompt={"image": 1})
        self.sampling_params = SamplingParams
        self.chat_template = chat_template
        self.seed = seed
        self.calls = 0
        self.progress = progress

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        inputs = vllm_requests(requests, self.seed, self.calls, self.chat_template)
        outputs = self.llm.generate([item.prompt for item in inputs],
                                    [self.sampling_params(**item.sampling) for item in inputs], use_tqdm=self.progress)
        self.calls += 1
        return [output.outputs[0].text.strip() for output in outputs]


def load_backend(kind: str, checkpoint: str | Path, batch_size: int = 32, seed: int = 0,
                 device: str | torch.device | None = None, chat_template: str = DEFAULT_TEMPLATE) -> GenerationBackend:
    """A backend of the given kind over a saved LLaVA checkpoint, prompting in `chat_template`."""
    if kind == "hf":
        from mmdistill.models.llava import load_llava

        model, processor = load_llava(checkpoint)
        return HFGenerationBackend(model, processor, batch_size=batch_size, seed=seed, device=device,
                                   chat_template=chat_template)
    if kind == "vllm":
        return VLLMGenerationBackend(checkpoint, seed=seed, chat_template=chat_template)
    raise ValueError(f"unknown generation backend {kind!r}; choose from {BACKEND_KINDS}")
