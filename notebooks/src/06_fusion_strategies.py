# %% [markdown]
# # 06 · Fusion strategies
#
# **Book:** Ch. 7 — early (data-level), feature-level and late (decision-level) fusion, modular
# designs, tensor and attention fusion.
#
# **You will be able to:**
# - say where data-level, feature-level and decision-level fusion join the modalities, and write each one's equation;
# - build any fusion as `MultimodalModel(encoders, fusion, head)` and train eleven strategies under one budget;
# - read a comparison table honestly: accuracy mean ± std over seeds, parameters, training time, against unimodal baselines;
# - measure what happens when a modality goes missing or noisy, and how modality dropout helps;
# - explain why tensor fusion explodes with the number of modalities and how low-rank fusion fixes it.

# %%
import time

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mmcourse.config import pick, seed_everything
from mmcourse.data import AVDigits
from mmcourse.data.avdigits import decode_words, pairing
from mmcourse.device import describe
from mmcourse.fusion import count_params, low_rank_params, tensor_fusion_params
from mmcourse.fusion.zoo import FUSION, LEVEL, UNIMODAL, build, predict, train
from mmcourse.results import Results
from mmcourse.viz import Panel
from mmcourse.viz.fusion import draw_accuracy_bars, draw_fusion_levels, draw_params_vs_modalities, draw_robustness

rec = Results("06_fusion_strategies")
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small
device = torch.device("cpu")  # tiny models: the CPU is as fast as a GPU here, and identical everywhere
torch.set_num_threads(1)  # tiny models: one thread avoids the cost of synchronising threads
EPOCHS = pick(fast=6, full=10)
SEEDS = pick(fast=[0, 1], full=[0, 1, 2])
N_TRAIN = pick(fast=1200, full=2400)  # of the 2,400 training pairs
BATCH = 32
DROPOUT = 0.3  # modality dropout for the robust variants
print(describe(), "| epochs", EPOCHS, "| seeds", SEEDS, "| train pairs", N_TRAIN)
t_start = time.perf_counter()

# %% [markdown]
# ## 1. The data: AVDigits
# A learner sees a handwritten digit *and* hears someone say it. **AVDigits** rebuilds MultiBench's
# AV-MNIST from licensed sources: each recording of the Free Spoken Digit Dataset (FSDD) is paired with
# an MNIST image of the same digit. The exact recipe (`mmcourse/data/avdigits.py`):
#
# | step | recipe |
# | --- | --- |
# | splits | audio: FSDD takes 0–4 → **test** (300), takes 5–9 → **val** (300), takes 10–49 → **train** (2,400); images: the MNIST pool's own train / val / test split |
# | pairing | every recording gets one image of its digit from the *same* split, drawn without replacement (seed 0): no image or recording is in two splits, no image is used twice |
# | image degradation | remove the leading principal components holding **75 %** of the variance (PCA fitted on train images), then add Gaussian noise of std **0.2** |
# | audio degradation | white noise at **−6 dB** SNR, then log-Mel features (40 bands, 10 ms hop → `[40, 101]`) |
# | text (section 7) | the digit's word with each letter replaced by a random letter with probability **0.6** |
#
# The degradations are there so that **neither modality alone suffices**: fusion has something to win.

# %%
KW = dict(image_pca_removed=0.75, image_noise=0.2, audio_snr_db=-6.0)
splits = {s: AVDigits(s, **KW) for s in ("train", "val", "test")}
clean = AVDigits("test")  # the same pairs, nothing removed, no noise (for the picture only)
stats = splits["train"].stats()
X = {s: d.inputs(stats) for s, d in splits.items()}  # standardised with train statistics
Y = {s: d.labels for s, d in splits.items()}
sub = torch.randperm(len(Y["train"]), generator=torch.Generator().manual_seed(0))[:N_TRAIN]
X["train"], Y["train"] = {k: v[sub] for k, v in X["train"].items()}, Y["train"][sub]

