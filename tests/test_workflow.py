"""The workflow as a user meets it: dry-run, config errors at start, lint."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_dry_run_plans_the_whole_default_target():
    result = snakemake("-n", "--forceall", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    planned = result.stdout + result.stderr
    for rule in ("toy_scenes", "noun_phrase_extract", "noun_phrase_filter", "toy_clip", "teacher_instruct",
                 "student_stage1", "comd_assess_augment", "unidirectional_tuning", "without_stage1_tuning",
                 "downstream_finetune", "evaluate", "teacher_quality", "summary", "benchmark_table", "tau_table",
                 "stage1_table", "iteration_figure", "learning_curves", "mod_dense_distillation", "mod_sparse_distillation", "mod_sft_dense",
                 "mod_sft_sparse", "mod_preference_pairs", "mod_preference_distillation", "mod_teacher_logits", "mod_table"):
        assert rule in planned


def test_a_seed_set_larger_than_its_scenes_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("toy_world:\n  seed_set_scenes: 100000\n")
    result = snakemake("-n", "--configfile", str(path))
    assert result.returncode != 0
    assert "`toy_world.seed_set_scenes`: 100000 is more than `toy_world.scenes.instruct`" in result.stderr + result.stdout


@pytest.mark.parametrize("override, message", [
    ("seed=-1", "`seed`: -1 is less than the minimum of 0"),
    ("bogus_key=1", "unknown key `bogus_key`"),
    ("evaluation={'benchmarks': ['mmlu']}", "`evaluation.benchmarks.0`"),
])
def test_config_errors_stop_the_workflow_naming_the_key(override, message):
    result = snakemake("-n", "--config", override)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


@pytest.mark.parametrize("seeds, message", [
    ("[]", "`seeds`: [] should be non-empty"),
    ("[1, 1]", "`seeds`: [1, 1] has non-unique elements"),
    ("[0, -1]", "`seeds.1`: -1 is less than the minimum of 0"),
    ("3", "`seeds`: 3 is not of type 'array'"),
])
def test_training_seeds_are_a_non_empty_list_of_unique_non_negative_ints(tmp_path, seeds, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"seeds: {seeds}\n")
    result = snakemake("-n", "--configfile", str(path))
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


def test_every_training_seed_repeats_the_student_side_and_only_it(tmp_path):
    """Students, their CoMD runs, baselines, fine-tuning and scores run per seed; world and teacher once."""
    planned = {}
    for seeds in ("0", "0,1"):
        path = tmp_path / f"seeds{seeds}.yaml"
        path.write_text(f"seeds: [{seeds}]\n")
        result = snakemake("-n", "--forceall", "--quiet", "rules", "all", "--configfile", str(path))
        assert result.returncode == 0, result.stderr
        planned[seeds] = dict(line.split() for line in (result.stdout + result.stderr).splitlines()
                              if len(line.split()) == 2 and line.split()[1].isdigit())
    one, two = planned["0"], planned["0,1"]
    for rule in ("toy_scenes", "toy_clip", "teacher_instruct", "teacher_quality", "noun_phrase_filter",
                 "comd_seed_pools", "benchmark_table", "summary"):
        assert one[rule] == two[rule], rule
    for rule in ("student_stage1", "comd_teacher_answers", "comd_instruction_tuning", "comd_assess_augment",
                 "unidirectional_tuning", "without_stage1_tuning"):
        assert int(two[rule]) == 2 * int(one[rule]), rule
    # the teachers are fine-tuned and scored once: the teacher on 4 benchmarks, LLaVA-MoD table 9's weak one on its 3
    once = {"downstream_finetune": 2, "evaluate": 4 + 3}
    for rule, teacher_jobs in once.items():
        assert int(two[rule]) == 2 * int(one[rule]) - teacher_jobs, rule


def test_more_active_experts_than_experts_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("mod:\n  top_k: 5\n")
    result = snakemake("-n", "--configfile", str(path))
    assert result.returncode != 0
    assert "`mod.top_k`: 5 active experts of `mod.experts` (4)" in result.stderr + result.stdout


def test_configfile_errors_name_the_nested_key(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["toy_models"]["clip"]["train"]["learning_rate"] = "fast"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--configfile", str(path))
    assert result.returncode != 0
    assert "`toy_models.clip.train.learning_rate`: 'fast' is not of type 'number'" in result.stderr + result.stdout


def test_lint_has_nothing_serious_to_say():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_a_real_config_plans_no_toy_jobs(tmp_path):
    """Pointing `data` and `models` at disk replaces every toy generator and toy model."""
    for directory in ("teacher", "vicuna", "clip", "images", "benchmarks"):
        (tmp_path / directory).mkdir()
    (tmp_path / "captions.jsonl").write_text('{"id": "1", "image": "a.png", "caption": "a dog"}\n')
    (tmp_path / "seed.json").write_text("[]")
    for split in ("mc_train", "mc_test", "seed_test", "pope_test"):
        (tmp_path / "benchmarks" / f"{split}.jsonl").write_text("")
    config = {
        "data": {"raw_captions": str(tmp_path / "captions.jsonl"), "raw_captions_image_root": str(tmp_path / "images"),
                 "instruction_seed": str(tmp_path / "seed.json"),
                 "instruction_seed_image_root": str(tmp_path / "images"), "teacher_gold": "toy",
                 "benchmarks": str(tmp_path / "benchmarks")},
        "models": {"teacher": str(tmp_path / "teacher"), "student_llm": str(tmp_path / "vicuna"),
                   "vision_tower": str(tmp_path / "clip"), "weak_teacher": None},
        "evaluation": {"benchmarks": ["mc", "seed", "pope"], "batch_size": 8, "temperature": 0.0,
                       "open_ended_judge": "reference", "teacher_quality_items": 10},
    }
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--forceall", "--quiet", "rules", "--configfile", str(path))
    assert result.returncode == 0, result.stderr
    planned = result.stdout + result.stderr
    assert "student_stage1" in planned and "noun_phrase_extract" in planned and "evaluate" in planned
    for toy_rule in ("toy_scenes", "toy_clip", "toy_llm", "toy_student_vision_ready", "teacher_instruct", "teacher_quality"):
        assert toy_rule not in planned


def test_real_benchmarks_with_the_reference_judge_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"data": {**yaml.safe_load((ROOT / "config.yaml").read_text())["data"],
                                             "benchmarks": str(tmp_path)}}))
    result = snakemake("-n", "--configfile", str(path))
    assert result.returncode != 0
    assert "`evaluation.open_ended_judge`" in result.stderr + result.stdout


def test_evaluation_declares_the_benchmark_images_as_input():
    result = snakemake("-n", "--forceall", "results/scores/teacher/mc.json")
    assert result.returncode == 0, result.stderr
    jobs = (result.stdout + result.stderr).split("\nrule ")
    evaluate = next(job for job in jobs if job.startswith("evaluate:"))
    assert "results/world/images" in evaluate.split("output:")[0]


def stand_in_files(tmp_path, paper_config):
    """The paper config with every data and model path pointed at an empty stand-in under `tmp_path`."""
    config = yaml.safe_load((ROOT / paper_config).read_text())
    for directory in ("teacher", "weak_teacher", "llm", "clip", "images", "benchmarks"):
        (tmp_path / directory).mkdir()
    (tmp_path / "captions.jsonl").write_text('{"id": "1", "image": "a.png", "caption": "a dog"}\n')
    (tmp_path / "seed.json").write_text("[]")
    (tmp_path / "pairs.jsonl").write_text("")
    for split in ("mc_train", "mc_test", "seed_test", "pope_test", "open_test"):
        (tmp_path / "benchmarks" / f"{split}.jsonl").write_text("")
    paths = {"data": {"raw_captions": str(tmp_path / "captions.jsonl"), "raw_captions_image_root": str(tmp_path / "images"),
                      "instruction_seed": str(tmp_path / "seed.json"),
                      "instruction_seed_image_root": str(tmp_path / "images"),
                      "benchmarks": str(tmp_path / "benchmarks"), "preference_pairs": str(tmp_path / "pairs.jsonl"),
                      "preference_pairs_image_root": str(tmp_path / "images")},
             "models": {"teacher": str(tmp_path / "teacher"), "student_llm": str(tmp_path / "llm"),
                        "vision_tower": str(tmp_path / "clip")}}
    if config["models"].get("weak_teacher"):
        paths["models"]["weak_teacher"] = str(tmp_path / "weak_teacher")
    path = tmp_path / "paths.yaml"
    path.write_text(yaml.safe_dump(paths))
    return config, path


# With the default profile; tests/test_slurm_profile.py dry-runs both with `--profile slurm` and checks
# every model job's GPU request against slurm/partitions.yaml.
@pytest.mark.parametrize("paper_config, target, expected", [
    ("configs/comd.yaml", "all", ("noun_phrase_extract", "student_stage1", "comd_teacher_answers",
                                  "comd_assess_augment", "downstream_finetune", "evaluate", "benchmark_table")),
    ("configs/llava-mod.yaml", "mod_tables", ("mod_init", "mod_dense_distillation", "mod_sparse_distillation",
                                              "mod_preference_pairs", "mod_preference_distillation", "evaluate",
                                              "mod_table")),
])
def test_the_paper_configs_plan_their_runs_without_toy_jobs(tmp_path, paper_config, target, expected):
    config, paths = stand_in_files(tmp_path, paper_config)
    assert config["models"]["chat_template"] == {"configs/comd.yaml": "vicuna_v1",
                                                 "configs/llava-mod.yaml": "chatml"}[paper_config]
    result = snakemake("-n", "--forceall", "--quiet", "rules", "--configfile", paper_config, str(paths), "--", target)
    assert result.returncode == 0, result.stdout + result.stderr
    planned = result.stdout + result.stderr
    for rule in expected:
        assert rule in planned, rule
    for toy_rule in ("toy_scenes", "toy_clip", "toy_llm", "toy_student_vision_ready", "teacher_instruct", "teacher_quality"):
        assert toy_rule not in planned


def test_a_real_chat_template_needs_real_models():
    result = snakemake("-n", "--config", "models={'chat_template': 'vicuna_v1'}")
    assert result.returncode != 0
    assert "`models.chat_template`: 'vicuna_v1' needs real models" in result.stderr + result.stdout


def test_rlaif_v_pairs_need_their_file():
    result = snakemake("-n", "--config", "mod={'preference': {'pairs': 'rlaif_v'}}")
    assert result.returncode != 0
    assert "`data.preference_pairs`" in result.stderr + result.stdout


def test_the_api_judge_needs_a_model_name():
    result = snakemake("-n", "--config", "evaluation={'open_ended_judge': 'api'}")
    assert result.returncode != 0
    assert "`evaluation.judge_api.model`" in result.stderr + result.stdout
