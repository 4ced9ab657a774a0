# %% [markdown]
# # 01 · Multimodal data
#
# **Book:** Chapters 1–2 — what multimodal data is; preprocessing and augmentation of text, images
# and audio; STFT, Mel spectrograms and MFCC.
#
# **You will be able to:**
# - say what makes data *multimodal* and name the three levels at which modalities can be fused;
# - turn text into token ids: tokenise, build a vocabulary, pad a batch, look up embeddings;
# - prepare images as tensors: normalise them and augment them (crop, rotate, flip, colour);
# - turn a recording into a waveform, an STFT, a Mel spectrogram and MFCCs, and choose their parameters with a widget;
# - augment audio (noise at a given SNR, time shift, speed) and find corrupt or silent files.

# %%
import shutil
import tempfile
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from mmcourse import audio
from mmcourse.config import offset_seed, pick, seed_everything
from mmcourse.results import Results
from mmcourse.viz import Panel
from mmcourse.viz.data import fusion_levels, image_grid, spectrogram, waveform

rec = Results("01_multimodal_data")
seed_everything(0)  # the augmentations below draw random numbers (MMCOURSE_SEED shifts them)
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small

# %% [markdown]
# ## 1. What is multimodal data?
# A **modality** is one way of observing something: pixels, words, sound. A person saying "seven"
# while pointing at a handwritten 7 gives two modalities of one idea. Multimodal models combine
# them, and *where* they combine them is the first design choice:
#
# - **data level (early fusion):** join the raw inputs, then one model reads the joint input;
# - **feature level:** each modality has its own encoder; their features are joined;
# - **decision level (late fusion):** each modality makes its own prediction; the predictions are combined.
#
# Chapter 06 compares all of them on real data. Every modality first needs its own preprocessing — the rest of this chapter.

# %%
fusion_levels();

# %% [markdown]
# ## 2. Text: tokens, vocabulary, padding, embeddings
# Models read numbers, not strings. **Tokenisation** splits text into units (here: words and
# punctuation); a **vocabulary** maps each token to an integer id; rare tokens become `<unk>`.
# Sentences differ in length, so a batch is **padded** with id 0 (`<pad>`) to a rectangle.
# An **embedding** table turns each id into a learned vector.

# %%
from mmcourse.data import tiny_shakespeare
from mmcourse.text import Vocab, pad_batch, tokenize

text = tiny_shakespeare()
lines = [ln for ln in text.splitlines() if ln.strip()]
cut = int(0.9 * len(lines))
train_tokens = [tokenize(ln) for ln in lines[:cut]]
val_tokens = [tokenize(ln) for ln in lines[cut:]]
vocab = Vocab.build(train_tokens, min_freq=2, pad="<pad>", unk="<unk>")
coverage = vocab.coverage(val_tokens)
print(tokenize("Before we proceed any further, hear me speak."))  # NBVAL_CHECK_OUTPUT
print(f"{len(lines)} lines; vocabulary of {len(vocab)} tokens (seen at least twice in the first 90 %)")  # NBVAL_CHECK_OUTPUT
print(f"the vocabulary covers {coverage:.1%} of the tokens in the last 10 % of the text")  # NBVAL_CHECK_OUTPUT

# %%
batch_lines = lines[1:5]
ids, lengths = pad_batch([vocab.encode(tokenize(ln)) for ln in batch_lines])
embed = torch.nn.Embedding(len(vocab), 8, padding_idx=0)
vectors = embed(ids)  # [B, T, 8]
mask = ids != 0  # [B, T]: True where there is a real token
for ln, row in zip(batch_lines, ids):
    print(f"{ln!r:45} -> {row.tolist()}")  # NBVAL_CHECK_OUTPUT
print("ids", tuple(ids.shape), "lengths", lengths.tolist(), "embeddings", tuple(vectors.shape))  # NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 3. Images: tensors, normalisation, augmentation
# An image is a tensor `[channels, height, width]` with values in [0, 1]. Normalising each channel
# to mean 0 and standard deviation 1 (statistics of the *training* set) helps optimisation.
# **Augmentation** makes new training images from old ones by transformations that keep the label:
# a cat cropped or turned slightly is still a cat. Choose them per task: a flipped "2" is no longer a "2".

