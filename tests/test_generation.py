import pytest
import torch

from mmdistill.conversation import encode_prompt
from mmdistill.generation import GenerationRequest, HFGenerationBackend, load_backend, vllm_requests
from mmdistill.models.llava import load_llava, num_image_tokens

QUESTIONS = [
    "what color is the circle ?",
    "how many objects are in the top left ?",
    "is there a red star ?",
    "what shape is the big blue object in the bottom right of the image ?",
    "what color is the small square in the top right ?",
    "is there a circle ?",
]


@pytest.fixture(scope="module")
def model_and_processor(tiny_checkpoint):
    return load_llava(tiny_checkpoint)


@pytest.fixture(scope="module")
def images(benchmark_files):
    return sorted((benchmark_files["mc"].parent / "images").glob("*.png"))


def make_backend(model_and_processor, batch_size, seed=0):
    model, processor = model_and_processor
    return HFGenerationBackend(model, processor, batch_size=batch_size, seed=seed, device="cpu", progress=False)


def make_requests(images, temperature=0.0, max_new_tokens=10):
    return [GenerationRequest(images[i % len(images)], question, temperature, max_new_tokens, id=str(i))
            for i, question in enumerate(QUESTIONS)]


def test_prompt_is_the_conversation_prompt(model_and_processor, images):
    model, processor = model_and_processor
    backend = make_backend(model_and_processor, batch_size=2)
    requests = make_requests(images)[:2]
    inputs = backend.encode(requests)
    for row, request in enumerate(requests):
        ids = inputs["input_ids"][row][inputs["attention_mask"][row].bool()].tolist()
        assert ids == encode_prompt(processor.tokenizer, request.question, num_image_tokens(model.config))
    assert inputs["attention_mask"][:, 0].tolist() == [0, 1]  # the shorter first prompt is padded on the left


def test_batched_greedy_equals_one_by_one(model_and_processor, images):
    requests = make_requests(images)
    batched = make_backend(model_and_processor, batch_size=len(requests)).generate(requests)
    single = make_backend(model_and_processor, batch_size=1)
    assert batched == [single.generate([request])[0] for request in requests]
    assert any(batched)


def test_replies_come_back_in_request_order(model_and_processor, images):
    requests = make_requests(images)
    mixed = [GenerationRequest(r.image, r.question, 0.0, max_new_tokens=3 + i % 2 * 7, id=r.id)
             for i, r in enumerate(requests)]
    backend = make_backend(model_and_processor, batch_size=4)
    replies = backend.generate(mixed)
    assert backend.generate(mixed[::-1]) == replies[::-1]
    single = make_backend(model_and_processor, batch_size=1)
    assert replies == [single.generate([request])[0] for request in mixed]


def test_greedy_is_deterministic(model_and_processor, images):
    backend = make_backend(model_and_processor, batch_size=4)
    requests = make_requests(images)
    first = backend.generate(requests)
    torch.manual_seed(12345)
    assert backend.generate(requests) == first


def test_seeded_sampling_is_reproducible(model_and_processor, images):
    requests = make_requests(images, temperature=1.0, max_new_tokens=12)
    first = make_backend(model_and_processor, batch_size=4, seed=7).generate(requests)
    assert make_backend(model_and_processor, batch_size=4, seed=7).generate(requests) == first
    assert make_backend(model_and_processor, batch_size=4, seed=8).generate(requests) != first


def test_request_checks():
    with pytest.raises(ValueError, match="temperature"):
        GenerationRequest("x.png", "q", temperature=-1.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationRequest("x.png", "q", max_new_tokens=0)


def test_missing_image_is_named(model_and_processor, tmp_path):
    backend = make_backend(model_and_processor, batch_size=1)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        backend.generate([GenerationRequest(tmp_path / "missing.png", "is there a circle ?", id="q1")])


def test_load_backend(tiny_checkpoint):
    assert isinstance(load_backend("hf", tiny_checkpoint, batch_size=2, seed=0, device="cpu"), HFGenerationBackend)
    with pytest.raises(ValueError, match="unknown generation backend"):
        load_backend("onnx", tiny_checkpoint, batch_size=2, seed=0)


def test_a_repeated_call_samples_anew_but_reruns_reproduce(model_and_processor, images):
    """A judge retry re-asks the same prompts; it must not get the same sample back."""
    requests = make_requests(images, temperature=1.0, max_new_tokens=12)
    backend = make_backend(model_and_processor, batch_size=4, seed=7)
    first, retry = backend.generate(requests), backend.generate(requests)
    assert retry != first
    rerun = make_backend(model_and_processor, batch_size=4, seed=7)
    assert [rerun.generate(requests), rerun.generate(requests)] == [first, retry]


def test_the_vllm_backend_without_vllm_says_what_is_missing(tiny_checkpoint):
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="needs the vllm package"):
            load_backend("vllm", tiny_checkpoint, batch_size=2, seed=0)
    else:
        pytest.skip("vllm is installed here")


