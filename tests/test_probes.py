"""Linear probes of image features: labels per cell, the ridge probe, tokens to cells, and probes of a model."""

import pytest
import torch

from mmdistill.probes import _cell_features, _token_cells, _token_labels, cell_labels, ridge_probe_accuracy

SCENE = {"grid": 2, "objects": [{"row": 0, "col": 1, "color": "red", "shape": "circle", "size": "large", "text": "cat"},
                                {"row": 1, "col": 0, "color": "blue", "shape": "triangle", "size": "small", "text": None}]}


def test_cell_labels_are_row_major_with_empty_cells():
    assert cell_labels(SCENE, "occupied") == ["no", "yes", "yes", "no"]
    assert cell_labels(SCENE, "color") == ["empty", "red", "blue", "empty"]
    assert cell_labels(SCENE, "text") == ["empty", "cat", "none", "empty"]


def test_tokens_of_a_4x4_patch_grid_fall_in_the_2x2_cells():
    assert _token_cells(16, 2) == [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]
    features = torch.arange(16.0).reshape(1, 16, 1)  # token k carries the value k
    assert _cell_features(features, 2).tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


def test_a_probe_reads_a_linearly_coded_label_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    labels = [["red", "green", "blue"][k % 3] for k in range(600)]
    codes = {"red": [3.0, 0.0], "green": [0.0, 3.0], "blue": [-3.0, -3.0]}
    coded = torch.tensor([codes[label] for label in labels]) + torch.randn(600, 2, generator=generator) * 0.3
    noise = torch.randn(600, 8, generator=generator)
    assert ridge_probe_accuracy(coded[:400], labels[:400], coded[400:], labels[400:]) == 1.0
    assert ridge_probe_accuracy(noise[:400], labels[:400], noise[400:], labels[400:]) == pytest.approx(1 / 3, abs=0.1)
    assert ridge_probe_accuracy(coded[:400], labels[:400], coded[400:402], ["purple", labels[401]]) == 0.5  # unseen: wrong


def test_each_token_takes_its_cells_label():
    cells = _token_cells(16, 2)
    labels = ["a", "b", "c", "d", "e", "f", "g", "h"]  # two scenes, four cells each
    tokens = _token_labels(labels, cells)
    assert len(tokens) == 32 and tokens[:4] == ["a", "a", "b", "b"] and tokens[16:20] == ["e", "e", "f", "f"]
