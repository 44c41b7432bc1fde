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
                 "student_stage1", "evaluate", "teacher_quality", "summary"):
        assert rule in planned


@pytest.mark.parametrize("override, message", [
    ("seed=-1", "`seed`: -1 is less than the minimum of 0"),
    ("bogus_key=1", "unknown key `bogus_key`"),
    ("evaluation={'benchmarks': ['mmlu']}", "`evaluation.benchmarks.0`"),
])
def test_config_errors_stop_the_workflow_naming_the_key(override, message):
    result = snakemake("-n", "--config", override)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


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
