"""Chapter 08's speaker adaptation: the held-out splits, the adaptation draw, what each way trains."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mmcourse.data.fsdd import SPEAKERS, Recording
from mmcourse.finetune import speaker as sp
from mmcourse.finetune.freeze import changed, snapshot
from mmcourse.models.cnn import SpectrogramCNN


def _recordings() -> list[Recording]:  # FSDD's 3,000 names, without reading audio
    return [Recording(None, d, s, t) for s in sorted(SPEAKERS) for d in range(10) for t in range(50)]


@pytest.mark.parametrize("speaker", sorted(SPEAKERS))
def test_split_holds_the_speaker_out_and_never_adapts_on_test_takes(speaker):
    recs = _recordings()
    sp_ = sp.split_for(speaker, recs)
    sizes = {k: len(getattr(sp_, k)) for k in ("train", "val", "seen_test", "unseen_test", "pool")}
    assert sizes == {"train": 2000, "val": 250, "seen_test": 250, "unseen_test": 400, "pool": 100}
    sets = [set(getattr(sp_, k).tolist()) for k in sizes]
    assert sum(map(len, sets)) == len(set().union(*sets)) == 3000  # a partition of FSDD
    for k in ("train", "val", "seen_test"):
        assert speaker not in {recs[i].speaker for i in getattr(sp_, k)}
    assert {recs[i].take for i in sp_.unseen_test} == set(range(40))
    for k in (1, 5, 10):
        for seed in range(3):
            idx = sp.adaptation_set(sp_, k, seed)
            assert not set(idx.tolist()) & set(sp_.unseen_test.tolist())  # adaptation and test takes are disjoint
            assert {recs[i].speaker for i in idx} == {speaker} and all(recs[i].take >= 40 for i in idx)
            assert torch.bincount(torch.tensor([recs[i].digit for i in idx]), minlength=10).tolist() == [k] * 10


def test_adaptation_draw_is_seeded_and_capped_training_is_per_speaker():
    sp_ = sp.split_for("theo", _recordings())
    assert torch.equal(sp.adaptation_set(sp_, 5, 1), sp.adaptation_set(sp_, 5, 1))
    assert not torch.equal(sp.adaptation_set(sp_, 5, 1), sp.adaptation_set(sp_, 5, 2))
    assert set(sp.adaptation_set(sp_, 10, 0).tolist()) == set(sp_.pool.tolist())
    with pytest.raises(ValueError, match="k must be between 1 and 10"):
        sp.adaptation_set(sp_, 11, 0)
    with pytest.raises(ValueError, match="speaker must be one of"):
        sp.split_for("alice", _recordings())
    capped = sp.split_for("theo", _recordings(), train_per_speaker=30)
    recs = _recordings()
    per = torch.bincount(torch.tensor([sorted(SPEAKERS).index(recs[i].speaker) for i in capped.train]), minlength=6)
    assert per.tolist() == [30, 30, 30, 30, 0, 30]  # theo is 5th in sorted order


@pytest.mark.parametrize("way, trains", [("head", {"head"}), ("last", {"head", "features.block3"}),
                                         ("all", {"head", "features.norm", "features.block1", "features.block2",
                                                  "features.block3"})])
def test_each_way_changes_only_what_it_trains_and_frozen_batchnorm_stays(way, trains):
    torch.manual_seed(0)
    base = SpectrogramCNN(n_mels=40, width=4).eval()
    x, y = torch.randn(20, 40, 51) * 10, torch.arange(20) % 10
    cfg = replace(sp.FULL, adapt_steps=3, adapt_batch=8)
    before = snapshot(base)
    buffers = {n: b.clone() for n, b in base.named_buffers()}
    m = sp.adapt(base, x, y, way, cfg, seed=0)
    assert not changed(base, before)  # the base model is untouched (a copy adapts)
    moved = {".".join(n.split(".")[:2]) if n.startswith("features") else "head" for n in changed(m.model, before)}
    assert moved == trains
    for n, b in m.model.named_buffers():  # BatchNorm statistics move only where the block trains
        block = ".".join(n.split(".")[:2])
        if "running_mean" in n:
            assert torch.equal(b, buffers[n]) == (block not in trains), n
    assert not m.training and all(not mod.training for mod in m.modules())
    with pytest.raises(ValueError, match="way must be one of"):
        sp.prepare(base, "middle")


def test_recovered_share_of_the_gap():
    r = {"seen": 0.9, "unseen": 0.5, "acc_all": torch.tensor([[0.6, 0.7], [0.8, 0.9]])}
    assert sp.recovered(r, "all", 1).tolist() == pytest.approx([0.75, 1.0])
    assert sp.recovered(r, "all", 0).tolist() == pytest.approx([0.25, 0.5])
