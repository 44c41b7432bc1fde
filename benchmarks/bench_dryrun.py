"""Time `snakemake -n` on the default target (target: under 10 s) and write results/bench/dryrun.json."""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0


def main(repeats: int = 3) -> None:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--quiet", "all"],
                                cwd=ROOT, capture_output=True, text=True)
        timings.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit(f"dry-run failed:\n{result.stderr}")
    best = min(timings)
    output = ROOT / "results" / "bench" / "dryrun.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"seconds": timings, "best_seconds": best, "target_seconds": TARGET_SECONDS,
              "passed": best < TARGET_SECONDS}
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
