"""The likelihood protocol: option log-likelihoods from the model class, through lmms-eval, and its config."""

import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import sample_items, write_benchmark
from PIL import Image

from mmdistill.config import ConfigError, validate_config
from mmdistill.conversation import IGNORE_INDEX, encode_conversation, encode_prompt
from mmdistill.evaluation import evaluate
from mmdistill.evaluation.model import answer_loglikelihoods
from mmdistill.evaluation.scoring import answer_choices, likelihood_prediction, loglikelihood_of
from mmdistill.generation import load_backend
from mmdistill.models.llava import num_image_tokens

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "what color is the circle ? options : ( a ) red ( b ) top left ( c ) red circle , blue square ."
ANSWERS = ["red", "top left", "red circle , blue square"]  # 1, 2 and 5 tokens


@pytest.fixture(scope="module")
def backend(tiny_checkpoint):
    return load_backend("hf", tiny_checkpoint, batch_size=2, seed=0, device="cpu")


@pytest.fixture(scope="module")
def image(benchmark_files):
    with Image.open(benchmark_files["mc"].parent / "images" / "0.png") as loaded:
        return loaded.convert("RGB")


def plain_forward(backend, image, question, answer):
    """Log P(answer + EOS | prompt) and greedy-ness from one unpadded forward pass over the training ids."""
    model, processor = backend.model, backend.processor
    input_ids, labels = encode_conversation(processor.tokenizer, [question], [answer], num_image_tokens(model.config))
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([input_ids]),
                       pixel_values=processor.image_processor(image, return_tensors="pt")["pixel_values"]).logits[0]
    log_probs = logits[:-1].log_softmax(-1)
    scored = [t for t in range(len(input_ids) - 1) if labels[t + 1] != IGNORE_INDEX]
    total = sum(log_probs[t, input_ids[t + 1]].item() for t in scored)
    return total, all(log_probs[t].argmax().item() == input_ids[t + 1] for t in scored)


def test_scored_tokens_are_the_supervised_answer_and_its_eos_after_the_generation_prompt(backend):
    tokenizer = backend.tokenizer
    input_ids, labels = encode_conversation(tokenizer, [QUESTION], ["red circle , blue square"], 4)
    scored = [label for label in labels if label != IGNORE_INDEX]
    assert scored == tokenizer.encode(" red circle , blue square", add_special_tokens=False) + [tokenizer.eos_token_id]
    assert input_ids[-len(scored):] == scored  # the continuation ends the sequence, as left padding needs
    assert input_ids[:-len(scored)] == encode_prompt(tokenizer, QUESTION, 4)  # = the processor's (test_generation)


def test_loglikelihoods_equal_a_plain_forward_pass(backend, image):
    """Batched (left-padded, mixed lengths) log-likelihoods are the unpadded ones, to 1e-5."""
    requests = [(image, question, answer) for question in (QUESTION, "is there a red circle ?") for answer in ANSWERS]
    results = answer_loglikelihoods(backend, requests)
    for (_, question, answer), (loglikelihood, greedy) in zip(requests, results):
        expected, expected_greedy = plain_forward(backend, image, question, answer)
        assert loglikelihood == pytest.approx(expected, abs=1e-5)
        assert greedy == expected_greedy


def test_a_uniform_model_gives_known_likelihoods(tiny_checkpoint, image):
    """With a zero LM head every token has probability 1/V: an answer of k tokens scores -(k + 1) log V
    (its EOS included), so the sum (not length-normalised) picks the shortest option."""
    uniform = load_backend("hf", tiny_checkpoint, batch_size=3, seed=0, device="cpu")
    with torch.no_grad():
        uniform.model.lm_head.weight.zero_()
    vocabulary = uniform.model.config.text_config.vocab_size
    results = answer_loglikelihoods(uniform, [(image, QUESTION, answer) for answer in ANSWERS])
    for answer, (loglikelihood, _) in zip(ANSWERS, results):
        tokens = len(uniform.tokenizer.encode(f" {answer}", add_special_tokens=False)) + 1
        assert loglikelihood == pytest.approx(-tokens * math.log(vocabulary), abs=1e-5)
    item = {"options": ANSWERS}
    assert likelihood_prediction("multiple_choice", item, [ll for ll, _ in results]) == "a"


