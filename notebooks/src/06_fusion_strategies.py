# %% [markdown]
# # 06 · Fusion strategies
#
# **Book:** Ch. 7 — early (data-level), feature-level and late (decision-level) fusion, modular
# designs, tensor and attention fusion.
#
# **You will be able to:**
# - say where data-level, feature-level and decision-level fusion join the modalities, and write each one's equation;
# - build any fusion as `MultimodalModel(encoders, fusion, head)` and train eleven fusion strategies and two unimodal baselines under one budget;
# - read a comparison table honestly: accuracy mean ± std over seeds, parameters, training time, against unimodal baselines;
# - measure when fusion helps (errors that do not overlap), what happens when a modality goes missing or noisy, and how modality dropout helps;
# - make attention-based fusion train: pre-LN blocks, LayerNorm on the tokens, and a summary token;
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
from mmcourse.data.avdigits import RECIPE, TRAIN_RECIPE, decode_words, pairing
from mmcourse.device import configure_threads, describe
from mmcourse.fusion import CrossModalTransformer, MultimodalModel, low_rank_params, tensor_fusion_params
from mmcourse.fusion.zoo import FUSION, LEVEL, UNIMODAL, build, encoders, mlp_head, predict, train
from mmcourse.models import count_parameters
from mmcourse.results import Results
from mmcourse.viz import Panel, exempt
from mmcourse.viz.fusion import draw_accuracy_bars, draw_fusion_levels, draw_params_vs_modalities, draw_robustness

rec = Results("06_fusion_strategies")
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small
device = torch.device("cpu")  # tiny models: the CPU is as fast as a GPU here, and identical everywhere
configure_threads(preferred=1)  # tiny models: one thread (MMCOURSE_THREADS / OMP_NUM_THREADS still win)
EPOCHS = pick(fast=6, full=14)
SEEDS = pick(fast=[0, 1], full=[0, 1, 2])
N_TRAIN = pick(fast=1200, full=2400)  # of the 2,400 training pairs
BATCH = 32
DROPOUT = 0.3  # modality dropout for the robust variants
print(describe(), "| epochs", EPOCHS, "| seeds", SEEDS, "| train pairs", N_TRAIN)
print("fusion methods:", len(FUSION), "+ unimodal baselines:", len(UNIMODAL))
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
# | image degradation | remove the leading principal components holding **75 %** of the variance (PCA fitted on train images), then add Gaussian noise: std **0.2** in val / test; in train each image draws its std from **0–0.2** |
# | audio degradation | white noise, then log-Mel features (40 bands, 10 ms hop → `[40, 101]`): **−6 dB** SNR in val / test; in train each recording draws its noise amplitude uniformly from 0.01× to 2× the signal's (SNR **+40 to −6 dB**) |
# | text (section 7) | the digit's word with each letter replaced by a random letter with probability **0.6** |
#
# The degradations are there so that **neither modality alone suffices**: fusion has something to win.
# Val and test sit at the noisiest level of the training range. Why a *range*: a model trained at a
# single noise level has only seen that level, and cleaner input is then a shift of distribution too,
# which can make it *worse* (log-Mel features of clean speech have a different floor and contrast).
# Training over the range makes any cleaner input one it has seen: section 4 checks that it never hurts.

# %%
KW = RECIPE  # val / test: image noise 0.2, audio -6 dB
print("train:", TRAIN_RECIPE, "\nval / test:", RECIPE)
splits = {"train": AVDigits("train", **TRAIN_RECIPE)} | {s: AVDigits(s, **KW) for s in ("val", "test")}
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
fig, axes = plt.subplots(3, 6, figsize=(10, 4.8), layout="constrained")
lo, hi = np.percentile(splits["test"].audio[::50].numpy(), [1, 99])  # one colour scale for every spectrogram
for j in range(6):
    i = j * 50
    axes[0, j].imshow(clean.image[i, 0], cmap="gray")
    axes[1, j].imshow(splits["test"].image[i, 0], cmap="gray")
    im = axes[2, j].imshow(splits["test"].audio[i], origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi,
                           extent=(0, 1, 0, 40))
    axes[0, j].set_title(f"digit {int(clean.labels[i])}", fontsize=9)
    axes[2, j].set_xlabel("time (s)", fontsize=8)
