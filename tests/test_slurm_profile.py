"""The cluster path as a new user meets it: `snakemake -n --profile slurm` from the repository root, on a real-model
config (the paper configs, configs/comd.yaml and configs/llava-mod.yaml, with their data and checkpoints laid out as
empty stand-ins). No Slurm is needed:
the dry run plans the jobs, and the executor plugin's own partition fitting checks each against slurm/partitions.yaml."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake_executor_plugin_slurm.partitions import (
    get_job_cpu_requirement,
    parse_gpu_requirements,
    read_partition_file,
)

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "slurm" / "config.yaml"
# Far more cores than any node has: a dry run caps threads at --cores (1 without it), so this shows the threads a
# cluster job would get, and a rule missing from the profile's set-threads stands out by asking for all of them.
DRY_RUN_CORES = 100_000
# Rules that read a checkpoint without running the model: mod_table counts its parameters from the weight files.
READS_CHECKPOINT_ON_CPU = {"mod_table"}


def real_config(tmp_path: Path, paper_config: str) -> Path:
    """A paper config with every data and model path moved under tmp_path, each made to exist."""
    config = yaml.safe_load((ROOT / paper_config).read_text())
    for section in ("data", "models"):
        for key, value in config[section].items():
            if value in ("toy", None) or not value.startswith("/"):
                continue
            path = tmp_path / value.lstrip("/")
            if path.suffix in (".json", ".jsonl"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)
            config[section][key] = str(path)
    benchmarks = Path(config["data"]["benchmarks"])
    for bench in config["evaluation"]["benchmarks"]:
        for split in ("train", "test"):
            (benchmarks / f"{bench}_{split}.jsonl").touch()
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class PlannedJob:
    """One job of a dry run, as the slurm executor would see it: rule, threads, inputs and resources."""

    def __init__(self, block: str):
        self.rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        self.threads = int(re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE).group(1)) if "threads:" in block else 1
        inputs = re.search(r"^\s+input: (.*)$", block, re.MULTILINE)
        self.inputs = inputs.group(1).split(", ") if inputs else []
        self.resources = {}
        for item in re.search(r"^\s+resources: (.*)$", block, re.MULTILINE).group(1).split(", "):
            key, value = item.split("=", 1)
            self.resources[key] = int(value) if value.isdigit() else value

    def __repr__(self):
        return f"{self.rule} (threads {self.threads}, {self.resources})"


class JobResources(dict):
    """The plugin reads resources both as `job.resources.get(key)` and as attributes."""

    def __getattr__(self, key):
        return self[key]


def dry_run(config: Path, *targets: str) -> list[PlannedJob]:
    result = subprocess.run([sys.executable, "-m", "snakemake", *targets, "-n", "--forceall", "--profile", "slurm",
                             "--cores", str(DRY_RUN_CORES), "--configfile", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Using profiles slurm and workflow specific profile profiles/default" in output
    blocks = re.split(r"\n(?=(?:local)?rule \w+:\n)", output)[1:]
    return [PlannedJob(block.split("\n\n")[0]) for block in blocks]


@pytest.fixture(scope="module")
def real_layout(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("real")


@pytest.fixture(scope="module")
def real_jobs(real_layout) -> list[PlannedJob]:
    """Every job of table 1 and of everything else (`all`) on CoMD's paper config."""
    return dry_run(real_config(real_layout / "comd", "configs/comd.yaml"), "results/table1.csv", "all")


def runs_a_model(job: PlannedJob, real_layout: Path) -> bool:
    """A job that reads a checkpoint: a configured model (the example's /models/...) or one the pipeline trained
    (results/models/<id>, a folder)."""
    return job.rule not in READS_CHECKPOINT_ON_CPU and any(
        (path.startswith(str(real_layout)) and "/models/" in path)
        or (path.startswith("results/models/") and not path.endswith(".json"))
        for path in job.inputs)


def test_the_profile_resolves_from_the_root_and_plans_table_1_with_gpus(real_jobs):
    rules = {job.rule for job in real_jobs}
    for rule in ("noun_phrase_extract", "student_stage1", "comd_teacher_answers", "comd_instruction_tuning",
                 "comd_assess_augment", "downstream_finetune", "evaluate", "benchmark_table",
                 "mod_dense_distillation", "mod_preference_pairs"):
        assert rule in rules
    assert not any(rule.startswith(("toy_", "teacher_")) for rule in rules), rules


def test_every_job_that_runs_a_model_asks_for_gpus_and_threads(real_jobs, real_layout):
    model_jobs = [job for job in real_jobs if runs_a_model(job, real_layout)]
    assert {job.rule for job in model_jobs} >= {"student_stage1", "comd_teacher_answers", "comd_assess_augment",
                                                 "comd_instruction_tuning", "unidirectional_tuning",
                                                 "downstream_finetune", "evaluate"}
    for job in model_jobs:
        gpus, _ = parse_gpu_requirements(PlannedJobForPlugin(job))
        assert gpus >= 1, job
        assert job.threads > 1, job
    cpu_jobs = [job for job in real_jobs if job not in model_jobs]
    assert all("gpu" not in job.resources for job in cpu_jobs), [job for job in cpu_jobs if "gpu" in job.resources]


