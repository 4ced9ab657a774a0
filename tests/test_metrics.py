"""Our metrics agree with scikit-learn on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from mmcourse import metrics


@pytest.mark.parametrize("seed", range(5))
def test_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    y_true = rng.integers(0, k, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, k, 200))
    if seed == 4:
        y_pred[y_pred == 0] = 1  # a class never predicted: zero_division matters
    assert metrics.accuracy(torch.tensor(y_true), torch.tensor(y_pred)) == pytest.approx(
        skm.accuracy_score(y_true, y_pred)
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, k).numpy(), skm.confusion_matrix(y_true, y_pred, labels=range(k))
    )
    for avg in ("macro", "micro"):
        ours = metrics.precision_recall_f1(y_true, y_pred, average=avg)
        ref = skm.precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)[:3]
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
    p, r, f = metrics.precision_recall_f1(y_true, y_pred, average=None, num_classes=k)
    rp, rr, rf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(k), zero_division=0)
    np.testing.assert_allclose(p.numpy(), rp, rtol=1e-6)
    np.testing.assert_allclose(r.numpy(), rr, rtol=1e-6)
    np.testing.assert_allclose(f.numpy(), rf, rtol=1e-6)


def test_report_and_errors():
    text = metrics.report([0, 1, 1, 2], [0, 1, 2, 2], classes=["a", "b", "c"])
    assert "accuracy 0.7500" in text and "macro" in text
    with pytest.raises(ValueError, match="y_pred has 2"):
        metrics.accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        metrics.accuracy(torch.zeros(2, 2), torch.zeros(2, 2))