# %%
from torchvision.transforms import v2

from mmcourse.data import mnist_pool, photo

cat = photo("chelsea")  # [3, 300, 451]
digits = mnist_pool("train")
mean, std = digits.x.mean().item(), digits.x.std().item()
normalised = (digits.x - mean) / std
print(f"photo {tuple(cat.shape)} {cat.dtype}, MNIST pool {tuple(digits.x.shape)}")  # NBVAL_CHECK_OUTPUT
print(f"MNIST pool train: mean {mean:.4f}, std {std:.4f}; after normalising: "
      f"mean {round(float(normalised.mean()), 4) + 0.0:.4f}, std {normalised.std():.4f}")  # NBVAL_CHECK_OUTPUT

# %%
augment = {
    "crop": v2.RandomResizedCrop(120, scale=(0.3, 0.8), antialias=True),
    "rotate": v2.RandomRotation(25),
    "flip": v2.RandomHorizontalFlip(p=1.0),
    "colour": v2.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.8, hue=0.1),
}
small = v2.functional.resize(cat, [120, 180], antialias=True)
examples = [small] + [v2.functional.resize(t(small), [120, 180], antialias=True) for t in augment.values()]
image_grid(torch.stack(examples), ["original", *augment], ncols=5, size=1.9);

# %%
digit_aug = v2.Compose([v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1))])
before = digits.x[:8]
after = torch.stack([digit_aug(x) for x in before])
image_grid(torch.cat([before, after]), [f"{int(y)}" for y in digits.y[:8]] * 2, ncols=8);

# %% [markdown]
# Top: training digits; bottom: the same digits shifted, turned and scaled a little — labels unchanged.
#
# ## 4. Audio: waveform → STFT → Mel → MFCC
# A recording is a **waveform**: air pressure sampled 8,000 times a second (FSDD). Speech is easier to
# read as frequencies over time. The **short-time Fourier transform (STFT)** cuts the waveform into
# overlapping windows (`n_fft` samples long, one every `hop_length` samples) and takes each window's
# spectrum. The **Mel** scale then pools the frequency bins into `n_mels` bands spaced as human
# hearing spaces pitch, and a logarithm (decibels) compresses the loudness range. **MFCCs** are a
# discrete cosine transform of the log-Mel bands: a compact summary of the spectral envelope.
# Every transform here is batched (`mmcourse.audio.Features`), so thousands of clips are transformed at once on any device.
#
# Reading the pictures: an STFT bin `k` is the frequency `k × sample_rate / n_fft` (31.25 Hz apart
# here, up to 4 kHz, half the sample rate); Mel bands are narrow at low frequencies and wide at high
# ones, so the log-Mel axis is labelled with each band's centre frequency. The first MFCC, c0, is the
# DCT's constant term: the frame's mean log-Mel level times √40, i.e. its loudness. Its values lie far
# outside the range of the others and would swamp their colour scale, so it gets a panel of its own.
# FSDD pads every recording with zeros to 1 s: the right-hand part of each picture is that padding.

# %%
from mmcourse.audio import FeatureConfig, Features, mel_centres_hz
from mmcourse.data import FSDD

fsdd = FSDD("test")  # 300 recordings, [300, 8000]: each zero-padded (or cropped) to 1 s
sr = fsdd.sample_rate
clip = fsdd.waves[7]
cfgs = {k: FeatureConfig(k) for k in ("stft", "logmel", "mfcc")}
feats = {k: Features(c)(clip) for k, c in cfgs.items()}
for k, v in feats.items():
    print(f"{k:>7}: {tuple(v.shape)}")  # NBVAL_CHECK_OUTPUT
print(f"STFT bin width {sr / cfgs['stft'].n_fft:.2f} Hz, bins 0 .. {sr // 2} Hz; "
      f"Mel band centres {mel_centres_hz(cfgs['logmel'])[0]:.0f} .. {mel_centres_hz(cfgs['logmel'])[-1]:.0f} Hz")  # NBVAL_CHECK_OUTPUT

