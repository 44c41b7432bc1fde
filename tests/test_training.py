"""The one training loop: it learns, it is reproducible, stages freeze what they should, it stops at the first
non-finite loss or weight, and a killed run resumes to the same weights."""

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

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


class _NaNAtCall:
    """The model's own loss, but NaN from the `at`-th call on."""

    components = ()

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, model, inputs):
        self.calls += 1
        loss = model(**inputs).loss
        return (loss * float("nan") if self.calls >= self.at else loss), {}


def _tiny_lm(corpus):
    from transformers import AutoTokenizer

    from mmdistill.models.toy import tiny_llama
    from mmdistill.training import TextCollator, TextDataset

    tokenizer = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    torch.manual_seed(0)
    model = tiny_llama(tokenizer, max_positions=64, **ARCHITECTURE)
    return model, TextDataset(TEXTS, tokenizer, 64), TextCollator(tokenizer.pad_token_id)


def test_a_non_finite_loss_stops_training_naming_the_stage_and_step(corpus, tmp_path):
    from mmdistill.checkpoints import checkpointing
    from mmdistill.training import NonFiniteError, TrainSettings, train

    model, dataset, collator = _tiny_lm(corpus)
    settings = TrainSettings(learning_rate=1e-2, epochs=1, batch_size=16, seed=0)
    with checkpointing(tmp_path / "work", 100, "rule student_stage1 {\"seed\": \"0\"}"):
        with pytest.raises(NonFiniteError, match=r'rule student_stage1 \{"seed": "0"\}: non-finite loss \(nan\) '
                                                 r"at step 3 of 8; training stopped, nothing is saved"):
            train(model, dataset, collator, settings, loss=_NaNAtCall(3))


def test_a_non_finite_parameter_stops_training_naming_it(corpus):
    from mmdistill.training import NonFiniteError, _FiniteParameters

    model, _, _ = _tiny_lm(corpus)
    guard = _FiniteParameters("rule toy_llm")
    guard.on_step_end(None, SimpleNamespace(global_step=4, max_steps=9), None, model=model)  # finite: passes
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="rule toy_llm: parameter lm_head.weight is not finite after step 4 of 9"):
        guard.on_step_end(None, SimpleNamespace(global_step=4, max_steps=9), None, model=model)


def test_nan_weights_are_never_saved(tiny_checkpoint, benchmark_files, tmp_path):
    """A model whose weights hold a NaN stops at step 1 of its stage, before its output is written."""
    from mmdistill.models.llava import load_llava, save_llava
    from mmdistill.stages import train_llava_stage
    from mmdistill.training import NonFiniteError

    model, processor = load_llava(tiny_checkpoint)
    with torch.no_grad():
        model.model.multi_modal_projector.linear_1.weight[0, 0] = float("nan")
    save_llava(model, processor, tmp_path / "nan_init")
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"id": f"r{i}", "image": "images/0.png", "conversations": [
        {"from": "human", "value": "<image>\nwhat color is the circle ?"}, {"from": "gpt", "value": "red"}]}
        for i in range(8)]))
    with pytest.raises(NonFiniteError, match="non-finite loss .* at step 1 "):
        train_llava_stage(tmp_path / "out", data, "conversations", benchmark_files["mc"].parent, ["projector"],
                          {"learning_rate": 1e-3, "epochs": 1, "batch_size": 4}, seed=0,
                          init_checkpoint=tmp_path / "nan_init")
    assert not (tmp_path / "out").exists()


RESUMABLE_RUN = """
import sys
from pathlib import Path
from mmdistill.checkpoints import checkpointing
from mmdistill.stages import train_toy_llm
corpus, output, work = map(Path, sys.argv[1:4])
architecture = {"hidden_size": 32, "num_layers": 1, "num_heads": 2}
train_config = {"learning_rate": 1e-2, "epochs": 12, "batch_size": 16}
with checkpointing(work, 3, "test"):
    summary = train_toy_llm(corpus / "tokenizer", corpus / "text.jsonl", output, architecture, 64, train_config, 0)
print("resumed_from_step", summary.get("resumed_from_step"))
"""


def _resumable(corpus, output, work):
    return subprocess.Popen([sys.executable, "-c", RESUMABLE_RUN, str(corpus), str(output), str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_a_training_killed_with_sigkill_resumes_to_the_same_weights(corpus, tmp_path):
    from mmdistill.checkpoints import latest_checkpoint

    work = tmp_path / "work"
    killed = _resumable(corpus, tmp_path / "resumed", work)
    deadline = time.monotonic() + 300
    while killed.poll() is None and time.monotonic() < deadline:
        latest = latest_checkpoint(work / "train1")
        if latest is not None and int(latest.name.split("-")[1]) >= 9:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed: " + killed.stderr.read()[-2000:]
    assert not (tmp_path / "resumed").exists()
    rerun = _resumable(corpus, tmp_path / "resumed", work)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-3000:]
    resumed_from = int(out.split()[-1])
    assert resumed_from >= 9
    uninterrupted = train_toy_llm(corpus / "tokenizer", corpus / "text.jsonl", tmp_path / "uninterrupted",
                                  ARCHITECTURE, 64, {**TRAIN, "epochs": 12}, 0)
    assert uninterrupted["global_steps"] > resumed_from
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    reference = load_file(tmp_path / "uninterrupted" / "model.safetensors")
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)


