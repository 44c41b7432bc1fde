"""Reading and writing the pipeline's JSON and JSONL files, with errors that name the place."""

from __future__ import annotations

import json
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


class DataError(ValueError):
    """Malformed input; the message names the file and line."""


def read_jsonl(path: str | Path, rejects: RejectLog | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-blank line; a bad line raises `DataError` naming file and line.

    With `rejects`, a bad line goes there instead (reason "invalid JSON (...)" or "not a JSON object", the record
    `{"line", "text"}`, the source `<file>:<line>`) and reading goes on.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                problem = None if isinstance(record, dict) else f"expected a JSON object, got {type(record).__name__}"
            except json.JSONDecodeError as error:
                problem = f"invalid JSON ({error.msg})"
            if problem is None:
                yield record
            elif rejects is None:
                raise DataError(f"{path}:{line_number}: {problem}")
            else:
                rejects.add(problem, {"line": line_number, "text": line.rstrip("\n")}, source=f"{path}:{line_number}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed to `path` when the block ends without error, so a
    reader (or a rerun after a kill) never finds half a file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records one per line, atomically; returns how many were written."""
    count = 0
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from error


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


class RejectLog:
    """Collects skipped records with a reason, so no input disappears silently.

    `write()` stores them as JSONL (`{"reason", "source", "record"}`) and the
    per-reason counts are available for reports.
    """

    def __init__(self) -> None:
        self.rejects: list[dict[str, Any]] = []

    def add(self, reason: str, record: Any, source: str = "") -> None:
        self.rejects.append({"reason": reason, "source": source, "record": record})

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r["reason"] for r in self.rejects).items()))

    def __len__(self) -> int:
        return len(self.rejects)

    def write(self, path: str | Path) -> int:
        return write_jsonl(path, self.rejects)


def check_reject_rate(path: str | Path, rejected: int, total: int, max_reject_rate: float, rejects: RejectLog) -> None:
    """Stop when more than `max_reject_rate` of a file's records went to the rejects: past that, the file is
    broken rather than noisy."""
    if total and rejected / total > max_reject_rate:
        first = "; ".join(f"{r['source']}: {r['reason']}" for r in rejects.rejects[:3])
        raise DataError(f"{path}: {rejected} of {total} records rejected ({rejected / total:.1%}), more than "
                        f"`max_reject_rate` {max_reject_rate:.1%} (by reason {rejects.counts}; first: {first})")
