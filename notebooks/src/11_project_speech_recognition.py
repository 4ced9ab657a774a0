# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Project: speech recognition
#
# **Book:** Speech recognition: system architecture (features, acoustic model, language model, decoder); fine-tuning case 4.3
#
# **You will be able to:**
# - turn audio of any length into a *sequence* of words with a CTC acoustic model, trained without
#   any alignment labels;
# - read what it learned: the emission matrix, the greedy path and word boundaries from forced alignment;
# - decode with greedy search, prefix beam search, and beam search fused with an n-gram language model;
# - measure WER honestly: against `jiwer`, against an independent recogniser (pocketsphinx), on an
#   unseen speaker, synthetic voices and noise, and on a 30-second recording decoded in chunks.

# %%
import io
import math
import time
from datetime import datetime, timezone

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch

from mmcourse.audio import load, resample, to_wav_bytes
from mmcourse.config import cache_dir, is_fast, pick, seed_everything
from mmcourse.data import digit_strings as ds
from mmcourse.device import configure_threads, describe, get_device
from mmcourse.models import count_parameters
from mmcourse.models.asr import CTCRecognizer, ctc_objective
from mmcourse.results import Results
from mmcourse.speech import ctc
from mmcourse.speech.align import forced_align, segments
from mmcourse.speech.baseline import PocketSphinx, espeak, transcribe_cached
from mmcourse.speech.batches import CTCData, ctc_loader
from mmcourse.speech.features import logmel, spec_augment
from mmcourse.speech.lm import NGramLM
from mmcourse.speech.recognizer import Recognizer
from mmcourse.speech.training import ALPHAS, BETAS, train_recognizer, tune_fusion
from mmcourse.speech.wer import cer, sentence_accuracy, wer
from mmcourse.train import fit, save_checkpoint
from mmcourse.viz import Panel
from mmcourse.viz.speech import ctc_paths, emissions_image, logmel_image, waveform_with_words, word_spans

device = get_device()
if device.type == "cpu":
    # A GRU steps through time with small matrix products: one CPU thread is fastest (the
    # MMCOURSE_THREADS / OMP_NUM_THREADS variables still win).
    configure_threads(preferred=1)
rec = Results("11_project_speech_recognition")
seed_everything(0)
t_start = time.perf_counter()
N_TRAIN = pick(fast=240, full=1000)  # training utterances (about 4 s each)
BATCH = pick(fast=8, full=16)  # fast mode: smaller batches, so that CTC gets enough steps
EPOCHS = pick(fast=8, full=10)
N_VAL, N_TEST, N_UNSEEN = pick(fast=60, full=200), pick(fast=100, full=300), pick(fast=60, full=200)
N_SPHINX = pick(fast=10, full=40)  # utterances pocketsphinx decodes (it is slow)
N_SYNTH = pick(fast=16, full=80)
print("device:", describe(), "| fast mode:", is_fast())
words = lambda digits: ds.to_words(digits)  # noqa: E731  "307" -> "three zero seven"

# %% [markdown]
# ## 1. The task: connected digit strings
#
# So far the course has *classified* single spoken digits. A recogniser must turn audio of unknown
# length into a *sequence* of words, and no one tells it where each word starts. We build such
# audio from FSDD: an utterance is 3-10 recordings **of one speaker**, each trimmed of its silence,
# with a random gain (±3 dB) and speed (0.91-1.11×) per word, joined by pauses of 0.05-0.3 s.
#
# The digit strings follow a recipe, the way real ones (phone, order and PIN numbers) do, so that a
# language model has something to learn: 40 % phone numbers (one of eight area codes, then `555`
# half the time, then random digits: 10 digits), 20 % years (1950-2029), 20 % 4-digit PINs and 20 %
# uniform strings of 3-10 digits (`mmcourse/data/digit_strings.py` documents it).
#
# The splits never share a recording: training uses takes 10-49 of five speakers, validation takes
# 5-9, the test set FSDD's official test takes 0-4. The sixth speaker, `theo`, is held out of training
# entirely: his test takes form the **unseen-speaker** set (his takes 10-49, `adapt`, are kept for
# one experiment in section 7). The sizes are scaled to train in minutes on one CPU thread.

# %%
splits = {
    "train": ds.build_utterances("train", N_TRAIN),
    "val": ds.build_utterances("val", N_VAL),
    "test": ds.build_utterances("test", N_TEST),
    "unseen": ds.build_utterances("unseen", N_UNSEEN),
}
print(f"{'split':<7} {'utterances':>10} {'speakers':>9} {'takes':>7} {'minutes':>8} {'digits/utt':>10}")
for name, utts in splits.items():
    takes = sorted({t for u in utts for _, t in u.takes})
    print(f"{name:<7} {len(utts):>10} {len({u.speaker for u in utts}):>9} {takes[0]:>3}-{takes[-1]:<3} "
          f"{sum(u.seconds for u in utts) / 60:>8.1f} {sum(len(u.digits) for u in utts) / len(utts):>10.1f}")
