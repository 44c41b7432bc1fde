"""Do experts specialize? The share of routing decisions each expert of each MoE layer gets, by
question type (LLaVA-MoD §3.1's router, measured on held-out toy scenes).

Every held-out scene gets seeded open questions with the oracle's answers, as
`quality.answer_diagnostics` asks them. The sparse student reads each (image, question,
answer) once, teacher-forced, and `routing_counts` counts, per layer, how often each expert
is among a token's top-k: over the answer tokens by question type, and over the image tokens
as a type of their own. Equal shares (1/N) everywhere mean no specialization.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random
from typing import Any

import torch
from torch.utils.data import DataLoader

from mmdistill.models.llava import num_image_tokens
from mmdistill.mod.upcycling import recorded_router_logits
from mmdistill.toyworld import oracle
from mmdistill.toyworld.corpora import llava_record, random_question
from mmdistill.training import IGNORE_INDEX, ConversationCollator, ConversationDataset

IMAGE_TOKENS = "image tokens"


def question_records(scenes: Sequence[dict], seed: int, questions_per_scene: int) -> list[dict]:
    """One single-turn record per seeded open question of each scene, with the oracle's answer and its task."""
    records = []
    for scene in scenes:
        rng = Random(f"{seed}:routing:{scene['scene_id']}")
        for k in range(questions_per_scene):
            task, question = random_question(scene, rng)
            records.append(llava_record(f"routing-{scene['scene_id']}-{k}", scene,
                                        [(question, oracle.answer(scene, question))], task=task))
    return records


def token_types(batch: dict[str, torch.Tensor], tasks: Sequence[str], image_token_id: int) -> list[str | None]:
    """Per token of a batch, flattened batch-major as routers see it: the record's task for an answer
    token, `IMAGE_TOKENS` for an image token, None for every other token (question, template, padding)."""
    types: list[str | None] = []
    for ids, labels, task in zip(batch["input_ids"], batch["labels"], tasks):
        for token, label in zip(ids.tolist(), labels.tolist()):
            types.append(IMAGE_TOKENS if token == image_token_id else task if label != IGNORE_INDEX else None)
    return types


@torch.no_grad()
def routing_counts(model, processor, records: Sequence[dict], image_root, batch_size: int = 32) -> dict[str, Any]:
    """{type: (layers x experts) counts of top-k assignments}, types being the records' tasks and image tokens."""
    dataset = ConversationDataset(list(records), image_root, processor, num_image_tokens(model.config))
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=ConversationCollator(processor.tokenizer.pad_token_id))
    text_config = model.config.text_config
    layers, experts, top_k = text_config.num_hidden_layers, text_config.num_local_experts, text_config.num_experts_per_tok
    counts: dict[str, torch.Tensor] = {}
    model.eval()
    for start, batch in zip(range(0, len(records), batch_size), loader):
        types = token_types(batch, [r["task"] for r in records[start:start + batch_size]], model.config.image_token_id)
        with recorded_router_logits(model) as router_logits:
            model(**{key: value.to(model.device) for key, value in batch.items() if key != "labels"})
        for layer, logits in enumerate(router_logits):
            chosen = logits.topk(top_k, dim=-1).indices.cpu()
            for token, kind in enumerate(types):
                if kind is not None:
                    counts.setdefault(kind, torch.zeros(layers, experts, dtype=torch.long))[layer, chosen[token]] += 1
    return counts


def routing_shares(counts: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Rows (type, layer, expert, share of that layer's top-k assignments for the type, tokens)."""
    rows = []
    for kind, table in sorted(counts.items()):
        for layer, row in enumerate(table.tolist()):
            total = sum(row)
            rows += [{"type": kind, "layer": layer, "expert": expert, "share": round(count / total, 4),
                      "assignments": count} for expert, count in enumerate(row)]
    return rows


def plot_routing(rows: Sequence[dict[str, Any]], path) -> None:
    """A heatmap per layer: question types by experts, coloured by routing share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({row["type"] for row in rows}, key=lambda kind: (kind == IMAGE_TOKENS, kind))
    layers = sorted({row["layer"] for row in rows})
    experts = sorted({row["expert"] for row in rows})
    share = {(row["type"], row["layer"], row["expert"]): row["share"] for row in rows}
    figure, axes = plt.subplots(1, len(layers), figsize=(1.2 + 0.6 * len(experts) * len(layers), 0.3 * len(kinds) + 1.4),
                                squeeze=False)
    for axis, layer in zip(axes[0], layers):
        grid = [[share[(kind, layer, expert)] for expert in experts] for kind in kinds]
        image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        axis.set_xticks(range(len(experts)), [str(e) for e in experts])
        axis.set_yticks(range(len(kinds)), kinds if layer == layers[0] else [""] * len(kinds), fontsize=7)
        axis.set_title(f"layer {layer}", fontsize=9)
        axis.set_xlabel("expert")
    figure.colorbar(image, ax=axes[0].tolist(), label="share of top-k assignments")
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
