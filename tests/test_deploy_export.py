"""Export: ONNX parity with PyTorch, a dynamic batch, the fixed-batch pitfall, the served pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from mmcourse.audio import Features, stft  # noqa: E402
from mmcourse.data.avdigits import LOGMEL  # noqa: E402
from mmcourse.deploy.export import (  # noqa: E402
    ConcatServing,
    DictInputs,
    ExportError,
    export_onnx,
    input_shapes,
    parity,
    read_metadata,
    run_session,
    session,
    write_metadata,
)
from mmcourse.deploy.pipeline import AVPipeline, MelDB, export_service, service_meta  # noqa: E402
from mmcourse.deploy.serve import power_spectrogram  # noqa: E402
from mmcourse.fusion.zoo import build  # noqa: E402
from mmcourse.models.cnn import LeNet  # noqa: E402
from tests._deploy_helpers import trained_bn  # noqa: E402


def test_lenet_onnx_parity_and_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    model = trained_bn(LeNet())
    path = export_onnx(model, (torch.randn(4, 1, 28, 28),), tmp_path / "lenet.onnx", ["image"])
    assert input_shapes(path)["image"] == ["batch", 1, 28, 28]
    sess = session(path)
    x = torch.randn(70, 1, 28, 28)
    p = parity(model, sess, [x], batch_size=32)  # batches of 32, 32 and 6
    assert p["n"] == 70 and p["max_abs_diff"] < 1e-4 and p["same_predictions"] == 1.0
    for b in (1, 9):
        out = run_session(sess, [x[:b].numpy()])
        np.testing.assert_allclose(out, model(x[:b]).detach().numpy(), atol=1e-4)


def test_parity_detects_a_different_model(tmp_path):
    torch.manual_seed(0)
    model = trained_bn(LeNet())
    sess = session(export_onnx(model, (torch.randn(4, 1, 28, 28),), tmp_path / "a.onnx", ["image"]))
    torch.manual_seed(1)
    other = trained_bn(LeNet())
    assert parity(other, sess, [torch.randn(20, 1, 28, 28)])["max_abs_diff"] > 1e-3


class _SetCheck(torch.nn.Module):
    def forward(self, a, b):
        if len({a.shape[0], b.shape[0]}) > 1:
            raise ValueError("batch sizes differ")
        return a.sum(1) + b.sum(1)


class _EqCheck(torch.nn.Module):
    def forward(self, a, b):
        torch._check(a.shape[0] == b.shape[0])
        return a.sum(1) + b.sum(1)


def test_set_of_batch_sizes_fixes_the_batch_and_export_says_so(tmp_path):
    ex = (torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ExportError, match="fixed"):
        export_onnx(_SetCheck(), ex, tmp_path / "set.onnx", ["a", "b"], ["y"])
    path = export_onnx(_EqCheck(), ex, tmp_path / "eq.onnx", ["a", "b"], ["y"])
    assert input_shapes(path) == {"a": ["batch", 3], "b": ["batch", 5]}
    out = run_session(session(path), [np.ones((1, 3), np.float32), np.ones((1, 5), np.float32)])
    assert out.tolist() == [8.0]


def test_concat_serving_equals_the_fusion_model_and_exports_dynamic(tmp_path):
    torch.manual_seed(0)
    model = build("concat").eval()
    img, aud = torch.randn(6, 1, 28, 28), torch.randn(6, 40, 101)
    srv = ConcatServing(model).eval()
    with torch.no_grad():
        assert torch.allclose(srv(img, aud), model({"image": img, "audio": aud}), atol=1e-6)
        assert torch.allclose(DictInputs(model, ["image", "audio"])(img, aud), srv(img, aud))
    path = export_onnx(srv, (img[:4], aud[:4]), tmp_path / "fusion.onnx", ["image", "audio"])
    assert parity(srv, session(path), [img, aud])["max_abs_diff"] < 1e-4
    with pytest.raises(ValueError, match="ConcatFusion"):
        ConcatServing(build("GMU"))


def test_power_spectrogram_and_meldb_match_the_course_features():
    waves = 0.1 * torch.randn(5, 8000, generator=torch.Generator().manual_seed(0))
    power = power_spectrogram(waves.numpy())
    ref = stft(waves).numpy()  # torch.stft, [5, 129, 101]
    assert power.shape == ref.shape == (5, 129, 101)
    np.testing.assert_allclose(power, ref, rtol=1e-4, atol=1e-5 * ref.max())
    f = Features(LOGMEL)
    db = MelDB(f)(torch.from_numpy(power))
    assert float((db - f(waves)).abs().max()) < 1e-3  # dB


def test_av_pipeline_exports_with_metadata(tmp_path):
    torch.manual_seed(0)
    pipe = AVPipeline(build("concat"), Features(LOGMEL), {"image": (0.1, 0.3), "audio": (-30.0, 20.0)}).eval()
    img, power = torch.rand(5, 1, 28, 28), torch.rand(5, 129, 101)
    meta = service_meta("x", LOGMEL)  # the service's sizes, from the feature config
    assert {k: meta[k] for k in ("sample_rate", "samples", "n_fft", "hop_length")} == \
        {"sample_rate": 8000, "samples": 8000, "n_fft": 256, "hop_length": 80}
    path = export_service(pipe, tmp_path / "pipe.onnx", meta)
    assert input_shapes(path) == {"image": ["batch", 1, 28, 28], "power": ["batch", 129, 101]}
    sess = session(path)
    assert read_metadata(sess) == meta and meta["classes"] == [str(d) for d in range(10)]
    assert parity(pipe, sess, [img, power])["max_abs_diff"] < 1e-4
    write_metadata(path, {"name": "y", "classes": ["a"]})  # replaces the old metadata
    assert read_metadata(session(path)) == {"name": "y", "classes": ["a"]}


def test_export_rejects_mismatched_names(tmp_path):
    with pytest.raises(ValueError, match="input_names"):
        export_onnx(LeNet(), (torch.randn(4, 1, 28, 28),), tmp_path / "x.onnx", ["a", "b"])