shared = {(u.speaker, d, t) for u in splits["train"] for d, t in u.takes} & {
    (u.speaker, d, t) for s in ("val", "test", "unseen") for u in splits[s] for d, t in u.takes}
print("recordings shared between training and the other splits:", len(shared))
print("unseen speaker in training:", any(u.speaker == ds.HELD_OUT for u in splits["train"]))

# %%
example = splits["test"][0]
ex_feats = logmel(example.wave)  # [frames, 40]
fig, ax = plt.subplots(3, 1, figsize=(9, 6.5))
waveform_with_words(ax[0], example.wave, example.bounds, example.digits,
                    f"test utterance 0: '{example.digits}' said by {example.speaker}")
logmel_image(ax[1], ex_feats, "log-Mel features (40 bands, 10 ms hop), normalised per utterance", fig)
torch.manual_seed(0)
logmel_image(ax[2], spec_augment(ex_feats), "the same with SpecAugment: 2 frequency masks, ~1 time mask per second", fig)
fig.tight_layout()
plt.show()

# %% [markdown]
# **SpecAugment** (Park et al., 2019) masks a few bands and a few short stretches of time in every
# training example, afresh every epoch: the model cannot lean on one band or one frame. Half the
# training utterances also get white noise at a random 5-30 dB SNR (drawn once).
#
# ## 2. CTC: learning without alignments
#
# The acoustic model outputs, every 40 ms, a distribution over 11 classes: the ten digits and a
# **blank** (`-`). A *path* picks one class per frame; it **collapses** to a transcript by merging
# repeats and then dropping blanks: `1 1 - 1 2 2 -` → `1 1 2`. A blank is the only way to say the
# same digit twice. CTC's loss is $-\log P(y \mid x)$, where $P(y \mid x)$ sums the probabilities of
# *all* paths that collapse to $y$ (a dynamic programme, `nn.CTCLoss`, computes the sum without listing
# them). Here is a toy: 5 frames, classes `-`, `a`, `b`, and the paths for `a b`.

# %%
toy = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.3, 0.3], [0.5, 0.3, 0.2],
                    [0.1, 0.2, 0.7], [0.7, 0.2, 0.1]]).log()  # fmt: skip  [T=5, C=3]
names = ["-", "a", "b"]
toy_paths = ctc.paths_to([1, 2], 5, 3)
exact = ctc.brute_force(toy)
p_ab = sum(float(toy[torch.arange(5), torch.tensor(p)].sum().exp()) for p in toy_paths)
greedy_toy = ctc.greedy(toy)
best_toy = max(exact, key=exact.get)
beam_toy = ctc.prefix_beam_search(toy, beam=4, prune=None)
print(f"paths collapsing to 'a b': {len(toy_paths)}; P(a b) = {p_ab:.4f} "
      f"(brute force over all 3^5 paths: {math.exp(exact[(1, 2)]):.4f})")
print("greedy (best path, collapsed):", "".join(names[c] for c in greedy_toy) or "(empty)",
      f"P = {math.exp(exact[tuple(greedy_toy)]):.4f}")
print("best transcript (brute force):", "".join(names[c] for c in best_toy), f"P = {math.exp(exact[best_toy]):.4f}")
print("prefix beam search, beam 4:  ", "".join(names[c] for c in beam_toy[0][0]), f"P = {math.exp(beam_toy[0][1]):.4f}")
# NBVAL_CHECK_OUTPUT

# %%
fig, ax = plt.subplots(figsize=(8, 3.2))
ctc_paths(ax, toy, toy_paths[:4], names, f"4 of the {len(toy_paths)} paths that collapse to 'a b'", fig)
plt.show()

# %% [markdown]
# The most likely *path* is not the most likely *transcript*: many paths share a transcript and
# their probabilities add up. **Prefix beam search** keeps the `beam` best transcript prefixes,
# each with two numbers: the probability of its paths that end in a blank and of those that end in
# its last label (a repeated label only extends the prefix after a blank). With a beam as large as
# the number of prefixes it is exact; `tests/test_speech_ctc.py` checks it against brute force.
#
# ## 3. The acoustic model
#
# A strided 1-D convolution front end (two layers, stride 2 each: 10 ms → 40 ms frames), four
# residual *dilated* convolutions (dilations 1, 2, 4, 1: each output frame sees about 1.4 s of audio,
# enough for a word and its neighbours) and a linear layer to the 11 classes, trained with
# `nn.CTCLoss` through the course's `fit` (the targets travel as one padded tensor;
# `mmcourse/models/asr.py`). `CTCRecognizer(rnn_hidden=96)` adds a bidirectional GRU on top (residually):
# we train the all-convolutional model here: each of its layers runs over all the frames at once,
# while a GRU has to step through them one after another.
# The first epoch goes from the shortest utterances to the longest (*SortaGrad*, from Deep Speech 2).
# The whole recipe (noise, SpecAugment, SortaGrad, AdamW with a one-cycle schedule, gradient clipping, the
# best validation epoch kept) is `train_recognizer` in `mmcourse/speech/training.py`; chapter 13 trains with it too.