def test_llava_mods_paper_config_runs_every_model_job_on_gpus(real_layout):
    jobs = dry_run(real_config(real_layout / "llava-mod", "configs/llava-mod.yaml"), "mod_tables")
    model_jobs = [job for job in jobs if runs_a_model(job, real_layout)]
    assert {job.rule for job in model_jobs} >= {"mod_dense_distillation", "mod_sparse_distillation", "mod_sft_dense",
                                                 "mod_preference_distillation", "evaluate"}
    assert "mod_table" in {job.rule for job in jobs} and not any(job.rule.startswith("toy_") for job in jobs)
    for job in model_jobs:
        assert parse_gpu_requirements(PlannedJobForPlugin(job))[0] >= 1 and job.threads > 1, job
    partitions = read_partition_file(ROOT / "slurm" / "partitions.yaml")
    for job in jobs:
        assert any(partition.score_job_fit(PlannedJobForPlugin(job)) is not None for partition in partitions), job


def test_no_job_asks_more_than_a_node_of_some_partition_has(real_jobs):
    """The plugin's own placement: each job must fit a partition of slurm/partitions.yaml (GPUs, CPUs, memory, time).
    A rule missing from set-threads asks for DRY_RUN_CORES threads here and fits none."""
    partitions = read_partition_file(ROOT / "slurm" / "partitions.yaml")
    for job in real_jobs:
        fits = [partition.name for partition in partitions
                if partition.score_job_fit(PlannedJobForPlugin(job)) is not None]
        assert fits, f"{job} fits no partition of slurm/partitions.yaml"


class PlannedJobForPlugin:
    """The attributes of a Snakemake job that the plugin's partition fitting reads."""

    def __init__(self, job: PlannedJob):
        self.resources = JobResources(job.resources)
        self.threads = job.threads


def test_every_multi_threaded_rule_has_its_threads_in_the_profile():
    """A rule with `threads: max_threads()` that set-threads leaves out runs with the node's cores inside a
    one-CPU allocation, and srun refuses it ("More processors requested than permitted"). Toy rules included:
    the paper configs' dry runs above never plan them."""
    threaded = set()
    for path in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"^(?=(?:local)?rule )", path.read_text(), flags=re.MULTILINE):
            rule = re.match(r"(?:local)?rule (\w+):", block)
            if rule and re.search(r"^\s+threads: max_threads\(\)$", block, re.MULTILINE):
                threaded.add(rule.group(1))
    assert len(threaded) > 20
    set_threads = yaml.safe_load(PROFILE.read_text())["set-threads"]
    assert sorted(threaded - set_threads.keys()) == []
    assert sorted(set_threads.keys() - threaded) == []


def test_the_threads_a_job_asks_slurm_for_are_the_threads_it_runs_with(real_jobs):
    """No cpus_per_task beside set-threads: sbatch's --cpus-per-task is the job's threads (torch's thread count)."""
    for job in real_jobs:
        assert get_job_cpu_requirement(PlannedJobForPlugin(job)) == (job.threads, "task"), job


def test_gpus_are_requested_through_the_plugins_resources_not_slurm_extra():
    profile = yaml.safe_load(PROFILE.read_text())
    resources = [profile["default-resources"], *profile["set-resources"].values()]
    assert not [r for r in resources if "slurm_extra" in r or "slurm_partition" in r], \
        "GPUs go through `gpu`/`gres` and partitions through slurm/partitions.yaml"


def test_the_local_workflow_profile_leaves_the_cluster_profiles_keys_alone():
    """profiles/default is merged over --profile key by key; any key both set would replace the cluster's."""
    local = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    cluster = yaml.safe_load(PROFILE.read_text())
    clobbered = {key for key in local.keys() & cluster.keys() if local[key] != cluster[key]}
    assert not clobbered


def test_a_cpu_job_keeps_the_cluster_default_resources(real_jobs):
    defaults = yaml.safe_load(PROFILE.read_text())["default-resources"]
    table = next(job for job in real_jobs if job.rule == "benchmark_table")
    assert {key: table.resources[key] for key in defaults} == defaults


def test_the_partition_file_the_profile_names_is_slurm_partitions_yaml():
    """Snakemake resolves a profile value that names a file in the profile's folder to that file."""
    from snakemake.profiles import ProfileConfigFileParser

    with PROFILE.open() as stream:
        settings = ProfileConfigFileParser().parse(stream)
    assert Path(settings["slurm-partition-config"]).resolve() == ROOT / "slurm" / "partitions.yaml"