for ax, t in zip(axes[:, 0], ["clean", "75 % PCA energy\nremoved + noise", "log-Mel at -6 dB\nMel band"], strict=True):
    ax.set_ylabel(t, fontsize=9)
for ax in axes[:2].flat:
    ax.set_xticks([]), ax.set_yticks([])
    exempt(ax, "colorbar", reason="pictures of digits, grey levels are pixels")
for ax in axes[2, 1:]:
    ax.set_yticks([])  # the first panel's Mel-band axis serves the row
fig.colorbar(im, ax=list(axes[2]), label="log-Mel (dB)", shrink=0.9)

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
# | feature | attention over modalities | `k_m = LN(P_m h_m) + e_m`, `a = softmax_m(q·k_m/√d)`, `y = g(Σ_m a_m v_m)` with `v_m` from `k_m` |
# | feature | cross-modal transformer | image tokens attend to audio tokens and vice versa (pre-LN): `Â = A + softmax(LN(A) LN(B)^T/√d) LN(B)`, `Â += FFN(LN(Â))`, read out at the summary token |
# | decision (late) | mean / learned / product of experts | `s = mean_m(s_m)`, `s = Σ_m w_m s_m`, `log p = Σ_m log softmax(s_m)` with `s_m = W_m h_m` |
# | modular (hybrid) | joint + per-modality heads | `s = w_0 g([h_1;h_2]) + Σ_m w_m s_m`, `w = softmax(a)` |
#
# Every model is `MultimodalModel(encoders, fusion, head)`: the **same** image CNN and audio CNN
# (`mmcourse/models/encoders.py`), the same MLP head (`out_dim → 64 → 10`) for feature-level fusions,
# the same optimiser (Adam, lr 3e-3), batch size, epochs and seeds. Early fusion has no per-modality
# encoder: it uses the image CNN with two input channels. For the transformer, each encoder also gives
# **tokens** `[B, 1 + N, 32]`: a summary token (the embedding `h_m` itself) followed by its `N` local
# features (7×7 image cells, 26 audio frames) with learned positions.

# %%
fig = Figure(figsize=(9, 4.4))
draw_fusion_levels(fig)
fig

# %%
# NBVAL_CHECK_OUTPUT
METHODS = UNIMODAL + FUSION
params = {}
for m in METHODS:
    torch.manual_seed(0)
    params[m] = count_parameters(build(m))
    print(f"{m:18s} {LEVEL[m]:19s} {params[m]:7,d} parameters")

# %% [markdown]
# ## 3. Training every method under one budget
# Each method trains for the same epochs on the same pairs, once per seed; the weights with the best
# validation accuracy are kept; test accuracy is measured once at the end.

# %%
def run(method: str | MultimodalModel, seed: int, modality_dropout: float = 0.0):
    """Train ``method`` (a name, or a model to train) with ``seed``: (model, test predictions [N], seconds, history)."""
    seed_everything(seed)
    model = build(method, modality_dropout=modality_dropout) if isinstance(method, str) else method
    r = train(model, X["train"], Y["train"], X["val"], Y["val"], epochs=EPOCHS, lr=3e-3, batch_size=BATCH, seed=seed)
    return model, predict(model, X["test"]).argmax(-1), r["seconds"], r["history"]


acc, secs, preds = ({m: [] for m in METHODS} for _ in range(3))  # one entry per seed
models, hist = {}, {}  # the first seed's models and training histories
for seed in SEEDS:
    for m in METHODS:
        model, p, s, h = run(m, seed)
        acc[m].append(float((p == Y["test"]).float().mean()))
        secs[m].append(s)
        preds[m].append(p)
        if seed == SEEDS[0]:
            models[m], hist[m] = model, h
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
# the gain of the best fusion over the best unimodal model, seed by seed: its spread is the seed-to-seed spread
gain_seeds = 100 * (np.array(acc[best_fusion]) - np.array(acc[best_uni]))
ranking = sorted(FUSION, key=mean.get, reverse=True)
above = [m for m in FUSION if mean[m] > mean[best_uni]]
print(f"\nbest unimodal: {best_uni} {mean[best_uni]:.3f}; best fusion: {best_fusion} {mean[best_fusion]:.3f} "
      f"(+{gain:.1f} points, per seed {np.round(gain_seeds, 1).tolist()}); fusions above the best unimodal: {len(above)}/{len(FUSION)}")