# %%
model, hist = train_recognizer(splits["train"], splits["val"], epochs=EPOCHS, batch_size=BATCH, device=device)
n_params = count_parameters(model)
train_seconds = hist.seconds
print(f"{n_params:,} parameters; {EPOCHS} epochs over {N_TRAIN} utterances "
      f"({sum(u.seconds for u in splits['train']) / 60:.0f} min of audio) in {train_seconds:.0f} s; "
      f"best validation CTC loss {hist.best['val_loss']:.3f} (epoch {hist.best_epoch})")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(hist["epoch"], hist["train_loss"], "-", label="train (SpecAugment, noise)")
ax.plot(hist["epoch"], hist["val_loss"], "--", label="validation")
ax.set(xlabel="epoch", ylabel="CTC loss (nats per label)", title="CTC loss", yscale="log")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. What it learned: emissions and alignment
#
# The emission matrix of a test utterance: most frames are blank; each word lights up its digit in a
# few frames (CTC's "spiky" outputs). **Forced alignment** finds the single
# best path that collapses to the *known* transcript (a Viterbi search over the blank-interleaved
# labels, `mmcourse/speech/align.py`, checked against `torchaudio.functional.forced_align`); its label
# runs give word positions, which we compare with where the builder put each word.

# %%
recognizer = Recognizer(model.cpu().eval(), None)
emis = {s: recognizer.emissions([u.wave for u in splits[s]]) for s in ("val", "test", "unseen")}
lp0 = emis["test"][0]  # [T', 11]
fa_path, fa_score = forced_align(lp0, [d + 1 for d in example.labels])
fa_segs = segments(fa_path.tolist())
fig, ax = plt.subplots(2, 1, figsize=(9, 5.5), height_ratios=[3, 1.3])
emissions_image(ax[0], lp0, f"emissions of test utterance 0 ('{example.digits}'), greedy path as dots", fig,
                path=lp0.argmax(-1).tolist())
word_spans(ax[1], [(str(d), a / 8000, b / 8000) for d, (a, b) in zip(example.digits, example.bounds)], 1,
           "tab:orange", "where the builder put each word")
word_spans(ax[1], [(str(lab - 1), a * 0.04, b * 0.04) for lab, a, b in fa_segs], 0, "tab:blue",
           "forced-alignment label frames")
ax[1].set(xlabel="time (s)", ylabel="words", yticks=[0, 1], yticklabels=["aligned", "true"],
          xlim=ax[0].get_xlim())
fig.tight_layout()
plt.show()


def peak_inside(utts, ems) -> float:
    """Share of words whose forced-alignment frames start inside the word's true span (±40 ms)."""
    inside = total = 0
    for u, e in zip(utts, ems, strict=True):
        segs = segments(forced_align(e, [d + 1 for d in u.labels])[0].tolist())
        for (_, a, _), (s, t) in zip(segs, u.bounds, strict=True):
            inside += s / 8000 - 0.04 <= a * 0.04 <= t / 8000 + 0.04
            total += 1
    return inside / total


aligned_inside = peak_inside(splits["test"], emis["test"])
blank_share = float(torch.cat(emis["test"]).argmax(-1).eq(0).float().mean())
print(f"frames whose best class is blank: {blank_share:.1%}; forced-aligned words that start inside "
      f"their true span: {aligned_inside:.1%} of {sum(len(u.digits) for u in splits['test'])}")

# %% [markdown]
# ## 5. Decoding: greedy, beam search, and a language model
#
# **Greedy**: the best class per frame, collapsed. **Beam**: prefix beam search (beam 8).
# **Beam + LM**: *shallow fusion* adds a language model's opinion whenever a prefix grows by a word:
#
# $$\text{score}(y) = \log P_\text{CTC}(y \mid x) + \alpha \log P_\text{LM}(y) + \beta\,|y|$$
#
# The LM is a 4-gram over digits (interpolated absolute discounting, `mmcourse/speech/lm.py`) trained on
# 20,000 strings from the recipe drawn with a training seed: text is cheap, so an LM usually sees far more
# of it than the acoustic model hears. β is a bonus per word: every word costs the LM some
# log-probability, and β pays it back. α and β are tuned on the **validation** set (α = 0 means the
# LM is not worth using there); the test set is decoded once.

