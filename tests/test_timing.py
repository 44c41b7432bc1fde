"""Job timing: a job's start-up and compute in its record, and their sums per rule."""

import subprocess
import sys
import time

import pytest

from mmdistill.timing import job_timing, process_age, stage_times


def _record(rule, startup, compute, finished="2026-11-30T10:00:10+00:00"):
    return {"rule": rule, "finished": finished, "timing": {"startup_s": startup, "compute_s": compute}}


def test_stage_times_sums_per_rule_and_overall():
    records = [_record("evaluate", 3.0, 7.0, "2026-11-30T10:00:10+00:00"),
               _record("evaluate", 2.0, 8.0, "2026-11-30T10:00:30+00:00"),
               _record("train", 1.0, 39.0, "2026-11-30T10:01:00+00:00"),
               {"rule": "old", "finished": "2026-11-30T10:00:00+00:00"}]
    summary = stage_times(records)
    assert summary["by_rule"]["evaluate"] == {"jobs": 2, "startup_s": 5.0, "compute_s": 15.0, "wall_s": 20.0,
                                              "startup_share": 0.25}
    assert list(summary["by_rule"]) == ["train", "evaluate"]  # the costliest rule first
    assert summary["total"]["jobs"] == 3 and summary["total"]["startup_share"] == pytest.approx(6 / 60, abs=1e-3)
    assert summary["untimed_jobs"] == 1
    assert summary["span_s"] == 60.0  # from the first job's start (10:00:00) to the last one's end (10:01:00)


def test_process_age_measures_this_process():
    age = process_age()
    assert age is not None and 0 <= age < time.monotonic() + 1
    young = subprocess.run([sys.executable, "-c", "from mmdistill.timing import process_age; print(process_age())"],
                           capture_output=True, text=True, check=True)
    assert 0 <= float(young.stdout) < age  # a process started just now is younger than the test session


def test_job_timing_counts_from_entering_the_job():
    timing = job_timing(time.time() - 2.0, 0.5)
    assert timing["startup_s"] == 0.5 and 2.0 <= timing["compute_s"] < 3.0
    assert job_timing(time.time(), None)["startup_s"] is None
