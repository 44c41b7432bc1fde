"""Training data of LLaVA-MoD's distillation stages: which tokens are distilled, and preference pairs.

* `DistillationDataset` / `DistillationCollator`: LLaVA conversations as for
  instruction tuning, plus `distill_labels`, the tokens whose teacher distribution the
  student matches (eq. 6-7), and `example_index`, the example's place in the
  distillation set, by which offline teacher top-k rows are found
  (`mmdistill.mod.teacher_logits` stores them in the same order).
* `PreferenceDataset` / `PreferenceCollator`: RLAIF-V-format records (image, question,
  chosen, rejected) for preference distillation (eq. 8), batched as the chosen
  responses followed by the rejected ones, one forward pass for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from mmdistill.conversation import (
    DEFAULT_TEMPLATE,
    IGNORE_INDEX,
    IMAGE_PLACEHOLDER,
    encode_conversation,
    get_template,
    strip_image_placeholder,
)
from mmdistill.training import ConversationCollator, ConversationDataset, pad_batch

DISTILLATION_TOKENS = ("response", "all")  # Table 7: the response, or the response and the instruction


def distillation_labels(input_ids: list[int], labels: list[int], tokens: str, image_token_id: int) -> list[int]:
    """The labels mimic distillation matches (Table 7).

    `response`: the supervised answer tokens, `labels` as they are. `all`: every text
    token after BOS, the system prompt, role tags and questions too; image tokens stay
    out, since every position there holds the same placeholder id.
    """
    if tokens == "response":
        return list(labels)
    if tokens == "all":
        return [IGNORE_INDEX if position == 0 or token == image_token_id else token
                for position, token in enumerate(input_ids)]
    raise ValueError(f"distillation tokens must be one of {DISTILLATION_TOKENS}, got {tokens!r}")


class DistillationDataset(ConversationDataset):
    """`ConversationDataset` items plus `distill_labels` (`tokens`: response or all) and `example_index`."""

    def __init__(self, records: list[dict], image_root: str | Path, processor, num_image_tokens: int,
                 tokens: str = "response", max_length: int | None = None,
                 chat_template: str = DEFAULT_TEMPLATE) -> None:
        super().__init__(records, image_root, processor, num_image_tokens, max_length=max_length,
                         chat_template=chat_template)
        image_token_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)
        self.distill_labels = [distillation_labels(input_ids, labels, tokens, image_token_id)
                               for _, input_ids, labels in self.examples]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**super().__getitem__(index), "distill_labels": self.distill_labels[index], "example_index": index}


class DistillationCollator(ConversationCollator):
    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {**super().__call__(batch),
                "distill_labels": pad_batch([b["distill_labels"] for b in batch], IGNORE_INDEX),
                "example_index": torch.tensor([b["example_index"] for b in batch])}


class PreferenceDataset(Dataset):
    """RLAIF-V-format records as the token ids and labels of (question, chosen) and (question, rejected)."""

    def __init__(self, records: list[dict], image_root: str | Path, processor, num_image_tokens: int,
                 chat_template: str = DEFAULT_TEMPLATE) -> None:
        self.image_root = Path(image_root)
        self.image_processor = processor.image_processor
        self.examples = []
        template = get_template(chat_template)
        for record in records:
            question = strip_image_placeholder(record["question"])
            chosen, rejected = (encode_conversation(processor.tokenizer, [question], [record[key]], num_image_tokens,
                                                    template) for key in ("chosen", "rejected"))
            self.examples.append((record["image"], chosen, rejected))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, chosen, rejected = self.examples[index]
        pixels = self.image_processor(Image.open(self.image_root / image).convert("RGB"), return_tensors="pt")
        return {"chosen": chosen, "rejected": rejected, "pixel_values": pixels["pixel_values"][0]}


class PreferenceCollator:
    """Rows 0..n-1 hold the chosen responses, rows n..2n-1 the rejected ones of the same pairs."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences = [b["chosen"] for b in batch] + [b["rejected"] for b in batch]
        pixels = torch.stack([b["pixel_values"] for b in batch])
        return {
            "input_ids": pad_batch([input_ids for input_ids, _ in sequences], self.pad_token_id),
            "attention_mask": pad_batch([[1] * len(input_ids) for input_ids, _ in sequences], 0),
            "labels": pad_batch([labels for _, labels in sequences], IGNORE_INDEX),
            "pixel_values": torch.cat([pixels, pixels]),
        }