fig, ax = plt.subplots(1, 5, figsize=(18, 3.3), gridspec_kw={"width_ratios": [1, 1.2, 1.2, 1, 1.2]})
waveform(ax[0], clip[: fsdd.lengths[7]], sr, f"waveform: '{fsdd.recordings[7].digit}'")
spectrogram(ax[1], 10 * torch.log10(feats["stft"] + 1e-10), cfgs["stft"], "STFT power", clabel="power (dB)")
spectrogram(ax[2], feats["logmel"], cfgs["logmel"], "log-Mel", clabel="power (dB)")
frames_s = torch.arange(feats["mfcc"].shape[1]) * cfgs["mfcc"].hop_length / sr  # [101] frame times (s)
ax[3].plot(frames_s, feats["mfcc"][0])
ax[3].set(title="MFCC c0: the overall level", xlabel="time (s)", ylabel="c0 (dB)")
m = float(feats["mfcc"][1:].abs().max())  # symmetric colour limits: white is 0
spectrogram(ax[4], feats["mfcc"][1:], cfgs["mfcc"], "MFCC c1-c12", clabel="value (dB)", cmap="coolwarm", first=1,
            vmin=-m, vmax=m)
fig.tight_layout()
plt.show()
c0_is_level = torch.allclose(feats["mfcc"][0], feats["logmel"].mean(0) * 40**0.5, atol=1e-3)
print(f"c0 = sqrt(40) x the mean log-Mel level of each frame: {c0_is_level}; "
      f"c0 spans {feats['mfcc'][0].min():.0f} .. {feats['mfcc'][0].max():.0f}, "
      f"c1-c12 span {feats['mfcc'][1:].min():.0f} .. {feats['mfcc'][1:].max():.0f}")

# %% [markdown]
# ### Try it: the spectrogram explorer
# Pick a recording, then change the window (`n_fft`), the hop and the number of Mel bands. A long
# window resolves pitch finely but smears time; a short one does the opposite. The player below the
# picture plays the recording you picked (it starts on recording 7, the one above).

# %%
player = W.Audio(format="wav", autoplay=False, layout=W.Layout(width="320px"))


