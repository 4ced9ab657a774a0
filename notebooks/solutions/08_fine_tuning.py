"""Solutions to the exercises of chapter 08 (fine-tuning). Each ``exercise_N`` asserts its answer.

Run in fast mode (``MMCOURSE_FAST=1``) they train small models for a few epochs on the chapter's data.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from mmcourse.finetune import images as fi
from mmcourse.finetune import sweep


def exercise_1() -> dict[int, dict]:
    """Partial fine-tuning with the last k = 1, 4, 8 blocks at the smallest label count.

    Answer: the trainable share grows fast with k (the last blocks hold most of MobileNetV2's weights:
    the last block alone, a 1 x 1 conv to 1,280 channels, is 19 % of them), while each epoch stays cheap
    because the frozen prefix is cached. Here every k beats chance by far; which k wins depends on the
    label count (try the chapter's sizes in full mode)."""
    base = sweep.config("partial", sweep.settings()["labels"][0])
    runs = {k: sweep.run(sweep.Config(**{**base.__dict__, "k": k})) for k in (1, 4, 8)}
    for k, r in runs.items():
        print(f"k = {k}: {r['trainable']:>9,d} trainable ({r['trainable_pct']:.1f} %), test {r['test_acc']:.3f}")
    shares = [runs[k]["trainable_pct"] for k in (1, 4, 8)]
    assert shares[0] < shares[1] < shares[2]
    assert 15 < shares[0] < 25  # block 18 (320 -> 1,280) and the head
    assert all(r["test_acc"] > 0.4 for r in runs.values())  # chance is 0.1
    return runs


def exercise_2() -> dict[int, int]:
    """LoRA's trainable parameters by hand: ``r (c_in + c_out)`` per 1 x 1 conv, plus the head.

    Answer: r = 1: 18,528 + 12,810; each rank adds 18,528 (the 34 convs' c_in + c_out summed).
    r = 1 and 2 train under 3 % of the 2.24 M parameters; r = 4 trains 3.9 %."""
    counts = {}
    for r in (1, 2, 4, 8):
        model = fi.build(size=32)
        total = sum(p.numel() for p in model.parameters())
        convs = [m for n, m in model.named_modules() if n in set(fi.pointwise_convs(model))]
        by_hand = r * sum(c.in_channels + c.out_channels for c in convs) + 1280 * 10 + 10
        net, _ = fi.strategy(model, "lora", lr=1e-3, r=r)
        counts[r] = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert counts[r] == by_hand, (r, counts[r], by_hand)
        print(f"r = {r}: {counts[r]:,d} trainable = {100 * counts[r] / total:.2f} % of {total:,d}")
    assert counts[2] / total < 0.03 < counts[4] / total
    return counts


def exercise_3() -> torch.Tensor:
    """A 400 x 600 RGB photo into a ``FashionNet``: the error names ``x`` and the fix; then it fits.

    Answer: the model wants ``[B, 1 or 3, 28, 28]``: add the batch dimension and resize to 28 x 28
    (``F.interpolate(..., antialias=True)``); the grey or RGB channels are both accepted."""
    from mmcourse.data import photo

    model = fi.build(size=32).eval()
    coffee = photo("coffee")  # [3, 400, 600]
    try:
        model(coffee)
        raise AssertionError("a [3, H, W] image must be refused")
    except ValueError as err:
        assert "unsqueeze(0)" in str(err)
    try:
        model(coffee.unsqueeze(0))
        raise AssertionError("a 400 x 600 image must be refused")
    except ValueError as err:
        assert "interpolate" in str(err) and "28" in str(err)
    x = F.interpolate(coffee.unsqueeze(0), size=(28, 28), mode="bilinear", antialias=True)  # [1, 3, 28, 28]
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, 10)
    return logits


def exercise_4() -> dict[int, tuple[float, float]]:
    """Adapt the head only, but start from a freshly initialised head instead of the trained one.

    Returns ``{k: (kept head, new head)}`` accuracies on the held-out speaker's test takes. The answer:
    with a handful of recordings a new head is far worse; the trained head already knows the digits
    from five voices, and the new one must learn them from ``10 k`` recordings in the same few steps.
    """
    from mmcourse.config import pick, seed_everything
    from mmcourse.finetune import speaker as sp

    cfg = pick(fast=sp.FAST, full=sp.FULL)
    speaker, seed = cfg.speakers[0], 0
    feats, labels, recs = sp.logmel(cfg)
    split = sp.split_for(speaker, recs, cfg.train_per_speaker)
    base = sp.train_base(feats, labels, split, cfg)
    test_x, test_y = feats[split.unseen_test], labels[split.unseen_test]
    out = {}
    for k in cfg.ks:
        idx = sp.adaptation_set(split, k, seed)
        kept = sp.adapt(base, feats[idx], labels[idx], "head", cfg, seed)
        fresh = copy.deepcopy(base)
        seed_everything(seed)
        fresh.head[-1].reset_parameters()  # the head's Linear layer, newly initialised
        new = sp.adapt(fresh, feats[idx], labels[idx], "head", cfg, seed)
        out[k] = (sp.accuracy(kept, test_x, test_y), sp.accuracy(new, test_x, test_y))
        print(f"k={k:2d}: kept head {out[k][0]:.3f}, new head {out[k][1]:.3f}")
    assert out[cfg.ks[0]][0] > out[cfg.ks[0]][1]  # with one recording per digit, the trained head wins
    assert not torch.equal(fresh.head[-1].weight, base.head[-1].weight)
    return out
