"""What a finished run replans: nothing when the config only reorders keys or writes 1.0 for 1, and nothing when
the run and the checkout move to other paths (the rerun triggers, profiles/default); and a second cold run
writes the same bytes."""

import json
import shutil

import yaml

from conftest import ROOT, TINY_CONFIG, TINY_RUN_TARGET, merged_config, planned_jobs, reordered_config, snakemake_in
from mmdistill.config import canonical_config
from mmdistill.provenance import hash_path


def test_the_canonical_form_ignores_key_order_and_whole_floats():
    config = merged_config(yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load(TINY_CONFIG.read_text()))
    schema = ROOT / "config.schema.yaml"
    canonical, reordered = canonical_config(config, schema), canonical_config(reordered_config(config), schema)
    assert repr(canonical) == repr(reordered)
    assert list(canonical["toy_world"]["scenes"]) == ["pretrain", "instruct", "bench_train", "bench_test"]
    assert canonical["toy_world"]["scenes"]["pretrain"] == 200 and isinstance(reordered["seed"], int)


def test_a_reordered_config_plans_nothing_on_a_finished_run(tiny_run, tmp_path):
    """The whole config (default and tiny merged) with every mapping reordered and whole numbers as floats, as a
    YAML tool that sorts keys would write it."""
    config = merged_config(yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load(TINY_CONFIG.read_text()))
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(reordered_config(config), sort_keys=False))
    assert planned_jobs(tiny_run, configfile=reordered) == {}
    sorted_keys = tmp_path / "sorted.yaml"
    sorted_keys.write_text(yaml.safe_dump(config))  # PyYAML's default: keys sorted
    assert planned_jobs(tiny_run, configfile=sorted_keys) == {}


def test_a_run_and_checkout_moved_elsewhere_plan_nothing(tiny_run, tmp_path):
    """A clone at the same commit has fresh mtimes on every script; the run is copied with its mtimes (cp -a)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Snakefile", "config.yaml", "config.schema.yaml"):
        shutil.copy(ROOT / name, checkout / name)  # shutil.copy: new mtimes, as a clone has
    for name in ("rules", "scripts", "src", "profiles", "envs"):
        shutil.copytree(ROOT / name, checkout / name, copy_function=shutil.copy,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)  # copy2: mtimes kept
    assert planned_jobs(run, snakefile=checkout / "Snakefile") == {}


def test_two_cold_runs_in_separate_directories_write_identical_bytes(tiny_run, tmp_path):
    """Determinism of the data side on the cheap target (world, images, seed set, pools): a second cold run
    elsewhere writes the same sha256 for every output of every record."""
    second = tmp_path / "second"
    result = snakemake_in(second, TINY_RUN_TARGET, "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    records = sorted((tiny_run / "results/provenance").rglob("*.json"))
    assert len(records) == 6  # three jobs: scenes and images, the seed set, the two pools and their rejects
    for record_file in records:
        outputs = json.loads(record_file.read_text())["outputs"]
        for output, digest in outputs.items():
            assert hash_path(second / output) == digest, output
