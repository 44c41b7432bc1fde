"""Where a run's time goes: each job's start-up (interpreter, Snakemake's script preamble,
imports) beside its compute, recorded in its provenance record (`job_timing`) and summed
per rule (`stage_times`, written by benchmarks/bench_stages.py to results/bench/stages.json)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc, 10 ms resolution); None elsewhere."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def job_timing(entered: float, startup: float | None) -> dict[str, float | None]:
    """A job's `startup_s` (process start to entering the job frame at time `entered`, as measured
    by `process_age` then) and `compute_s` (from `entered` to now)."""
    return {"startup_s": None if startup is None else round(startup, 3), "compute_s": round(time.time() - entered, 3)}


def stage_times(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per rule: jobs, start-up and compute seconds summed over its jobs, and the start-up share of
    their wall time; overall the same sums, and the span from the first job's start to the last
    one's end. Records without `timing` (written before it existed) are counted as `untimed`."""
    rules: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "startup_s": 0.0, "compute_s": 0.0})
    untimed, starts, ends = 0, [], []
    for record in records:
        timing = record.get("timing") or {}
        if timing.get("startup_s") is None:
            untimed += 1
            continue
        entry = rules[record["rule"]]
        entry["jobs"] += 1
        entry["startup_s"] += timing["startup_s"]
        entry["compute_s"] += timing["compute_s"]
        finished = datetime.fromisoformat(record["finished"]).timestamp()
        ends.append(finished)
        starts.append(finished - timing["compute_s"] - timing["startup_s"])
    by_rule = {rule: _with_share(entry) for rule, entry in sorted(rules.items(), key=lambda kv: -_wall(kv[1]))}
    total = _with_share({key: sum(entry[key] for entry in rules.values()) for key in ("jobs", "startup_s", "compute_s")})
    span = round(max(ends) - min(starts), 1) if starts else None
    return {"total": total, "span_s": span, "untimed_jobs": untimed, "by_rule": by_rule}


def _wall(entry: dict[str, float]) -> float:
    return entry["startup_s"] + entry["compute_s"]


def _with_share(entry: dict[str, float]) -> dict[str, Any]:
    wall = _wall(entry)
    return {"jobs": int(entry["jobs"]), "startup_s": round(entry["startup_s"], 1), "compute_s": round(entry["compute_s"], 1),
            "wall_s": round(wall, 1), "startup_share": round(entry["startup_s"] / wall, 3) if wall else None}