# %%
lm = NGramLM(order=4).fit(ds.digit_strings(20_000, seed=11))
refs = {s: [words(u.digits) for u in splits[s]] for s in splits}
uniform_ppl = 11.0
print(f"LM perplexity on the validation strings: {lm.perplexity([u.digits for u in splits['val']]):.2f} "
      f"per digit (uniform: {uniform_ppl:.0f})")
recognizer.lm = lm


def score(split: str, method: str, **kw) -> float:
    return wer(refs[split], [words(recognizer.decode(e, method, **kw)) for e in emis[split]])


alpha, beta, grid = tune_fusion(recognizer, emis["val"], [u.digits for u in splits["val"]])  # every ALPHAS x BETAS pair
recognizer.alpha, recognizer.beta = alpha, beta
# bench/speech.py times this model, LM weight and bonus
save_checkpoint({"model": model.state_dict(), "alpha": alpha, "beta": beta},
                cache_dir() / "speech" / pick(fast="asr-fast.pt", full="asr.pt"))
beam_sweep = {k: score("val", "beam_lm", beam=k) for k in (1, 2, 4, 8, 16)}
print(f"tuned on validation: alpha = {alpha}, beta = {beta} (validation WER {grid[(alpha, beta)]:.4f})")

hyps = {m: [words(recognizer.decode(e, m)) for e in emis["test"]] for m in ("greedy", "beam", "beam_lm")}
wer_test = {m: wer(refs["test"], h) for m, h in hyps.items()}
print(f"{'test set (seen speakers)':<26} {'WER':>7} {'CER':>7} {'sentences':>10}")
for m, h in hyps.items():
    print(f"{m:<26} {wer_test[m]:>7.4f} {cer(refs['test'], h):>7.4f} {sentence_accuracy(refs['test'], h):>10.3f}")

fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
for b in BETAS:
    ax[0].plot(ALPHAS, [grid[(a, b)] for a in ALPHAS], "o-", label=f"beta = {b}")
ax[0].set(xlabel="LM weight alpha", ylabel="validation WER", title="shallow fusion: alpha and beta")
ax[0].legend()
ax[1].plot(list(beam_sweep), list(beam_sweep.values()), "o-")
ax[1].set(xscale="log", xlabel="beam width", ylabel="validation WER", title=f"beam width (alpha={alpha}, beta={beta})")
ax[1].set_xticks(list(beam_sweep), [str(k) for k in beam_sweep])
fig.tight_layout()
plt.show()

# %% [markdown]
# Compare the rows above: beam search scores whole transcripts (the sum over their paths), and the LM
# adds what the digit strings usually look like, with the weight validation chose. On clean speech of
# known voices the acoustic model is already sure of most words, so the LM has little left to gain (in a
# full build the three rows differ by less than the WER's seed spread, and beam + LM may even come out a
# hair behind greedy); the robustness table in section 7 shows the three decoders where the acoustics are
# less certain, and there the LM gains more.
#
# WER counts substitutions, deletions and insertions against the number of reference words, over
# the whole set (`mmcourse/speech/wer.py`); here it is compared with `jiwer`, the usual library.

# %%
import jiwer  # noqa: E402

jiwer_gap = max(abs(wer(refs["test"], h) - jiwer.wer(refs["test"], h)) for h in hyps.values())
jiwer_cer_gap = max(abs(cer(refs["test"], h) - jiwer.cer(refs["test"], h)) for h in hyps.values())
print("our WER and CER equal jiwer's on all three decodings:", jiwer_gap < 1e-12 and jiwer_cer_gap < 1e-12)
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 6. A real baseline: pocketsphinx
#
# pocketsphinx is CMU's classic HMM recogniser; its PyPI wheel carries a US-English acoustic model
# (trained on 16 kHz speech), a general-English n-gram LM and a 134,860-entry pronouncing dictionary.
# We run it on the first test utterances, resampled to 16 kHz, twice: with its own LM, and restricted
# by a JSGF grammar to strings of digit words. Upsampling cannot restore what 8 kHz audio lacks: the
# model's filters reach 6.8 kHz, and everything above 4 kHz is empty. To see how much that costs, we
# also give it synthetic speech (espeak-ng, section 7) straight at 16 kHz and, the same speech,
# band-limited to 8 kHz first.

# %%
sphinx_lm, sphinx_grammar = PocketSphinx(grammar=False), PocketSphinx(grammar=True)
sub = splits["test"][:N_SPHINX]
sub_refs = refs["test"][:N_SPHINX]
t0 = time.perf_counter()
ps_default = transcribe_cached("sphinx_lm", [u.wave for u in sub], sphinx_lm.transcribe)
ps_grammar = transcribe_cached("sphinx_grammar", [u.wave for u in sub], sphinx_grammar.transcribe)
ours_sub = {m: wer(sub_refs, h[:N_SPHINX]) for m, h in hyps.items()}
wer_sphinx = {"default LM": wer(sub_refs, ps_default), "digit grammar": wer(sub_refs, ps_grammar)}
print(f"first {N_SPHINX} test utterances ({sum(u.seconds for u in sub):.0f} s of audio):")
for k, v in wer_sphinx.items():
    print(f"  pocketsphinx, {k:<14} WER {v:.3f}")
