# Helpers shared by all rule files (config validation, sources, paths).

import os
from pathlib import Path

from mmdistill.config import ConfigError, validate_config

validate_config(config, Path(workflow.basedir) / "config.schema.yaml", source="config")
if (config["evaluation"]["open_ended_judge"] == "reference" and config["data"]["benchmarks"] != "toy"
        and "open" in config["evaluation"]["benchmarks"]):
    raise ConfigError("config: `evaluation.open_ended_judge`: the reference judge scores against toy scene graphs; "
                      "with real `data.benchmarks` drop 'open' from `evaluation.benchmarks` until a model judge is set")

TOY = "toy"
WORLD = "results/world"
MODELS = "results/models"
BENCHMARKS = ["mc", "seed", "pope", "open"]
# Models the pipeline scores, and where their checkpoints come from.
SCORED_MODELS = ["teacher", "student_stage1"]


def is_toy(value):
    return value == TOY


def source(key, toy_path):
    """The file a `data.*` key points at, or the toy world's file when it says `toy`."""
    value = config["data"][key]
    return toy_path if is_toy(value) else value


def max_threads():
    """Rules ask for every core of the machine; Snakemake caps this at --cores, profiles with `set-threads`."""
    return os.cpu_count() or 1


def log_path(rule_name, name="job"):
    return f"results/logs/{rule_name}/{name}.log"


def teacher_checkpoint():
    return f"{MODELS}/teacher" if is_toy(config["models"]["teacher"]) else config["models"]["teacher"]


def vision_tower_checkpoint():
    return f"{MODELS}/clip" if is_toy(config["models"]["vision_tower"]) else config["models"]["vision_tower"]


def student_llm_checkpoint():
    return f"{MODELS}/llm_student" if is_toy(config["models"]["student_llm"]) else config["models"]["student_llm"]


def model_checkpoint(model):
    """Checkpoint of a scored model: teacher, student_stage1 or comd-<run>-iter<k>."""
    return {"teacher": teacher_checkpoint()}.get(model, f"{MODELS}/{model}")


def previous(pattern):
    """An input function for CoMD iteration k of a run: `pattern` formatted with iteration k-1."""
    return lambda wildcards: pattern.format(run=wildcards.run, k=int(wildcards.k) - 1)


def student_after(run, k):
    """The student checkpoint after iteration k of a CoMD run (iteration 0: after stage 1)."""
    return f"{MODELS}/student_stage1" if int(k) == 0 else f"{MODELS}/comd-{run}-iter{k}"


def run_tau(run):
    """The difficulty threshold of a CoMD run: `main` uses comd.stage2.tau, `tau<t>` uses t."""
    return config["comd"]["stage2"]["tau"] if run == "main" else float(run.removeprefix("tau"))


def tau_runs():
    """One run per comd.tau_ablation value; a value equal to the main run's tau is the main run."""
    main_tau = config["comd"]["stage2"]["tau"]
    return list(dict.fromkeys("main" if tau == main_tau else f"tau{tau:g}" for tau in config["comd"]["tau_ablation"]))


def benchmark_file(bench, split):
    return f"{source('benchmarks', WORLD)}/{bench}_{split}.jsonl"


def image_root(data_key):
    """A params function: the folder that image paths are relative to, from the job's `images` input.

    Toy records name images as `images/<id>.png` relative to the world folder; a real
    dataset's `image` fields are relative to the configured image root itself.
    """
    if is_toy(config["data"][data_key]):
        return lambda wildcards, input: str(Path(input.images).parent)
    return lambda wildcards, input: input.images


def toy_world_params():
    return {key: config["toy_world"][key] for key in ("image_size", "grid", "min_objects", "max_objects", "text_probability")}
