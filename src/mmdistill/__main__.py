"""`python -m mmdistill <command>`: the package's commands for users (today: `audit`)."""

from __future__ import annotations

import argparse
import os
import sys

from mmdistill.audit import run_audit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdistill")
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit", help="walk an artifact's provenance down to its raw inputs, re-hashing "
                                              "every file; exit 1 naming each file that no longer matches")
    audit.add_argument("artifact", help="a path under results/, e.g. results/table1.csv")
    audit.add_argument("--directory", "-d", default=".",
                       help="the directory the pipeline ran in (Snakemake's --directory); default: here")
    args = parser.parse_args(argv)
    os.chdir(args.directory)
    return run_audit(args.artifact, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
