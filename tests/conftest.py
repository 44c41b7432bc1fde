"""Shared test fixtures: a tiny random LLaVA checkpoint, small toy benchmark files and a finished tiny run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
from PIL import Image

from mmdistill.conversation import ASSISTANT_TAG, SYSTEM_PROMPT, USER_TAG
from mmdistill.models.llava import assemble_llava, save_llava
from mmdistill.models.tokenizer import EOS, build_word_tokenizer
from mmdistill.models.toy import clip_image_processor, tiny_clip, tiny_llama

IMAGE_SIZE = 64
COLORS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle", "star"]
# What the default tiny model can emit: a few words and EOS, so replies are short.
ANSWER_WORDS = ["a", "b", "c", "d", "yes", "no", "red", "circle", "there", "is", EOS]
VOCABULARY = [SYSTEM_PROMPT, USER_TAG, ASSISTANT_TAG, *COLORS, *SHAPES, *ANSWER_WORDS,
              "what color shape is the how many objects are in top bottom left right",
              "options : ( ) . , ? answer with letter small big a an of"]


def build_tiny_llava(directory: Path, hidden_size: int = 32, num_layers: int = 1, seed: int = 0,
                     emit_only: list[str] = ANSWER_WORDS) -> Path:
    """Save a random LLaVA (word tokenizer, tiny CLIP, tiny Llama) under `directory`; returns its path.

    The LM head keeps only the rows of the `emit_only` tokens (scaled up), so greedy
    decoding emits nothing else.
    """
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(VOCABULARY)
    clip = tiny_clip(tokenizer, IMAGE_SIZE, 16, 32, 1, 2, 32)
    clip.save_pretrained(directory / "clip")
    clip_image_processor(IMAGE_SIZE).save_pretrained(directory / "clip")
    llm = tiny_llama(tokenizer, hidden_size, num_layers, 4, 256)
    llm.save_pretrained(directory / "llm")
    tokenizer.save_pretrained(directory / "llm")
    model, processor = assemble_llava(directory / "clip", directory / "llm", seed=seed)
    keep = torch.tensor(tokenizer.convert_tokens_to_ids(emit_only))
    with torch.no_grad():
        head = model.lm_head.weight
        kept_rows = head[keep] * 10
        head.zero_()
        head[keep] = kept_rows
    save_llava(model, processor, directory / "llava")
    return directory / "llava"


def _image_path(index: int) -> str:
    return f"images/{index % len(COLORS)}.png"


def _mc_item(prefix: str, index: int) -> dict:
    question = f"what color is the {SHAPES[index % 4]} ?"
    options = list(COLORS)
    listing = " ".join(f"( {letter} ) {option}" for letter, option in zip("abcd", options))
    return {"id": f"{prefix}{index}", "image": _image_path(index), "question": question, "options": options,
            "prompt": f"{question} options : {listing} . answer with one of the options .",
            "answer": "abcd"[index % 4], "answer_text": options[index % 4]}


def sample_items(benchmark: str, count: int = 6) -> list[dict]:
    """`count` well-formed items of one toy benchmark, with every category axis it needs."""
    items = []
    for index in range(count):
        if benchmark == "mc":
            item = {**_mc_item("mc", index), "subject": ["color", "shape"][index % 2],
                    "context_modality": "image", "grade": index % 3 + 1}
        elif benchmark == "seed":
            item = {**_mc_item("seed", index), "dimension": ["instance_attributes", "instance_counting"][index % 2]}
        elif benchmark == "pope":
            item = {"id": f"pope{index}", "image": _image_path(index),
                    "question": f"is there a {COLORS[index % 4]} {SHAPES[index % 3]} in the image ?",
                    "answer": ["yes", "no"][index % 2],
                    "negative_type": ["random", "popular", "adversarial"][index % 3]}
        elif benchmark == "open":
            item = {"id": f"open{index}", "image": _image_path(index),
                    "question": "what objects are in the image ?",
                    "answer": f"there is a {COLORS[index % 4]} circle .",
                    "category": ["conversation", "complex_reasoning", "detail_description"][index % 3]}
        else:
            raise ValueError(f"no sample items for benchmark {benchmark!r}")
        items.append(item)
    return items


def write_benchmark(directory: Path, benchmark: str, items: list[dict]) -> Path:
    """Write `<benchmark>_test.jsonl` and the images it references; returns the JSONL path."""
    (directory / "images").mkdir(parents=True, exist_ok=True)
    for index, color in enumerate(COLORS):
        path = directory / _image_path(index)
        if not path.exists():
            Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), color).save(path)
    path = directory / f"{benchmark}_test.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="session")
def answering_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny models that can only emit option letters ('multiple_choice') or yes/no ('yes_no')."""
    directory = tmp_path_factory.mktemp("answering_llava")
    return {"multiple_choice": build_tiny_llava(directory / "letters", emit_only=["a", "b", "c", "d"]),
            "yes_no": build_tiny_llava(directory / "yes_no", emit_only=["yes", "no"])}


@pytest.fixture(scope="session")
def benchmark_files(tmp_path_factory) -> dict[str, Path]:
    """A 6-item test file for each toy benchmark, sharing one image folder."""
    directory = tmp_path_factory.mktemp("benchmarks")
    return {benchmark: write_benchmark(directory, benchmark, sample_items(benchmark))
            for benchmark in ("mc", "seed", "pope", "open")}


ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "tests" / "tiny_config.yaml"
# The cheapest finished run with provenance several jobs deep: the tiny world's scenes and images, its
# instruction seed set and CoMD's seed pools (three jobs, seconds; no model is trained).
TINY_RUN_TARGET = "results/comd/iter0/tuning_pool.jsonl"


def snakemake_in(directory: Path, *args: str, snakefile: Path = ROOT / "Snakefile",
                 configfile: Path = TINY_CONFIG) -> subprocess.CompletedProcess:
    """Snakemake on the tiny config in `directory`, one core."""
    command = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(snakefile), "--directory", str(directory),
               "--configfile", str(configfile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def planned_jobs(directory: Path, target: str = TINY_RUN_TARGET, **kwargs) -> dict[str, int]:
    """{rule: jobs} that a dry-run of `target` plans (empty: nothing to do)."""
    result = snakemake_in(directory, target, "-n", "--quiet", "rules", **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_counts(result.stdout + result.stderr)


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from the job table a `snakemake -n --quiet rules` run prints."""
    counts = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            name, count = line.split()
            if name == "total":
                break
            counts[name] = int(count)
    return counts


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished run of TINY_RUN_TARGET on the tiny config; copy it before changing anything in it."""
    directory = tmp_path_factory.mktemp("tiny_run")
    result = snakemake_in(directory, TINY_RUN_TARGET, "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def merged_config(base: dict, override: dict) -> dict:
    """`override` merged into `base` mapping by mapping, as Snakemake merges config files."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merged_config(base[key], value) if isinstance(value, dict) and key in base else value
    return merged


def reordered_config(value):
    """Every mapping's keys in reverse order, every whole number written as a float (1 -> 1.0)."""
    if isinstance(value, dict):
        return {key: reordered_config(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered_config(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
