"""Chapter 11's training recipe as a function: noise, the training loop (against the loop written out),
shallow-fusion tuning (against a brute-force grid), and the assistant's cached recogniser."""

import pytest
import torch

from mmcourse.audio import add_noise
from mmcourse.data import digit_strings as ds
from mmcourse.models.asr import CTCRecognizer, ctc_objective
from mmcourse.speech.batches import CTCData, ctc_loader
from mmcourse.speech.features import logmel
from mmcourse.speech.lm import NGramLM
from mmcourse.speech.recognizer import Recognizer
from mmcourse.speech.training import (
    ALPHAS,
    BETAS,
    SNR_DB,
    noisy_waves,
    train_recognizer,
    tune_fusion,
)
from mmcourse.speech.wer import wer
from mmcourse.train import fit


@pytest.fixture(scope="module")
def utts():
    return ds.build_utterances("train", 12), ds.build_utterances("val", 6)


def test_every_other_wave_gets_noise_at_an_snr_in_range(utts):
    train, _ = utts
    waves = noisy_waves(train, seed=3)
    assert all(torch.equal(w, u.wave) for w, u in zip(waves[::2], train[::2], strict=True))
    for w, u in zip(waves[1::2], train[1::2], strict=True):
        snr = 10 * torch.log10(u.wave.pow(2).mean() / (w - u.wave).pow(2).mean())
        assert SNR_DB[0] - 0.5 <= float(snr) <= SNR_DB[1] + 0.5
    assert all(torch.equal(a, b) for a, b in zip(waves, noisy_waves(train, seed=3), strict=True))
    assert not torch.equal(waves[1], noisy_waves(train, seed=4)[1])


def test_train_recognizer_is_the_loop_chapter_11_wrote_out(utts):
    train, val = utts
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both runs sum in the same order; restored below
    model, hist = train_recognizer(train, val, epochs=2, batch_size=4, seed=0, device=torch.device("cpu"))
    # the loop as notebook 11 had it, step by step
    gen = torch.Generator().manual_seed(0)
    waves = []
    for k, u in enumerate(train):
        snr = float(torch.empty(1).uniform_(5, 30, generator=gen))
        waves.append(add_noise(u.wave, snr, generator=gen) if k % 2 else u.wave)
    torch.manual_seed(0)
    ref = CTCRecognizer()
    train_dl = ctc_loader(CTCData([logmel(w) for w in waves], [u.labels for u in train], augment=True),
                          batch_size=4, seed=0, sortagrad=True)
    val_dl = ctc_loader(CTCData([logmel(u.wave) for u in val], [u.labels for u in val]), batch_size=64, shuffle=False)
    opt = torch.optim.AdamW(ref.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=2 * len(train_dl), pct_start=0.15)
    ref_hist = fit(ref, train_dl, val_dl, epochs=2, optimizer=opt, scheduler=sched, loss_fn=ctc_objective,
                   device=torch.device("cpu"), monitor="val_loss", grad_clip=5.0, progress=False)
    torch.set_num_threads(threads)
    assert hist["val_loss"] == ref_hist["val_loss"] and len(hist["val_loss"]) == 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True))
    assert hist["train_loss"][1] < hist["train_loss"][0]  # it learns
    with pytest.raises(ValueError, match="epochs"):
        train_recognizer(train, val, epochs=0)
    with pytest.raises(ValueError, match="utterances"):
        train_recognizer(train, [], epochs=1)


def test_tune_fusion_is_the_best_of_the_grid():
    torch.manual_seed(0)
    lm = NGramLM(3).fit(ds.digit_strings(500, seed=1))
    rec = Recognizer(CTCRecognizer(), lm)
    digits = ["123", "4567", "90"]
    ems = [torch.randn(4 * len(d) + 3, 11).log_softmax(-1) for d in digits]  # [T', 11]
    alphas, betas = [0.0, 0.5, 2.0], [0.0, 3.0]
    alpha, beta, grid = tune_fusion(rec, ems, digits, alphas, betas)
    refs = [ds.to_words(d) for d in digits]
    for (a, b), w in grid.items():
        assert w == wer(refs, [ds.to_words(rec.decode(e, "beam_lm", alpha=a, beta=b)) for e in ems])
    assert set(grid) == {(a, b) for a in alphas for b in betas} and grid[(alpha, beta)] == min(grid.values())
    assert (rec.alpha, rec.beta) == (0.5, 1.0)  # left unchanged
    with pytest.raises(ValueError, match="language model"):
        tune_fusion(Recognizer(CTCRecognizer(), None), ems, digits, alphas, betas)


def test_the_assistants_recogniser_is_cached_with_its_tuned_weights(utts, tmp_path, monkeypatch):
    from mmcourse.assistant import voice

    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(voice, "N_VAL", 6)
    trained = voice.train_digit_recognizer(n_train=8, epochs=1)
    path = voice.digit_checkpoint(8, 1)
    assert path.is_file() and path.parent == tmp_path / "speech" and not list(path.parent.glob(".*tmp"))
    again = voice.train_digit_recognizer(n_train=8, epochs=1)  # from the cache
    assert (again.alpha, again.beta) == (trained.alpha, trained.beta)
    assert (trained.alpha, trained.beta) in {(a, b) for a in ALPHAS for b in BETAS}
    assert all(torch.equal(a, b) for a, b in zip(trained.model.state_dict().values(),
                                                 again.model.state_dict().values(), strict=True))
    loaded = voice.load_digit_recognizer(path)
    assert (loaded.alpha, loaded.beta) == (trained.alpha, trained.beta)
    with pytest.raises(FileNotFoundError, match="train_digit_recognizer"):
        voice.load_digit_recognizer(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="n_train"):
        voice.train_digit_recognizer(n_train=0)