def test_processes_a_job_starts_inherit_its_checkpointing(tmp_path):
    """Training launched in child processes (torchrun, one per GPU) checkpoints into the job's work folder too."""
    from mmdistill.checkpoints import active, checkpointing

    probe = "from mmdistill.checkpoints import active; a = active(); print(a.directory, a.every_steps, a.stage)"
    with checkpointing(tmp_path / "work", 5, "rule teacher_instruct"):
        child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert child.stdout.split(maxsplit=2) == [str(tmp_path / "work"), "5", "rule teacher_instruct\n"]
    assert active() is None and "MMDISTILL_WORK_DIR" not in os.environ


def test_gradient_checkpointing_is_a_train_key_and_leaves_the_loss_curve(corpus):
    """`gradient_checkpointing: true` in a train block recomputes activations; the same steps give the same losses."""
    plain = _train(corpus, "run_a")
    checkpointed = train_toy_llm(corpus / "tokenizer", corpus / "text.jsonl", corpus / "checkpointed", ARCHITECTURE, 64,
                                 {**TRAIN, "gradient_checkpointing": True}, 0)
    assert (plain["gradient_checkpointing"], checkpointed["gradient_checkpointing"]) == (False, True)
    losses = [[point["loss"] for point in run["loss_curve"]] for run in (plain, checkpointed)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_a_resumed_llava_gets_its_checkpoints_weights_not_its_initial_ones(tiny_checkpoint, tmp_path):
    from transformers import TrainingArguments

    from mmdistill.models.llava import load_llava
    from mmdistill.training import _GuardedTrainer

    trained, _ = load_llava(tiny_checkpoint)
    checkpoint = tmp_path / "checkpoint-3"
    trained.save_pretrained(checkpoint)  # what Trainer writes into a checkpoint: LLaVA's legacy names
    assert set(load_file(checkpoint / "model.safetensors")).isdisjoint(trained.state_dict())
    model, _ = load_llava(tiny_checkpoint)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    trainer = _GuardedTrainer("rule teacher_instruct", model=model,
                              args=TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[]))
    trainer._load_from_checkpoint(str(checkpoint))
    reference = trained.state_dict()
    assert all(torch.equal(value, reference[name]) for name, value in model.state_dict().items())


def test_the_language_model_saved_alone_gives_the_llavas_text_logits(tiny_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM

    from mmdistill.models.llava import load_llava, save_language_model

    llava, processor = load_llava(tiny_checkpoint)
    save_language_model(llava, processor, tmp_path / "llm")
    llm = AutoModelForCausalLM.from_pretrained(tmp_path / "llm")
    assert not any("projector" in name or "vision" in name for name in llm.state_dict())
    input_ids = torch.tensor([processor.tokenizer.encode("what color is the circle ?")])
    with torch.no_grad():
        assert torch.allclose(llm(input_ids=input_ids).logits, llava(input_ids=input_ids).logits)


def test_the_vision_ready_llm_is_trained_on_captions_and_assembles_with_a_fresh_projector(tmp_path):
    from PIL import Image
    from transformers import AutoModelForCausalLM

    from conftest import COLORS, build_tiny_llava
    from mmdistill.models.llava import assemble_llava
    from mmdistill.stages import make_llm_vision_ready

    build_tiny_llava(tmp_path)
    (tmp_path / "images").mkdir()
    captions = []
    for index, color in enumerate(COLORS):
        Image.new("RGB", (64, 64), color).save(tmp_path / f"images/{index}.png")
        captions += [{"id": f"{index}-{k}", "image": f"images/{index}.png", "caption": f"there is a {color} circle ."}
                     for k in range(8)]
    write_jsonl(tmp_path / "captions.jsonl", captions)
    summary = make_llm_vision_ready(tmp_path / "ready", tmp_path / "llm", tmp_path / "clip", tmp_path / "captions.jsonl",
                                    tmp_path, {"learning_rate": 1e-2, "epochs": 4, "batch_size": 8}, seed=0)
    assert set(summary["trainable_parts"]) == {"projector", "language_model"} and summary["examples"] == 32
    curve = [point["loss"] for point in summary["loss_curve"]]
    assert curve[-1] < curve[0] - 0.5, curve
    before = AutoModelForCausalLM.from_pretrained(tmp_path / "llm").state_dict()
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "ready").state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before if name in after)
    student, _ = assemble_llava(tmp_path / "clip", tmp_path / "ready", seed=1)
    assert torch.equal(student.lm_head.weight, after["lm_head.weight"])