print("ranking:", " > ".join(ranking))

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
draw_accuracy_bars(ax, METHODS, [mean[m] for m in METHODS], [std[m] for m in METHODS], [LEVEL[m] for m in METHODS],
                   title=f"AVDigits test accuracy, mean ± std over {len(SEEDS)} seeds")
fig.tight_layout()

# %% [markdown]
# **Reading the table.** Each modality alone is weak (that was the point of the degradations). The
# ranking printed above is the honest summary, and the checks assert its shape in both modes:
# - the **simple combinations lead**: the three best methods are among the hybrid, the late fusions and
#   concatenation, each clearly above the better single modality;
# - the methods built to *learn interactions* between the modalities — tensor fusion, low-rank tensor
#   fusion, attention and the cross-modal transformer — all rank below those three. They have more
#   parameters than concatenation, the attention-based ones fit the training set more slowly (section 3c:
#   their training loss, averaged over the epochs, is higher),
#   and with a few thousand training pairs
#   there is little interaction to learn: the next section shows that the two modalities' errors are
#   close to independent, the case in which combining two separate votes is already hard to beat.
#
# Not every fusion beats the better single modality (the count is printed above the table).
# **Attention fusion scores below it, in both modes**: section 3c shows that this is not a collapse onto one
# modality, and what else is likely to go wrong. In fast mode (1,200 pairs, 6 epochs) the slow learners
# have not finished learning. Numbers move between seeds: that is why the table shows the spread, and why
# the checks compare differences with it.
#
# ## 3b. When can fusion help? Errors that do not overlap
# Combining two models can only fix a test pair that at least one of them gets right (a joint model can
# occasionally do better, by reading both weak signals together). So count, for every seed, how often the
# image-only and the audio-only models are wrong on the *same* pair, and compare that with what independent
# errors would give: the product of their error rates.

# %%
wrong = {m: torch.stack([p != Y["test"] for p in preds[m]]).float() for m in UNIMODAL}  # [seeds, N_test]
overlap = {"image only wrong": wrong["image only"].mean(1), "audio only wrong": wrong["audio only"].mean(1),
           "both wrong": (wrong["image only"] * wrong["audio only"]).mean(1)}
overlap["independence predicts"] = overlap["image only wrong"] * overlap["audio only wrong"]
overlap["at least one right"] = 1 - overlap["both wrong"]
overlap = {k: v.numpy() for k, v in overlap.items()}  # [seeds] each
print(f"{'share of test pairs':24s} " + " ".join(f"seed {s_:d}" for s_ in SEEDS) + "    mean")
for k, v in overlap.items():
    print(f"{k:24s} " + " ".join(f"{x:6.3f}" for x in v) + f"   {v.mean():.3f}")
overlap_ratio = float(overlap["both wrong"].mean() / overlap["independence predicts"].mean())
wi, wa = wrong["image only"][0].bool(), wrong["audio only"][0].bool()
print(f"\nseed {SEEDS[0]}, counts of the {len(Y['test'])} test pairs:      audio right  audio wrong")
print(f"  image right                         {int((~wi & ~wa).sum()):6d}       {int((~wi & wa).sum()):6d}")
print(f"  image wrong                         {int((wi & ~wa).sum()):6d}       {int((wi & wa).sum()):6d}")
print(f"both wrong / independence: {overlap_ratio:.2f}; best fusion {best_fusion} {mean[best_fusion]:.3f} "
      f"vs 'at least one right' {overlap['at least one right'].mean():.3f}")

# %% [markdown]
# The two single-modality models are wrong on the same pair about as often as independent errors would be
# (the ratio printed last is close to 1): a blurred image and a noisy recording are hard
# for mostly *different* reasons. That is why fusion pays here: on most test pairs at least one of the
# two is right. No fusion reaches that ceiling ("at least one right"): to do so it would have to know,
# pair by pair, which of two disagreeing votes to trust.
#
# ## 3c. Attention needs care: what the loss curves say
# Attention-based fusion is competitive in the literature, and it is easy to get wrong. A first version of
# this chapter's cross-modal transformer used post-LN blocks (`LN(x + attention(x))`, no LayerNorm on the
# other modality's tokens) and read out the **mean of the local tokens** (image cells, audio frames). The
# mean throws away *where* each stroke and each sound is, which is what the encoders' flatten-based
# embedding keeps. Train that version once, next to the fixed one (pre-LN, LayerNorm on both token sets,
# read out at the summary token) and two simple fusions, and look at the curves:

