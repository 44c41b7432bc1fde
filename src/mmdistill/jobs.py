"""The frame every pipeline script runs in: logging, seeding, provenance.

Scripts are called by Snakemake's `script:` directive and do

    with snakemake_job(snakemake) as job:
        ... job.params["..."], job.input, job.output, job.log ...

On success a provenance record is written at the record path of each of the job's
outputs (see `mmdistill.provenance`); on failure the exception propagates and
Snakemake removes the partial outputs.

Training inside a job checkpoints every `checkpoint_steps` (config) optimizer steps
into the job's work folder, `results/work/<rule>/<key>/`, which is not an output, so
it survives a kill, a crash or a SLURM retry; the rerun resumes from it. The key hashes
the rule, wildcards, params and each input's path, size and mtime: a job whose inputs
or params changed starts afresh. The folder is deleted when the job succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mmdistill.provenance import HashCache, build_record, git_state, now, write_records
from mmdistill.seeding import seed_everything
from mmdistill.checkpoints import checkpointing
from mmdistill.timing import job_timing, process_age

WORK_ROOT = "results/work"


def _plain(value: Any) -> Any:
    """Snakemake's Namedlists and config dicts as plain JSON-able values."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class Job:
    rule: str
    input: Any
    output: Any
    params: dict[str, Any]
    wildcards: dict[str, Any]
    threads: int
    log: logging.Logger


def _logger(log_file: str | None, rule: str) -> logging.Logger:
    logger = logging.getLogger(f"mmdistill.job.{rule}")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logging.captureWarnings(True)
    return logger


def _limit_threads(threads: int) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(max(1, threads))


def _stat(path: str) -> list:
    """Path, size and mtime of a file, or of every file of a directory: cheap, and changes when the content does."""
    target = Path(path)
    files = sorted(f for f in target.rglob("*") if f.is_file()) if target.is_dir() else [target]
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.exists()]


def work_dir(rule: str, wildcards: dict, params: dict, inputs: list[str]) -> Path:
    """The job's work folder: one per rule, wildcards, params and input state (see the module's docstring)."""
    key = json.dumps({"rule": rule, "wildcards": wildcards, "params": params,
                      "inputs": [_stat(path) for path in inputs]}, sort_keys=True)
    return Path(WORK_ROOT) / rule / hashlib.sha256(key.encode()).hexdigest()[:16]


@contextmanager
def snakemake_job(smk) -> Iterator[Job]:
    entered, startup = time.time(), process_age()
    params = {key: _plain(value) for key, value in smk.params.items()}
    log = _logger(smk.log[0] if len(smk.log) else None, smk.rule)
    _limit_threads(int(smk.threads))
    seed = params.get("seed")
    if seed is not None:
        seed_everything(int(seed))
    started = now()
    log.info("rule %s wildcards %s", smk.rule, dict(smk.wildcards.items()))
    log.info("params %s", json.dumps(params, sort_keys=True))
    job = Job(smk.rule, smk.input, smk.output, params, dict(smk.wildcards.items()), int(smk.threads), log)
    every = smk.config.get("checkpoint_steps")
    work = work_dir(smk.rule, job.wildcards, params, [str(p) for p in smk.input])
    stage = f"rule {smk.rule}" + (f" {json.dumps(job.wildcards, sort_keys=True)}" if job.wildcards else "")
    with checkpointing(work, every, stage) if every else nullcontext():
        yield job
    shutil.rmtree(work, ignore_errors=True)
    code, patch = git_state()
    record = build_record(
        rule=smk.rule,
        wildcards=job.wildcards,
        params=params,
        inputs=[str(p) for p in smk.input],
        outputs=[str(p) for p in smk.output],
        seed=seed,
        started=started,
        finished=now(),
        code=code,
        hasher=HashCache().hash_path,
    )
    record["timing"] = job_timing(entered, startup)
    destinations = write_records(record, patch)
    log.info("provenance written to %s", ", ".join(map(str, destinations)))
