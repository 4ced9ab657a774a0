"""The item recogniser's outlier exposure: the pictures it trains on as "not clothing" are never the ones
its rejection is measured on."""

from __future__ import annotations

import pytest
import torch

from mmcourse.assistant import items


def test_outlier_pictures_and_test_pictures_are_disjoint_halves():
    train, test = items.outliers(), items.ood_images(n=10_000)
    assert len(train["mnist"]) == 8000 and len(test["mnist"]) == 1000
    if "emoji" not in train:
        pytest.skip("the Noto emoji are not available here")
    seen = {t.numpy().tobytes() for t in train["emoji"]}
    held_out = {t.numpy().tobytes() for t in test["emoji"]}
    assert not seen & held_out  # no picture in both halves
    assert 0.4 < len(test["emoji"]) / (len(train["emoji"]) + len(test["emoji"])) < 0.6  # about half each
    digits_train = {t.numpy().tobytes() for t in train["mnist"]}
    assert not digits_train & {t.numpy().tobytes() for t in test["mnist"]}


def test_exposure_makes_unseen_outliers_uncertain():
    """A short run (4 epochs: the one-cycle schedule needs a few) on 2,000 clothes: with exposure to 2,000 training digits, the network's predictive entropy on
    500 *other* digits rises towards the uniform's (log 10 = 2.30), well above the plainly trained network's."""
    from mmcourse.data.base import TensorData
    from mmcourse.data.images import fashion_mnist, mnist_pool
    from mmcourse.models.cnn import LeNet

    clothes = fashion_mnist("train").subset(2000)
    digits, other = mnist_pool("train").x[:2000], mnist_pool("test").x[:500]

    def entropy_on_other_digits(exposure: float) -> float:
        torch.manual_seed(0)
        model = LeNet(widths=(16, 32), hidden=128)
        items._train(model, TensorData(clothes.x, clothes.y, clothes.classes), {"mnist": digits}, epochs=4,
                     exposure=exposure, seed=0)
        with torch.no_grad():
            p = model(other).softmax(-1)  # [500, 10]
        return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())

    plain, exposed = entropy_on_other_digits(0.0), entropy_on_other_digits(0.5)
    assert exposed > plain + 0.25 and exposed > 2.1, (plain, exposed)  # measured 1.12 and 2.29 (seed 1: 1.04, 2.29)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="exposure"):
        items.train_items(exposure=-1, cache=False)
    with pytest.raises(ValueError, match="keep"):
        items.train_items(keep=1.0, cache=False)
