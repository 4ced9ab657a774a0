"""Chapter 11's training recipe for the CTC acoustic model, in one place: chapter 11 trains its recogniser
with it, and the assistant (chapter 13) trains a bigger one the same way.

* **Noise:** every other training utterance gets white noise at an SNR drawn once from 5-30 dB.
* **SpecAugment** afresh every epoch (:func:`mmcourse.speech.features.spec_augment`, via ``CTCData``).
* **SortaGrad:** the first epoch goes from the shortest utterance to the longest.
* AdamW (lr 3e-3, weight decay 1e-2) with a one-cycle schedule (15 % warm-up), gradients clipped at 5,
  and the weights of the epoch with the lowest validation CTC loss kept.

:func:`tune_fusion` picks the language-model weight and word bonus of shallow fusion on validation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmcourse.audio import add_noise
from mmcourse.config import seed_everything
from mmcourse.data.digit_strings import Utterance, to_words
from mmcourse.device import get_device
from mmcourse.models.asr import CTCRecognizer, ctc_objective
from mmcourse.speech.batches import CTCData, ctc_loader
from mmcourse.speech.features import logmel
from mmcourse.speech.recognizer import Recognizer
from mmcourse.speech.wer import wer
from mmcourse.train import History, fit

SNR_DB = (5.0, 30.0)  # range of the white noise added to every other training utterance
ALPHAS, BETAS = (0.0, 0.3, 0.6, 1.0, 1.5), (0.0, 1.0, 2.0)  # chapter 11's shallow-fusion grid: LM weight, word bonus


def noisy_waves(utts: Sequence[Utterance], seed: int = 0) -> list[torch.Tensor]:
    """The training waves ``[T]``: utterance ``k`` as built for even ``k``, with white noise at a random
    SNR (uniform in :data:`SNR_DB`, drawn once from a generator seeded with ``seed``) for odd ``k``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k, u in enumerate(utts):
        snr = float(torch.empty(1).uniform_(*SNR_DB, generator=gen))
        out.append(add_noise(u.wave, snr, generator=gen) if k % 2 else u.wave)
    return out


def train_recognizer(train: Sequence[Utterance], val: Sequence[Utterance], *, epochs: int = 10,
                     batch_size: int = 16, lr: float = 3e-3, seed: int = 0,
                     device: torch.device | None = None) -> tuple[CTCRecognizer, History]:
    """A :class:`CTCRecognizer` trained on ``train`` with the recipe of the module docstring, the epoch
    with the lowest CTC loss on ``val`` kept. ``seed`` plus ``MMCOURSE_SEED`` seeds the initial weights,
    the batch order and SpecAugment; the noise, like the utterances, is drawn with ``seed`` alone. Returns the model (on ``device``) and its history."""
    if not train or not val:
        raise ValueError(f"train and val need utterances, got {len(train)} and {len(val)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    feats = [logmel(w) for w in noisy_waves(train, seed)]  # each [frames, 40]
    seed_everything(seed)
    device = device or get_device()
    model = CTCRecognizer().to(device)
    train_dl = ctc_loader(CTCData(feats, [u.labels for u in train], augment=True), batch_size=batch_size,
                          seed=seed, sortagrad=True)
    val_dl = ctc_loader(CTCData([logmel(u.wave) for u in val], [u.labels for u in val]), batch_size=64, shuffle=False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(train_dl), pct_start=0.15)
    hist = fit(model, train_dl, val_dl, epochs=epochs, optimizer=opt, scheduler=sched, loss_fn=ctc_objective,
               device=device, monitor="val_loss", grad_clip=5.0, seed=seed, progress=False)
    return model, hist


def tune_fusion(recognizer: Recognizer, emissions: Sequence[torch.Tensor], digits: Sequence[str],
                alphas: Sequence[float] = ALPHAS, betas: Sequence[float] = BETAS,
                ) -> tuple[float, float, dict[tuple[float, float], float]]:
    """Shallow fusion's LM weight ``alpha`` and word bonus ``beta``: the pair with the lowest word error
    rate of beam search + LM over ``emissions`` (each ``[T', 11]``) against ``digits`` (ties: the smaller
    pair). Returns ``(alpha, beta, {(alpha, beta): WER})``; ``recognizer`` is left unchanged."""
    if recognizer.lm is None:
        raise ValueError("recognizer.lm is None: give the recogniser a language model to tune its weight")
    refs = [to_words(d) for d in digits]
    grid = {(a, b): wer(refs, [to_words(recognizer.decode(e, "beam_lm", alpha=a, beta=b)) for e in emissions])
            for a in alphas for b in betas}
    alpha, beta = min(grid, key=lambda k: (grid[k], k))
    return alpha, beta, grid