# %%
# NBVAL_CHECK_OUTPUT
for s, d in splits.items():
    print(f"{s:5s}: {len(d)} pairs, image {tuple(d.image.shape[1:])}, audio {tuple(d.audio.shape[1:])}")
rec_ids = {s: set(pairing(s)[0].tolist()) for s in splits}
img_ids = {s: set(pairing(s)[1].tolist()) for s in splits}
print("recordings shared between splits:", sum(len(rec_ids[a] & rec_ids[b]) for a, b in [("train", "val"), ("train", "test"), ("val", "test")]))
print("images shared between splits:    ", sum(len(img_ids[a] & img_ids[b]) for a, b in [("train", "val"), ("train", "test"), ("val", "test")]))
print("every pair shows one digit:      ", all(bool((d.labels == torch.tensor([int(r[0]) for r in d.recording])).all()) for d in splits.values()))

# %%
fig, axes = plt.subplots(3, 6, figsize=(10, 4.6))
for j in range(6):
    i = j * 50
    axes[0, j].imshow(clean.image[i, 0], cmap="gray")
    axes[1, j].imshow(splits["test"].image[i, 0], cmap="gray")
    axes[2, j].imshow(splits["test"].audio[i], origin="lower", aspect="auto", cmap="magma")
    axes[0, j].set_title(f"digit {int(clean.labels[i])}", fontsize=8)
for ax, t in zip(axes[:, 0], ["clean", "75 % PCA energy\nremoved + noise", "log-Mel at -6 dB"], strict=True):
    ax.set_ylabel(t, fontsize=8)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# ## 2. Three levels of fusion, and stronger feature-level fusions
# Write `x_m` for the input of modality *m*, `f_m` for its encoder, `h_m = f_m(x_m)` for its embedding
# (`[B, 32]` here), and `g` for a classifier head.
#
# | level | strategy | equation |
# | --- | --- | --- |
# | data (early) | stack inputs as channels | `y = g(f([x_img; resize(x_audio)]))` — one encoder for both |
# | feature | concatenation | `y = g([h_1; h_2])` |
# | feature | tensor fusion (TFN) | `y = g(W vec([h_1; 1] ⊗ [h_2; 1]))` — every product `h_1i h_2j`, and (thanks to the 1s) `h_1`, `h_2` themselves |
# | feature | low-rank tensor (LMF) | `W = Σ_r w_1^r ⊗ w_2^r`, so `y = g(Σ_r ([h_1;1] w_1^r) ∘ ([h_2;1] w_2^r))` |
# | feature | gated multimodal unit | `z = softmax_m(W_z [h_1; h_2])`, `y = g(Σ_m z_m ∘ tanh(W_m h_m))` |
# | feature | attention over modalities | `a = softmax_m(q·k_m/√d)`, `y = g(Σ_m a_m v_m)` with `k_m, v_m` from `h_m` |
# | feature | cross-modal transformer | image tokens attend to audio tokens and vice versa: `Â = LN(A + softmax(A B^T/√d) B)`, then pool |
# | decision (late) | mean / learned / product of experts | `s = mean_m(s_m)`, `s = Σ_m w_m s_m`, `log p = Σ_m log softmax(s_m)` with `s_m = W_m h_m` |
# | modular (hybrid) | joint + per-modality heads | `s = w_0 g([h_1;h_2]) + Σ_m w_m s_m`, `w = softmax(a)` |
#
# Every model is `MultimodalModel(encoders, fusion, head)`: the **same** image CNN and audio CNN
# (`mmcourse/models/encoders.py`), the same MLP head (`out_dim → 64 → 10`) for feature-level fusions,
# the same optimiser (Adam, lr 3e-3), batch size, epochs and seeds. Early fusion has no per-modality
# encoder: it uses the image CNN with two input channels.

# %%
fig = Figure(figsize=(11, 2.8))
draw_fusion_levels(fig)
fig

