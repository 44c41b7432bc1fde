"""Per-stage compute beside job wall time, from the provenance records of a finished run
(target: start-up under 15% of the job wall time of `all`); writes results/bench/stages.json.

Usage: python benchmarks/bench_stages.py [RESULTS_DIR]   (default: results)
"""

import json
import sys
from pathlib import Path

from mmdistill.timing import stage_times

TARGET_STARTUP_SHARE = 0.15


def read_records(provenance_dir: Path) -> list[dict]:
    """Every job's record once (a job may have a record under each of its outputs)."""
    records = {}
    for path in sorted(provenance_dir.rglob("*.json")):
        record = json.loads(path.read_text())
        records[(record["rule"], tuple(record["outputs"]), record["finished"])] = record
    return list(records.values())


def main(results: Path) -> None:
    provenance = results / "provenance"
    if not provenance.is_dir():
        sys.exit(f"{provenance}: no provenance records; run the pipeline first")
    summary = stage_times(read_records(provenance))
    share = summary["total"]["startup_share"]
    summary.update(target_startup_share=TARGET_STARTUP_SHARE, passed=share is not None and share < TARGET_STARTUP_SHARE)
    output = results / "bench" / "stages.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'rule':32} {'jobs':>5} {'start-up s':>11} {'compute s':>10} {'share':>6}")
    for rule, entry in [*summary["by_rule"].items(), ("total", summary["total"])]:
        print(f"{rule:32} {entry['jobs']:5d} {entry['startup_s']:11.1f} {entry['compute_s']:10.1f} "
              f"{entry['startup_share'] or 0:6.1%}")
    print(f"span {summary['span_s']} s; written to {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
