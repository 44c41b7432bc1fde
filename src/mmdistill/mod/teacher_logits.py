"""The teacher's top-k log-probs for every response token of a dataset, as shards that stream from disk.

Mimic distillation (eq. 6-7) needs the teacher's distribution at every supervised
position. Stored offline, only the student is in memory while it trains (the
limitation the paper names in its conclusion). For each such position we keep the k
most probable tokens and their log-probs; the rest of the mass is spread evenly over
the other tokens when read (`mmdistill.mod.losses.dense_log_probs`).

Per token we store a `TopK`: k ids, k log-probs and the log of the residual mass (the
probability outside the top-k, computed exactly from the full distribution: deriving
it from the rounded top-k values would be off by more than itself for a confident
teacher). Layout of a directory:

* `index.json`: vocabulary size, k, dtypes, and per shard its number of examples and tokens;
* `shard_<i>.indices.npy` (tokens x k, the narrowest unsigned integer that holds the
  vocabulary: uint8 up to 256 tokens, uint16 up to 65,536, uint32 for Qwen's 152K),
  `shard_<i>.log_probs.npy` (tokens x k, float16), `shard_<i>.log_residual.npy`
  (tokens, float16) and `shard_<i>.offsets.npy` (examples + 1, int64: where each
  example's rows start).

Examples keep the dataset's order. Reading example i memory-maps the files of its
shard only; reading in order opens each shard once.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from mmdistill.mod.losses import TopK, dense_log_probs, mean_kl, predicting_positions

VALUE_DTYPE = np.float16
FORMAT = "mmdistill teacher top-k log-probs v1"
PARTS = ("indices", "log_probs", "log_residual")
QWEN_VOCAB_SIZE = 151_936  # Qwen-1.5's, the paper's teacher and student family
MODEL_INPUTS = ("input_ids", "attention_mask", "pixel_values")  # pixel_values absent from an all-text batch


def index_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned integer type that holds every token id of the vocabulary."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"vocabulary of {vocab_size} tokens needs more than 32-bit ids")


def bytes_per_token(vocab_size: int, k: int) -> int:
    """Bytes the shards take per stored token: k ids, k float16 log-probs and the float16 log residual.

    Offsets (8 bytes per example), npy headers and the index are not counted.
    """
    value = np.dtype(VALUE_DTYPE).itemsize
    return k * (index_dtype(vocab_size).itemsize + value) + value


def top_k(log_probs: torch.Tensor, k: int) -> TopK:
    """The k most probable tokens of each row, their log-probs and the log residual mass, rounded as stored."""
    log_probs = log_probs.float()
    values, indices = log_probs.topk(k, dim=-1)
    log_residual = log_probs.scatter(-1, indices, float("-inf")).logsumexp(dim=-1)
    return TopK(indices, values.to(torch.float16), log_residual.to(torch.float16))


def response_top_k(teacher_logits: torch.Tensor, labels: torch.Tensor, k: int) -> list[TopK]:
    """Per example of a batch, `top_k` of the teacher at each position that predicts a supervised token."""
    positions = predicting_positions(labels)
    return [top_k(teacher_logits[row][positions[row]].log_softmax(dim=-1), k) for row in range(len(labels))]


def approximation_kl(full_log_probs: torch.Tensor, k: int) -> float:
    """Mean KL(full || stored top-k approximation) per token, in nats; rows of `full_log_probs` are tokens."""
    approximation = dense_log_probs(top_k(full_log_probs, k), full_log_probs.shape[-1])
    return mean_kl(full_log_probs.float(), approximation).item()


class TeacherLogitsWriter:
    """Writes examples' top-k rows into shards of about `tokens_per_shard` tokens; use as a context manager."""

    def __init__(self, directory: str | Path, vocab_size: int, k: int, tokens_per_shard: int = 1_000_000,
                 vocabulary: str | None = None):
        self.directory = Path(directory)
        self.vocabulary = vocabulary
        self.directory.mkdir(parents=True, exist_ok=True)
        self.vocab_size, self.k, self.tokens_per_shard = vocab_size, k, tokens_per_shard
        self.shards: list[dict[str, int | str]] = []
        self.pending: list[TopK] = []
        self.pending_tokens = 0

    def add(self, top: TopK) -> None:
        """One example's rows, in position order."""
        tokens = len(top.indices)
        if top.indices.shape != (tokens, self.k) or top.log_probs.shape != (tokens, self.k) \
                or top.log_residual.shape != (tokens,):
            raise ValueError(f"expected (tokens x {self.k}) ids and log-probs and (tokens) residuals, got "
                             f"{[tuple(part.shape) for part in top]}")
        self.pending.append(TopK(top.indices.cpu().numpy().astype(index_dtype(self.vocab_size)),
                                 top.log_probs.cpu().numpy().astype(VALUE_DTYPE),
                                 top.log_residual.cpu().numpy().astype(VALUE_DTYPE)))
        self.pending_tokens += tokens
        if self.pending_tokens >= self.tokens_per_shard:
            self._write_shard()

    def _write_shard(self) -> None:
        name = f"shard_{len(self.shards):05d}"
        lengths = [len(top.indices) for top in self.pending]
        for part, arrays in zip(PARTS, zip(*self.pending)):
            np.save(self.directory / f"{name}.{part}.npy", np.concatenate(arrays))
        np.save(self.directory / f"{name}.offsets.npy", np.cumsum([0, *lengths], dtype=np.int64))
        self.shards.append({"name": name, "examples": len(lengths), "tokens": sum(lengths)})
        self.pending, self.pending_tokens = [], 0

    def close(self) -> None:
        if self.pending or not self.shards:
            self._write_shard()
        index = {"format": FORMAT, "vocab_size": self.vocab_size, "vocabulary_sha256": self.vocabulary, "k": self.k,
                 "index_dtype": index_dtype(self.vocab_size).name, "value_dtype": np.dtype(VALUE_DTYPE).name,
                 "examples": sum(s["examples"] for s in self.shards), "tokens": sum(s["tokens"] for s in self.shards),
                 "shards": self.shards}
        (self.directory / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")

    def __enter__(self) -> "TeacherLogitsWriter":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.close()


class TeacherLogitsReader:
    """Example i as a `TopK` of tensors, read from its shard alone; iterates in order."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.index = json.loads((self.directory / "index.json").read_text(encoding="utf-8"))
        if self.index.get("format") != FORMAT:
            raise ValueError(f"{self.directory / 'index.json'} is not a teacher top-k index ({FORMAT!r})")
        self.first_example = np.cumsum([0] + [s["examples"] for s in self.index["shards"]]).tolist()
        self.open_shard: tuple[int, dict[str, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self.index["examples"]

    def _shard(self, number: int) -> dict[str, np.ndarray]:
        if self.open_shard is None or self.open_shard[0] != number:
            name = self.index["shards"][number]["name"]
            arrays = {part: np.load(self.directory / f"{name}.{part}.npy", mmap_mode="r")
                      for part in (*PARTS, "offsets")}
            self.open_shard = (number, arrays)
        return self.open_shard[1]

    def __getitem__(self, example: int) -> TopK:
        if not 0 <= example < len(self):
            raise IndexError(f"example {example} out of range ({len(self)} examples)")
        number = bisect.bisect_right(self.first_example, example) - 1
        shard = self._shard(number)
        row = example - self.first_example[number]
        start, end = shard["offsets"][row], shard["offsets"][row + 1]
        return TopK(torch.from_numpy(shard["indices"][start:end].astype(np.int64)),
                    torch.from_numpy(np.array(shard["log_probs"][start:end])),
                    torch.from_numpy(np.array(shard["log_residual"][start:end])))

    def __iter__(self) -> Iterator[TopK]:
        return (self[example] for example in range(len(self)))


def vocabulary_digest(tokenizer) -> str:
    """sha256 of a tokenizer's token-to-id map: equal digests mean the same vocabulary, token by token."""
    return hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()


@torch.no_grad()
def write_teacher_top_k(teacher, dataset, collator, directory: str | Path, k: int, batch_size: int = 8,
                        tokens_per_shard: int = 1_000_000, vocabulary: str | None = None) -> dict[str, float | int]:
    """Run the frozen teacher over `dataset` in order and store its `response_top_k`; returns the measurements.

    `dataset` and `collator` are the ones the student trains with
    (`mmdistill.mod.data.DistillationDataset`, or `mmdistill.training.ConversationDataset`
    for the response tokens), so rows line up with its `distill_labels` (or `labels`).
    The summary gives the tokens, the bytes per token on disk and for a 152K
    vocabulary, and the mean KL(full || top-k approximation) per token over every
    stored token. `vocabulary` (the teacher's `vocabulary_digest`) goes into the index, so that a
    student of another vocabulary is refused.
    """
    teacher.eval()
    device = next(teacher.parameters()).device
    vocab_size = teacher.get_output_embeddings().out_features
    tokens, kl_sum = 0, 0.0
    with TeacherLogitsWriter(directory, vocab_size, k, tokens_per_shard, vocabulary) as writer:
        for start in range(0, len(dataset), batch_size):
            batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            labels = batch.get("distill_labels", batch["labels"])
            inputs = {key: batch[key].to(device) for key in MODEL_INPUTS if key in batch}
            logits = teacher(**inputs).logits.float().cpu()
            full = logits[predicting_positions(labels)].log_softmax(dim=-1)
            tokens += len(full)
            kl_sum += approximation_kl(full, k) * len(full)
            for top in response_top_k(logits, labels, k):
                writer.add(top)
    return {"examples": len(dataset), "tokens": tokens, "k": k, "vocab_size": vocab_size,
            "bytes_per_token": stored_bytes_per_token(directory),
            "bytes_per_token_152k_vocabulary": bytes_per_token(QWEN_VOCAB_SIZE, k),
            "kl_nats_per_token": kl_sum / max(tokens, 1)}


def stored_bytes_per_token(directory: str | Path) -> float:
    """Bytes on disk per stored token: every file of the directory, index and offsets included."""
    directory = Path(directory)
    tokens = json.loads((directory / "index.json").read_text(encoding="utf-8"))["tokens"]
    return sum(path.stat().st_size for path in directory.iterdir()) / max(tokens, 1)
