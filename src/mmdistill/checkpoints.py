"""Where training keeps resumable state: a job's work folder, set by `mmdistill.jobs`, read by
`mmdistill.training.train`. Torch-free, so that every job can import it cheaply."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass
class Checkpointing:
    """Where and how often the training of a job saves resumable checkpoints (set by `mmdistill.jobs`)."""

    directory: Path  # survives a kill; keyed by the job, so a changed job never resumes another's state
    every_steps: int
    stage: str  # names the job in errors
    calls: int = 0  # train() calls so far in this job: each gets its own folder


_checkpointing: Checkpointing | None = None


def active() -> Checkpointing | None:
    """The checkpointing of the job that is running, if any."""
    return _checkpointing


@contextmanager
def checkpointing(directory: str | Path, every_steps: int, stage: str) -> Iterator[Checkpointing]:
    """Within this block every `train` saves a checkpoint every `every_steps` optimizer steps under `directory`
    and resumes from the latest complete one; outside it, training keeps its state in a temporary folder."""
    global _checkpointing
    previous, _checkpointing = _checkpointing, Checkpointing(Path(directory), every_steps, stage)
    try:
        yield _checkpointing
    finally:
        _checkpointing = previous


COMPLETE_MARKER = "checkpoint_complete"  # written once a checkpoint is wholly on disk


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest checkpoint under `directory` that was saved to the end (a kill can leave a partial one)."""
    complete = [path for path in Path(directory).glob("checkpoint-*") if (path / COMPLETE_MARKER).is_file()]
    return max(complete, key=lambda path: int(path.name.split("-")[1]), default=None)
