"""Provenance records: what made an artifact, from which inputs, with which code and packages.

Every job writes one JSON record under `results/provenance/` for each of its outputs,
mirroring the output's path, so every artifact's record is found at its own path.
Directories (checkpoints, image folders) are hashed file by file. A job run from a
checkout with uncommitted changes also stores them, untracked files included, as a
patch against the recorded commit (`results/provenance/patches/<sha256>.patch`), so the
code that ran can be rebuilt. `mmdistill.audit` reads the records back.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from mmdistill.io import atomic_path

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


HASH_CACHE = "results/.hash_cache"


class HashCache:
    """sha256 of files reused across jobs, keyed by path, size and mtime.

    A checkpoint or an image folder read by many jobs is hashed once: each job's record
    takes a file's sha256 from the cache while its size and mtime (ns) are unchanged, and
    hashes it afresh otherwise. One JSON per hashed artifact under `root`. The cache trusts
    the stat: `audit` never uses it and re-hashes every file, so an edit that kept size
    and mtime is still found there.
    """

    def __init__(self, root: str | Path = HASH_CACHE) -> None:
        self.root = Path(root)

    def _entry(self, path: Path) -> Path:
        return self.root / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"

    def hash_path(self, path: str | Path) -> dict[str, str] | str | None:
        """As `hash_path`, reusing the cached sha256 of every file whose size and mtime are unchanged."""
        path = Path(path)
        if path.is_file():
            files = {"": path}
        elif path.is_dir():
            files = {str(f.relative_to(path)): f for f in sorted(path.rglob("*"))
                     if f.is_file() and f.name != SNAKEMAKE_MARKER}
        else:
            return None
        entry = self._entry(path)
        try:
            known = json.loads(entry.read_text())["files"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            known = {}
        current = {}
        for name, file in files.items():
            stat = file.stat()
            cached = known.get(name)
            fresh = cached is not None and cached[:2] == [stat.st_size, stat.st_mtime_ns]
            current[name] = [stat.st_size, stat.st_mtime_ns, cached[2] if fresh else sha256_file(file)]
        if current != known:
            with atomic_path(entry) as temporary:
                temporary.write_text(json.dumps({"path": str(path), "files": current}, sort_keys=True))
        return current[""][2] if path.is_file() else {name: value[2] for name, value in current.items()}


def _git(repo: str | Path, *args: str, ok_codes: tuple[int, ...] = (0,)) -> bytes:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True)
    if result.returncode not in ok_codes:
        raise subprocess.CalledProcessError(result.returncode, ["git", *args], result.stdout, result.stderr)
    return result.stdout


def uncommitted_patch(repo: str | Path = CODE_ROOT) -> tuple[bytes, list[str]]:
    """The checkout's changes against HEAD as a binary patch (`git apply` rebuilds them on the commit),
    untracked files (those .gitignore does not exclude) included as new files; and the untracked paths."""
    untracked = sorted(_git(repo, "ls-files", "--others", "--exclude-standard", "-z").decode().split("\0"))
    untracked = [path for path in untracked if path]
    patch = _git(repo, "diff", "HEAD", "--binary", "--full-index")
    for path in untracked:  # `git diff --no-index` exits 1 when the files differ, which they always do here
        patch += _git(repo, "diff", "--no-index", "--binary", "--full-index", "--", "/dev/null", path, ok_codes=(0, 1))
    return patch, untracked


def git_state(repo: str | Path = CODE_ROOT) -> tuple[dict[str, Any], bytes]:
    """The code that ran: its commit, whether the checkout differs from it (untracked files count), the untracked
    paths and the sha256 of the patch of every difference; and that patch (empty when clean).

    Outside a git checkout the commit is 'unknown' and nothing can be rebuilt; the record says so.
    """
    try:
        commit = _git(repo, "rev-parse", "HEAD").decode().strip()
        patch, untracked = uncommitted_patch(repo)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": "unknown", "dirty": None}, b""
    state: dict[str, Any] = {"commit": commit, "dirty": bool(patch), "untracked": untracked}
    if patch:
        state["patch_sha256"] = hashlib.sha256(patch).hexdigest()
    return state, patch


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
                 seed: int | None, started: str, finished: str, code: dict[str, Any],
                 hasher: Callable[[str | Path], Any] = hash_path) -> dict[str, Any]:
    """The record of one job; `hasher` is `hash_path` or a `HashCache`'s."""
    return {
        "rule": rule,
        "wildcards": wildcards,
        "params": params,
        "seed": seed,
        "inputs": {p: hasher(p) for p in inputs},
        "outputs": {p: hasher(p) for p in outputs},
        "code": code,
        "packages": package_versions(),
        "device": device_description(),
        "started": started,
        "finished": finished,
    }


PROVENANCE_ROOT = "results/provenance"


def record_path(output: str | Path, root: str | Path = PROVENANCE_ROOT) -> Path:
    """Where the record for an artifact lives: its path under `root`, plus `.json`."""
    output = Path(output)
    relative = output.relative_to("results") if output.parts and output.parts[0] == "results" else output
    return Path(root) / f"{relative}.json"


def patch_path(patch_sha256: str, root: str | Path = PROVENANCE_ROOT) -> Path:
    """Where the patch of uncommitted changes with this sha256 is stored (once, whatever the number of jobs)."""
    return Path(root) / "patches" / f"{patch_sha256}.patch"


def write_records(record: dict[str, Any], patch: bytes, root: str | Path = PROVENANCE_ROOT) -> list[Path]:
    """Store the record at the record path of every output, and the patch it names; returns the record paths."""
    if patch:
        stored = patch_path(record["code"]["patch_sha256"], root)
        if not stored.exists():
            with atomic_path(stored) as temporary:
                temporary.write_bytes(patch)
    text = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    destinations = [record_path(output, root) for output in record["outputs"]]
    for destination in destinations:
        with atomic_path(destination) as temporary:
            temporary.write_bytes(text)
    return destinations
