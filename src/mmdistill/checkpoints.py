"""Where training keeps resumable state: a job's work folder, set by `mmdistill.jobs`, read by
`mmdistill.training.train`. Torch-free, so that every job can import it cheaply."""

from __future__ import annotations

import os
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
# The same settings for processes the job starts (torchrun's ranks inherit the environment).
ENVIRONMENT = {"directory": "MMDISTILL_WORK_DIR", "every_steps": "MMDISTILL_CHECKPOINT_STEPS",
               "stage": "MMDISTILL_STAGE"}


def active() -> Checkpointing | None:
    """The checkpointing of the job that is running, if any: this process's, or the one inherited from the job's
    process through the environment (a training launched in child processes, one per GPU)."""
    global _checkpointing
    if _checkpointing is None and ENVIRONMENT["directory"] in os.environ:
        _checkpointing = Checkpointing(Path(os.environ[ENVIRONMENT["directory"]]),
                                       int(os.environ[ENVIRONMENT["every_steps"]]), os.environ[ENVIRONMENT["stage"]])
    return _checkpointing


@contextmanager
def checkpointing(directory: str | Path, every_steps: int, stage: str) -> Iterator[Checkpointing]:
    """Within this block every `train` saves a checkpoint every `every_steps` optimizer steps under `directory`
    and resumes from the latest complete one, in this process and in the processes it starts; outside it,
    training keeps its state in a temporary folder."""
    global _checkpointing
    previous = _checkpointing, {name: os.environ.get(name) for name in ENVIRONMENT.values()}
    _checkpointing = Checkpointing(Path(directory), every_steps, stage)
    os.environ.update({ENVIRONMENT["directory"]: str(directory), ENVIRONMENT["every_steps"]: str(every_steps),
                       ENVIRONMENT["stage"]: stage})
    try:
        yield _checkpointing
    finally:
        _checkpointing = previous[0]
        for name, value in previous[1].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


COMPLETE_MARKER = "checkpoint_complete"  # written once a checkpoint is wholly on disk


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest checkpoint under `directory` that was saved to the end (a kill can leave a partial one)."""
    complete = [path for path in Path(directory).glob("checkpoint-*") if (path / COMPLETE_MARKER).is_file()]
    return max(complete, key=lambda path: int(path.name.split("-")[1]), default=None)
