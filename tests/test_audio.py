"""Audio features agree with librosa; batching, caching and augmentation behave."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from mmcourse import audio
from mmcourse.audio import FeatureConfig, Features
from mmcourse.data import FSDD
from tests._helpers import shared_datasets


@pytest.fixture(scope="module")
def waves() -> torch.Tensor:
    shared_datasets()
    return FSDD("test").waves[:8]  # [8, 8000], real speech


def _librosa(kind: str, y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    kw = dict(sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, pad_mode="constant")
    if kind == "stft":
        return np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, pad_mode="constant")) ** 2
    mel = librosa.feature.melspectrogram(y=y, n_mels=cfg.n_mels, **kw)
    if kind == "mel":
        return mel
    if kind == "logmel":
        return librosa.power_to_db(mel, top_db=cfg.top_db)
    return librosa.feature.mfcc(y=y, n_mfcc=cfg.n_mfcc, n_mels=cfg.n_mels, **kw)


# Stated tolerances (float32 here, float64 in librosa): power spectra within 1e-5 of the
# largest value; log-Mel within 0.01 dB; MFCC (a DCT of the log-Mel) within 0.01.
@pytest.mark.parametrize("kind,rtol,atol", [("stft", 1e-5, 0), ("mel", 1e-5, 0), ("logmel", 0, 0.01),
                                            ("mfcc", 0, 0.01)])
def test_features_agree_with_librosa(waves, kind, rtol, atol):
    cfg = FeatureConfig(kind)
    ours = Features(cfg)(waves).numpy()  # [8, C, frames], all at once
    for i in range(len(waves)):
        ref = _librosa(kind, waves[i].numpy(), cfg)
        assert ours[i].shape == ref.shape
        assert np.abs(ours[i] - ref).max() <= rtol * np.abs(ref).max() + atol


@pytest.mark.parametrize("cfg", [FeatureConfig(), FeatureConfig(n_mels=64, f_min=50, f_max=3500),
                                 FeatureConfig(sample_rate=16000, n_mels=80)])
def test_mel_centres_agree_with_librosa(cfg):
    ref = librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.f_min, fmax=cfg.f_max or cfg.sample_rate / 2)[1:-1]
    np.testing.assert_allclose(audio.mel_centres_hz(cfg).numpy(), ref, atol=0.01)  # Hz
    # each Mel filter of Features peaks at (the STFT bin nearest to) its centre
    fb = Features(FeatureConfig("mel", **{k: v for k, v in vars(cfg).items() if k != "kind"})).mel_fb  # [F, M]
    bin_hz = cfg.sample_rate / cfg.n_fft
    assert (fb.argmax(0) * bin_hz - torch.tensor(ref)).abs().max() <= bin_hz


def test_batched_equals_one_by_one(waves):
    f = Features(kind="logmel")
    batched = f(waves)
    single = torch.stack([f(w) for w in waves])
    torch.testing.assert_close(batched, single)
    assert batched.shape == (8, 40, 8000 // 80 + 1)


def test_feature_errors():
    with pytest.raises(ValueError, match="kind"):
        Features(kind="cqt")
    with pytest.raises(ValueError, match="float"):
        Features()(torch.zeros(10, dtype=torch.int16))
    with pytest.raises(ValueError, match=r"\[T\] or \[B, T\].*\(2, 2, 800\).*mix down to mono.*mean\(dim=1\)"):
        Features()(torch.zeros(2, 2, 800))  # [B, C, T] stereo
    with pytest.raises(ValueError, match=r"\[T\] or \[B, T\], got shape \(\)"):
        Features()(torch.tensor(0.5))
    for empty in (torch.zeros(0), torch.zeros(3, 0), torch.zeros(0, 800)):
        with pytest.raises(ValueError, match="empty"):
            Features(kind="mfcc")(empty)


def test_cache_reuses_and_keys_on_parameters(waves, tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    cfg = FeatureConfig("mfcc")
    a = audio.cached_features("t", waves, cfg)
    files = list(tmp_path.rglob("*.pt"))
    assert len(files) == 1
    files[0].touch()
    calls = []
    monkeypatch.setattr(audio, "compute_features", lambda *a, **k: calls.append(1))
    b = audio.cached_features("t", waves, cfg)  # from disk: compute_features not called
    assert not calls and torch.equal(a, b)
    monkeypatch.undo()
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    audio.cached_features("t", waves, FeatureConfig("mfcc", n_mfcc=20))
    assert len(list(tmp_path.rglob("*.pt"))) == 2  # other parameters, other entry


def test_load_pad_resample(tmp_path):
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    wave, sr = audio.load(tmp_path / "tone.wav")
    assert sr == 8000 and wave.shape == (8000,)
    up, sr2 = audio.load(tmp_path / "tone.wav", sample_rate=16000)
    assert sr2 == 16000 and up.shape == (16000,)
    # the tone stays at 440 Hz after resampling
    spec = torch.fft.rfft(up).abs()
    assert abs(int(spec.argmax()) * 16000 / 16000 - 440) <= 1
    assert audio.pad_or_crop(wave, 100).shape == (100,)
    padded = audio.pad_or_crop(wave[:10], 20, align="center")
    assert padded.shape == (20,) and padded[:5].abs().sum() == 0
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ValueError, match="bad.wav"):
        audio.load(tmp_path / "bad.wav")
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        audio.load(tmp_path / "missing.wav")
    # the same file as bytes (an upload): the same samples; stereo is averaged
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], 1).astype(np.float32)  # [T, 2]
    sf.write(tmp_path / "stereo.wav", stereo, 8000)
    from_bytes, sr3 = audio.load((tmp_path / "stereo.wav").read_bytes(), name="stereo.wav")
    assert sr3 == 8000 and torch.allclose(from_bytes, torch.from_numpy(stereo.mean(1)), atol=1e-4)
    assert torch.equal(audio.load((tmp_path / "tone.wav").read_bytes())[0], wave)
    with pytest.raises(ValueError, match="notes.txt could not be read as audio.*WAV"):
        audio.load(b"hello, not audio", name="notes.txt")


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    x = torch.sin(torch.linspace(0, 100, 8000)).repeat(3, 1)  # [3, 8000]
    noisy = audio.add_noise(x, snr_db=10, generator=g)
    snr = 10 * torch.log10(x.pow(2).mean(-1) / (noisy - x).pow(2).mean(-1))
    torch.testing.assert_close(snr, torch.full((3,), 10.0), atol=1e-3, rtol=0)
    shifted = audio.time_shift(x, 100)
    assert torch.equal(shifted[:, 100:], x[:, :-100]) and shifted[:, :100].abs().sum() == 0
    assert audio.change_speed(x, 2.0).shape[-1] == 4000


def test_add_noise_snr_over_the_speech_only():
    """With ``lengths``, the SNR holds over the unpadded samples (measured with numpy), and the
    padding gets noise too; the whole-clip SNR is then lower by 10 log10(T / length)."""
    lengths = torch.tensor([2000, 5000, 8000])
    x = torch.sin(torch.linspace(0, 300, 8000)).repeat(3, 1)  # [3, 8000]
    x[torch.arange(8000) >= lengths[:, None]] = 0  # zero padding after each length
    noisy = audio.add_noise(x, snr_db=10, generator=torch.Generator().manual_seed(0), lengths=lengths)
    clean, dirty = x.numpy().astype(np.float64), noisy.numpy().astype(np.float64)
    for c, d, n in zip(clean, dirty, lengths.tolist(), strict=True):
        speech = 10 * np.log10(np.sum(c[:n] ** 2) / np.sum((d[:n] - c[:n]) ** 2))
        whole = 10 * np.log10(np.sum(c**2) / np.sum((d - c) ** 2))
        assert abs(speech - 10) < 1e-3
        assert abs(whole - (10 - 10 * np.log10(8000 / n))) < 0.3  # the noise in the padding counts
        if n < 8000:
            assert np.abs(d[n:]).max() > 0  # the padding is noisy too
    with pytest.raises(ValueError, match="lengths must have shape"):
        audio.add_noise(x, 10, lengths=lengths[:2])
    with pytest.raises(ValueError, match="lengths must lie in"):
        audio.add_noise(x, 10, lengths=torch.tensor([0, 10, 9000]))


def test_time_shift_and_speed():
    x = torch.sin(torch.linspace(0, 100, 8000)).repeat(3, 1)  # [3, 8000]
    shifted = audio.time_shift(x, 100)
    assert torch.equal(shifted[:, 100:], x[:, :-100]) and shifted[:, :100].abs().sum() == 0
    assert audio.change_speed(x, 2.0).shape[-1] == 4000


def test_find_bad_files(tmp_path):
    sf.write(tmp_path / "ok.wav", np.random.default_rng(0).normal(0, 0.1, 800).astype(np.float32), 8000)
    sf.write(tmp_path / "silent.wav", np.zeros(800, np.float32), 8000)
    (tmp_path / "corrupt.wav").write_bytes(b"not audio")
    bad = audio.find_bad_files(sorted(tmp_path.glob("*.wav")))
    assert [p.name for p in bad["corrupt"]] == ["corrupt.wav"]
    assert [p.name for p in bad["silent"]] == ["silent.wav"]
