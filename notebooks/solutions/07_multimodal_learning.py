"""Solutions to the exercises of chapter 07 (learning across modalities). Each ``exercise_N`` asserts its answer.

Run in fast mode (``MMCOURSE_FAST=1``) they train small models for a few epochs on the chapter's data.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.config import pick, seed_everything
from mmcourse.contrastive import ContrastiveModel, classify, contrastive_batches, contrastive_loss, prototypes
from mmcourse.data import AVDigits, DictBatches
from mmcourse.data.captions import COMBOS, caption, captions, compositional_split, heldout_combos
from mmcourse.fusion.zoo import build, encoders, predict, train
from mmcourse.pretrained import image_features, text_features
from mmcourse.train import fit
from mmcourse.transfer import distillation_loss, soft_targets

CPU = torch.device("cpu")


@functools.cache
def _av():
    splits = {s: AVDigits(s) for s in ("train", "val", "test")}
    stats = splits["train"].stats()
    return {s: d.inputs(stats) for s, d in splits.items()}, {s: d.labels for s, d in splits.items()}


@functools.cache
def _contrastive(seed: int = 0) -> ContrastiveModel:
    x, y = _av()
    seed_everything(seed)
    m = ContrastiveModel(encoders(("image", "audio"), 64), {"image": 64, "audio": 64}, dim=32,
                         init_temperature=0.5)  # the chapter's recipe
    fit(m, contrastive_batches(x["train"], batch_size=64, shuffle=True, seed=seed), epochs=pick(fast=6, full=15),
        lr=2e-3, loss_fn=contrastive_loss, monitor="val_loss", seed=seed, progress=False, device=CPU)
    return m


def exercise_1() -> dict:
    """Zero-shot the other way: classify test *clips* by the nearest *image* prototype (no audio label used)."""
    x, y = _av()
    m = _contrastive()
    image_protos = prototypes(m.embed_all("image", x["train"]["image"]), y["train"], 10)  # [10, 32]
    audio_protos = prototypes(m.embed_all("audio", x["train"]["audio"]), y["train"], 10)
    clips = m.embed_all("audio", x["test"]["audio"])
    images = m.embed_all("image", x["test"]["image"])
    out = {"clips by image prototypes": float((classify(clips, image_protos) == y["test"]).float().mean()),
           "images by audio prototypes": float((classify(images, audio_protos) == y["test"]).float().mean())}
    print({k: round(v, 3) for k, v in out.items()})
    assert min(out.values()) > 0.6  # both directions work: the space is shared (chance 0.1)
    return out


@functools.cache
def _vqa():
    n_train, n_test = pick(fast=(1200, 400), full=(4000, 1000))  # the chapter's images (same feature cache)
    data = {s: captions(s) for s in ("train", "test")}
    feats = {s: image_features(data[s]["images"][:n], f"easyvqa-{s}", size=128)
             for s, n in (("train", n_train), ("test", n_test))}
    mean, std = feats["train"].mean(0), feats["train"].std(0) + 1e-6
    feats = {s: (f - mean) / std for s, f in feats.items()}
    combos = {"train": data["train"]["combo"][:n_train], "test": data["test"]["combo"][:n_test]}
    texts = {t: text_features([caption(c, s, t) for c, s in COMBOS], "easyvqa-prompts")
             for t in ("a {colour} {shape}", "a photo of a {colour} {shape}")}
    return feats, combos, texts


def _zero_shot(n_held: int, seed: int = 0) -> dict:
    feats, combos, texts = _vqa()
    held = heldout_combos(n_held, seed=0)
    idx = compositional_split(combos["train"], held)
    seed_everything(seed)
    m = ContrastiveModel({"image": nn.Identity(), "text": nn.Identity()}, {"image": 1280, "text": 384}, dim=64)
    x = {"image": feats["train"][idx], "text": texts["a {colour} {shape}"][combos["train"][idx]]}
    fit(m, contrastive_batches(x, combos["train"][idx], 256, shuffle=True, seed=seed), epochs=pick(fast=40, full=60),
        lr=1e-3, loss_fn=contrastive_loss, monitor="val_loss", restore_best=False, seed=seed, progress=False, device=CPU)
    test = torch.nonzero(combos["test"] >= 0).squeeze(1)
    pred = classify(m.embed_all("image", feats["test"][test]), m.embed_all("text", texts["a photo of a {colour} {shape}"]))
    truth = combos["test"][test]
    is_held = torch.isin(truth, torch.tensor(held))
    return {"seen": float((pred == truth)[~is_held].float().mean()), "held-out": float((pred == truth)[is_held].float().mean()),
            "training images": len(idx)}


def exercise_2() -> dict:
    """Hold out 8 combinations (one per colour) instead of 6: fewer partners per colour, still far above chance."""
    out = {n: _zero_shot(n) for n in (6, 8)}
    print({n: {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for n, r in out.items()})
    assert out[8]["training images"] < out[6]["training images"]
    for r in out.values():
        assert r["seen"] > 0.8 and r["held-out"] > 4 / len(COMBOS)  # chance is 1/24
    return out


def exercise_3() -> dict:
    """Distil with hard pseudo-labels (the teacher's argmax) instead of soft targets at T = 2."""
    x, y = _av()
    epochs = pick(fast=6, full=10)
    seed_everything(0)
    teacher = build("image only")
    train(teacher, {"image": x["train"]["image"]}, y["train"], {"image": x["val"]["image"]}, y["val"],
          epochs=epochs, lr=2e-3, batch_size=64, seed=0)
    logits = {s: predict(teacher, {"image": x[s]["image"]}) for s in ("train", "val")}
    out = {}
    for kind in ("soft", "hard"):
        seed_everything(0)
        student = build("audio only")
        if kind == "soft":
            targets, loss = {s: soft_targets(v, 2.0) for s, v in logits.items()}, distillation_loss(2.0)
        else:
            targets, loss = {s: v.argmax(1) for s, v in logits.items()}, F.cross_entropy
        fit(student, DictBatches({"audio": x["train"]["audio"]}, targets["train"], 64, shuffle=True),
            DictBatches({"audio": x["val"]["audio"]}, targets["val"], 512), epochs=epochs, lr=2e-3, loss_fn=loss,
            monitor="val_loss", progress=False, device=CPU)
        out[kind] = float((predict(student, {"audio": x["test"]["audio"]}).argmax(1) == y["test"]).float().mean())
    print({k: round(v, 3) for k, v in out.items()})
    assert min(out.values()) > 0.6  # with a teacher this accurate, both teach the clips the digits (chance 0.1)
    return out
