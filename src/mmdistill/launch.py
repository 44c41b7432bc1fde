"""One training process per GPU: torchrun around a stage function.

A training rule's job holds the GPUs its profile asks for (`gpu: N` in slurm/config.yaml);
its script calls `run_stage(function, kwargs, processes(snakemake.resources))`. With one
process (every local run, and a job without GPUs) the function runs in the job's own process.
With N it runs under `torchrun --standalone --nproc-per-node N`, where HF `Trainer` finds the
torchrun environment and trains data-parallel, with the train block's DeepSpeed config when
it names one. Every rank runs the function; rank 0 alone writes files, and its return value
is the job's.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def processes(resources: Mapping[str, Any]) -> int:
    """Training processes for a job's resources: its GPUs (the slurm plugin's `gpu`, or `gres` `gpu[:model]:N`), or 1."""
    gpus = int(resources.get("gpu", 0) or 0)
    for part in str(resources.get("gres", "") or "").split(","):
        fields = part.strip().split(":")
        if fields[0] == "gpu" and len(fields) > 1:
            gpus = int(fields[-1])
    return max(1, gpus)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


def run_stage(function: Callable[..., Any], kwargs: dict[str, Any], nproc: int, timeout_s: float | None = None) -> Any:
    """`function(**kwargs)` in this process (nproc 1) or in `nproc` torchrun processes; rank 0's return value.

    `function` must be importable by name and `kwargs` and the return value JSON-able. A torchrun launch
    that outlives `timeout_s` (or is interrupted) is killed with all its processes: `subprocess.TimeoutExpired`.
    """
    if nproc == 1:
        return function(**kwargs)
    with tempfile.TemporaryDirectory() as work:
        spec, result = Path(work) / "spec.json", Path(work) / "result.json"
        spec.write_text(json.dumps({"function": f"{function.__module__}:{function.__qualname__}",
                                    "kwargs": kwargs, "result": str(result)}))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   "-m", "mmdistill.launch", str(spec)]
        # Its own process group, so that torchrun's workers die with it rather than outlive it.
        launcher = subprocess.Popen(command, start_new_session=True)
        try:
            returncode = launcher.wait(timeout=timeout_s)
        except BaseException:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            raise
        if returncode:
            raise subprocess.CalledProcessError(returncode, command)
        return json.loads(result.read_text())


def _main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    module, name = spec["function"].split(":")
    result = getattr(importlib.import_module(module), name)(**spec["kwargs"])
    if is_main_process():
        Path(spec["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    _main(sys.argv[1])
