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
import torch
from IPython.display import Audio, display

from mmcourse import audio
from mmcourse.config import pick
from mmcourse.results import Results
from mmcourse.viz import Panel
from mmcourse.viz.data import fusion_levels, image_grid, spectrogram, waveform

rec = Results("01_multimodal_data")
torch.manual_seed(0)
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
from mmcourse.vocab import Vocab, pad_batch, tokenize

text = tiny_shakespeare()
lines = [ln for ln in text.splitlines() if ln.strip()]
cut = int(0.9 * len(lines))
train_tokens = [tokenize(ln) for ln in lines[:cut]]
val_tokens = [tokenize(ln) for ln in lines[cut:]]
vocab = Vocab.build(train_tokens, min_freq=2)
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
      f"mean {normalised.mean():.4f}, std {normalised.std():.4f}")  # NBVAL_CHECK_OUTPUT

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

# %%
from mmcourse.audio import FeatureConfig, Features
from mmcourse.data import FSDD

fsdd = FSDD("test")  # 300 recordings, [300, 8000]
sr = fsdd.sample_rate
clip = fsdd.waves[7]
feats = {k: Features(kind=k)(clip) for k in ("stft", "logmel", "mfcc")}
for k, v in feats.items():
    print(f"{k:>7}: {tuple(v.shape)}")  # NBVAL_CHECK_OUTPUT

fig, ax = plt.subplots(1, 4, figsize=(15, 3))
waveform(ax[0], clip[: fsdd.lengths[7]], sr, f"waveform: '{fsdd.recordings[7].digit}'")
spectrogram(ax[1], 10 * torch.log10(feats["stft"] + 1e-10), sr, 80, "STFT power (dB)", "frequency bin")
spectrogram(ax[2], feats["logmel"], sr, 80, "log-Mel (dB)", "Mel band")
spectrogram(ax[3], feats["mfcc"], sr, 80, "MFCC", "coefficient", cmap="coolwarm")
fig.tight_layout()
display(Audio(clip[: fsdd.lengths[7]].numpy(), rate=sr))

# %% [markdown]
# ### Try it: the spectrogram explorer
# Pick a recording, then change the window (`n_fft`), the hop and the number of Mel bands. A long
# window resolves pitch finely but smears time; a short one does the opposite. The player below the
# picture plays the recording you picked.

# %%
player = W.Audio(format="wav", autoplay=False, layout=W.Layout(width="320px"))


