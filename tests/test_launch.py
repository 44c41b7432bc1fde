"""One training process per GPU: the GPU count from a job's resources, and torchrun data-parallel training on CPU
(gloo), plain and with the papers' DeepSpeed ZeRO-2 config, that learns as the single process does."""

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from mmdistill.io import write_jsonl
from mmdistill.launch import processes, run_stage
from mmdistill.models.tokenizer import build_word_tokenizer
from mmdistill.stages import train_toy_llm

TEXTS = [f"question : what color is the {shape} ? answer : {color}" for shape, color in
         [("circle", "red"), ("square", "blue"), ("triangle", "green")]] * 40
# The same global batch of 16 whether one process takes it or two take 8 each.
TRAIN = {"learning_rate": 1e-2, "epochs": 6, "batch_size": 16}
# Two processes see the data in another order (each its DistributedSampler shard), so the curves differ step by
# step; what must hold is the same steps and the same learning: the final loss within this fraction.
FINAL_LOSS_TOLERANCE = 0.25
# The ZeRO-2 config the paper configs' train blocks name.
ZERO2_CONFIG = Path(__file__).parents[1] / "configs" / "deepspeed" / "zero2.json"
# A 2-process launch takes about a minute on one CPU core (mostly imports); a hang fails the test at this limit.
LAUNCH_TIMEOUT_S = 240


@pytest.mark.parametrize("resources, expected", [
    ({}, 1), ({"gpu": 4}, 4), ({"gpu": "2"}, 2), ({"gres": "gpu:8"}, 8), ({"gres": "gpu:a100:2"}, 2),
    ({"gres": "tmp:10,gpu:3"}, 3), ({"gpu": 0}, 1),
])
def test_one_process_per_gpu_of_the_job(resources, expected):
    assert processes(resources) == expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lm")
    tokenizer = build_word_tokenizer(TEXTS)
    tokenizer.save_pretrained(directory / "tokenizer")
    write_jsonl(directory / "text.jsonl", ({"text": t} for t in TEXTS))
    return directory


def _stage(corpus, name):
    return {"tokenizer_dir": str(corpus / "tokenizer"), "text_path": str(corpus / "text.jsonl"),
            "output_dir": str(corpus / name), "architecture": {"hidden_size": 32, "num_layers": 1, "num_heads": 2},
            "max_positions": 64, "train_config": TRAIN, "seed": 0}


@pytest.fixture(scope="module")
def single(corpus):
    return run_stage(train_toy_llm, _stage(corpus, "single"), 1)


def _assert_learns_as_one_process_does(single, double, output_dir):
    assert (single["processes"], double["processes"]) == (1, 2)
    assert double["global_steps"] == single["global_steps"]
    curves = [[point["loss"] for point in run["loss_curve"]] for run in (single, double)]
    assert curves[1][-1] < 0.5 * curves[1][0], f"no learning in two processes: {curves[1]}"
    assert curves[1][-1] == pytest.approx(curves[0][-1], rel=FINAL_LOSS_TOLERANCE), curves
    weights = load_file(output_dir / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_two_processes_train_data_parallel_as_one_does(corpus, single):
    double = run_stage(train_toy_llm, _stage(corpus, "double"), 2, timeout_s=LAUNCH_TIMEOUT_S)
    assert not double["deepspeed"]
    _assert_learns_as_one_process_does(single, double, corpus / "double")


def test_two_processes_train_with_deepspeed_zero2_as_one_does(corpus, single, monkeypatch):
    # Training needs no C++ build: an op that DeepSpeed would compile on the way fails at once, not minutes later.
    monkeypatch.setenv("CXX", "false")
    stage = _stage(corpus, "zero2")
    stage["train_config"] = {**TRAIN, "deepspeed": str(ZERO2_CONFIG)}
    double = run_stage(train_toy_llm, stage, 2, timeout_s=LAUNCH_TIMEOUT_S)
    assert (double["deepspeed"], double["zero_stage"]) == (True, 2)
    _assert_learns_as_one_process_does(single, double, corpus / "zero2")


def test_a_global_batch_that_does_not_divide_among_the_processes_is_an_error(corpus, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it in each process
    stage = {**_stage(corpus, "odd"), "train_config": {**TRAIN, "batch_size": 15}}
    with pytest.raises(ValueError, match="batch_size 15 is the global batch and must divide among 2"):
        train_toy_llm(**stage)


def test_a_launch_past_its_timeout_is_killed_with_its_workers(monkeypatch):
    launchers = []

    class RecordedPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            launchers.append(self)

    monkeypatch.setattr(subprocess, "Popen", RecordedPopen)
    with pytest.raises(subprocess.TimeoutExpired):
        run_stage(signal.pause, {}, 2, timeout_s=10)  # every worker waits forever
    group = launchers[0].pid  # torchrun leads its own process group
    deadline = time.monotonic() + 10
    while _running_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running_in_group(group), "torchrun's workers outlived the timeout"


def _running_in_group(group: int) -> list[int]:
    """Processes of a process group that still run (zombies, dead but not yet reaped, do not count)."""
    running = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                running.append(process.pid)
        except ProcessLookupError:
            pass
    return running
