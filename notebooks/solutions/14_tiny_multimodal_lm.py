"""Solutions to the exercises of chapter 14 (a tiny multimodal language model). Each ``exercise_N`` asserts its answer.

Run in fast mode (``MMCOURSE_FAST=1``) they train small models for an epoch or two on a slice of easy-VQA.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from mmcourse.config import pick, seed_everything
from mmcourse.data.vqa import answers as vqa_answers
from mmcourse.data.vqa import easy_vqa_split
from mmcourse.models import count_parameters
from mmcourse.models.gpt import GPT, GPTConfig, generate, lm_loss
from mmcourse.models.vlm import (
    Batches,
    CrossAttnVLM,
    ForFit,
    answer,
    collate,
    encode_pair,
    patch_features,
    vqa_vocab,
)
from mmcourse.train import fit

CPU = torch.device("cpu")


@functools.cache
def _data():
    ans = vqa_answers()
    d = {s: easy_vqa_split(s) for s in ("train", "test")}
    vocab = vqa_vocab(d["train"]["questions"], ans, ["a"])
    n_images = pick(fast=400, full=4000)
    n = {"train": n_images, "test": n_images // 4}
    rows = {s: [i for i in range(len(d[s]["questions"])) if int(d[s]["image_index"][i]) < n[s]] for s in d}
    feats = {s: patch_features(d[s]["images"][: n[s]], f"easyvqa-{s}-{n[s]}") for s in d}
    return ans, d, vocab, rows, feats


def _pairs(split: str, lop: bool):
    ans, d, vocab, rows, _ = _data()
    return collate([encode_pair(vocab, d[split]["questions"][i], ans[int(d[split]["answer"][i])], lop)
                    for i in rows[split]], vocab.pad_id)


def _train(model, batches, epochs: int, lr: float = 2e-3):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * len(batches), pct_start=0.1)
    fit(ForFit(model), batches, epochs=epochs, optimizer=opt, scheduler=sched, loss_fn=lm_loss, progress=False,
        device=CPU, monitor="train_loss")
    return model.eval()


@functools.cache
def _lm() -> GPT:
    _, _, vocab, _, _ = _data()
    x, y = _pairs("train", lop=True)
    seed_everything(0)
    lm = GPT(GPTConfig(len(vocab), block_size=32, n_layer=4, n_head=4, n_embd=128))
    return _train(lm, Batches(x, y, batch_size=128, shuffle=True), pick(fast=1, full=3))


def exercise_1() -> dict:
    """Top-k = 1 keeps only the most likely token: sampling becomes greedy, whatever the temperature."""
    _, _, vocab, _, _ = _data()
    lm = _lm()
    start = torch.full((50, 1), vocab.bos_id)
    greedy = generate(lm, start, 12, temperature=0, eos_id=vocab.eos_id)
    out = {}
    for t in (0.5, 2.0):
        g = torch.Generator().manual_seed(1)
        s = generate(lm, start, 12, temperature=t, top_k=1, eos_id=vocab.eos_id, generator=g)
        out[t] = bool(torch.equal(s, greedy))
    print("top-k = 1 equals greedy at T = 0.5, 2.0:", out, "| e.g.", vocab.decode(greedy[0]))
    assert all(out.values())  # every row is the same greedy question: no diversity left
    assert len({vocab.decode(r) for r in greedy}) == 1
    return out


def exercise_2() -> dict:
    """Freezing the LM (Flamingo's recipe): only the projector and the gated layers train."""
    ans, d, vocab, rows, feats = _data()
    x, y = _pairs("train", lop=False)
    img = d["train"]["image_index"][rows["train"]]
    qs = [d["test"]["questions"][i] for i in rows["test"]]
    gold = [ans[int(d["test"]["answer"][i])] for i in rows["test"]]
    blind = answer(_lm(), vocab, qs, temperature=0)
    results = {"blind": float(np.mean([p == g for p, g in zip(blind, gold, strict=True)]))}
    for frozen in (True, False):
        seed_everything(0)
        m = CrossAttnVLM(copy.deepcopy(_lm()), feats["train"].shape[2], feats["train"].shape[1])
        m.gpt.requires_grad_(not frozen)
        _train(m, Batches(x, y, img, feats["train"], batch_size=128, shuffle=True), pick(fast=2, full=8))
        pred = answer(m, vocab, qs, feats["test"][d["test"]["image_index"][rows["test"]]], temperature=0)
        results["frozen" if frozen else "trained"] = {
            "exact_match": float(np.mean([p == g for p, g in zip(pred, gold, strict=True)])),
            "trainable": count_parameters(m)}
    print(results)
    assert results["frozen"]["trainable"] < results["trained"]["trainable"] - 700_000  # the GPT's ~0.8 M are frozen
    assert results["frozen"]["exact_match"] > results["blind"]  # the gated layers alone make the frozen LM see
    return results


def exercise_3() -> float:
    """Twice the global batch on 2 processes is a different training run: the curves part."""
    out = Path(tempfile.mkdtemp(prefix="mmcourse-ex3-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MMCOURSE_DEVICE": "cpu"}
    common = ["--steps", "30", "--block", "16", "--embd", "32"]
    subprocess.run([sys.executable, "-m", "mmcourse.distributed", *common, "--batch", "32", "--out",
                    str(out / "one.json")], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                    "mmcourse.distributed", *common, "--batch", "64", "--out", str(out / "two.json")],
                   env=env, check=True, capture_output=True)
    a, b = (json.loads((out / f"{k}.json").read_text())["losses"] for k in ("one", "two"))
    diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
    print(f"batch 32 on 1 process vs 64 on 2: max loss difference {diff:.3f} (same batch: ~1e-7)")
    assert diff > 1e-2  # other batches, other gradients: not the same run (the linear rule would also double lr)
    return diff
