"""The toy foundation models' construction."""

import torch

from mmdistill.models.toy import set_2d_sincos_positions


def test_image_positions_are_distinct_codes_that_share_rows_and_columns():
    side = 4
    table = torch.zeros(1 + side * side, 64)
    set_2d_sincos_positions(table, side)
    assert torch.all(table[0] == 0)  # CLS
    patches = table[1:]
    similarity = patches @ patches.T
    self_similarity = similarity.diagonal()
    for a in range(side * side):
        for b in range(side * side):
            same_row, same_column = a // side == b // side, a % side == b % side
            if a == b:
                continue
            assert similarity[a, b] < 0.75 * self_similarity[a]  # every patch is told apart
            if not (same_row or same_column):
                assert abs(similarity[a, b]) < 1e-4  # another row and column: orthogonal codes
    # as strong as patch contents (norm about 10), not the default's 0.17
    assert torch.allclose(patches.norm(dim=1), torch.full((side * side,), 32 ** 0.5))