for m in ("greedy", "beam_lm"):
    print(f"  ours, {m:<22} WER {ours_sub[m]:.3f}")
print("example:", sub_refs[0], "| default LM:", ps_default[0], "| grammar:", ps_grammar[0])

# %% [markdown]
# ## 7. Robustness: new voices, synthetic voices, noise
#
# The same recogniser on: the unseen speaker; the test strings spoken by espeak-ng (four voices,
# two speaking rates, synthesised at 22 kHz and resampled to 8 kHz); and the test set with white
# noise at 20, 10 and 0 dB SNR.

# %%
VOICES = [("en-us", 130), ("en-us+f3", 170), ("en+m3", 150), ("en-gb-x-rp", 190)]
synth_strings = [u.digits for u in splits["test"][:N_SYNTH]]
synth_22k = [espeak(words(s), voice=VOICES[k % 4][0], rate=VOICES[k % 4][1], sample_rate=22050)
             for k, s in enumerate(synth_strings)]

synth_8k = [resample(w, 22050, 8000) for w in synth_22k]
refs["synth"] = [words(s) for s in synth_strings]
emis["synth"] = recognizer.emissions(synth_8k)
for snr in (20, 10, 0):
    noisy = ds.build_utterances("test", N_TEST, snr_db=snr)
    assert [u.digits for u in noisy] == [u.digits for u in splits["test"]]
    emis[f"noise {snr} dB"], refs[f"noise {snr} dB"] = recognizer.emissions([u.wave for u in noisy]), refs["test"]
conditions = {"seen speakers (test takes)": "test", f"unseen speaker ({ds.HELD_OUT})": "unseen",
              "espeak-ng voices": "synth", "noise 20 dB": "noise 20 dB", "noise 10 dB": "noise 10 dB",
              "noise 0 dB": "noise 0 dB"}
robust = {}
for name, key in conditions.items():
    robust[name] = {m: score(key, m) for m in ("greedy", "beam", "beam_lm")}
ps_synth_8k = transcribe_cached("sphinx_grammar_synth8k", synth_8k[:N_SPHINX], sphinx_grammar.transcribe)
ps_synth_16k = transcribe_cached("sphinx_grammar_synth16k", [resample(w, 22050, 16000) for w in synth_22k[:N_SPHINX]],
                                 lambda w: sphinx_grammar.transcribe(w, 16000))
n_ps_synth = len(ps_synth_8k)
wer_ps_synth = {"8k": wer(refs["synth"][:n_ps_synth], ps_synth_8k), "16k": wer(refs["synth"][:n_ps_synth], ps_synth_16k)}
print(f"{'condition (WER)':<28} {'utts':>5} {'greedy':>7} {'beam':>7} {'beam+LM':>8}")
for name, key in conditions.items():
    r = robust[name]
    print(f"{name:<28} {len(emis[key]):>5} {r['greedy']:>7.3f} {r['beam']:>7.3f} {r['beam_lm']:>8.3f}")
print(f"pocketsphinx + digit grammar on {n_ps_synth} espeak-ng utterances: WER {wer_ps_synth['8k']:.3f} "
      f"via 8 kHz, {wer_ps_synth['16k']:.3f} at 16 kHz (full band)")

# %% [markdown]
# Five speakers are too few to cover how people speak: compare the unseen speaker's row with the
# first. How much does data from the new speaker help? We fine-tune a copy of the model for two
# epochs on `N_ADAPT` utterances of `theo`'s *other* takes (10-49, never in his test set) mixed with as
# many training utterances, and measure both sets again.

# %%
N_ADAPT = pick(fast=40, full=100)
adapt = ds.build_utterances("adapt", N_ADAPT)
mix = splits["train"][:N_ADAPT]
adapted = CTCRecognizer()
adapted.load_state_dict(model.state_dict())
adapt_dl = ctc_loader(CTCData([logmel(u.wave) for u in adapt + mix], [u.labels for u in adapt + mix], augment=True),
                      batch_size=32, seed=1)
fit(adapted, adapt_dl, None, epochs=2, lr=5e-4, loss_fn=ctc_objective, monitor="train_loss", grad_clip=5.0,
    progress=False, seed=1, restore_best=False)
adapted_rec = Recognizer(adapted.eval(), lm, alpha, beta)
wer_adapted = {s: wer(refs[s], [words(h) for h in adapted_rec.transcribe_many([u.wave for u in splits[s]])])
               for s in ("unseen", "test")}
