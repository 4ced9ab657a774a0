"""Tiny U-Net, IoU, and the generated-shapes data."""

import pytest
import torch

from mmcourse.data.shapes import SHAPE_CLASSES, shapes
from mmcourse.models.segmentation import TinyUNet, iou_per_class, mean_iou

REFERENCE = [-0.2331, 0.3060, 0.3343, 0.2980]  # logits at pixel (0, 0): seed-0 weights, seed-1 input


def test_iou_against_hand_computed_case():
    target = torch.tensor([[0, 0, 1, 1],
                           [0, 0, 1, 1],
                           [2, 2, 0, 0]])  # fmt: skip
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 0, 1, 0],
                         [2, 0, 0, 0]])  # fmt: skip
    # class 0: target 6 px, pred 7 px, both 5 -> 5 / 8
    # class 1: target 4 px, pred 4 px, both 3 -> 3 / 5
    # class 2: target 2 px, pred 1 px, both 1 -> 1 / 2
    # class 3: absent from both -> NaN
    iou = iou_per_class(pred, target, num_classes=4)
    torch.testing.assert_close(iou[:3], torch.tensor([5 / 8, 3 / 5, 1 / 2]))
    assert iou[3].isnan()
    assert mean_iou(pred, target, 4) == pytest.approx((3 / 5 + 1 / 2) / 2)
    assert mean_iou(pred, target, 4, ignore_background=False) == pytest.approx((5 / 8 + 3 / 5 + 1 / 2) / 3)
    assert mean_iou(target, target, 4) == 1.0


def test_iou_agrees_with_sklearn_jaccard():
    from sklearn.metrics import jaccard_score

    g = torch.Generator().manual_seed(0)
    t, p = torch.randint(0, 4, (3, 8, 8), generator=g), torch.randint(0, 4, (3, 8, 8), generator=g)
    ours = iou_per_class(p, t, 4)
    ref = jaccard_score(t.flatten().numpy(), p.flatten().numpy(), average=None, labels=[0, 1, 2, 3])
    torch.testing.assert_close(ours, torch.tensor(ref, dtype=torch.float32))


def test_iou_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        iou_per_class(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="argmax"):
        iou_per_class(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="0..1"):
        iou_per_class(torch.full((2, 2), 2), torch.zeros(2, 2, dtype=torch.long), 2)


def test_unet_shapes_reference_and_feature_maps():
    torch.manual_seed(0)
    model = TinyUNet(in_channels=1, num_classes=4, width=8).eval()
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert out.shape == (2, 4, 32, 32)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(REFERENCE), atol=2e-4, rtol=0)
    maps = model.feature_maps(x)
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {
        "enc1": (8, 32, 32), "enc2": (16, 16, 16), "bottleneck": (32, 8, 8),
        "dec2": (16, 16, 16), "dec1": (8, 32, 32), "logits": (4, 32, 32)}  # fmt: skip
    torch.testing.assert_close(maps["logits"], out)
    fcn = TinyUNet(width=8, skip=False)
    assert fcn(x).shape == (2, 4, 32, 32)
    assert sum(p.numel() for p in fcn.parameters()) < sum(p.numel() for p in model.parameters())


def test_unet_bad_input():
    with pytest.raises(ValueError, match="4-D"):
        TinyUNet()(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="1 input channel"):
        TinyUNet()(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        TinyUNet()(torch.zeros(1, 1, 30, 32))


def test_shapes_data_is_deterministic_and_consistent():
    a, b = shapes(20, size=32, seed=3), shapes(20, size=32, seed=3)
    assert a.x.shape == (20, 1, 32, 32) and a.y.shape == (20, 32, 32) and a.y.dtype == torch.long
    torch.testing.assert_close(a.x, b.x)
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, shapes(20, size=32, seed=4).y)
    assert a.classes == SHAPE_CLASSES and set(a.y.unique().tolist()) == {0, 1, 2, 3}
    # Shapes are brighter than the background: the mean intensity inside masks is well above outside.
    inside, outside = a.x[:, 0][a.y > 0].mean(), a.x[:, 0][a.y == 0].mean()
    assert inside > outside + 0.3
    # Every image holds at least one shape.
    assert (a.y.flatten(1) > 0).any(1).all()
    with pytest.raises(ValueError, match="size >= 16"):
        shapes(4, size=8)


def test_unet_learns_to_segment_shapes():
    """A short real fit: a small U-Net separates shapes from background (foreground IoU > 0.5)."""
    torch.manual_seed(0)
    data = shapes(128, size=32, seed=0)
    model = TinyUNet(width=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        for i in range(0, 128, 16):
            loss = torch.nn.functional.cross_entropy(model(data.x[i:i + 16]), data.y[i:i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
    # So few steps leave BatchNorm's running statistics behind the weights: re-estimate them
    # over the training images (cumulative average), as one does after a short fine-tune.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(data.x)
    model.eval()
    test = shapes(32, size=32, seed=1)
    with torch.no_grad():
        pred = model(test.x).argmax(1)
    fg = iou_per_class((pred > 0).long(), (test.y > 0).long(), 2)[1]
    assert fg > 0.5, fg
