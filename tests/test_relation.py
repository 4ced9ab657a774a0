"""Relation Network: order invariance, the broadcast first layer equals the explicit pair loop, CNN+MLP."""

from __future__ import annotations

import pytest
import torch

from mmcourse.models.relation import CNNMLP, RelationNetwork, cell_objects


def _rn() -> RelationNetwork:
    torch.manual_seed(0)
    return RelationNetwork(channels=8, g_dim=16, f_dim=16).eval()


def test_rn_is_invariant_to_the_order_of_objects():
    rn = _rn()
    o, q = torch.randn(3, 16, 10), torch.randn(3, 11)
    perm = torch.randperm(16)
    torch.testing.assert_close(rn.relate(o, q), rn.relate(o[:, perm], q), rtol=1e-5, atol=1e-5)
    # ... while the CNN+MLP baseline's flattened input is not
    torch.manual_seed(0)
    mlp = CNNMLP(channels=8).eval()
    x = {"image": torch.rand(2, 3, 32, 32), "question": torch.randn(2, 11)}
    flipped = {"image": x["image"].flip(-1), "question": x["question"]}
    assert not torch.allclose(mlp(x), mlp(flipped))


def test_rn_equals_the_explicit_sum_over_pairs():
    rn = _rn()
    o, q = torch.randn(2, 4, 10), torch.randn(2, 11)
    w = torch.cat([rn.g_a.weight, rn.g_b.weight, rn.g_q.weight], 1)  # g's first layer on [o_i; o_j; q]
    total = torch.zeros(2, 16)
    for i in range(4):
        for j in range(4):
            h = torch.cat([o[:, i], o[:, j], q], 1) @ w.T + rn.g_a.bias
            total += rn.g_rest(h)
    torch.testing.assert_close(rn.relate(o, q), rn.f(total), rtol=1e-5, atol=1e-5)


def test_cells_carry_their_coordinates():
    cells = torch.zeros(1, 5, 4, 4)
    obj = cell_objects(cells)  # [1, 16, 7]
    assert obj.shape == (1, 16, 7)
    assert obj[0, 0, -2:].tolist() == [-1.0, -1.0] and obj[0, 3, -2:].tolist() == [1.0, -1.0]
    assert obj[0, 15, -2:].tolist() == [1.0, 1.0]


def test_forward_shapes_and_pair_scores():
    rn = _rn()
    x = {"images": torch.rand(2, 3, 32, 32), "index": torch.tensor([0, 0, 1]), "question": torch.randn(3, 11)}
    assert rn(x).shape == (3, 12)
    s = rn.pair_scores(x)
    assert s.shape == (3, 16, 16) and (s >= 0).all()
    assert not torch.allclose(s[0], s[1])  # two questions about one image: same objects, other pair scores
    one = {"image": x["images"][x["index"]], "question": x["question"]}
    torch.testing.assert_close(rn(x), rn(one))


def test_wrong_image_size_is_refused():
    rn = _rn()
    with pytest.raises(ValueError, match=r"\[B, 3, 32, 32\]"):
        rn({"image": torch.rand(2, 3, 64, 64), "question": torch.randn(2, 11)})
    with pytest.raises(ValueError, match="objects"):
        rn.relate(torch.randn(2, 16), torch.randn(2, 11))