# %%
# NBVAL_CHECK_OUTPUT
METHODS = UNIMODAL + FUSION
params = {}
for m in METHODS:
    torch.manual_seed(0)
    params[m] = count_params(build(m))
    print(f"{m:18s} {LEVEL[m]:19s} {params[m]:7,d} parameters")

# %% [markdown]
# ## 3. Training every method under one budget
# Each method trains for the same epochs on the same pairs, once per seed; the weights with the best
# validation accuracy are kept; test accuracy is measured once at the end.

# %%
def run(method: str, seed: int, modality_dropout: float = 0.0):
    seed_everything(seed)
    model = build(method, modality_dropout=modality_dropout)
    r = train(model, X["train"], Y["train"], X["val"], Y["val"], epochs=EPOCHS, lr=3e-3, batch_size=BATCH, seed=seed)
    acc = float((predict(model, X["test"]).argmax(-1) == Y["test"]).float().mean())
    return model, acc, r["seconds"]


acc, secs, models = {m: [] for m in METHODS}, {m: [] for m in METHODS}, {}
for seed in SEEDS:
    for m in METHODS:
        model, a, s = run(m, seed)
        acc[m].append(a)
        secs[m].append(s)
        if seed == SEEDS[0]:
            models[m] = model
    print(f"seed {seed} done ({time.perf_counter() - t_start:.0f} s so far)")

# %%
mean = {m: float(np.mean(acc[m])) for m in METHODS}
std = {m: float(np.std(acc[m], ddof=1)) for m in METHODS}
print(f"{'method':18s} {'level':19s} {'accuracy':>15s} {'params':>8s} {'time/run':>9s}")
for m in METHODS:
    print(f"{m:18s} {LEVEL[m]:19s} {mean[m]:.3f} ± {std[m]:.3f}   {params[m]:8,d} {np.mean(secs[m]):7.1f} s")
best_uni = max(UNIMODAL, key=mean.get)
best_fusion = max(FUSION, key=mean.get)
gain = 100 * (mean[best_fusion] - mean[best_uni])
print(f"\nbest unimodal: {best_uni} {mean[best_uni]:.3f}; best fusion: {best_fusion} {mean[best_fusion]:.3f} "
      f"(+{gain:.1f} points); fusions above the best unimodal: {sum(mean[m] > mean[best_uni] for m in FUSION)}/{len(FUSION)}")

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
draw_accuracy_bars(ax, METHODS, [mean[m] for m in METHODS], [std[m] for m in METHODS], [LEVEL[m] for m in METHODS],
                   title=f"AVDigits test accuracy, mean ± std over {len(SEEDS)} seeds")
fig.tight_layout()

# %% [markdown]
# **Reading the table.** Each modality alone is weak (that was the point of the degradations), and
# most fusions beat the better of the two by a wide margin: the errors of a blurred image and a noisy
# recording are largely independent, so combining them fixes many of both. Compare the strategies'
# costs as well as their accuracies: the expressive ones — tensor fusion, the cross-modal transformer —
# have more parameters than concatenation (see the training times too), and at this data size and
# budget neither is the most accurate. Numbers move between seeds: that is why the table shows the spread.
#
# ## 4. Robustness: a missing or noisier modality at test time
# "Missing" means the modality's input is replaced by zeros (the training mean, since inputs are
# standardised); "noisier" means more image noise (std 0.7 instead of 0.2) or more audio noise (−12 dB
# instead of −6 dB) than in training. **Modality dropout** trains with each example's image or audio
# zeroed with probability 0.3 (never both), so that the model learns to answer from either alone.
# We cache every model's predictions on a grid of noise levels; the table and the widget read that cache.

# %%
IMG_LEVELS = [0.0, 0.2, 0.4, 0.7, 1.0, "missing"]
SNR_LEVELS = [20.0, 6.0, 0.0, -6.0, -12.0, "missing"]
test_img, test_aud = {}, {}
for lv in IMG_LEVELS:
    d = splits["test"] if lv in ("missing", 0.2) else AVDigits("test", image_pca_removed=0.75, image_noise=lv, audio_snr_db=-6.0)
    test_img[lv] = torch.zeros_like(X["test"]["image"]) if lv == "missing" else d.inputs(stats)["image"]