# %%
seed_everything(SEEDS[0])
naive = MultimodalModel(encoders(("image", "audio")), CrossModalTransformer({"image": 32, "audio": 32}, 32, norm="post", readout="mean"),
                        mlp_head(64, 10))
_, p_naive, s_naive, hist["cross transformer (naive)"] = run(naive, SEEDS[0])
acc_naive = float((p_naive == Y["test"]).float().mean())
CURVES = ["concat", "late mean", "attention", "cross transformer", "cross transformer (naive)"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for m in CURVES:
    axes[0].plot(hist[m]["epoch"], hist[m]["train_loss"], "o-", ms=3, label=m)
    axes[1].plot(hist[m]["epoch"], hist[m]["val_acc"], "o-", ms=3, label=m)
axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy, nats)", title=f"training loss (seed {SEEDS[0]})")
axes[1].set(xlabel="epoch", ylabel="validation accuracy", title=f"validation accuracy (seed {SEEDS[0]})")
axes[0].legend(fontsize=8)
fig.tight_layout()
final_loss = {m: hist[m]["train_loss"][-1] for m in CURVES}
mean_loss = {m: float(np.mean(hist[m]["train_loss"])) for m in CURVES}  # the area under the curve, per epoch
print("training loss after the last epoch:", {m: round(v, 2) for m, v in final_loss.items()})
print("training loss, mean over epochs:   ", {m: round(v, 2) for m, v in mean_loss.items()})
print(f"test accuracy, seed {SEEDS[0]}: cross transformer {acc['cross transformer'][0]:.3f}, naive version {acc_naive:.3f}")
_, att_w = models["attention"].fusion(models["attention"].encode(X["test"]), return_weights=True)  # [N_test, 2]
att_share = att_w.mean(0).tolist()
collapsed = float((att_w.max(-1).values > 0.9).mean(dtype=torch.float32))
print(f"attention fusion, seed {SEEDS[0]}: mean weight image {att_share[0]:.2f}, audio {att_share[1]:.2f}; "
      f"share of test pairs with one weight > 0.9: {collapsed:.2f}")

# %% [markdown]
# The naive version learns more slowly: its training loss ends higher than the fixed one's, and it scores
# well below it on the test set. Two things go wrong. Post-LN
# (`LN(x + attention(x))`) normalises the residual stream after every step, so the block cannot simply
# pass its input through while the attention is still useless; pre-LN keeps an identity path from input to
# output (GPT-2 and ViT use it for that reason), and LayerNorm on the other modality's tokens keeps the
# attention scores in a sane range. And the mean of the local tokens is a bag of features: it no longer
# knows where anything is, while the summary token carries the encoder's full embedding and the
# cross-attention adds what the other modality's tokens answer. Even fixed, it fits the training set more
# slowly than concatenation (compare the loss curves), which is one reason it does not win at this budget.
#
# Attention over modalities can fail in its own way: with only two keys, the softmax may *collapse* onto
# the modality that learns faster, and a modality with weight `a_m ≈ 0` gets almost no gradient, so its
# encoder stops learning. LayerNorm on the keys keeps either modality from winning by the scale of its
# features alone, and the printed weights show that no collapse happened: the trained model splits its
# attention about evenly, and no test pair gives one modality more than 0.9. Its weakness lies elsewhere,
# and we can only point to likely reasons: it fits the training set more slowly than concatenation (the
# curves), and its output is one 32-number weighted *average* of the two modalities' vectors, where
# concatenation keeps all 64 side by side, so the head has to untangle the two modalities from their sum.
#
# ## 4. Robustness: a missing or noisier modality at test time
# "Missing" means the modality's input is replaced by zeros (the training mean, since inputs are
# standardised); "noisier" means more image noise (std 0.7 instead of 0.2) or more audio noise (−12 dB
# instead of −6 dB) than in val / test, and more than any training example had. **Modality dropout** trains with each example's image or audio
# zeroed with probability 0.3 (never both), so that the model learns to answer from either alone.
# We cache every model's predictions on a grid of noise levels; the table and the widget read that cache.

