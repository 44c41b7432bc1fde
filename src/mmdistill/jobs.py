"""The frame every pipeline script runs in: logging, seeding, provenance.

Scripts are called by Snakemake's `script:` directive and do

    with snakemake_job(snakemake) as job:
        ... job.params["..."], job.input, job.output, job.log ...

On success a provenance record is written at the record path of each of the job's
outputs (see `mmdistill.provenance`); on failure the exception propagates and
Snakemake removes the partial outputs.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mmdistill.provenance import build_record, git_state, now, write_records
from mmdistill.seeding import seed_everything


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


@contextmanager
def snakemake_job(smk) -> Iterator[Job]:
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
    yield job
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
    )
    destinations = write_records(record, patch)
    log.info("provenance written to %s", ", ".join(map(str, destinations)))