for lv in SNR_LEVELS:
    d = splits["test"] if lv in ("missing", -6.0) else AVDigits("test", image_pca_removed=0.75, image_noise=0.2, audio_snr_db=lv)
    test_aud[lv] = torch.zeros_like(X["test"]["audio"]) if lv == "missing" else d.inputs(stats)["audio"]

robust = {"without": models}
robust["with"] = {m: (models[m] if m in UNIMODAL else run(m, SEEDS[0], DROPOUT)[0]) for m in METHODS}


def grid_predictions(model):
    """Predicted digits ``[len(IMG_LEVELS), len(SNR_LEVELS), N_test]`` (int8)."""
    return torch.stack([torch.stack([predict(model, {"image": test_img[i], "audio": test_aud[a]}).argmax(-1)
                                     for a in SNR_LEVELS]) for i in IMG_LEVELS]).to(torch.int8)


cache = {"without": {m: grid_predictions(models[m]) for m in METHODS}}
cache["with"] = {m: cache["without"][m] if m in UNIMODAL else grid_predictions(robust["with"][m]) for m in METHODS}
grid_acc = {v: {m: (cache[v][m] == Y["test"]).float().mean(-1).numpy() for m in METHODS} for v in cache}  # [6, 6]
CONDITIONS = {"both (train noise)": (0.2, -6.0), "image missing": ("missing", -6.0), "audio missing": (0.2, "missing"),
              "image noisier": (0.7, -6.0), "audio noisier": (0.2, -12.0)}


def cond_acc(variant, m, c):
    i, a = CONDITIONS[c]
    return float(grid_acc[variant][m][IMG_LEVELS.index(i), SNR_LEVELS.index(a)])


fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
for ax, v in zip(axes, ["without", "with"], strict=True):
    table = np.array([[cond_acc(v, m, c) for c in CONDITIONS] for m in METHODS])
    draw_robustness(ax, METHODS if v == "without" else [""] * len(METHODS), list(CONDITIONS), table,
                    title=f"{v} modality dropout (seed {SEEDS[0]})")
fig.tight_layout()

# %%
fusion_missing = {v: float(np.mean([cond_acc(v, m, c) for m in FUSION for c in ("image missing", "audio missing")]))
                  for v in ("without", "with")}
fusion_both = {v: float(np.mean([cond_acc(v, m, "both (train noise)") for m in FUSION])) for v in ("without", "with")}
print("mean over fusion methods, one modality missing:", {k: round(x, 3) for k, x in fusion_missing.items()})
print("mean over fusion methods, both present:        ", {k: round(x, 3) for k, x in fusion_both.items()})
print("unimodal models on their own modality:          image", round(cond_acc("without", "image only", "both (train noise)"), 3),
      "audio", round(cond_acc("without", "audio only", "both (train noise)"), 3))

# %% [markdown]
# Without modality dropout, a fusion model that loses a modality mostly falls *below* the unimodal model
# of the modality it still has: it learned to lean on both. Modality dropout buys much of that
# robustness back; compare the first column to see what it costs when both modalities are present.
# Noise is a shift of distribution too: more noise than in training hurts, and so, for the audio
# model trained at −6 dB, can *less* noise (slide the audio SNR to 20 dB in the widget). Late fusion and attention can also take a
# truly absent key (`model({"audio": x})`): they combine only the modalities present (their documented
# masking policy); the other strategies raise a `ValueError` for a missing key.
#
# ## 5. Widget: slide each modality's noise
# Every bar is read from the cached predictions above, so the panel answers instantly. Move the image
# noise, the audio SNR, or set either to *missing*; switch modality dropout on and off.

