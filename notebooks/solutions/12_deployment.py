"""Solutions to the exercises of chapter 12 (deployment). Each runs in seconds and asserts its answer."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F


def exercise_1() -> dict:
    """Export chapter 03's ResidualCNN with a dynamic batch; parity on 64 inputs; batch 1 and 9."""
    from mmcourse.deploy.export import export_onnx, input_shapes, parity, run_session, session
    from mmcourse.models.cnn import ResidualCNN

    torch.manual_seed(0)
    model = ResidualCNN()
    model.train()
    with torch.no_grad():
        model(torch.randn(32, 1, 28, 28))  # BatchNorm statistics that are not the defaults
    model.eval()
    path = export_onnx(model, (torch.randn(4, 1, 28, 28),), Path(tempfile.mkdtemp()) / "rescnn.onnx", ["image"])
    sess = session(path)
    p = parity(model, sess, [torch.randn(64, 1, 28, 28)])
    shapes = [run_session(sess, [np.random.rand(b, 1, 28, 28).astype(np.float32)]).shape for b in (1, 9)]
    assert input_shapes(path)["image"][0] == "batch"
    assert p["max_abs_diff"] < 1e-4 and p["same_predictions"] == 1.0
    assert shapes == [(1, 10), (9, 10)]
    return {"max_abs_diff": p["max_abs_diff"], "shapes": shapes}


class PairModel(torch.nn.Module):
    """Two inputs whose batch sizes must agree, checked the export-friendly way."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        torch._check(a.shape[0] == b.shape[0])  # a symbolic fact, not a Python branch on a hash
        return a.mean(1) * b.mean(1)  # [B]


def exercise_2() -> list[tuple[int, ...]]:
    """``torch._check`` keeps the batch symbolic: the export runs at batch 1 and 9."""
    from mmcourse.deploy.export import export_onnx, input_shapes, run_session, session

    path = export_onnx(PairModel(), (torch.randn(4, 3), torch.randn(4, 6)), Path(tempfile.mkdtemp()) / "pair.onnx",
                       ["a", "b"], ["y"])
    sess = session(path)
    out = []
    for bsz in (1, 9):
        a, b = np.random.rand(bsz, 3).astype(np.float32), np.random.rand(bsz, 6).astype(np.float32)
        y = run_session(sess, [a, b])
        np.testing.assert_allclose(y, a.mean(1) * b.mean(1), rtol=1e-5)
        out.append(y.shape)
    assert input_shapes(path) == {"a": ["batch", 3], "b": ["batch", 6]} and out == [(1,), (9,)]
    return out


def exercise_3() -> list[float]:
    """Higher T -> higher entropy of the softened teacher; a perfect copy leaves only (1 - alpha) * CE."""
    from mmcourse.deploy.distill import distillation_loss

    g = torch.Generator().manual_seed(0)
    teacher = 4 * torch.randn(16, 10, generator=g)
    labels = teacher.argmax(1)
    entropies = []
    for t in (1.0, 2.0, 4.0, 8.0):
        p = F.softmax(teacher / t, -1)
        entropies.append(float(-(p * p.log()).sum(-1).mean()))
    assert all(a < b for a, b in zip(entropies, entropies[1:], strict=False)) and entropies[-1] < np.log(10)
    for t, alpha in ((2.0, 0.5), (8.0, 0.9)):
        loss = distillation_loss(teacher, teacher, labels, t, alpha)
        assert torch.allclose(loss, (1 - alpha) * F.cross_entropy(teacher, labels), atol=1e-6)
    return entropies


def exercise_4() -> dict[int, int]:
    """max_queue=2 and a 300 ms window: a burst of 12 gets some 503s (with Retry-After), the rest 200."""
    import httpx

    from mmcourse.audio import Features, to_wav_bytes
    from mmcourse.data.avdigits import LOGMEL
    from mmcourse.deploy.pipeline import AVPipeline, export_service, service_meta
    from mmcourse.deploy.serve import Limits, create_app, encode_png, running
    from mmcourse.fusion.zoo import build

    torch.manual_seed(0)
    pipe = AVPipeline(build("concat"), Features(LOGMEL), {"image": (0.13, 0.3), "audio": (-30.0, 20.0)})
    path = export_service(pipe, Path(tempfile.mkdtemp()) / "svc.onnx", service_meta("ex4", LOGMEL))
    files = {"image": ("d.png", encode_png(np.zeros((28, 28), np.uint8)), "image/png"),
             "audio": ("d.wav", to_wav_bytes(0.1 * torch.randn(8000), 8000), "audio/wav")}

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            return await asyncio.gather(*(client.post("/predict", files=files) for _ in range(12)))

    with running(create_app(path, Limits(max_batch=2, max_wait_ms=300, max_queue=2))) as url:
        answers = asyncio.run(burst(url))
    counts = {c: sum(r.status_code == c for r in answers) for c in (200, 503)}
    assert counts[200] + counts[503] == 12 and counts[503] >= 1 and counts[200] >= 2
    assert all(r.headers.get("retry-after") == "1" for r in answers if r.status_code == 503)
    return counts