def test_likelihood_predictions():
    item = {"id": "q", "options": ["red", "blue", "green"]}
    assert answer_choices("multiple_choice", item) == ["red", "blue", "green"]
    assert answer_choices("yes_no", {}) == ["yes", "no"]
    assert likelihood_prediction("multiple_choice", item, [-3.0, -1.0, -2.0]) == "b"
    assert likelihood_prediction("multiple_choice", item, [-1.0, -1.0, -2.0]) == "a"  # a tie: the first
    assert likelihood_prediction("yes_no", item, [-2.0, -0.5]) == "no"
    with pytest.raises(ValueError, match="2 log-likelihoods for 3 choices"):
        likelihood_prediction("multiple_choice", item, [-1.0, -2.0])
    with pytest.raises(ValueError, match="open_ended"):
        answer_choices("open_ended", item)
    # lmms-eval 0.7.3 hands responses on as str(); a float's repr reads back exactly
    assert loglikelihood_of(str((-0.1 / 3, False))) == -0.1 / 3
    assert loglikelihood_of((-2.5, True)) == -2.5


# --- through lmms-eval ------------------------------------------------------------------

def half_right_by_likelihood(directory, benchmark, backend):
    """A 6-item file whose gold answer is the likeliest choice on items 0, 2, 4 and another on 1, 3, 5;
    returns it with each item's expected log-likelihoods."""
    items = sample_items(benchmark)
    write_benchmark(directory, benchmark, items)
    kind = "yes_no" if benchmark == "pope" else "multiple_choice"
    expected = []
    for index, item in enumerate(items):
        with Image.open(directory / item["image"]) as image:
            requests = [(image.convert("RGB"), item.get("prompt") or item["question"], choice)
                        for choice in answer_choices(kind, item)]
        values = [loglikelihood for loglikelihood, _ in answer_loglikelihoods(backend, requests)]
        best = max(range(len(values)), key=values.__getitem__)
        gold = best if index % 2 == 0 else (best + 1) % len(values)
        item["answer"] = answer_choices(kind, item)[gold] if kind == "yes_no" else "abcd"[gold]
        expected.append(values)
    return write_benchmark(directory, benchmark, items), expected


@pytest.mark.parametrize("benchmark", ["seed", "pope"])
def test_evaluation_by_likelihood(tmp_path, tiny_checkpoint, backend, benchmark):
    data_file, expected = half_right_by_likelihood(tmp_path, benchmark, backend)
    result = evaluate(tiny_checkpoint, benchmark, data_file, tmp_path / "score.json", batch_size=4, seed=0,
                      temperature=0.5, task_dir=tmp_path / "task", protocol="likelihood")
    assert "_likelihood_template_yaml" in (tmp_path / "task" / f"mmdistill_{benchmark}.yaml").read_text()
    assert result["protocol"] == "likelihood" and result["temperature"] is None
    for sample, values in zip(result["samples"], expected):
        assert sample["loglikelihoods"] == pytest.approx(values, abs=1e-5)
        best = max(range(len(values)), key=values.__getitem__)
        assert sample["prediction"] == (["yes", "no"][best] if benchmark == "pope" else "abcd"[best])
    assert [sample["correct"] for sample in result["samples"]] == [True, False] * 3
    assert result["score"] == pytest.approx(50.0)
    assert result["lmms_eval_metrics"]["accuracy"] * 100 == pytest.approx(result["score"])
    if benchmark == "pope":
        assert {"precision", "recall", "f1", "yes_ratio"} <= set(result["by_category"]["negative_type"]["random"])


def test_protocol_checks(tiny_checkpoint, benchmark_files, tmp_path):
    with pytest.raises(ValueError, match="open-ended: it has no options"):
        evaluate(tiny_checkpoint, "open", benchmark_files["open"], tmp_path / "out.json",
                 judge=lambda items, predictions: [], protocol="likelihood")
    with pytest.raises(ValueError, match="unknown evaluation protocol 'perplexity'"):
        evaluate(tiny_checkpoint, "seed", benchmark_files["seed"], tmp_path / "out.json", protocol="perplexity")


# --- config ------------------------------------------------------------------------------

def test_default_protocols_and_config_errors_naming_the_key():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    protocol = config["evaluation"]["protocol"]
    assert protocol == {"mc": "generation", "seed": "likelihood", "pope": "likelihood", "open": "generation"}
    assert config["evaluation"]["finetune"]["benchmarks"] == ["mc"]  # why mc stays generation
    schema = ROOT / "config.schema.yaml"
    validate_config(config, schema)
    for key, value, message in [("seed", "perplexity", "`evaluation.protocol.seed`: 'perplexity' is not one of"),
                                ("open", "likelihood", "`evaluation.protocol.open`: 'likelihood' is not one of")]:
        with pytest.raises(ConfigError, match=message):
            validate_config({**config, "evaluation": {**config["evaluation"],
                                                      "protocol": {**protocol, key: value}}}, schema)