# %%
def draw(fig, image_noise, audio_snr, dropout):
    ax = fig.subplots()
    v = "with" if dropout else "without"
    i, a = IMG_LEVELS.index(image_noise), SNR_LEVELS.index(audio_snr)
    accs = [float(grid_acc[v][m][i, a]) for m in METHODS]
    colors = ["#999999" if m in UNIMODAL else "#8172B3" for m in METHODS]
    ax.bar(range(len(METHODS)), accs, color=colors)
    ax.set_xticks(range(len(METHODS)), METHODS, rotation=40, ha="right", fontsize=8)
    ax.set(ylim=(0, 1), ylabel="test accuracy")
    ax.axhline(0.1, color="gray", ls=":", lw=0.8)
    ax.set_title(f"image noise {image_noise}, audio SNR {audio_snr} dB, {v} modality dropout", fontsize=9)
    best = int(np.argmax(accs))
    return f"best: <b>{METHODS[best]}</b> ({accs[best]:.3f}); chance is 0.1"


panel = Panel(draw, figsize=(9, 3.6),
              image_noise=W.SelectionSlider(options=IMG_LEVELS, value=0.2, description="image noise"),
              audio_snr=W.SelectionSlider(options=SNR_LEVELS, value=-6.0, description="audio SNR"),
              dropout=W.Checkbox(value=False, description="modality dropout"))
panel

# %% [markdown]
# ## 6. A third modality, and the size of tensor fusion
# Add the digit as **noisy text**: its English word with typos (`"seven"` → `"sevqn"`). Tensor fusion's
# fused vector has `Π_m (d_m + 1)` entries, so its weight grows by a factor `d + 1 = 33` with every
# modality. Low-rank fusion replaces that weight by `rank` factors per modality: growth becomes linear.

# %%
# NBVAL_CHECK_OUTPUT
KW3 = dict(KW, text_typo=0.6)
tri = {s: AVDigits(s, **KW3) for s in ("train", "val", "test")}
print("noisy words:", decode_words(tri["test"].text[::30]), "labels", tri["test"].labels[::30].tolist())
M_RANGE = [1, 2, 3, 4, 5]
counts = {"tensor fusion": [tensor_fusion_params([32] * m, 32) for m in M_RANGE],
          "low-rank, rank 4": [low_rank_params([32] * m, 32, 4) for m in M_RANGE],
          "concatenation + first head layer": [(32 * m) * 64 + 64 for m in M_RANGE]}
for k, v in counts.items():
    print(f"{k:34s}", " ".join(f"{n:>12,d}" for n in v))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4))
draw_params_vs_modalities(ax, counts, M_RANGE)
fig.tight_layout()

# %%
X3 = {s: d.inputs(stats) for s, d in tri.items()}
X3["train"] = {k: v[sub] for k, v in X3["train"].items()}
tri_rows = {}  # (method, M) -> (accuracy, fusion-layer parameters, seconds); M = 2 from the table above
for m in ("concat", "tensor", "low-rank tensor"):
    tri_rows[m, 2] = (acc[m][0], count_params(models[m].fusion), secs[m][0])
    seed_everything(SEEDS[0])
    model = build(m, modalities=("image", "audio", "text"))
    r = train(model, X3["train"], Y["train"], X3["val"], Y["val"], epochs=EPOCHS, lr=3e-3, batch_size=BATCH, seed=SEEDS[0])
    a = float((predict(model, X3["test"]).argmax(-1) == Y["test"]).float().mean())
    tri_rows[m, 3] = (a, count_params(model.fusion), r["seconds"])
print(f"{'method':16s} {'M':>2s} {'accuracy':>9s} {'fusion params':>14s} {'time':>7s}")
for (m, k), (a, n, s) in sorted(tri_rows.items()):
    print(f"{m:16s} {k:2d} {a:9.3f} {n:14,d} {s:6.1f} s")