# %%
IMG_LEVELS = [0.0, 0.2, 0.4, 0.7, 1.0, "missing"]
SNR_LEVELS = [20.0, 6.0, 0.0, -6.0, -12.0, "missing"]
test_img, test_aud = {}, {}
for lv in IMG_LEVELS:
    d = splits["test"] if lv in ("missing", 0.2) else AVDigits("test", **(KW | {"image_noise": lv}))
    test_img[lv] = torch.zeros_like(X["test"]["image"]) if lv == "missing" else d.inputs(stats)["image"]
for lv in SNR_LEVELS:
    d = splits["test"] if lv in ("missing", -6.0) else AVDigits("test", **(KW | {"audio_snr_db": lv}))
    test_aud[lv] = torch.zeros_like(X["test"]["audio"]) if lv == "missing" else d.inputs(stats)["audio"]

robust = {"without": models}
robust["with"] = {m: (models[m] if m in UNIMODAL else run(m, SEEDS[0], DROPOUT)[0]) for m in METHODS}
print(f"modality-dropout models trained ({time.perf_counter() - t_start:.0f} s so far)")


def grid_predictions(model):
    """Predicted digits ``[len(IMG_LEVELS), len(SNR_LEVELS), N_test]`` (int8)."""
    return torch.stack([torch.stack([predict(model, {"image": test_img[i], "audio": test_aud[a]}).argmax(-1)
                                     for a in SNR_LEVELS]) for i in IMG_LEVELS]).to(torch.int8)


cache = {"without": {m: grid_predictions(models[m]) for m in METHODS}}
cache["with"] = {m: cache["without"][m] if m in UNIMODAL else grid_predictions(robust["with"][m]) for m in METHODS}
grid_acc = {v: {m: (cache[v][m] == Y["test"]).float().mean(-1).numpy() for m in METHODS} for v in cache}  # [6, 6]
CONDITIONS = {"both (test noise)": (0.2, -6.0), "image missing": ("missing", -6.0), "audio missing": (0.2, "missing"),
              "image noisier": (0.7, -6.0), "audio noisier": (0.2, -12.0)}


def cond_acc(variant, m, c):
    i, a = CONDITIONS[c]
    return float(grid_acc[variant][m][IMG_LEVELS.index(i), SNR_LEVELS.index(a)])


fig, axes = plt.subplots(1, 2, figsize=(12, 5.4), layout="constrained")  # each panel names its rows
for ax, v in zip(axes, ["without", "with"], strict=True):
    table = np.array([[cond_acc(v, m, c) for c in CONDITIONS] for m in METHODS])
    im = draw_robustness(ax, METHODS, list(CONDITIONS), table, title=f"{v} modality dropout (seed {SEEDS[0]})")
fig.colorbar(im, ax=list(axes), shrink=0.8, label="test accuracy")

# %%
fusion_missing = {v: float(np.mean([cond_acc(v, m, c) for m in FUSION for c in ("image missing", "audio missing")]))
                  for v in ("without", "with")}
fusion_both = {v: float(np.mean([cond_acc(v, m, "both (test noise)") for m in FUSION])) for v in ("without", "with")}
print("mean over fusion methods, one modality missing:", {k: round(x, 3) for k, x in fusion_missing.items()})
print("mean over fusion methods, both present:        ", {k: round(x, 3) for k, x in fusion_both.items()})
print("unimodal models on their own modality:          image", round(cond_acc("without", "image only", "both (test noise)"), 3),
      "audio", round(cond_acc("without", "audio only", "both (test noise)"), 3))

# %% [markdown]
# Without modality dropout, a fusion model that loses a modality falls, on average, *below* the unimodal
# model of the modality it still has: it learned to lean on both. Modality dropout buys much of that
# robustness back (the mean over fusions with one modality missing is printed above); compare the first
# column to see what it changes when both modalities are present. More noise than any training example had
# hurts each single-modality model.
# Late fusion and attention can also take a truly absent key (`model({"audio": x})`): they combine only
# the modalities present (their documented masking policy); the other strategies raise a `ValueError`
# for a missing key.
#
# **Cleaner input.** Every model trained over a range of noise levels (section 1), so cleaner input than
# the val / test level is input it has seen. Here is each model's accuracy as the audio gets cleaner, and
# the largest loss that any cleaner setting (image noise 0, audio 0 to 20 dB) causes any model:

