"""Held-out means held out: no test scene graph in training, no test text in the tokenizer."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from transformers import AutoTokenizer

from mmdistill.io import read_jsonl, write_json, write_jsonl
from mmdistill.stages import texts_of
from mmdistill.toyworld import benchmarks, corpora
from mmdistill.toyworld.scenes import generate_scenes, scene_key

ROOT = Path(__file__).resolve().parents[1]
WORLD = yaml.safe_load((ROOT / "config.yaml").read_text())["toy_world"]
TINY_SCENES = yaml.safe_load((ROOT / "tests/tiny_config.yaml").read_text())["toy_world"]["scenes"]
HELD_OUT = "bench_test"
BENCHMARKS = ("mc", "seed", "pope", "open")
OPTIONS = {"seed": 0, "grid": WORLD["grid"], "max_objects": WORLD["max_objects"],
           "min_objects": WORLD["min_objects"], "text_probability": WORLD["text_probability"]}


class _Named(list):
    """Enough of Snakemake's Namedlist for a rule script."""

    def __init__(self, items=(), **named):
        values = [item for value in named.values() for item in (value if isinstance(value, list) else [value])]
        super().__init__(list(items) + values)
        self._named = named

    def __getattr__(self, name):
        return self._named[name]

    def items(self):
        return self._named.items()


def run_rule_script(script: str, rule: str, input: _Named, output: _Named, params: dict) -> None:
    """Run scripts/<script> as Snakemake would, with a fake `snakemake` object; cwd is the results' root."""
    smk = SimpleNamespace(rule=rule, input=input, output=output, params=_Named(**params), wildcards=_Named(),
                          log=_Named([f"results/logs/{rule}.log"]), threads=1, config={})
    runpy.run_path(str(ROOT / "scripts" / script), init_globals={"snakemake": smk})


def training_and_held_out(splits: dict) -> tuple[list[dict], list[dict]]:
    training = [scene for split, count in splits.items() if split != HELD_OUT
                for scene in generate_scenes(count, split=split, **OPTIONS)]
    return training, generate_scenes(splits[HELD_OUT], split=HELD_OUT, held_out_from=training, **OPTIONS)


@pytest.mark.parametrize("splits", [WORLD["scenes"], TINY_SCENES], ids=["default", "tiny"])
def test_held_out_scene_graphs_are_new_and_redraws_were_needed(splits):
    training, held_out = training_and_held_out(splits)
    training_keys = {scene_key(scene) for scene in training}
    held_out_keys = [scene_key(scene) for scene in held_out]
    assert len(held_out) == splits[HELD_OUT] and len(set(held_out_keys)) == len(held_out)
    assert not training_keys & set(held_out_keys)
    assert [scene["scene_id"] for scene in held_out] == [f"{HELD_OUT}-{i:06d}" for i in range(len(held_out))]
    # Without holding out this world collides, and exactly the colliding scenes are redrawn (or repeats).
    first_draws = generate_scenes(splits[HELD_OUT], split=HELD_OUT, **OPTIONS)
    collisions = {scene["scene_id"] for scene in first_draws if scene_key(scene) in training_keys}
    redrawn = {scene["scene_id"] for scene in held_out if "redraws" in scene}
    assert collisions and collisions <= redrawn
    assert all(scene == first_draw for scene, first_draw in zip(held_out, first_draws) if "redraws" not in scene)
    assert generate_scenes(splits[HELD_OUT], split=HELD_OUT, held_out_from=training, **OPTIONS) == held_out


def test_a_world_too_small_for_its_held_out_split_names_the_config_keys():
    training = generate_scenes(3000, 0, "pretrain", max_objects=1)
    with pytest.raises(ValueError, match=r"`toy_world.scenes.bench_test`.*`toy_world.grid` / `toy_world.max_objects`"):
        generate_scenes(300, 0, HELD_OUT, max_objects=1, held_out_from=training)


def test_the_scenes_rule_script_writes_a_held_out_test_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_rule_script("toy_scenes.py", "toy_scenes", _Named(),
                    _Named(scenes="results/world/scenes.jsonl", images="results/world/images"),
                    {"seed": 0, "splits": TINY_SCENES, "held_out_split": HELD_OUT,
                     "world": {**OPTIONS, "image_size": WORLD["image_size"]}})
    scenes = list(read_jsonl("results/world/scenes.jsonl"))
    assert [scene["split"] for scene in scenes] == [split for split, n in TINY_SCENES.items() for _ in range(n)]
    training_keys = {scene_key(scene) for scene in scenes if scene["split"] != HELD_OUT}
    assert not any(scene_key(scene) in training_keys for scene in scenes if scene["split"] == HELD_OUT)
    redrawn = sum("redraws" in scene for scene in scenes)
    assert redrawn > 0
    assert f"held-out split {HELD_OUT}: {redrawn} of {TINY_SCENES[HELD_OUT]} scenes redrawn" in \
        Path("results/logs/toy_scenes.log").read_text()


def test_the_tokenizer_rule_reads_no_test_split():
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "results/models/tokenizer"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    job = re.search(r"rule toy_tokenizer:\n\s+input: (.*)\n", result.stdout + result.stderr)
    assert job, "no toy_tokenizer job in the dry run"
    inputs = job.group(1).split(", ")
    assert not [path for path in inputs if "_test" in path]
    assert {f"results/world/{bench}_train.jsonl" for bench in BENCHMARKS} <= set(inputs)


def test_a_tokenizer_from_training_files_covers_every_test_benchmark_token(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    training, held_out = training_and_held_out(TINY_SCENES)
    by_split = {split: [scene for scene in training + held_out if scene["split"] == split] for split in TINY_SCENES}
    instruct = by_split["instruct"]
    world = Path("results/world")
    write_jsonl(world / "raw_captions.jsonl", corpora.make_raw_captions(by_split["pretrain"], 5, 0))
    write_json(world / "teacher_gold.json", corpora.make_gold_answer_data(instruct, 0, 2)
               + corpora.make_judge_data(instruct, 0, 1) + corpora.make_augment_data(instruct, 0, 1))
    lm_text = corpora.make_lm_pretraining_text(instruct, 0, 800)
    write_jsonl(world / "lm_text.jsonl", ({"text": text} for text in lm_text))
    all_scenes = training + held_out
    for split in ("train", "test"):
        scenes = by_split[f"bench_{split}"]
        write_jsonl(world / f"mc_{split}.jsonl", benchmarks.make_mc_benchmark(scenes, 0, 1))
        write_jsonl(world / f"seed_{split}.jsonl", benchmarks.make_seed_benchmark(scenes, 0, 1))
        write_jsonl(world / f"pope_{split}.jsonl", benchmarks.make_pope_benchmark(scenes, 0, 1, all_scenes))
        write_jsonl(world / f"open_{split}.jsonl", benchmarks.make_open_benchmark(scenes, 0, 1))
    training_files = [str(path) for path in sorted(world.glob("*")) if "_test." not in path.name]
    run_rule_script("toy_tokenizer.py", "toy_tokenizer", _Named(texts=training_files),
                    _Named(["results/models/tokenizer"]), {"max_length": 256})
    tokenizer = AutoTokenizer.from_pretrained("results/models/tokenizer")
    for path in world.glob("*_test.jsonl"):
        for text in texts_of(path):
            assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"], (path.name, text)
