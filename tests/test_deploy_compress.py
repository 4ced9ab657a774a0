"""Compression: structured and magnitude pruning, int8 quantization, the distillation loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mmcourse.deploy.distill import DistillLoss, distillation_loss, pack_targets
from mmcourse.deploy.prune import channel_scores, magnitude_prune, prune_lenet, sparsity
from mmcourse.models import count_parameters
from mmcourse.models.cnn import LeNet
from tests._deploy_helpers import trained_bn


def _lenet(seed: int = 0) -> LeNet:
    torch.manual_seed(seed)
    m = trained_bn(LeNet(), batch=32)  # running statistics
    with torch.no_grad():
        for bn in (m.features.conv1[1], m.features.conv2[1]):
            bn.weight.uniform_(0.2, 2.0)  # distinct channel scores
    return m


def test_structured_pruning_builds_a_smaller_net_with_the_same_output_shape():
    big = _lenet()
    small = prune_lenet(big, keep=0.5).eval()
    assert small.features.conv1[0].out_channels == 8 and small.features.conv2[0].out_channels == 16
    assert count_parameters(small) < count_parameters(big) / 2
    x = torch.randn(5, 1, 28, 28)
    assert small(x).shape == big(x).shape == (5, 10)


def test_structured_pruning_equals_the_big_net_with_the_dropped_channels_silenced():
    big = _lenet()
    small = prune_lenet(big, keep=0.5).eval()
    masked = prune_lenet(big, keep=1.0).eval()  # a copy
    with torch.no_grad():
        for conv, bn in ((masked.features.conv1[0], masked.features.conv1[1]),
                         (masked.features.conv2[0], masked.features.conv2[1])):
            scores = channel_scores(conv, bn)
            drop = scores.argsort()[: len(scores) // 2]  # the lowest half: what prune_lenet removed
            bn.weight[drop] = 0.0
            bn.bias[drop] = 0.0  # BN output 0 -> ReLU 0: the channel contributes nothing
    x = torch.randn(7, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)


def test_prune_lenet_keep_all_is_identical_and_bad_input():
    big = _lenet()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(prune_lenet(big, 1.0).eval()(x), big(x))
    with pytest.raises(ValueError, match="keep"):
        prune_lenet(big, 0.0)
    with pytest.raises(ValueError, match="LeNet"):
        prune_lenet(torch.nn.Linear(2, 2), 0.5)


def test_magnitude_pruning_zeroes_the_smallest_weights():
    big = _lenet()
    pruned = magnitude_prune(big, 0.7)
    assert abs(sparsity(pruned) - 0.7) < 1e-3 and sparsity(big) < 0.01  # the original is unchanged
    w_big = torch.cat([m.weight.flatten() for m in big.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)])
    w_p = torch.cat([m.weight.flatten() for m in pruned.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)])
    kept = w_p != 0
    assert w_big[~kept].abs().max() <= w_big[kept].abs().min()  # global: every zeroed |w| <= every kept |w|
    assert count_parameters(pruned) == count_parameters(big)  # same shapes: not smaller, not faster


def test_distillation_loss_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    T, a = 3.0, 0.7
    p_t = F.softmax(t / T, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / T, -1))).sum(-1).mean()
    expected = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
    assert torch.allclose(distillation_loss(s, t, y, T, a), expected, atol=1e-6)
    assert torch.allclose(distillation_loss(t, t, y, T, a), (1 - a) * F.cross_entropy(t, y), atol=1e-6)
    loss = DistillLoss(T, a)
    assert torch.allclose(loss(s, pack_targets(y, t)), expected, atol=1e-6)
    assert torch.allclose(loss(s, y), F.cross_entropy(s, y))  # validation batches: plain labels
    with pytest.raises(ValueError, match="differ"):
        distillation_loss(s, t[:, :5], y)


def test_onnx_int8_quantization_is_small_and_close(tmp_path):
    pytest.importorskip("onnxruntime")
    from mmcourse.deploy.export import export_onnx, file_kb, run_session, session
    from mmcourse.deploy.quantize import (
        ArrayCalibrationReader,
        quantize_dynamic_onnx,
        quantize_static_onnx,
    )

    big = _lenet()
    fp32 = export_onnx(big, (torch.randn(4, 1, 28, 28),), tmp_path / "fp32.onnx", ["image"])
    x = torch.rand(64, 1, 28, 28)
    ref = run_session(session(fp32), [x.numpy()])
    dyn = quantize_dynamic_onnx(fp32, tmp_path / "dyn.onnx")
    static = quantize_static_onnx(fp32, tmp_path / "static.onnx", {"image": x.numpy()}, batch_size=16)
    for q in (dyn, static):
        assert file_kb(q) < 0.35 * file_kb(fp32)
        out = run_session(session(q), [x.numpy()])
        rel = np.abs(out - ref).max() / np.abs(ref).max()
        assert 0 < rel < 0.1, rel  # changed (int8), but close
    reader = ArrayCalibrationReader({"image": x.numpy()}, batch_size=30)
    assert [len(b["image"]) for b in iter(reader.get_next, None)] == [30, 30, 4]
    reader.rewind()
    assert reader.get_next() is not None
    with pytest.raises(ValueError, match="same length"):
        ArrayCalibrationReader({"a": np.zeros((3, 1)), "b": np.zeros((4, 1))})


def test_torch_dynamic_int8_quantizes_linear_layers():
    from mmcourse.deploy.quantize import state_dict_kb, torch_dynamic_int8

    big = _lenet()
    q = torch_dynamic_int8(big)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        diff, scale = float((q(x) - big(x)).abs().max()), float(big(x).abs().max())
    assert 0 < diff < 0.1 * scale
    assert state_dict_kb(q) < 0.4 * state_dict_kb(big)  # the 200k-weight Linear layers dominate LeNet
