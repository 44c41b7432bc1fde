"""Total and active parameters of a saved checkpoint (Table 2's #Param), dense or MoE, without torch.

The counts equal `mmdistill.mod.upcycling.parameter_counts` of the loaded model: all
parameters, and those one token passes through (of each MoE layer's experts only the
top-k). They are read from the config and the safetensors headers (8 bytes of header
length, then a JSON of every tensor's shape), so the report environment counts the
teacher's and every student's parameters without loading weights or importing torch.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path


def safetensors_shapes(path: str | Path) -> dict[str, list[int]]:
    """Tensor name -> shape, from a safetensors file's header."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return {name: entry["shape"] for name, entry in header.items() if name != "__metadata__"}


def checkpoint_parameter_counts(directory: str | Path) -> dict[str, int]:
    """{"total", "active"} parameters of the checkpoint in `directory` (every `*.safetensors` shard)."""
    directory = Path(directory)
    text_config = json.loads((directory / "config.json").read_text()).get("text_config", {})
    experts, active = text_config.get("num_local_experts"), text_config.get("num_experts_per_tok")
    total = inactive = 0
    for path in sorted(directory.glob("*.safetensors")):
        for name, shape in safetensors_shapes(path).items():
            count = math.prod(shape)
            total += count
            # `mlp.experts.*` in memory, `block_sparse_moe.experts.<i>.*` in the saved (legacy) layout
            if experts and ".experts." in name:
                inactive += count // experts * (experts - active)
    return {"total": total, "active": total - inactive}