def draw_spectrogram(fig, recording, n_fft, hop_length, n_mels):
    wave = fsdd.waves[recording][: fsdd.lengths[recording]]
    player.value = audio.to_wav_bytes(wave, sr)
    cfg = dict(sample_rate=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    stft = Features(kind="stft", **cfg)(wave)
    mel = Features(kind="logmel", **cfg)(wave)
    ax = fig.subplots(1, 2)
    spectrogram(ax[0], 10 * torch.log10(stft + 1e-10), sr, hop_length, f"STFT, n_fft={n_fft}", "frequency bin")
    spectrogram(ax[1], mel, sr, hop_length, f"log-Mel, {n_mels} bands", "Mel band")
    fig.tight_layout()
    r = fsdd.recordings[recording]
    return (f"digit <b>{r.digit}</b> said by {r.speaker}; window {1000 * n_fft / sr:.0f} ms, "
            f"hop {1000 * hop_length / sr:.0f} ms -> {tuple(stft.shape)} STFT, {tuple(mel.shape)} log-Mel")


explorer = Panel(
    draw_spectrogram, figsize=(10, 3.2), dpi=64, extra=[player],
    recording=W.IntSlider(7, 0, len(fsdd) - 1, description="recording"),
    n_fft=W.SelectionSlider(options=[64, 128, 256, 512, 1024], value=256, description="n_fft"),
    hop_length=W.IntSlider(80, 16, 256, 8, description="hop"),
    n_mels=W.IntSlider(40, 8, 64, 4, description="n_mels"),
)  # fmt: skip
explorer

# %% [markdown]
# ## 5. Audio augmentation
# Three label-preserving changes: **noise** at a chosen signal-to-noise ratio (SNR, in dB), a **time
# shift**, and a **speed** change (resampling, which moves the pitch too).

# %%
g = torch.Generator().manual_seed(0)
variants = {
    "original": clip,
    "noise, 10 dB SNR": audio.add_noise(clip, snr_db=10, generator=g),
    "shift +150 ms": audio.time_shift(clip, int(0.15 * sr)),
    "speed x1.25": audio.pad_or_crop(audio.change_speed(clip, 1.25, sr), len(clip)),
}
fig, ax = plt.subplots(1, 4, figsize=(15, 2.8))
for a, (name, w) in zip(ax, variants.items()):
    spectrogram(a, Features(kind="logmel")(w), sr, 80, name, "Mel band")
fig.tight_layout()
noisy = torch.stack([audio.add_noise(fsdd.waves[i], 10, generator=g) for i in range(50)])
snr = 10 * torch.log10(fsdd.waves[:50].pow(2).mean(1) / (noisy - fsdd.waves[:50]).pow(2).mean(1))
print(f"asked for 10 dB, measured {snr.mean():.2f} ± {snr.std():.2f} dB over 50 clips")

# %% [markdown]
# ## 6. Data cleaning: find the corrupt and the silent files
# Real datasets contain broken files. Before training, decode every file and flag the ones that do
# not decode or carry no signal. We copy some real recordings into a scratch folder and spoil two.

# %%
scratch = Path(tempfile.mkdtemp())
files = [r.path for r in fsdd.recordings[: pick(fast=20, full=60)]]
for f in files:
    shutil.copy(f, scratch / f.name)
(scratch / "9_broken_0.wav").write_bytes((scratch / files[0].name).read_bytes()[:30])  # truncated
audio.write_wav(scratch / "0_silent_0.wav", torch.zeros(8000), sr)  # nothing in it
bad = audio.find_bad_files(sorted(scratch.glob("*.wav")))
print({k: [p.name for p in v] for k, v in bad.items()})  # NBVAL_CHECK_OUTPUT
shutil.rmtree(scratch)

# %% [markdown]
# ## Checks
# What this chapter claimed, measured: the vocabulary built on 90 % of the text covers over 90 %
# of the rest; normalising gives mean 0 and std 1; every feature has the shape the text gives; noise
# augmentation hits the SNR it was asked for; the cleaner finds exactly the two spoiled files.

# %%
assert abs(normalised.mean()) < 1e-3 and abs(normalised.std() - 1) < 1e-3
assert feats["stft"].shape == (129, 101) and feats["logmel"].shape == (40, 101) and feats["mfcc"].shape == (13, 101)
assert [p.name for p in bad["corrupt"]] == ["9_broken_0.wav"] and [p.name for p in bad["silent"]] == ["0_silent_0.wav"]
assert (ids[:, :].ne(0).sum(1) == lengths).all()  # padding never hides a token
rec.record("vocab_val_coverage", coverage, target=0.90)
rec.record("noise_snr_error_db", (snr.mean() - 10).abs(), target=0.05, higher_is_better=False)
rec.record("bad_files_found", len(bad["corrupt"]) + len(bad["silent"]), target=2)
print(rec.check_targets())

# %% [markdown]
# ## Exercises
# 1. Build the vocabulary with `min_freq=1` and with `min_freq=5`. How do its size and its coverage of the held-out text change? Which would you choose for a small model?
# 2. For `n_fft` of 128 and 512 at 8 kHz, compute the window length in milliseconds and the width of one frequency bin in Hz. Check your numbers against the spectrogram explorer.
# 3. Write a detector for **clipped** recordings (many samples at ±1). Clip a real recording on purpose and show your detector finds it and passes the original.
# 4. Which image augmentations above would you *not* use for MNIST digits, and why? Show one that changes a digit's meaning.
#
# Solutions: `notebooks/solutions/01_multimodal_data.py`.
