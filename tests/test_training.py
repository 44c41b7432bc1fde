"""The one training loop: it learns, it is reproducible, and stages freeze what they should."""

import json

import pytest
import torch
from safetensors.torch import load_file

from mmdistill.io import write_jsonl
from mmdistill.models.llava import set_trainable
from mmdistill.models.tokenizer import build_word_tokenizer
from mmdistill.stages import settings_from_config, train_toy_llm

TEXTS = [f"question : what color is the {shape} ? answer : {color}" for shape, color in
         [("circle", "red"), ("square", "blue"), ("triangle", "green")]] * 40
ARCHITECTURE = {"hidden_size": 32, "num_layers": 1, "num_heads": 2}
TRAIN = {"learning_rate": 1e-2, "epochs": 6, "batch_size": 16}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lm")
    tokenizer = build_word_tokenizer(TEXTS)
    tokenizer.save_pretrained(directory / "tokenizer")
    write_jsonl(directory / "text.jsonl", ({"text": t} for t in TEXTS))
    return directory


def _train(corpus, name, seed=0):
    return train_toy_llm(corpus / "tokenizer", corpus / "text.jsonl", corpus / name, ARCHITECTURE, 64, TRAIN, seed)


def test_loss_falls_and_reruns_are_identical(corpus):
    first = _train(corpus, "run_a")
    second = _train(corpus, "run_b")
    curve = [point["loss"] for point in first["loss_curve"]]
    assert curve[-1] < 0.5 * curve[0], f"no learning: {curve}"
    weights_a = load_file(corpus / "run_a" / "model.safetensors")
    weights_b = load_file(corpus / "run_b" / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert json.dumps(first["loss_curve"]) == json.dumps(second["loss_curve"])


def test_another_seed_gives_other_weights(corpus):
    _train(corpus, "seed_1", seed=1)
    weights_0 = load_file(corpus / "run_a" / "model.safetensors")
    weights_1 = load_file(corpus / "seed_1" / "model.safetensors")
    assert not all(torch.equal(weights_0[k], weights_1[k]) for k in weights_0)


def test_settings_come_from_the_config_block():
    settings = settings_from_config({"learning_rate": 2e-3, "epochs": 1, "batch_size": 8}, seed=4)
    assert (settings.learning_rate, settings.epochs, settings.batch_size, settings.seed) == (2e-3, 1, 8, 4)
    assert settings.warmup_ratio == 0.03


def test_set_trainable_freezes_all_but_the_named_parts(tiny_checkpoint):
    from mmdistill.models.llava import load_llava

    model, _ = load_llava(tiny_checkpoint)
    counts = set_trainable(model, ["projector"])
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("multi_modal_projector" in name for name in trainable)
    assert counts["projector"] == sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    with pytest.raises(ValueError, match="unknown trainable part"):
        set_trainable(model, ["decoder"])


def test_gradient_checkpointing_is_a_train_key_and_leaves_the_loss_curve(corpus):
    """`gradient_checkpointing: true` in a train block recomputes activations; the same steps give the same losses."""
    plain = _train(corpus, "run_a")
    checkpointed = train_toy_llm(corpus / "tokenizer", corpus / "text.jsonl", corpus / "checkpointed", ARCHITECTURE, 64,
                                 {**TRAIN, "gradient_checkpointing": True}, 0)
    assert (plain["gradient_checkpointing"], checkpointed["gradient_checkpointing"]) == (False, True)
    losses = [[point["loss"] for point in run["loss_curve"]] for run in (plain, checkpointed)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
