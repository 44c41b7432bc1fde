"""Linear probes: which scene facts the image features of a LLaVA model carry, and where.

For every grid cell of a toy scene the probe predicts the cell's occupancy, colour, shape,
size and word ("empty" / "none" where there is none) from the features of that cell's own
image tokens (all of them, concatenated; and, as "<attribute> (one token)", from each token
alone, which is what one attention read of one token can match), at two points of the model: the vision tower's layer LLaVA reads
(`vision_feature_layer`) and the projector's output (what the language model sees). A
second probe predicts each image token's cell from the token alone (where the image
says a token is). Probes are ridge regressions onto one-hot labels, closed form and
deterministic, fitted on training scenes and scored on held-out ones, so 100% means the
fact is linearly readable and chance means it is lost. Knowledge the features hold but the
answers miss is lost between the image tokens and the answer (see
`quality.answer_diagnostics`' image sensitivity).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from mmdistill.toyworld.scenes import scene_grid

CELL_ATTRIBUTES = ("occupied", "color", "shape", "size", "text")
ONE_TOKEN_ATTRIBUTES = ("color", "shape", "size")
EMPTY = "empty"


def cell_labels(scene: dict, attribute: str) -> list[str]:
    """One label per grid cell, row-major: the attribute of the cell's object, `empty` for an empty
    cell (`occupied`: yes / no; `text`: the word or none)."""
    grid = scene_grid(scene)
    by_cell = {(obj["row"], obj["col"]): obj for obj in scene["objects"]}
    labels = []
    for row in range(grid):
        for col in range(grid):
            obj = by_cell.get((row, col))
            if attribute == "occupied":
                labels.append("yes" if obj else "no")
            elif obj is None:
                labels.append(EMPTY)
            else:
                labels.append(obj[attribute] or "none")
    return labels


def ridge_probe_accuracy(train_x: torch.Tensor, train_labels: Sequence[str], test_x: torch.Tensor,
                         test_labels: Sequence[str], ridge: float = 1e-2) -> float:
    """Accuracy on the test rows of a ridge regression from standardized features onto one-hot
    labels (fitted on the train rows); test labels unseen in training count as wrong."""
    classes = sorted(set(train_labels))
    index = {label: k for k, label in enumerate(classes)}
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)

    def design(x: torch.Tensor) -> torch.Tensor:
        standardized = (x - mean) / std
        return torch.cat([standardized, torch.ones(len(x), 1, dtype=x.dtype)], 1)

    x = design(train_x.double())
    y = torch.nn.functional.one_hot(torch.tensor([index[label] for label in train_labels]), len(classes)).double()
    weights = torch.linalg.solve(x.T @ x + ridge * len(x) * torch.eye(x.shape[1], dtype=x.dtype), x.T @ y)
    predicted = (design(test_x.double()) @ weights).argmax(1).tolist()
    return sum(classes[p] == label for p, label in zip(predicted, test_labels)) / len(test_labels)


@torch.no_grad()
def image_features(model, processor, image_paths: Sequence[Path], batch_size: int = 64) -> dict[str, torch.Tensor]:
    """(images, tokens, dim) features of the image tokens: `vision` at the tower's layer LLaVA reads
    (its select strategy applied), `projected` after the projector."""
    config = model.config
    layer = config.vision_feature_layer
    vision, projected = [], []
    model.eval()
    for start in range(0, len(image_paths), batch_size):
        images = [Image.open(path).convert("RGB") for path in image_paths[start:start + batch_size]]
        pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"].to(model.device, model.dtype)
        hidden = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[layer]
        if config.vision_feature_select_strategy == "default":
            hidden = hidden[:, 1:]
        vision.append(hidden.float().cpu())
        projected.append(model.model.multi_modal_projector(hidden).float().cpu())
    return {"vision": torch.cat(vision), "projected": torch.cat(projected)}


def _token_cells(tokens: int, grid: int) -> list[int]:
    """The grid cell (row-major) each image token of a square patch grid lies in."""
    side = int(round(tokens ** 0.5))
    return [(k // side) * grid // side * grid + (k % side) * grid // side for k in range(tokens)]


def _cell_features(features: torch.Tensor, grid: int) -> torch.Tensor:
    """(images * cells, tokens per cell * dim): each cell's own tokens, concatenated."""
    images, tokens, dim = features.shape
    cells = torch.tensor(_token_cells(tokens, grid))
    per_cell = [features[:, cells == cell].reshape(images, -1) for cell in range(grid * grid)]
    return torch.stack(per_cell, 1).reshape(images * grid * grid, -1)


def _token_labels(cell_labels_: Sequence[str], cells: Sequence[int]) -> list[str]:
    """Per-cell labels of consecutive scenes (row-major cells) as per-token labels: each token its cell's."""
    per_scene = max(cells) + 1
    return [cell_labels_[start + cell] for start in range(0, len(cell_labels_), per_scene) for cell in cells]


def vision_probes(model, processor, train_scenes: Sequence[dict], test_scenes: Sequence[dict],
                  image_root: str | Path) -> dict[str, Any]:
    """Probe accuracies {point: {attribute or "token cell": accuracy}} and each attribute's chance
    (the share of the most common test label), with the scene counts."""
    grid = scene_grid(train_scenes[0])
    root = Path(image_root)
    train = image_features(model, processor, [root / s["image"] for s in train_scenes])
    test = image_features(model, processor, [root / s["image"] for s in test_scenes])
    labels = {name: ([label for s in train_scenes for label in cell_labels(s, name)],
                     [label for s in test_scenes for label in cell_labels(s, name)]) for name in CELL_ATTRIBUTES}
    result: dict[str, Any] = {"train_scenes": len(train_scenes), "test_scenes": len(test_scenes), "grid": grid}
    for point in ("vision", "projected"):
        train_cells, test_cells = _cell_features(train[point], grid), _cell_features(test[point], grid)
        result[point] = {name: ridge_probe_accuracy(train_cells, train_labels, test_cells, test_labels)
                         for name, (train_labels, test_labels) in labels.items()}
        cells = _token_cells(train[point].shape[1], grid)
        train_tokens, test_tokens = (features[point].reshape(-1, features[point].shape[-1]) for features in (train, test))
        for name in ONE_TOKEN_ATTRIBUTES:
            train_labels, test_labels = (_token_labels(cell_labels_, cells) for cell_labels_ in labels[name])
            result[point][f"{name} (one token)"] = ridge_probe_accuracy(train_tokens, train_labels, test_tokens,
                                                                         test_labels)
        result[point]["token cell"] = ridge_probe_accuracy(train_tokens, [str(c) for c in cells] * len(train_scenes),
                                                           test_tokens, [str(c) for c in cells] * len(test_scenes))
    result["chance"] = {name: max(test_labels.count(v) for v in set(test_labels)) / len(test_labels)
                        for name, (_, test_labels) in labels.items()}
    result["chance"].update({f"{name} (one token)": result["chance"][name] for name in ONE_TOKEN_ATTRIBUTES})
    result["chance"]["token cell"] = 1 / grid ** 2
    return result
