"""Solutions to the exercises of chapter 04 (recurrent networks). Each function asserts its answer.

Run one with ``python notebooks/solutions/04_recurrent_networks.py`` (all) or import it;
``MMCOURSE_FAST=1`` keeps the training small.
"""

from __future__ import annotations

import contextlib

import torch

from mmcourse.audio import FeatureConfig, cached_features
from mmcourse.config import pick, seed_everything
from mmcourse.data import FSDD, tiny_shakespeare
from mmcourse.device import configure_threads
from mmcourse.metrics import accuracy
from mmcourse.models.sequence import (
    PaddedSequences,
    SequenceClassifier,
    frame_lengths,
    masked_mean_std,
)
from mmcourse.text import Vocab, split_text
from mmcourse.train import fit, loaders, predict

CFG = FeatureConfig("mfcc", hop_length=160)


def _mfcc_data():
    """Standardised MFCC frames of FSDD's official split, as in the chapter."""
    out = []
    for split in ("train", "test"):
        ds = FSDD(split)
        feats = cached_features(f"fsdd_{split}", ds.waves, CFG).transpose(1, 2)  # [N, T, 13]
        out.append((feats, frame_lengths(ds.lengths, CFG.hop_length, feats.shape[1]), ds.labels))
    (xtr, ltr, ytr), (xte, lte, yte) = out
    mu, sd = masked_mean_std(xtr, ltr)
    return ((xtr - mu) / sd, ltr, ytr), ((xte - mu) / sd, lte, yte)


@contextlib.contextmanager
def _one_thread():
    """Small recurrent nets on a CPU run fastest on one thread (as the chapter does; the
    MMCOURSE_THREADS / OMP_NUM_THREADS variables still win)."""
    before = torch.get_num_threads()
    configure_threads(preferred=1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(cell: str, epochs: int, n_train: int) -> tuple[SequenceClassifier, float, tuple]:
    with _one_thread():
        return _train_one_thread(cell, epochs, n_train)


def _train_one_thread(cell: str, epochs: int, n_train: int) -> tuple[SequenceClassifier, float, tuple]:
    (xtr, ltr, ytr), test = _mfcc_data()
    idx = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(0))[:n_train]
    train_dl, test_dl = loaders(PaddedSequences(xtr[idx], ltr[idx], ytr[idx]), PaddedSequences(*test), batch_size=64)
    seed_everything(0)
    model = SequenceClassifier(13, 10, hidden=64, cell=cell, dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=epochs * len(train_dl))
    fit(model, train_dl, epochs=epochs, optimizer=opt, scheduler=sched, restore_best=False, progress=False)
    out, y = predict(model, test_dl)
    return model, accuracy(y, out.argmax(-1)), test


def exercise_1() -> dict:
    """GRU instead of LSTM: about as accurate, with 3/4 of the recurrent parameters
    (3 gate blocks instead of 4, each ``[H, I] + [H, H] + 2 [H]``)."""
    epochs, n = pick(fast=4, full=12), pick(fast=600, full=2700)
    gru, gru_acc, _ = _train("gru", epochs, n)
    lstm = SequenceClassifier(13, 10, hidden=64, cell="lstm")
    n_gru = sum(p.numel() for p in gru.rnn.parameters())
    n_lstm = sum(p.numel() for p in lstm.rnn.parameters())
    assert n_gru * 4 == n_lstm * 3, (n_gru, n_lstm)
    assert gru_acc >= pick(fast=0.5, full=0.95), gru_acc  # chance is 0.1
    return {"gru_acc": gru_acc, "gru_rnn_params": n_gru, "lstm_rnn_params": n_lstm}


def exercise_2() -> dict:
    """Forgetting the lengths: with every length set to the padded length, the LSTM reads the
    padding frames after each recording, its final state changes and so do its predictions."""
    model, acc_true, (xte, lte, yte) = _train("lstm", pick(fast=4, full=12), pick(fast=800, full=2700))
    model.eval()
    with torch.no_grad():
        pred_true = model(xte, lte).argmax(-1)
        pred_padded = model(xte, torch.full_like(lte, xte.shape[1])).argmax(-1)
    acc_padded = accuracy(yte, pred_padded)
    changed = int((pred_true != pred_padded).sum())
    assert abs(accuracy(yte, pred_true) - acc_true) < 1e-6
    assert changed > 0, "reading the padding changed no prediction?"
    assert acc_padded < acc_true, (acc_padded, acc_true)
    return {"acc_true_lengths": acc_true, "acc_padded_lengths": acc_padded, "predictions_changed": changed}


def exercise_3() -> dict:
    """Temperature by hand on the unigram log-frequencies of Tiny Shakespeare: softmax(z / tau)
    tends to one-hot on the arg-max as tau -> 0, to uniform as tau -> inf, and its entropy rises."""
    train, _ = split_text(tiny_shakespeare())
    vocab = Vocab.characters(train)
    counts = torch.bincount(vocab.encode(train), minlength=len(vocab)).double()
    z = counts.log()  # logits whose softmax at tau = 1 is the unigram distribution

    def entropy(p: torch.Tensor) -> float:
        return float(-(p * p.clamp_min(1e-300).log()).sum())

    taus = [0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 1000.0]
    probs = [torch.softmax(z / t, 0) for t in taus]
    entropies = [entropy(p) for p in probs]
    assert all(a < b for a, b in zip(entropies, entropies[1:], strict=False)), entropies
    assert probs[0].argmax() == z.argmax() and probs[0].max() > 0.999  # nearly one-hot: ' '
    assert vocab.itos[int(z.argmax())] == " "
    torch.testing.assert_close(probs[3], counts / counts.sum())  # tau = 1: the model itself
    uniform = torch.full_like(z, 1 / len(z))
    assert (probs[-1] - uniform).abs().max() < 1e-2 and abs(entropies[-1] - torch.log(torch.tensor(65.0)).item()) < 0.01
    return {"taus": taus, "entropies": entropies}


if __name__ == "__main__":
    for f in (exercise_1, exercise_2, exercise_3):
        print(f.__name__, f())
