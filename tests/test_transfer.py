"""Multi-task heads and loss, and the distillation loss, against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmcourse.transfer import MultiTaskModel, distillation_loss, multitask_loss, soft_targets


def test_multitask_model_and_loss():
    torch.manual_seed(0)
    model = MultiTaskModel(torch.nn.Linear(4, 3), {"digit": 5, "speaker": 2}, dim=3)
    x = torch.randn(6, 4)
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape) == (6, 7)
    parts = model.split(out)
    assert tuple(parts["digit"].shape) == (6, 5) and torch.equal(parts["speaker"], out[:, 5:])
    y = torch.stack([torch.randint(0, 5, (6,)), torch.randint(0, 2, (6,))], 1)
    want = 1.0 * F.cross_entropy(out[:, :5], y[:, 0]) + 0.3 * F.cross_entropy(out[:, 5:], y[:, 1])
    assert float(multitask_loss([5, 2], [1.0, 0.3])(out, y)) == pytest.approx(float(want), rel=1e-6)
    only = multitask_loss([5, 2], [0.0, 1.0])(out, y)
    assert float(only) == pytest.approx(float(F.cross_entropy(out[:, 5:], y[:, 1])), rel=1e-6)
    with pytest.raises(ValueError, match="one column per task"):
        multitask_loss([5, 2], [1, 1])(out, y[:, 0])


def test_distillation_loss_is_scaled_kl():
    s = torch.tensor([[2.0, 0.0, -1.0]])
    t = torch.tensor([[0.5, 1.5, 0.0]])
    T = 2.0
    p = [math.exp(v / T) for v in t[0].tolist()]
    p = [v / sum(p) for v in p]
    q = [math.exp(v / T) for v in s[0].tolist()]
    q = [v / sum(q) for v in q]
    kl = sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))
    assert float(distillation_loss(T)(s, soft_targets(t, T))) == pytest.approx(T * T * kl, rel=1e-6)
    assert float(distillation_loss(T)(t, soft_targets(t, T))) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss()(s, torch.ones(1, 4) / 4)