print(f"unseen speaker WER (beam+LM): {robust[f'unseen speaker ({ds.HELD_OUT})']['beam_lm']:.3f} -> "
      f"{wer_adapted['unseen']:.3f} after fine-tuning on {N_ADAPT} of his utterances; "
      f"seen speakers {wer_test['beam_lm']:.3f} -> {wer_adapted['test']:.3f}")

# %% [markdown]
# ### Try it: the recogniser on any utterance
# Pick a condition and an utterance: the picture shows the waveform and the emissions, the caption
# the reference and the three decodings (errors in red), and the player plays it. Everything is
# computed once above, so the widget only redraws.
#
# **Your own recording.** The file picker under the player (*your file*) takes a WAV, FLAC or OGG
# file of up to 60 s, at any sample rate, stereo too: record yourself saying some digits with any
# sound recorder, pick the file, and the widget adds the condition *your file* and shows its
# waveform, emissions and decodings. (Browsers need a page's permission to use the microphone, so a
# recorded file is the way that works the same in JupyterLab and Colab.) In code, the same is
# `recognizer.transcribe(*mmcourse.audio.load(path))`.

# %%
player = W.Audio(format="wav", autoplay=False, layout=W.Layout(width="320px"))
cond_waves = {"test": [u.wave for u in splits["test"]], "unseen": [u.wave for u in splits["unseen"]],
              "synth": synth_8k}


def mark(ref: str, hyp: str) -> str:
    r, h = ref.split(), hyp.split()
    return " ".join(w if k < len(r) and r[k] == w else f"<span style='color:red'>{w}</span>"
                    for k, w in enumerate(h)) or "(nothing)"


YOURS = "your file"  # the condition an upload adds
MAX_UPLOAD_S = 60.0


def add_recording(content: bytes, name: str) -> str:
    """An uploaded file -> the condition "your file" (its emissions computed once); a message."""
    try:
        w, sr = load(content, sample_rate=8000, name=name)  # [T] mono, resampled to 8 kHz
    except ValueError as err:
        return f"<b>{name}</b>: {err}"
    if w.numel() > MAX_UPLOAD_S * sr:
        return f"<b>{name}</b> is {w.numel() / sr:.0f} s long: pick a recording of at most {MAX_UPLOAD_S:.0f} s"
    lp = recognizer.long_emissions(w) if w.numel() > 10 * 8000 else recognizer.emissions([w])[0]
    cond_waves[YOURS], emis[YOURS], refs[YOURS] = [w], [lp], [""]
    return ""


def on_upload(change) -> None:
    if not upload.value:
        return
    f = upload.value[0]
    message = add_recording(bytes(f["content"]), f["name"])
    if message:
        widget.caption.value = message
        return
    control = widget.controls["condition"]
    if YOURS not in control.options:
        control.options = [*control.options, YOURS]
    widget.set(condition=YOURS, utterance=0)


def draw_utterance(fig, condition: str, utterance: int):
    utterance = min(utterance, len(cond_waves[condition]) - 1)
    wave, lp = cond_waves[condition][utterance], emis[condition][utterance]
    player.value = to_wav_bytes(wave, 8000)
    ax = fig.subplots(2, 1, height_ratios=[1, 1.6])
    ax[0].plot(torch.arange(wave.numel()) / 8000, wave, lw=0.5, color="0.3")
    ax[0].set(xlabel="time (s)", ylabel="amplitude", title=f"{condition} utterance {utterance}")
    emissions_image(ax[1], lp, "emissions (log-probabilities)", fig, path=lp.argmax(-1).tolist())
    fig.tight_layout()
    ref = refs[condition][utterance]
    out = {m: words(recognizer.decode(lp, m)) for m in ("greedy", "beam", "beam_lm")}
    if condition == YOURS:  # no reference to mark errors against
        return "<br>".join(["<b>your recording</b>"] + [f"<b>{m}</b>: {h or '(nothing)'}" for m, h in out.items()])
    return "<br>".join([f"<b>reference</b>: {ref}"] + [f"<b>{m}</b>: {mark(ref, h)}" for m, h in out.items()])


upload = W.FileUpload(accept=".wav,.flac,.ogg,audio/*", multiple=False, description="your file")
upload.observe(on_upload, names="value")
widget = Panel(draw_utterance, figsize=(9, 5), dpi=72, extra=[player, upload],
               condition=W.Dropdown(options=["test", "unseen", "synth"], value="test", description="condition"),
               utterance=W.IntSlider(0, 0, N_SYNTH - 1, description="utterance"))
widget

# %%
png_before = widget.image.value
png_after = widget.set(utterance=3)
print(f"the widget redraws when the utterance changes: {png_before != png_after}")
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# The file picker, tried as a learner would: a test utterance saved at 16 kHz in stereo (another
# rate and layout than the training data) goes through the same path as a picked file, and a text
# file gets a clear message instead of an error.