# %% [markdown]
# The third modality helps: the typo'd word carries its own, independent evidence. Going from two to
# three modalities multiplies tensor fusion's fusion layer by 33 (compare the training times too),
# while low-rank fusion adds one small factor per modality.

# %% [markdown]
# ## Checks
# The claims above, measured: fusion wins by at least the target over the best unimodal model on the
# degraded data; most fusion strategies beat the best unimodal model; tensor fusion has more parameters
# and so has the cross-modal transformer than concatenation, and neither is the most accurate;
# modality dropout raises the accuracy with a modality missing; without it, fusion models with a
# modality missing fall below the unimodal model of the remaining modality on average; late fusion and
# attention accept an absent key; more noise than in training hurts each unimodal model; tensor
# fusion's layer grows ×33 per modality while low-rank's grows linearly; text helps concatenation.
# (Training times are printed, not asserted: on a shared machine they are noisy.)

# %%
unimodal_alone = np.mean([cond_acc("without", "audio only", "both (train noise)"), cond_acc("without", "image only", "both (train noise)")])
assert sum(mean[m] > mean[best_uni] for m in FUSION) > len(FUSION) / 2
assert params["tensor"] > params["concat"] and params["cross transformer"] > params["concat"]
assert best_fusion not in ("tensor", "cross transformer")
assert fusion_missing["with"] > fusion_missing["without"]
assert fusion_missing["without"] < unimodal_alone
for m in ("late mean", "attention"):  # an absent key is allowed (masking policy) ...
    assert predict(models[m], {"audio": X["test"]["audio"]}).shape == (len(Y["test"]), 10)
try:  # ... and refused by the others
    predict(models["concat"], {"audio": X["test"]["audio"]})
    raise AssertionError("concat accepted a missing modality")
except ValueError:
    pass
assert grid_acc["without"]["image only"][1, 3] > grid_acc["without"]["image only"][4, 3]  # noise 0.2 (train) vs 1.0
assert grid_acc["without"]["audio only"][1, 3] > grid_acc["without"]["audio only"][1, 4]  # -6 dB (train) vs -12 dB
assert tri_rows["tensor", 3][1] == 33 * (tri_rows["tensor", 2][1] - 32) + 32
assert tri_rows["low-rank tensor", 3][1] - tri_rows["low-rank tensor", 2][1] == 4 * 33 * 32
assert tri_rows["concat", 3][0] > tri_rows["concat", 2][0]
rec.record("best_fusion_minus_best_unimodal", gain, target=pick(fast=2.0, full=5.0))
rec.record("best_fusion_test_acc", mean[best_fusion], target=pick(fast=0.6, full=0.8))
rec.record("best_unimodal_test_acc", mean[best_uni])
for m in METHODS:
    rec.record(f"acc_{m.replace(' ', '_').replace('-', '_').lower()}", mean[m])
rec.record("fusion_acc_one_missing_without_dropout", fusion_missing["without"])
rec.record("fusion_acc_one_missing_with_dropout", fusion_missing["with"])
rec.record("chapter_seconds", time.perf_counter() - t_start, higher_is_better=False)
print(rec.check_targets())

# %% [markdown]
# ## Exercises
# 1. **Late fusion by hand.** Take the trained `image only` and `audio only` models, average their
#    log-probabilities (a product of experts built *after* training) and measure the test accuracy. How
#    close does it come to the jointly trained `late PoE`?
# 2. **Rank.** Train low-rank tensor fusion with rank 1, 4 and 16 (one seed). Does accuracy follow the
#    parameter count?
# 3. **How big can tensor fusion get?** With 32-d embeddings and a 32-d output, at how many modalities
#    does tensor fusion's layer pass 10 million parameters? How many does low-rank fusion (rank 4) need there?
# 4. **Occlusion.** Build the test split with `image_occlusion=14` (a 14×14 square blanked) and measure
#    how many points the `image only` model and the `concat` model lose. Which loses more, and why?
#
# Solutions: `notebooks/solutions/06_fusion_strategies.py`.
