"""The Snakefile and every rule file are in snakefmt's format (the Snakemake workflow catalog's standard)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rules_are_snakefmt_formatted():
    snakefmt = Path(sys.executable).parent / "snakefmt"
    result = subprocess.run([str(snakefmt), "--check", "Snakefile", "rules"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"run `make fmt`:\n{result.stderr}{result.stdout}"