# %%
TI, TA = IMG_LEVELS.index(0.2), SNR_LEVELS.index(-6.0)  # the val / test levels
CLEANER = [(IMG_LEVELS.index(0.0), TA)] + [(TI, SNR_LEVELS.index(a)) for a in (20.0, 6.0, 0.0)]
cleaner_drop = {(v, m): 100 * max(grid_acc[v][m][TI, TA] - grid_acc[v][m][i, a] for i, a in CLEANER)
                for v in grid_acc for m in METHODS}  # points lost to the worst cleaner setting (negative: a gain)
print(f"{'audio SNR (dB):':18s}" + "".join(f"{a:>7}" for a in SNR_LEVELS[:-1]) + "   image noise 0   worst drop")
for m in METHODS:
    g = grid_acc["without"][m]
    print(f"{m:18s}" + "".join(f"{g[TI, j]:7.3f}" for j in range(len(SNR_LEVELS) - 1))
          + f"   {g[IMG_LEVELS.index(0.0), TA]:13.3f}   {cleaner_drop['without', m]:+6.1f} points")
worst_cleaner = max(cleaner_drop, key=cleaner_drop.get)
print(f"largest loss from cleaner input, over all {len(cleaner_drop)} models (with and without dropout): "
      f"{cleaner_drop[worst_cleaner]:.1f} points ({worst_cleaner[1]}, {worst_cleaner[0]} dropout)")

# %% [markdown]
# Cleaner input than the val / test level helps on average over all models, and the audio model gains a
# lot as its SNR rises. In the full run no model, with or without modality dropout, loses more than
# 2 points (6 of the 300 test pairs) to any cleaner setting; the undertrained models of fast mode are
# noisier than that.
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
    ax.set(ylim=(0, 1), xlabel="method (grey: one modality)", ylabel="test accuracy")
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
tri = {"train": AVDigits("train", **TRAIN_RECIPE, text_typo=0.6)} | {s: AVDigits(s, **KW, text_typo=0.6) for s in ("val", "test")}
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
    tri_rows[m, 2] = (acc[m][0], count_parameters(models[m].fusion), secs[m][0])
    seed_everything(SEEDS[0])
    model = build(m, modalities=("image", "audio", "text"))
    r = train(model, X3["train"], Y["train"], X3["val"], Y["val"], epochs=EPOCHS, lr=3e-3, batch_size=BATCH, seed=SEEDS[0])
    a = float((predict(model, X3["test"]).argmax(-1) == Y["test"]).float().mean())
    tri_rows[m, 3] = (a, count_parameters(model.fusion), r["seconds"])
print(f"{'method':16s} {'M':>2s} {'accuracy':>9s} {'fusion params':>14s} {'time':>7s}")
for (m, k), (a, n, s) in sorted(tri_rows.items()):
    print(f"{m:16s} {k:2d} {a:9.3f} {n:14,d} {s:6.1f} s")

# %% [markdown]
# The third modality helps: the typo'd word carries its own, independent evidence. Going from two to
# three modalities multiplies tensor fusion's fusion layer by 33 (compare the training times too),
# while low-rank fusion adds one small factor per modality.

# %% [markdown]
# ## Checks
# The claims above, measured (in both modes unless the comment says otherwise): eleven fusion methods and
# two baselines; the ranking's shape (the three best are simple combinations, each above the better
# single modality by more than the seed spread in full mode; every interaction-learning fusion ranks below
# them); the best fusion's gain over the best unimodal model meets its target; errors close to
# independent, and no fusion above the "at least one right" ceiling; the fixed cross-modal transformer
# trains to a lower loss and a higher accuracy than the naive one; attention fusion is below the better
# single modality and not collapsed onto one modality; the interaction-learning fusions have
# more parameters than concatenation, and the attention-based ones have a higher training loss than
# concatenation (mean over the epochs); modality dropout raises the accuracy with a
# modality missing; without it, fusion models with a modality missing fall below the unimodal model of the
# remaining modality on average; late fusion and attention accept an absent key; more noise than in
# training hurts each unimodal model; cleaner input helps on average, hurts no model by more than 2 points
# (full mode), and helps the audio model; tensor fusion's layer grows ×33 per modality while low-rank's grows linearly; the text
# modality helps each of the three fusions. (Training times are printed, not asserted: on a shared
# machine they are noisy.)