def draw_spectrogram(fig, recording, n_fft, hop_length, n_mels):
    wave = fsdd.waves[recording][: fsdd.lengths[recording]]
    player.value = audio.to_wav_bytes(wave, sr)
    cfg = dict(sample_rate=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    stft_cfg, mel_cfg = FeatureConfig("stft", **cfg), FeatureConfig("logmel", **cfg)
    stft, mel = Features(stft_cfg)(wave), Features(mel_cfg)(wave)
    ax = fig.subplots(1, 2)
    spectrogram(ax[0], 10 * torch.log10(stft + 1e-10), stft_cfg, f"STFT, n_fft={n_fft}", clabel="power (dB)")
    spectrogram(ax[1], mel, mel_cfg, f"log-Mel, {n_mels} bands", clabel="power (dB)")
    fig.tight_layout()
    r = fsdd.recordings[recording]
    return (f"digit <b>{r.digit}</b> said by {r.speaker}; window {1000 * n_fft / sr:.0f} ms, "
            f"bins {sr / n_fft:.1f} Hz apart, hop {1000 * hop_length / sr:.0f} ms -> "
            f"{tuple(stft.shape)} STFT, {tuple(mel.shape)} log-Mel")


explorer = Panel(
    draw_spectrogram, figsize=(10, 3.2), dpi=72, extra=[player],
    recording=W.IntSlider(7, 0, len(fsdd) - 1, description="recording"),
    n_fft=W.SelectionSlider(options=[64, 128, 256, 512, 1024], value=256, description="n_fft"),
    hop_length=W.IntSlider(80, 16, 256, 8, description="hop"),
    n_mels=W.IntSlider(40, 8, 64, 4, description="n_mels"),
)  # fmt: skip
explorer

# %% [markdown]
# ## 5. Audio augmentation
# Three label-preserving changes: **noise** at a chosen signal-to-noise ratio (SNR, in dB), a **time
# shift**, and a **speed** change (resampling, which moves the pitch too). The four pictures share
# one colour scale, so the noise shows as a raised floor everywhere, padding included.
#
# An SNR is a ratio of average powers, $10\log_{10}(P_\text{signal} / P_\text{noise})$, so it
# depends on *which samples* are averaged. FSDD's clips are zero-padded to 1 s and the speech fills
# only about half of it: averaged over the whole padded second, the speech's power looks about
# half as large as it is, and noise calibrated that way is too quiet for the speech.
# `add_noise(..., lengths=...)` averages over the unpadded samples only, so "10 dB" is the SNR of the
# speech itself (the noise still fills the whole clip). We check it two ways that do not reuse its
# formula: with numpy, from the clean and the noisy signal over the unpadded samples; and *blind*,
# from the noisy clip alone, as one would in the field: the padding holds nothing but noise, so
# its power is the noise power, and the speech part's power minus it is the speech's.

# %%
g = torch.Generator().manual_seed(offset_seed(0))
variants = {
    "original": clip,
    "noise, 10 dB SNR": audio.add_noise(clip, snr_db=10, generator=g, lengths=fsdd.lengths[7]),
    "shift +150 ms": audio.time_shift(clip, int(0.15 * sr)),
    "speed x1.25": audio.pad_or_crop(audio.change_speed(clip, 1.25, sr), len(clip)),
}
mels = {name: Features(cfgs["logmel"])(w) for name, w in variants.items()}  # each [40, 101]
lo, hi = min(float(m.min()) for m in mels.values()), max(float(m.max()) for m in mels.values())
fig, ax = plt.subplots(1, 4, figsize=(16, 2.9))
for a, (name, m) in zip(ax, mels.items()):
    spectrogram(a, m, cfgs["logmel"], name, clabel="power (dB)", vmin=lo, vmax=hi)
fig.tight_layout()
plt.show()

N_SNR = 50
clean, n_speech = fsdd.waves[:N_SNR], fsdd.lengths[:N_SNR]  # [50, 8000], [50]
noisy = audio.add_noise(clean, 10, generator=g, lengths=n_speech)  # [50, 8000]
# measured with numpy, not with add_noise's code: over the speech, and over the whole padded second
c, d, n = clean.double().numpy(), noisy.double().numpy(), n_speech.numpy()
snr_speech = np.array([10 * np.log10(np.sum(c[i, : n[i]] ** 2) / np.sum((d[i, : n[i]] - c[i, : n[i]]) ** 2))
                       for i in range(N_SNR)])  # [50]
snr_whole = 10 * np.log10(np.sum(c**2, 1) / np.sum((d - c) ** 2, 1))  # [50]
# blind: the noisy clip alone; only clips with at least 0.1 s of padding to measure the noise in
blind = [i for i in range(N_SNR) if len(c[i]) - n[i] >= 0.1 * sr]
p_noise = np.array([np.mean(d[i, n[i]:] ** 2) for i in blind])
p_mix = np.array([np.mean(d[i, : n[i]] ** 2) for i in blind])  # speech + noise
snr_blind = 10 * np.log10((p_mix - p_noise) / p_noise)
# what calibrating over the whole padded second (no lengths) would give the speech
e = audio.add_noise(clean, 10, generator=torch.Generator().manual_seed(offset_seed(0))).double().numpy()
snr_whole_calibrated = np.array([10 * np.log10(np.sum(c[i, : n[i]] ** 2) / np.sum((e[i, : n[i]] - c[i, : n[i]]) ** 2))
                                 for i in range(N_SNR)])  # fmt: skip
print(f"speech fills {n.mean() / len(c[0]):.0%} of the padded second on average ({N_SNR} clips)")
print(f"asked for 10 dB over the speech; measured with numpy: {snr_speech.mean():.2f} ± {snr_speech.std():.2f} dB")
print(f"estimated blind from the noisy clips alone ({len(blind)} clips): {snr_blind.mean():.2f} ± {snr_blind.std():.2f} dB")
print(f"the same noise measured over the whole padded second: {snr_whole.mean():.1f} dB")
print(f"noise calibrated over the whole padded second instead gives the speech {snr_whole_calibrated.mean():.1f} dB")

# %% [markdown]
# ## 6. Data cleaning: find the corrupt and the silent files
# Real datasets contain broken files. Before training, decode every file and flag the ones that do
# not decode or carry no signal. We spoil two copies of real recordings in a scratch folder, add them
# to the real test recordings (all 300 in full mode, 60 in fast mode) and let the cleaner search.

# %%
scratch = Path(tempfile.mkdtemp())
real = [r.path for r in fsdd.recordings[: pick(fast=60, full=300)]]
(scratch / "9_broken_0.wav").write_bytes(real[0].read_bytes()[:30])  # truncated after 30 bytes
audio.write_wav(scratch / "0_silent_0.wav", torch.zeros(8000), sr)  # nothing in it
bad = audio.find_bad_files(real + sorted(scratch.glob("*.wav")))
flagged = {p for v in bad.values() for p in v}
false_alarms = len(flagged & set(real))
print({k: [p.name for p in v] for k, v in bad.items()})  # NBVAL_CHECK_OUTPUT
print(f"{len(real)} real recordings, {false_alarms} of them flagged")  # real recordings pass
shutil.rmtree(scratch)

# %% [markdown]
# ## Checks
# What this chapter claimed, measured: the vocabulary built on 90 % of the text covers over 90 %
# of the rest; normalising gives mean 0 and std 1; every feature has the shape the text gives and
# c0 is the frame's level; noise augmentation hits the SNR it was asked for over the speech, by two
# independent measurements, and calibrating over the padded clip would have made it too quiet; the
# cleaner finds exactly the two spoiled files and flags no real recording.

# %%
assert abs(normalised.mean()) < 1e-3 and abs(normalised.std() - 1) < 1e-3
assert feats["stft"].shape == (129, 101) and feats["logmel"].shape == (40, 101) and feats["mfcc"].shape == (13, 101)
assert c0_is_level and feats["mfcc"][0].max() < feats["mfcc"][1:].min()  # c0 lies outside the others' range
assert 0.3 < n.mean() / len(c[0]) < 0.7  # "about half" of the padded second is speech
assert snr_whole_calibrated.mean() > 12  # calibrated over the padded clip: too little noise for the speech
assert len(blind) >= 40
assert [p.name for p in bad["corrupt"]] == ["9_broken_0.wav"] and [p.name for p in bad["silent"]] == ["0_silent_0.wav"]
assert false_alarms == 0  # exact counts, asserted with ==, so they have no target to sit on
assert (ids[:, :].ne(0).sum(1) == lengths).all()  # padding never hides a token
rec.record("vocab_val_coverage", coverage, target=0.90)
rec.record("noise_snr_speech_error_db", abs(snr_speech.mean() - 10), target=0.01, higher_is_better=False)
# spread: max - min of this error over MMCOURSE_SEED=0, 1, 2 (other noise), measured once: 0.026, 0.034, 0.000 dB
rec.record("noise_snr_blind_error_db", abs(snr_blind.mean() - 10), target=0.2, higher_is_better=False,
           spread=pick(fast=None, full=0.034))
rec.record("bad_files_found", len(flagged - set(real)))
rec.record("real_files_flagged", false_alarms)
print(rec.check_targets())

# %% [markdown]
# ## Exercises
# 1. Build the vocabulary with `min_freq=1` and with `min_freq=5`. How do its size and its coverage of the held-out text change? Which would you choose for a small model?
# 2. For `n_fft` of 128 and 512 at 8 kHz, compute the window length in milliseconds and the width of one frequency bin in Hz. Check your numbers against the spectrogram explorer.
# 3. Write a detector for **clipped** recordings (many samples at ±1). Clip a real recording on purpose and show your detector finds it and passes the original.
# 4. Which image augmentations above would you *not* use for MNIST digits, and why? Show one that changes a digit's meaning.
#
# Solutions: `notebooks/solutions/01_multimodal_data.py`.
