"""Provenance records: what made an artifact, from which inputs, with which code and packages.

Every job writes one JSON record under `results/provenance/`, mirroring the path of
its first output. Directories (checkpoints) are hashed file by file.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "mmdistill", "torch", "transformers", "tokenizers", "accelerate", "deepspeed", "snakemake", "spacy",
    "rouge-score", "lmms-eval", "numpy", "pillow", "datasets",
)
_CHUNK = 1 << 20
SNAKEMAKE_MARKER = ".snakemake_timestamp"  # Snakemake adds it to directory outputs after the job
CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout that holds src/mmdistill


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_path(path: str | Path) -> dict[str, str] | str | None:
    """sha256 of a file, or a {relative path: sha256} map for a directory; None if missing."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        return {str(f.relative_to(path)): sha256_file(f) for f in sorted(path.rglob("*"))
                if f.is_file() and f.name != SNAKEMAKE_MARKER}
    return None


def git_state(repo: str | Path = CODE_ROOT) -> dict[str, Any]:
    """Commit and dirty flag of the code that ran; 'unknown' outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": "unknown", "dirty": None}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description() -> dict[str, Any]:
    description: dict[str, Any] = {"device": "cpu", "platform": platform.platform(),
                                   "python": platform.python_version()}
    try:
        import torch
    except ImportError:
        return description
    if torch.cuda.is_available():
        description.update(device=torch.cuda.get_device_name(0), cuda=torch.version.cuda)
    description["torch_threads"] = torch.get_num_threads()
    return description


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_record(rule: str, wildcards: dict, params: dict, inputs: list[str], outputs: list[str],
                 seed: int | None, started: str, finished: str) -> dict[str, Any]:
    return {
        "rule": rule,
        "wildcards": wildcards,
        "params": params,
        "seed": seed,
        "inputs": {p: hash_path(p) for p in inputs},
        "outputs": {p: hash_path(p) for p in outputs},
        "code": git_state(),
        "packages": package_versions(),
        "device": device_description(),
        "started": started,
        "finished": finished,
    }


def record_path(first_output: str | Path, root: str | Path = "results/provenance") -> Path:
    """Where the record for an artifact lives: its path under `root`, plus `.json`."""
    output = Path(first_output)
    relative = output.relative_to("results") if output.parts and output.parts[0] == "results" else output
    return Path(root) / f"{relative}.json"
