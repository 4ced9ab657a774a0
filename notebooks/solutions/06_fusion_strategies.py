"""Solutions to the exercises of chapter 06 (fusion strategies). Each ``exercise_N`` asserts its answer.

Run in fast mode (``MMCOURSE_FAST=1``) they train on a few hundred pairs for a few epochs.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from mmcourse.config import pick, seed_everything
from mmcourse.data import AVDigits
from mmcourse.data.avdigits import RECIPE, TRAIN_RECIPE
from mmcourse.fusion import (
    LowRankTensorFusion,
    TensorFusion,
    low_rank_params,
    tensor_fusion_params,
)
from mmcourse.fusion.zoo import build, predict, train
from mmcourse.models import count_parameters

KW = RECIPE  # the chapter's recipe: val / test at one level, train over a range (TRAIN_RECIPE)


@functools.cache
def _data():
    splits = {"train": AVDigits("train", **TRAIN_RECIPE)} | {s: AVDigits(s, **KW) for s in ("val", "test")}
    stats = splits["train"].stats()
    n = pick(fast=1200, full=2400)
    x = {s: d.inputs(stats) for s, d in splits.items()}
    y = {s: d.labels for s, d in splits.items()}
    keep = torch.randperm(len(y["train"]), generator=torch.Generator().manual_seed(0))[:n]  # a random subset
    x["train"], y["train"] = {k: v[keep] for k, v in x["train"].items()}, y["train"][keep]
    return x, y, stats


@functools.cache
def _fit(method: str, **kw):
    x, y, _ = _data()
    seed_everything(0)
    model = build(method, **kw)
    train(model, x["train"], y["train"], x["val"], y["val"], epochs=pick(fast=6, full=14), lr=3e-3, batch_size=32, seed=0)
    return model


def _acc(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())


def exercise_1() -> dict:
    """A product of experts built after training, from two unimodal models, vs the jointly trained one."""
    x, y, _ = _data()
    logp = {m: F.log_softmax(predict(_fit(f"{m} only"), x["test"]), -1) for m in ("image", "audio")}
    post_hoc = _acc(logp["image"] + logp["audio"], y["test"])
    joint = _acc(predict(_fit("late PoE"), x["test"]), y["test"])
    best_single = max(_acc(v, y["test"]) for v in logp.values())
    print(f"post-hoc PoE {post_hoc:.3f}, jointly trained PoE {joint:.3f}, best single modality {best_single:.3f}")
    # independent evidence multiplies: even a product built after training beats either expert alone
    assert post_hoc > best_single
    return {"post_hoc": post_hoc, "joint": joint, "best_single": best_single}


def exercise_2() -> dict:
    """Low-rank tensor fusion with rank 1, 4, 16: parameters grow linearly with the rank; accuracy need not."""
    x, y, _ = _data()
    out = {}
    for r in (1, 4, 16):
        model = _fit("low-rank tensor", rank=r)
        out[r] = (_acc(predict(model, x["test"]), y["test"]), count_parameters(model.fusion))
        assert out[r][1] == low_rank_params([32, 32], 32, r)
        assert out[r][0] > 0.3  # far above chance (0.1) at every rank
    print({r: f"acc {a:.3f}, {n:,d} fusion parameters" for r, (a, n) in out.items()})
    return out


def exercise_3() -> int:
    """For d = 32 and out = 32: at how many modalities does tensor fusion pass 10 million parameters?"""
    for m in (2, 3):  # the formula agrees with real modules where they fit in memory
        dims = {f"m{i}": 32 for i in range(m)}
        assert count_parameters(TensorFusion(dims, 32)) == tensor_fusion_params([32] * m, 32)
        assert count_parameters(LowRankTensorFusion(dims, 32, 4)) == low_rank_params([32] * m, 32, 4)
    first = next(m for m in range(1, 10) if tensor_fusion_params([32] * m, 32) > 10_000_000)
    print({m: (tensor_fusion_params([32] * m, 32), low_rank_params([32] * m, 32, 4)) for m in range(2, 6)})
    assert first == 4  # 33**3 * 32 = 1.15 M, 33**4 * 32 = 37.9 M; low rank: 17,000 at M = 4
    assert low_rank_params([32] * 4, 32, 4) < 20_000
    return first


def exercise_4() -> dict:
    """Occlusion (a 14x14 blank square) at test time: the image-only model loses more than concatenation."""
    x, y, stats = _data()
    occluded = AVDigits("test", image_occlusion=14, **KW).inputs(stats)
    out = {}
    for m in ("image only", "concat"):
        model = _fit(m)
        out[m] = (_acc(predict(model, x["test"]), y["test"]), _acc(predict(model, occluded), y["test"]))
    drop = {m: a - b for m, (a, b) in out.items()}
    print({m: f"{a:.3f} -> {b:.3f} (-{100 * drop[m]:.1f} points)" for m, (a, b) in out.items()})
    assert drop["image only"] > drop["concat"]  # the intact audio carries the fused model
    return out