# %%
u3 = splits["test"][3]
w16 = resample(u3.wave, 8000, 16000).numpy()  # [T16]
buf = io.BytesIO()
sf.write(buf, np.stack([w16, 0.5 * w16], 1), 16000, format="WAV", subtype="PCM_16")  # [T16, 2]
as_picked = {"name": "my_digits.wav", "type": "audio/wav", "size": buf.tell(),
             "content": memoryview(buf.getvalue()), "last_modified": datetime.now(timezone.utc)}
upload.value = (as_picked,)  # what the browser's file dialog sets
from_file = widget.caption.value
direct = words(recognizer.decode(emis["test"][3], "beam_lm"))
print(f"reference {refs['test'][3]!r}; from the picked 16 kHz stereo file: {words(recognizer.decode(emis[YOURS][0]))!r}; "
      f"condition now {widget.values['condition']!r}")
bad = add_recording(b"these are not samples", "notes.txt")
print("a text file:", bad.replace("<b>", "").replace("</b>", ""))
assert widget.values["condition"] == YOURS and direct in from_file
assert words(recognizer.decode(emis[YOURS][0])) == direct
assert "could not be read as audio" in bad

# %% [markdown]
# ## 8. Long audio: chunks with overlap
#
# A bidirectional model reads the whole input before it emits anything, and its memory grows with
# the length. For long recordings (and for streaming) we cut the audio into 8 s chunks that overlap by
# 2 s, keep the middle of each chunk's emissions (1 s of the overlap is dropped at each inner edge,
# so every kept frame saw at least 1 s of context on both sides), join them and decode once.

# %%
speaker = splits["test"][0].speaker
parts = ds.build_utterances("test", 12, seed=21, speakers=[speaker])
parts = [u for k, u in enumerate(parts) if sum(p.seconds for p in parts[:k]) < 30]  # just over 30 s
long_wave = torch.cat([u.wave for u in parts])
long_ref = " ".join(words(u.digits) for u in parts)
t0 = time.perf_counter()
long_em = recognizer.long_emissions(long_wave, chunk_s=8.0, overlap_s=2.0)
chunked = words(recognizer.decode(long_em, "beam_lm"))
long_seconds = time.perf_counter() - t0
whole = words(recognizer.decode(recognizer.emissions([long_wave])[0], "beam_lm"))
wer_long = {"chunked": wer([long_ref], [chunked]), "whole": wer([long_ref], [whole])}
print(f"{long_wave.numel() / 8000:.0f} s recording, {len(long_ref.split())} digits, "
      f"{len(range(0, long_wave.numel() - 2 * 8000, 6 * 8000))} chunks, decoded in {long_seconds:.1f} s: "
      f"WER chunked {wer_long['chunked']:.3f}, whole file at once {wer_long['whole']:.3f}")
print("first words:", " ".join(chunked.split()[:12]), "...")

# %% [markdown]
# ## Checks
# Every claim above, asserted; the headline numbers recorded with this mode's target. The seed spread
# of the headline WER was measured once over three training seeds (the comment below has the numbers).

# %%
# 1. Splits: no recording shared, the unseen speaker is in no training utterance.
assert len(shared) == 0 and all(u.speaker != ds.HELD_OUT for u in splits["train"])
assert all(u.speaker == ds.HELD_OUT for u in splits["unseen"])
# 2. CTC toy: 35 paths collapse to "a b"; greedy's transcript is not the best one; beam search finds it.
assert len(toy_paths) == 35 and abs(p_ab - math.exp(exact[(1, 2)])) < 1e-6
assert tuple(greedy_toy) != best_toy and tuple(beam_toy[0][0]) == best_toy
# 3. Spiky emissions and alignment: most frames blank; forced-aligned words start inside their span.
assert blank_share > 0.5 and aligned_inside > pick(fast=0.5, full=0.9), (blank_share, aligned_inside)
# 4. WER equals jiwer's; the LM has learned the recipe; (full mode) on the seen speakers the three decoders
#    differ by less than the WER's seed spread (0.0083, below).
assert jiwer_gap < 1e-12 and jiwer_cer_gap < 1e-12
assert lm.perplexity([u.digits for u in splits["val"]]) < uniform_ppl - 2
if not is_fast():
    assert max(wer_test.values()) - min(wer_test.values()) < 0.0083, wer_test
# 4b. Where the acoustics are less certain (unseen speaker, espeak-ng voices, 0 dB noise), beam + LM beats
#     greedy, and by more than on the seen speakers.
lm_gain = {name: robust[name]["greedy"] - robust[name]["beam_lm"] for name in robust}
for name in (f"unseen speaker ({ds.HELD_OUT})", "espeak-ng voices", "noise 0 dB"):
    assert lm_gain[name] > max(lm_gain["seen speakers (test takes)"], 0.0), lm_gain
