"""Audit an artifact: walk its provenance records down to the raw inputs, re-hashing every file on the way.

Run from the directory the pipeline ran in (paths in records are relative to it):

    python -m mmdistill audit results/table1.csv

prints the chain as a tree (rule, params, code, packages) and exits 0 when every file's
bytes still match its records, 1 naming each file that does not. Files are always
re-hashed (sha256 of the content): an edit with its old mtime restored is still found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mmdistill.provenance import PROVENANCE_ROOT, hash_path, patch_path, record_path


@dataclass
class Mismatch:
    path: str  # the file (inside a directory artifact: the file itself) whose bytes differ
    record: str  # the record that holds the hash it no longer has
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} (recorded in {self.record})"


@dataclass
class AuditResult:
    lines: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    records: int = 0
    raw_inputs: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def find_record(path: str, root: str | Path = PROVENANCE_ROOT) -> Path | None:
    """The record of an artifact: at its own record path, or, for a file inside a directory artifact (an image
    of an image folder, a file of a checkpoint), the record of the nearest enclosing directory that has one."""
    candidate = Path(path)
    if candidate.is_absolute():  # outputs lie under the run's results/; an absolute path is a raw input
        return None
    while candidate.parts:
        record = record_path(candidate, root)
        if record.is_file():
            return record
        candidate = candidate.parent
    return None


def compare(path: str, recorded: Any, record: str, hashes: dict[str, Any]) -> list[Mismatch]:
    """The differences between what `record` holds for `path` and its bytes now, per file inside a directory.

    `hashes` memoizes one audit's hashes by path: a file read by many jobs is hashed once per audit."""
    if path not in hashes:
        hashes[path] = hash_path(path)
    current = hashes[path]
    if current == recorded:
        return []
    if current is None:
        return [Mismatch(path, record, "missing")]
    if isinstance(recorded, dict) and isinstance(current, dict):
        return [Mismatch(f"{path}/{name}", record, "missing" if name not in current else
                         "not in the record" if name not in recorded else "content changed")
                for name in sorted(set(recorded) | set(current)) if recorded.get(name) != current.get(name)]
    return [Mismatch(path, record, "content changed")]


def _describe_code(code: dict[str, Any], root: str | Path, record: str) -> tuple[str, list[Mismatch]]:
    """The code line of a record, and the stored patch of uncommitted changes if it is missing or changed."""
    if not code.get("dirty"):
        return f"{code.get('commit')} (clean)", []
    patch = patch_path(code["patch_sha256"], root)
    untracked = f", {len(code['untracked'])} untracked files" if code.get("untracked") else ""
    text = f"{code['commit']} + uncommitted changes{untracked}: git apply {patch}"
    if not patch.is_file():
        return text, [Mismatch(str(patch), record, "the patch of uncommitted changes is missing")]
    if hashlib.sha256(patch.read_bytes()).hexdigest() != code["patch_sha256"]:
        return text, [Mismatch(str(patch), record, "content changed")]
    return text, []


def _short(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def audit(artifact: str, root: str | Path = PROVENANCE_ROOT) -> AuditResult:
    """Walk `artifact`'s records depth first; every record is checked once, shared subtrees are named again only."""
    result = AuditResult()
    seen: set[Path] = set()
    hashes: dict[str, Any] = {}
    root_packages: dict[str, Any] | None = None

    def visit(path: str, prefix: str, last: bool, top: bool) -> None:
        nonlocal root_packages
        branch = "" if top else ("└─ " if last else "├─ ")
        child_prefix = prefix + ("" if top else ("   " if last else "│  "))
        record_file = find_record(path, root)
        if record_file is None:
            result.raw_inputs.add(path)
            result.lines.append(f"{prefix}{branch}{path}  [raw input: no record]")
            return
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if record_file in seen:
            result.lines.append(f"{prefix}{branch}{path}  [{record['rule']}] (checked above)")
            return
        seen.add(record_file)
        result.records += 1
        for output, digest in record["outputs"].items():
            result.mismatches.extend(compare(output, digest, str(record_file), hashes))
        inside = "" if path in record["outputs"] else " (inside a recorded directory)"
        result.lines.append(f"{prefix}{branch}{path}  [{record['rule']}]{inside}  record {record_file}")
        details = child_prefix + ("│  " if record["inputs"] else "   ")
        if record.get("wildcards"):
            result.lines.append(f"{details}wildcards {_short(record['wildcards'])}")
        result.lines.append(f"{details}params {_short(record['params'])}")
        code, problems = _describe_code(record["code"], root, str(record_file))
        result.mismatches.extend(problems)
        result.lines.append(f"{details}code {code}")
        packages = record["packages"]
        if root_packages is None:
            root_packages = packages
            result.lines.append(f"{details}packages {_short({k: v for k, v in packages.items() if v})}")
        elif packages != root_packages:
            differing = {k: v for k, v in packages.items() if root_packages.get(k) != v}
            result.lines.append(f"{details}packages differ from the top record's: {_short(differing)}")
        inputs = sorted(record["inputs"].items())
        for index, (input_path, digest) in enumerate(inputs):
            result.mismatches.extend(compare(input_path, digest, str(record_file), hashes))
            visit(input_path, child_prefix, index == len(inputs) - 1, False)

    visit(artifact, "", True, True)
    unique = {(m.path, m.reason): m for m in result.mismatches}  # a file read by many jobs is named once
    result.mismatches = list(unique.values())
    return result


def run_audit(artifact: str, out: TextIO, err: TextIO, root: str | Path = PROVENANCE_ROOT) -> int:
    """The `audit` command: print the tree and the verdict; 0 when every hash matches, 1 on a mismatch, 2 when
    the artifact has no record."""
    if find_record(artifact, root) is None:
        err.write(f"audit: {artifact}: no provenance record at {record_path(artifact, root)} "
                  f"(run from the directory the pipeline ran in)\n")
        return 2
    result = audit(artifact, root)
    out.write("\n".join(result.lines) + "\n")
    summary = f"{result.records} records, {len(result.raw_inputs)} raw inputs"
    if result.ok:
        out.write(f"audit: OK: every file matches its record ({summary})\n")
        return 0
    for mismatch in result.mismatches:
        err.write(f"audit: MISMATCH {mismatch}\n")
    err.write(f"audit: {len(result.mismatches)} file(s) no longer match their records ({summary})\n")
    return 1