def test_vllm_gets_the_hf_backends_prompts_and_sampling_contract(model_and_processor, images):
    """vLLM's prompt is the HF backend's: expanded by its processor it gives the same tokens; greedy stays greedy,
    sampling is pure temperature with a seed per request that a rerun repeats and a retry (next call) changes."""
    requests = [GenerationRequest(images[0], QUESTIONS[0], max_new_tokens=7),
                GenerationRequest(images[1], QUESTIONS[1], temperature=0.7, max_new_tokens=9),
                GenerationRequest(images[2], QUESTIONS[2], temperature=0.7, max_new_tokens=9)]
    first = vllm_requests(requests, seed=3, call_index=0)
    assert vllm_requests(requests, seed=3, call_index=0) == first
    retry = vllm_requests(requests, seed=3, call_index=1)
    other_run = vllm_requests(requests, seed=4, call_index=0)

    hf = make_backend(model_and_processor, batch_size=1)
    for request, item in zip(requests, first):
        _, processor = model_and_processor
        expanded = processor(images=[item.prompt["multi_modal_data"]["image"]], text=[item.prompt["prompt"]],
                             return_tensors="pt")
        assert torch.equal(expanded["input_ids"], hf.encode([request])["input_ids"])
        assert item.prompt["prompt"].count("<image>") == 1
        assert item.sampling["max_tokens"] == request.max_new_tokens
        assert (item.sampling["temperature"], item.sampling["top_k"], item.sampling["top_p"]) == \
            (request.temperature, 0, 1.0)
    assert first[0].sampling["seed"] is None  # greedy
    seeds = [item.sampling["seed"] for item in first[1:]]
    assert len(set(seeds)) == 2
    assert all(a.sampling["seed"] != b.sampling["seed"] for a, b in zip(first[1:], retry[1:]))
    assert all(a.sampling["seed"] != b.sampling["seed"] for a, b in zip(first[1:], other_run[1:]))


# vLLM's LLaVA (vllm/model_executor/models/llava.py, hf_to_vllm_mapper): checkpoint prefixes it renames, and the
# prefixes of its own modules' weights, whose CLIP tower is `vision_tower.vision_model.*`.
VLLM_LLAVA_RENAMES = {"model.language_model.": "language_model.model.", "model.vision_tower.": "vision_tower.",
                      "model.multi_modal_projector.": "multi_modal_projector.", "lm_head.": "language_model.lm_head."}
VLLM_LLAVA_MODULES = ("vision_tower.vision_model.", "multi_modal_projector.", "language_model.model.",
                      "language_model.lm_head.")


def test_saved_checkpoints_have_the_key_layout_vllms_llava_loader_maps(tiny_checkpoint, model_and_processor):
    from safetensors import safe_open

    keys = []
    for file in tiny_checkpoint.glob("*.safetensors"):
        with safe_open(file, "pt") as handle:
            keys.extend(handle.keys())
    mapped = [next((new + key.removeprefix(old) for old, new in VLLM_LLAVA_RENAMES.items() if key.startswith(old)), key)
              for key in keys]
    assert [key for key in mapped if not key.startswith(VLLM_LLAVA_MODULES)] == []
    assert any(key.startswith("vision_tower.vision_model.embeddings.") for key in mapped)
    # and transformers loads the layout back: every weight as saved
    model, _ = model_and_processor
    with safe_open(next(tiny_checkpoint.glob("*.safetensors")), "pt") as handle:
        saved = handle.get_tensor("vision_tower.vision_model.embeddings.patch_embedding.weight")
    assert torch.equal(model.model.vision_tower.embeddings.patch_embedding.weight, saved)