# %%
full_spread = {"gain": pick(fast=None, full=float(np.ptp(gain_seeds))),  # max - min over the 3 seeds
               "best": pick(fast=None, full=float(np.ptp(acc[best_fusion])))}
rec.record("best_fusion_minus_best_unimodal", gain, target=pick(fast=2.0, full=5.0), spread=full_spread["gain"])
rec.record("best_fusion_test_acc", mean[best_fusion], target=pick(fast=0.6, full=0.8), spread=full_spread["best"])
rec.record("best_unimodal_test_acc", mean[best_uni])
for m in METHODS:
    rec.record(f"acc_{m.replace(' ', '_').replace('-', '_').lower()}", mean[m], spread=pick(fast=None, full=float(np.ptp(acc[m]))))
rec.record("unimodal_both_wrong_over_independence", overlap_ratio)
rec.record("cross_transformer_naive_test_acc_seed0", acc_naive)
rec.record("max_loss_from_cleaner_input_points", cleaner_drop[worst_cleaner], higher_is_better=False)
rec.record("fusion_acc_one_missing_without_dropout", fusion_missing["without"])
rec.record("fusion_acc_one_missing_with_dropout", fusion_missing["with"])
rec.record("chapter_seconds", time.perf_counter() - t_start, higher_is_better=False)
SIMPLE = {"hybrid", "late mean", "late learned", "late PoE", "concat"}
INTERACTION = ("tensor", "low-rank tensor", "attention", "cross transformer")
assert len(FUSION) == 11 and len(UNIMODAL) == 2
assert set(ranking[:3]) <= SIMPLE, ranking
assert max(mean[m] for m in INTERACTION) < min(mean[m] for m in ranking[:3])
for m in ranking[:3]:  # above the better single modality; in full mode by more than the seed spread (max - min)
    assert mean[m] - mean[best_uni] > pick(fast=0.0, full=max(np.ptp(acc[m]), np.ptp(acc[best_uni]))), m
assert "attention" not in above and len(above) < len(FUSION)  # not every fusion beats the better modality
assert collapsed < 0.05 and 0.3 < att_share[0] < 0.7  # attention split about evenly, no collapse
assert 0.8 < overlap_ratio < 1.5  # both wrong about as often as independence predicts
assert max(mean[m] for m in FUSION) < overlap["at least one right"].mean()
assert final_loss["cross transformer"] < final_loss["cross transformer (naive)"]
assert acc["cross transformer"][0] > acc_naive + 0.05
unimodal_alone = np.mean([cond_acc("without", "audio only", "both (test noise)"), cond_acc("without", "image only", "both (test noise)")])
assert all(params[m] > params["concat"] for m in INTERACTION)
assert min(mean_loss["attention"], mean_loss["cross transformer"]) > mean_loss["concat"]
assert fusion_missing["with"] > fusion_missing["without"]
assert fusion_missing["without"] < unimodal_alone
for m in ("late mean", "attention"):  # an absent key is allowed (masking policy) ...
    assert predict(models[m], {"audio": X["test"]["audio"]}).shape == (len(Y["test"]), 10)
try:  # ... and refused by the others
    predict(models["concat"], {"audio": X["test"]["audio"]})
    raise AssertionError("concat accepted a missing modality")
except ValueError:
    pass
g_img, g_aud = grid_acc["without"]["image only"], grid_acc["without"]["audio only"]
assert g_img[TI, TA] > g_img[IMG_LEVELS.index(1.0), TA] and g_img[TI, TA] > g_img[IMG_LEVELS.index(0.7), TA]
assert g_aud[TI, TA] > g_aud[TI, SNR_LEVELS.index(-12.0)]
assert np.mean(list(cleaner_drop.values())) < 0  # cleaner input helps on average
assert cleaner_drop[worst_cleaner] <= pick(fast=np.inf, full=2.0)  # full: never costs more than 6 of 300 pairs
assert g_aud[TI, SNR_LEVELS.index(20.0)] > g_aud[TI, TA] + pick(fast=0.05, full=0.1)
assert tri_rows["tensor", 3][1] == 33 * (tri_rows["tensor", 2][1] - 32) + 32
assert tri_rows["low-rank tensor", 3][1] - tri_rows["low-rank tensor", 2][1] == 4 * 33 * 32
assert all(tri_rows[m, 3][0] > tri_rows[m, 2][0] for m in ("concat", "tensor", "low-rank tensor"))
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