# 5. The grammar beats pocketsphinx's default LM; pocketsphinx does better on full-band 16 kHz speech
#    than on the same speech via 8 kHz; (full mode) beam + LM beats pocketsphinx + grammar on the same audio.
assert wer_sphinx["digit grammar"] < wer_sphinx["default LM"], wer_sphinx
if not is_fast():
    assert ours_sub["beam_lm"] < wer_sphinx["digit grammar"], (ours_sub, wer_sphinx)
assert wer_ps_synth["16k"] < wer_ps_synth["8k"], wer_ps_synth
# 6. (full mode; the fast-mode model is too weak for these) Robustness: the unseen speaker and 0 dB noise
#    are worse than the seen speakers; fine-tuning on the new speaker's other takes lowers his WER.
# 7. (full mode) Long audio: chunked decoding is about as good as decoding the whole file (within 0.05).
seen = robust["seen speakers (test takes)"]["beam_lm"]
if not is_fast():
    assert robust[f"unseen speaker ({ds.HELD_OUT})"]["beam_lm"] > seen and robust["noise 0 dB"]["beam_lm"] > seen
    assert wer_adapted["unseen"] < robust[f"unseen speaker ({ds.HELD_OUT})"]["beam_lm"], wer_adapted
    assert wer_long["chunked"] <= wer_long["whole"] + 0.05, wer_long
assert png_before != png_after
# Headline numbers. Seed spread (full mode, measured once, 2026-12-01: this chapter's data, model,
# training and decoding, alpha/beta tuned on validation each time, with training seeds 0, 1, 2):
# test WER beam + LM 0.0171 / 0.0156 / 0.0239 (greedy 0.0180 / 0.0171 / 0.0263): spread 0.0083.
# Seed 0 rebuilt 2026-12-03 on another machine, same code and 1 thread: 0.0219 (greedy 0.0195): other CPU
# kernels round differently, and the training takes another path (DEVELOPING.md, "Reproducibility").
rec.record("wer_seen_beam_lm", wer_test["beam_lm"], target=pick(fast=0.8, full=0.05), higher_is_better=False,
           spread=pick(fast=None, full=0.0083))
rec.record("wer_seen_greedy", wer_test["greedy"], higher_is_better=False)
rec.record("wer_seen_beam", wer_test["beam"], higher_is_better=False)
rec.record("wer_unseen_speaker_beam_lm", robust[f"unseen speaker ({ds.HELD_OUT})"]["beam_lm"], higher_is_better=False)
rec.record("wer_unseen_speaker_adapted_beam_lm", wer_adapted["unseen"], higher_is_better=False)
rec.record("wer_espeak_beam_lm", robust["espeak-ng voices"]["beam_lm"], higher_is_better=False)
for snr in (20, 10, 0):
    rec.record(f"wer_noise_{snr}db_beam_lm", robust[f"noise {snr} dB"]["beam_lm"], higher_is_better=False)
rec.record("wer_pocketsphinx_grammar", wer_sphinx["digit grammar"], higher_is_better=False)
rec.record("wer_pocketsphinx_default_lm", wer_sphinx["default LM"], higher_is_better=False)
rec.record("wer_pocketsphinx_minus_ours_same_audio", wer_sphinx["digit grammar"] - ours_sub["beam_lm"],
           target=pick(fast=None, full=0.0))
rec.record("wer_long_audio_chunked", wer_long["chunked"], higher_is_better=False)
rec.record("acoustic_model_parameters", n_params, target=2_000_000, higher_is_better=False)
chapter_seconds = time.perf_counter() - t_start
print(f"chapter ran in {chapter_seconds:.0f} s")
print(rec.check_targets())

# %% [markdown]
# ## Exercises
# Solutions: `notebooks/solutions/11_project_speech_recognition.py` (each one asserts its answer).
#
# 1. **Counting CTC paths.** How many paths of `T` frames collapse to a transcript of `L` labels
#    with `r` adjacent repeats? Find the formula, check it against `ctc.paths_to` for small cases,
#    and give the fewest frames that can hold `1 1 2 2` (why do repeats cost frames?).
# 2. **How long a memory does the LM need?** Train `NGramLM(order)` for orders 1-6 on the chapter's
#    20,000 strings and compute the perplexity of fresh strings. Which order is best, and which part of
#    the recipe (area codes, `555`, years) does each step up in order capture?
# 3. **Greedy is not the best transcript.** Build a 3-frame emission matrix over `-`, `a` where greedy
#    returns the empty transcript but the most likely transcript is `a`. Check with `ctc.brute_force`
#    and `ctc.prefix_beam_search`; then find the smallest probability of `a` per frame for which this happens.
