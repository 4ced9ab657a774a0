# %% [markdown]
# # 14 · A tiny multimodal language model: GPT, LLaVA-style and Flamingo-style VLMs, distributed training
#
# **Book:** Multimodal large models: GPT-style generation, LLaVA- and Flamingo-style vision-language models, distributed training.
#
# **You will be able to:**
# - write a GPT in nanoGPT's style from chapter 05's blocks, with a KV cache and temperature / top-k sampling, and test it;
# - turn an image into tokens a language model reads (a projector over frozen MobileNetV2 cells, as LLaVA does), or let the LM look at it through gated cross-attention (as Flamingo does), and compare the two at the same budget;
# - make the model answer questions and write captions, and force it to answer only with valid answers (constrained decoding);
# - watch, token by token, where the model looks in the image while it writes;
# - train the same model with `DistributedDataParallel` on several processes and show that it computes exactly what one process computes.

# %%
import copy
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from mmcourse.config import is_fast, pick, seed_everything
from mmcourse.data.captions import captions
from mmcourse.data.vqa import answers as vqa_answers
from mmcourse.data.vqa import easy_vqa_split
from mmcourse.device import configure_threads, describe
from mmcourse.distributed import main as main_ddp
from mmcourse.models import count_parameters
from mmcourse.models.gpt import GPT, GPTConfig, generate, lm_loss
from mmcourse.models.vlm import (
    CAPTION_PROMPT,
    Batches,
    CrossAttnVLM,
    ForFit,
    PrefixVLM,
    answer,
    answer_constraint,
    collate,
    encode_pair,
    image_attention,
    patch_features,
    prompt_ids,
    vqa_vocab,
)
from mmcourse.results import Results
from mmcourse.text import tokenize
from mmcourse.train import fit
from mmcourse.viz import Panel
from mmcourse.viz.generation import draw_generation

rec = Results("14_tiny_multimodal_lm")
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small
configure_threads(preferred=1)  # tiny models: one thread (MMCOURSE_THREADS / OMP_NUM_THREADS still win)
cpu = torch.device("cpu")  # tiny models: the CPU is as fast as a GPU here, and identical everywhere
N_TRAIN_IMAGES = pick(fast=600, full=4000)  # easy-VQA has 4,000 training images (about 9.6 questions each)
N_TEST_IMAGES = pick(fast=200, full=1000)
LM_EPOCHS = 1
VLM_EPOCHS = 3
print(describe(), "| train images", N_TRAIN_IMAGES, "| test images", N_TEST_IMAGES, "| VLM epochs", VLM_EPOCHS)
t_start = time.perf_counter()

# %% [markdown]
# ## 1. The data: easy-VQA as text, and as image tokens
# easy-VQA (chapter 07) has 64×64 images of one coloured shape and templated questions about it, each
# with one of **13 answers** (8 colours, 3 shapes, yes, no). Chapter 07 built a caption for most images
# ("a blue circle") from its questions; this chapter's model will both answer and caption.
#
# The text becomes **word tokens** (the course's `mmcourse.text`; about 40 words, plus `<pad>`, `<bos>`,
# `<eos>`). A training example is `<bos> question answer <eos>`; for captions the "question" is the fixed
# prompt `describe the image .`.

# %%
ANSWERS = vqa_answers()
vqa = {s: easy_vqa_split(s) for s in ("train", "test")}
caps = {s: captions(s) for s in ("train", "test")}
vocab = vqa_vocab(vqa["train"]["questions"], ANSWERS, caps["train"]["caption"])
# the questions about the first N images of each split
N_VAL_IMAGES = N_TRAIN_IMAGES // 10  # the last 10 % of the training images: validation (choosing the epoch)
rows = {s: [i for i in range(len(vqa[s]["questions"])) if lo <= int(vqa[s]["image_index"][i]) < hi]
        for s, lo, hi in (("train", 0, N_TRAIN_IMAGES - N_VAL_IMAGES), ("test", 0, N_TEST_IMAGES))}
val_rows = [i for i in range(len(vqa["train"]["questions"]))
            if N_TRAIN_IMAGES - N_VAL_IMAGES <= int(vqa["train"]["image_index"][i]) < N_TRAIN_IMAGES]
cap_rows = {s: [i for i in range(n) if caps[s]["caption"][i]]
            for s, n in (("train", N_TRAIN_IMAGES - N_VAL_IMAGES), ("test", N_TEST_IMAGES))}
gold = [ANSWERS[int(vqa["test"]["answer"][i])] for i in rows["test"]]
print(f"vocabulary: {len(vocab)} tokens | questions: {len(rows['train'])} train, {len(val_rows)} validation, "
      f"{len(rows['test'])} test | "
      f"captioned images: {len(cap_rows['train'])} train, {len(cap_rows['test'])} test")
x, y = encode_pair(vocab, vqa["train"]["questions"][0], ANSWERS[int(vqa["train"]["answer"][0])])
print("inputs :", [vocab.itos[int(t)] for t in x])
print("targets:", [vocab.itos[int(t)] if t >= 0 else "·" for t in y], "(· = no loss: the prompt)")

# %% [markdown]
# **Image tokens.** LLaVA turns an image into a grid of patch features with a frozen vision encoder (CLIP's
# ViT). Here the encoder is chapter 07's frozen ImageNet **MobileNetV2**, without its pooling: at 112×112
# pixels its last feature map is a **4×4 grid of 1,280-d cells**, each cell one image token (`patch_features`,
# cached on disk after the first run). The model never sees pixels, only these 16 vectors.

# %%
t0 = time.perf_counter()
feats = {s: patch_features(vqa[s]["images"][:n], f"easyvqa-{s}-{n}")
         for s, n in (("train", N_TRAIN_IMAGES), ("test", N_TEST_IMAGES))}  # [M, 16, 1280]
P, FEAT = feats["train"].shape[1:]
print(f"image tokens: {tuple(feats['train'].shape)} train, {tuple(feats['test'].shape)} test "
      f"({time.perf_counter() - t0:.0f} s, cached after the first run)")

# %% [markdown]
# ## 2. A GPT from chapter 05's parts
# `mmcourse/models/gpt.py` is a decoder-only Transformer in nanoGPT's style: token + position embeddings,
# `n_layer` pre-norm blocks, a final LayerNorm and a head tied to the token embedding. Each block is
# **causal self-attention** (chapter 05's `MultiHeadAttention` projections, with the mask `j ≤ i`) and
# chapter 05's feed-forward network. What generation adds is the **KV cache**: when the model writes token
# `t+1`, the keys and values of tokens `1..t` have not changed, so each block keeps them and computes only
# the new token's query, key and value. One step then costs O(t) instead of re-running O(t²) attention on
# the whole sequence. Sampling divides the last logits by a **temperature** (0: greedy argmax; < 1 sharper;
# > 1 flatter) and may keep only the **top-k** tokens.
#
# Three properties, checked here (and in `tests/test_gpt.py`): changing a future token leaves every earlier
# logit unchanged; the cache gives the same tokens as recomputing everything; and a prompt longer than the
# context is refused with a clear error.

# %%
# NBVAL_CHECK_OUTPUT
cfg = GPTConfig(vocab_size=len(vocab), block_size=32, n_layer=3, n_head=4, n_embd=96, dropout=0.0)
seed_everything(0)
probe = GPT(cfg).eval()
idx = torch.randint(0, len(vocab), (4, 12))
later = idx.clone()
later[:, 8:] = (later[:, 8:] + 1) % len(vocab)  # change tokens 8..11
with torch.no_grad():
    causal_ok = torch.allclose(probe(idx)[:, :8], probe(later)[:, :8], atol=1e-6)
gen = torch.Generator().manual_seed(0)
with_cache = generate(probe, idx[:, :4], 20, temperature=1.0, top_k=10, generator=gen)
gen = torch.Generator().manual_seed(0)
without = generate(probe, idx[:, :4], 20, temperature=1.0, top_k=10, generator=gen, use_cache=False)
try:
    generate(probe, idx[:, :4], 40)
    context_error = "none"
except ValueError as err:
    context_error = str(err)
print("GPT parameters:", count_parameters(probe))
print("earlier logits unchanged by a change in the future:", causal_ok)
print("sampled with the KV cache == without it:", torch.equal(with_cache, without))
print("a 4-token prompt + 40 new tokens in a 32-token context:", context_error[:60], "...")

# %%
def timed_generation(use_cache: bool) -> float:
    t = time.perf_counter()
    generate(probe, idx[:, :4].repeat(16, 1), 28, temperature=0, use_cache=use_cache)
    return time.perf_counter() - t


cache_s, recompute_s = min(timed_generation(True) for _ in range(3)), min(timed_generation(False) for _ in range(3))
print(f"64 prompts x 28 new tokens: {cache_s * 1e3:.0f} ms with the cache, {recompute_s * 1e3:.0f} ms recomputing")

# %% [markdown]
# ### Train it on text first
# Before it sees an image, the GPT learns the *language* of easy-VQA: `<bos> question answer <eos>`, with
# the loss on every token. It cannot know the answer (it has no image), but it learns what kind of answer
# each question takes. Its exact-match accuracy on the test questions is the **blind baseline** a VLM must
# beat. Training uses the course's `fit` (AdamW, a one-cycle learning-rate
# schedule peaking at 1e-3, gradients clipped to norm 1).

# %%
def pairs(split: str, which: list[int], loss_on_prompt: bool = False) -> list:
    d = vqa[split]
    return [encode_pair(vocab, d["questions"][i], ANSWERS[int(d["answer"][i])], loss_on_prompt) for i in which]


# The recipe (text LM and both VLMs alike): peak lr 1e-3 and gradients clipped to norm 1.0. With peak lr 2e-3
# and no clipping the prefix VLM's exact match swung from 0.90 to 0.99 between seeds (some seeds stalled at a
# validation loss of ~0.12); with this recipe it spans 0.9951-0.9967 over seeds 0-2 (OTHER_SEEDS, in the checks).
def train(model: nn.Module, train_b: Batches, val_b: Batches, epochs: int, lr: float = 1e-3, seed: int = 0) -> dict:
    """The course's ``fit``: AdamW, one-cycle schedule, clipped gradients; returns the history and seconds."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * len(train_b), pct_start=0.1)
    t = time.perf_counter()
    h = fit(ForFit(model), train_b, val_b, epochs=epochs, optimizer=opt, scheduler=sched, loss_fn=lm_loss,
            monitor="val_loss", seed=seed, progress=False, device=cpu, grad_clip=1.0)
    return {"history": h, "seconds": time.perf_counter() - t}


xt, yt = collate(pairs("train", rows["train"], loss_on_prompt=True), vocab.pad_id)
xv, yv = collate(pairs("train", val_rows, loss_on_prompt=True), vocab.pad_id)
seed_everything(0)
lm = GPT(cfg)
lm_run = train(lm, Batches(xt, yt, batch_size=128, shuffle=True), Batches(xv, yv, batch_size=512), LM_EPOCHS)
lm_val_loss = lm_run["history"].rows[-1]["val_loss"]
counts = Counter(int(t) for t in yt[yt >= 0])
unigram = -sum(c / sum(counts.values()) * np.log(c / sum(counts.values())) for c in counts.values())
blind = answer(lm, vocab, [vqa["test"]["questions"][i] for i in rows["test"]], temperature=0)
blind_em = float(np.mean([p == g for p, g in zip(blind, gold, strict=True)]))
print(f"text LM: {count_parameters(lm):,} parameters, {lm_run['seconds']:.0f} s; val loss {lm_val_loss:.3f} nats/token "
      f"(unigram {unigram:.3f}); blind exact match {blind_em:.3f} (chance 1/13 = {1 / 13:.3f})")

# %% [markdown]
# **Sampling.** Starting from `<bos>` alone, the LM writes questions. At a low temperature it repeats
# the most likely templates; at a high one it mixes words into questions easy-VQA never asks. "Well-formed"
# below means the text up to `?` is one of the training questions.

# %%
known = {" ".join(tokenize(q)) for q in vqa["train"]["questions"]}


def sample_questions(temperature: float, n: int = 300, top_k: int | None = None, seed: int = 0) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    start = torch.full((n, 1), vocab.bos_id)
    out = generate(lm, start, 14, temperature=temperature, top_k=top_k, eos_id=vocab.eos_id, generator=g)
    return [vocab.decode(r) for r in out]


def well_formed(texts: list[str]) -> float:
    return float(np.mean([t.split(" ?")[0] + " ?" in known for t in texts]))


TEMPS = (0.5, 1.0, 2.0)
samples = {t: sample_questions(t) for t in TEMPS}
formed = {t: well_formed(s) for t, s in samples.items()}
for t in TEMPS:
    print(f"T = {t}: {formed[t]:.0%} well-formed, e.g. " + " | ".join(samples[t][:3]))
formed_top5 = well_formed(sample_questions(2.0, top_k=5))
print(f"T = 2.0 with top-k = 5: {formed_top5:.0%} well-formed (top-k cuts the tail of unlikely words)")

# %% [markdown]
# ## 3. Two ways to let the LM see: an image prefix (LLaVA) or gated cross-attention (Flamingo)
# **Prefix (LLaVA-style).** A small MLP, the *projector*, maps each 1,280-d cell to a 128-d vector in the
# LM's embedding space. The 16 image tokens go in front of the text: `[img₁ … img₁₆] <bos> what color is the
# shape ?` and the LM's ordinary causal self-attention reads them. The image costs 16 positions of the
# 32-token context.
#
# **Cross-attention (Flamingo-style).** The text alone goes through the LM. Before each block, a *gated
# cross-attention* layer lets every text token attend to the projected image tokens:
# `x ← x + tanh(α)·Attn(LN(x), image)`, then `x ← x + tanh(β)·FFN(LN(x))`. The gates `α, β` start at **0**, so
# the untrained model computes exactly what the text LM computes (Flamingo inserts these layers into a
# frozen, pretrained LM without disturbing it), and training opens them.
#
# Both start from a copy of the text LM and train on the same data (every training question and every
# captioned training image), for the same epochs, batch size and learning rate; the loss is on the answer
# (or caption) tokens only.

# %%
img_q = {s: vqa[s]["image_index"][rows[s]] for s in ("train", "test")}
train_pairs = pairs("train", rows["train"]) + [encode_pair(vocab, CAPTION_PROMPT, caps["train"]["caption"][i])
                                               for i in cap_rows["train"]]
train_img = torch.cat([img_q["train"], torch.tensor(cap_rows["train"])])
xt, yt = collate(train_pairs, vocab.pad_id)
xv, yv = collate(pairs("train", val_rows), vocab.pad_id)
val_b = Batches(xv, yv, vqa["train"]["image_index"][val_rows], feats["train"], batch_size=512)
DESIGNS = {"prefix (LLaVA)": PrefixVLM, "cross-attention (Flamingo)": CrossAttnVLM}

with torch.no_grad():  # the zero gate: before training, the cross-attention model IS the text LM
    fresh = CrossAttnVLM(copy.deepcopy(lm), FEAT, P).eval()
    q0 = xv[:8]
    zero_gate_equal = torch.equal(fresh(q0, image=feats["train"][vqa["train"]["image_index"][val_rows[:8]]]), lm.eval()(q0))
print("cross-attention model at initialisation == the text LM:", zero_gate_equal)


def train_vlm(design: str, seed: int) -> tuple[nn.Module, dict]:
    seed_everything(seed)
    model = DESIGNS[design](copy.deepcopy(lm), FEAT, P)
    run = train(model, Batches(xt, yt, train_img, feats["train"], batch_size=128, shuffle=True, seed=seed), val_b,
                VLM_EPOCHS, seed=seed)
    return model.eval(), run


def evaluate_vqa(model: nn.Module, **kw) -> list[str]:
    return answer(model, vocab, [vqa["test"]["questions"][i] for i in rows["test"]], feats["test"][img_q["test"]],
                  temperature=kw.pop("temperature", 0), **kw)


def exact(pred: list[str]) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold, strict=True)]))


models, runs, em = {}, {}, {}
for design in DESIGNS:
    models[design], runs[design] = train_vlm(design, seed=0)
    em[design] = exact(evaluate_vqa(models[design]))
    print(f"{design:28s} exact match {em[design]:.4f}, {runs[design]['seconds']:.0f} s")
print("gates of the trained cross-attention layers (tanh α, tanh β):",
      [(round(a, 2), round(b, 2)) for a, b in models["cross-attention (Flamingo)"].gates()])

# %% [markdown]
# **The comparison at the same budget** (exact match of the generated answer on the test questions, greedy
# decoding; parameters of the whole model; wall time of training on one CPU thread):

# %%
n_params = {d: count_parameters(m) for d, m in models.items()}
for d in DESIGNS:
    print(f"{d:28s} exact match {em[d]:.4f} | {n_params[d]:,} parameters | "
          f"{runs[d]['seconds']:.0f} s training | val loss {runs[d]['history'].rows[-1]['val_loss']:.4f}")
best = max(DESIGNS, key=lambda d: em[d])
print(f"blind text LM: {blind_em:.4f}; best design: {best}")

# %% [markdown]
# The cross-attention design has more parameters (a cross-attention layer and an FFN per block) but a
# shorter sequence (the image takes no positions of the context); the prefix design adds nothing to the LM
# but the projector. At the full budget (all 4,000 training images) both answer nearly every question and the
# prefix design is ahead, by less than a point (the numbers above); in fast mode (600 images) the order can
# change. The zero-initialised gates slow the cross-attention design down: at the start only the gates receive
# a gradient (everything behind a closed gate is multiplied by
# `tanh(0) = 0`), and the image gets in only as fast as they open. Flamingo can afford that; it trains for
# hundreds of thousands of steps on top of a frozen LM it must not disturb. The gates printed above are still
# small, yet they carry all that the model knows about the image: close them again and it answers blind.

# %%
cross = models["cross-attention (Flamingo)"]
saved = [(x.attn_gate.item(), x.ff_gate.item()) for x in cross.xattn]
with torch.no_grad():
    for x in cross.xattn:
        x.attn_gate.zero_()
        x.ff_gate.zero_()
    em_closed = exact(evaluate_vqa(cross))
    for x, (a, b) in zip(cross.xattn, saved, strict=True):
        x.attn_gate.fill_(a)
        x.ff_gate.fill_(b)
print(f"cross-attention model, gates as trained: exact match {em['cross-attention (Flamingo)']:.4f}; "
      f"gates closed: {em_closed:.4f} (the blind text LM: {blind_em:.4f})")

# %% [markdown]
# ## 4. Constrained decoding: only valid answers
# A generative model can say anything its vocabulary allows: "circle circle", "what", or a colour to a
# yes/no question. Sampling at a high temperature makes that visible. **Constrained decoding** keeps a
# trie of the allowed outputs (the 13 answers, each followed by `<eos>`) and, at every step, sets the
# logits of every token the trie does not allow to −∞. The model then picks the best *valid* answer.

# %%
best_model = models[best]
constraint = answer_constraint(vocab, ANSWERS)
greedy = evaluate_vqa(best_model)
greedy_c = evaluate_vqa(best_model, constraint=constraint)
hot = evaluate_vqa(best_model, temperature=2.0, generator=torch.Generator().manual_seed(0))
hot_c = evaluate_vqa(best_model, temperature=2.0, generator=torch.Generator().manual_seed(0), constraint=constraint)
invalid = {name: sum(p not in ANSWERS for p in pred)
           for name, pred in (("greedy", greedy), ("greedy, constrained", greedy_c),
                              ("T = 2", hot), ("T = 2, constrained", hot_c))}
for name, pred in (("greedy", greedy), ("greedy, constrained", greedy_c), ("T = 2", hot), ("T = 2, constrained", hot_c)):
    print(f"{name:22s} invalid answers {invalid[name]:5d} of {len(pred)} | exact match {exact(pred):.4f}")
print("invalid answers sampled at T = 2:", Counter(p for p in hot if p not in ANSWERS).most_common(4))

# %% [markdown]
# ## 5. Captioning: the same model writes "a blue circle"
# The captioned training images were part of the training mix, with the prompt `describe the image .`
# Caption **exact match** counts captions identical to the reference; **token accuracy** compares the
# generated and the reference caption position by position. At higher temperatures the model writes other
# captions: mostly other colours, the part of the image it is least sure about.

# %%
cap_imgs = feats["test"][cap_rows["test"]]
cap_ref = [caps["test"]["caption"][i] for i in cap_rows["test"]]


def write_captions(model: nn.Module, temperature: float = 0.0, seed: int = 0) -> list[str]:
    return answer(model, vocab, [CAPTION_PROMPT] * len(cap_ref), cap_imgs, max_new_tokens=5,
                  temperature=temperature, generator=torch.Generator().manual_seed(seed))


def token_accuracy(pred: list[str], ref: list[str]) -> float:
    hits = [a == b for p, r in zip(pred, ref, strict=True) for a, b in zip(p.split() + [""] * 3, r.split())]
    return float(np.mean(hits))


cap_em, cap_tok = {}, {}
for d, m in models.items():
    c = write_captions(m)
    cap_em[d] = float(np.mean([a == b for a, b in zip(c, cap_ref, strict=True)]))
    cap_tok[d] = token_accuracy(c, cap_ref)
    print(f"{d:28s} caption exact match {cap_em[d]:.4f}, token accuracy {cap_tok[d]:.4f} ({len(cap_ref)} images)")
cap_t = {t: write_captions(best_model, t) for t in (0.0, 0.7, 1.5)}
cap_em_t = {t: float(np.mean([a == b for a, b in zip(c, cap_ref, strict=True)])) for t, c in cap_t.items()}
for k in range(4):
    print(f"reference '{cap_ref[k]}': " + " | ".join(f"T={t}: '{cap_t[t][k]}'" for t in cap_t))
print("caption exact match by temperature:", {t: round(v, 3) for t, v in cap_em_t.items()})

# %% [markdown]
# ## 6. Generation, token by token: where does the model look?
# Pick a test image and type a question (or `describe the image .` for a caption; a caption prefix such as
# `describe the image . a` continues it). The model generates greedily; each panel shows one generated
# token and its attention over the 16 image tokens (averaged over heads and layers), drawn over the image.
# For the prefix model the title also gives the share of attention that went to the image at all (the rest
# went to the text); the cross-attention layers read only the image.

# %%
test_images = vqa["test"]["images"][:N_TEST_IMAGES]


def generate_with_attention(model: nn.Module, image_i: int, prompt: str, n: int = 5):
    ids = prompt_ids(vocab, prompt)[None]
    new, steps = generate(model, ids, n, image=feats["test"][image_i : image_i + 1], temperature=0,
                          eos_id=vocab.eos_id, return_attention=True)
    tokens = [vocab.itos[int(t)] for t in new[0]]
    return tokens, image_attention(steps)[0]  # [N, 16]


def draw_answer(fig, image, question, design):
    try:
        tokens, att = generate_with_attention(models[design], image, question)
    except ValueError as err:  # a word outside the vocabulary, or too long a prompt
        fig.text(0.02, 0.5, f"cannot answer: {err}", fontsize=10, wrap=True)
        return "type a question with easy-VQA's words, e.g. <i>what color is the shape?</i>"
    draw_generation(fig, test_images[image], question, tokens, att)
    return f"generated: <b>{' '.join(t for t in tokens if t != '<eos>')}</b>"


gen_panel = Panel(draw_answer, figsize=(11, 2.8), columns=3,
                  image=W.IntSlider(value=0, min=0, max=N_TEST_IMAGES - 1, description="image"),
                  question=W.Text(value="what color is the shape?", description="prompt"),
                  design=W.Dropdown(options=list(DESIGNS), value=best, description="model"))
gen_panel

# %% [markdown]
# ## 7. A classifier on the same features, and chapter 10
# A VQA model does not have to generate: a **classifier** maps (image, question) to one of the 13 answers
# and can never say anything else. Here a small one on the same frozen features (the 16 cells averaged,
# plus the question's bag of words, through a 2-layer MLP) sets the reference for the generative models.
# Chapter 10 builds the fuller VQA classifiers (fusion of image and question encoders); this chapter's
# numbers are to be compared with its easy-VQA test accuracy.

# %%
class BowClassifier(nn.Module):
    """``{"image": [B, 1280], "bow": [B, V]} -> logits [B, 13]``."""

    def __init__(self, feat: int, v: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feat + v, hidden), nn.ReLU(), nn.Linear(hidden, len(ANSWERS)))

    def forward(self, x: dict) -> torch.Tensor:
        return self.net(torch.cat([x["image"], x["bow"]], 1))


def bow(split: str) -> torch.Tensor:
    out = torch.zeros(len(rows[split]), len(vocab))
    for k, i in enumerate(rows[split]):
        out[k, vocab.encode(tokenize(vqa[split]["questions"][i]))] = 1.0
    return out


from mmcourse.data import DictBatches  # noqa: E402

pooled = {s: feats[s].mean(1)[img_q[s]] for s in ("train", "test")}  # [Q, 1280]
labels = {s: vqa[s]["answer"][rows[s]] for s in ("train", "test")}
seed_everything(0)
clf = BowClassifier(FEAT, len(vocab))
t = time.perf_counter()
fit(clf, DictBatches({"image": pooled["train"], "bow": bow("train")}, labels["train"], 128, shuffle=True),
    epochs=VLM_EPOCHS, lr=1e-3, progress=False, device=cpu)
with torch.no_grad():
    clf_acc = float((clf({"image": pooled["test"], "bow": bow("test")}).argmax(1) == labels["test"]).float().mean())
print(f"classifier: accuracy {clf_acc:.4f} ({count_parameters(clf):,} parameters, {time.perf_counter() - t:.0f} s) | "
      f"generative {best}: exact match {em[best]:.4f}")
ch10 = [e for e in Results("10_project_vqa").load() if e["metric"] == "easyvqa_best_test_acc" and e["mode"] == "full"]
print("chapter 10's best classifier (its full-mode run, results/10_project_vqa.json):",
      f"{ch10[0]['value']:.4f}" if ch10 else "not recorded here yet")

# %% [markdown]
# ## 8. Training on many devices: `DistributedDataParallel`
# Large models train on many GPUs at once. PyTorch's engine for it is **DistributedDataParallel (DDP)**:
#
# - `torchrun --nproc_per_node=N` starts N processes (one per GPU) and tells each its `RANK` and the
#   `WORLD_SIZE`; each joins a **process group** (`nccl` between GPUs, `gloo` on CPUs);
# - every process holds a full copy of the model (DDP broadcasts rank 0's weights at the start);
# - a **`DistributedSampler`** gives each rank a different slice of every batch (rank r takes every N-th
#   sample of the shuffled order, so the N slices together are the batch one process would see);
# - in `backward`, DDP **all-reduces** the gradients (sums them over the ranks and divides by N) while the
#   backward pass still runs, so every rank applies the same averaged gradient and the copies stay equal;
# - only **rank 0 saves** checkpoints and logs (the others hold the same weights), and a barrier keeps the
#   others from exiting before it has;
# - the **effective batch** is the per-rank batch × N. Keeping it fixed (as here) keeps the training
#   identical; growing it with N (the usual way to go faster) calls for a larger learning rate: the
#   *linear scaling rule* (lr ∝ batch, Goyal et al. 2017), with a warm-up, or a square-root rule for Adam.
#
# `python -m mmcourse.distributed` is the whole script (the same GPT, trained on easy-VQA's text). Here it
# runs twice on the CPU: one process with the global batch of 32 sequences, and `torchrun` with 2
# processes of 16 each. With the same seed, the two loss curves must agree to float rounding.
# On a machine with N GPUs the same command runs unchanged:
# `torchrun --standalone --nproc_per_node=N -m mmcourse.distributed --steps 2000 --batch 256 --amp`.

# %%
ddp_dir = Path(tempfile.mkdtemp(prefix="mmcourse-ddp-"))
ARGS = ["--cpu", "--steps", "50", "--batch", "32", "--block", "32", "--out"]
env = {"OMP_NUM_THREADS": "1", "MMCOURSE_DEVICE": "cpu"}


def launch(cmd: list[str]) -> None:
    import os

    r = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    print(r.stdout.strip().splitlines()[-1])


t = time.perf_counter()
main_ddp([*ARGS, str(ddp_dir / "one.json")])  # one process: the same script, called from here (no torchrun)
launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
        "mmcourse.distributed", *ARGS, str(ddp_dir / "two.json"), "--checkpoint", str(ddp_dir / "gpt.pt")])
one, two = (json.loads((ddp_dir / f"{k}.json").read_text()) for k in ("one", "two"))
ddp_diff = max(abs(a - b) for a, b in zip(one["losses"], two["losses"], strict=True))
print(f"max |loss(1 process) - loss(2 processes)| over {len(one['losses'])} steps: {ddp_diff:.2e} "
      f"({time.perf_counter() - t:.0f} s for both runs); rank 0's checkpoint: {(ddp_dir / 'gpt.pt').is_file()}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
steps = np.arange(1, len(one["losses"]) + 1)
axes[0].plot(steps, one["losses"], label="1 process, batch 32", lw=3, alpha=0.5)
axes[0].plot(steps, two["losses"], "--", label="2 processes (gloo), 16 each", color="k")
axes[0].set(xlabel="optimizer step", ylabel="training loss (nats/token)", title="the same loss curve")
axes[0].legend()
axes[1].semilogy(steps, np.abs(np.array(one["losses"]) - np.array(two["losses"])) + 1e-9)
axes[1].axhline(1e-4, color="r", ls=":", label="tolerance 1e-4")
axes[1].set(xlabel="optimizer step", ylabel="|difference| (nats/token, +1e-9)", title="float rounding only")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Checks
# The claims above, measured: the GPT is causal, its KV cache gives the tokens recomputation gives, and an
# over-long prompt is refused; the text LM beats the unigram and the chance baselines without the image, and
# its samples are less well-formed at higher temperature (top-k helps); the cross-attention model equals
# the text LM at initialisation, and closing its trained gates takes the image away; at the same budget the
# prefix design answers (slightly) better with fewer parameters (full mode); the best VLM meets the exact-match target far above
# the blind LM; greedy and sampled answers are all valid under constrained decoding while sampling without
# it produces invalid ones; captions meet their target, and hotter captions are less often right; both
# designs stay under 5 M parameters; 2 processes reproduce 1 process's losses within 1e-4. The seed spreads
# of the two headline numbers were measured once over `MMCOURSE_SEED=0, 1, 2` (full mode, the whole chain:
# text LM, then VLM). Training times are printed, not asserted.

# %%
# The prefix design's headline numbers with MMCOURSE_SEED=1 and 2 (full mode, the whole chain: text LM, then
# VLM; measured once with this notebook's code, peak lr 1e-3 and grad_clip=1.0, in a copy that trains only the
# prefix VLM); with this run's (seed 0: 0.9958 and 0.9887 then) they give the seed spread, max - min: exact
# match 0.0016 (0.9958 / 0.9967 / 0.9951, margin over 0.95: 0.045), captions 0.0079 (0.9887 / 0.9955 / 0.9876).
OTHER_SEEDS = {"vqa": {1: 0.9967, 2: 0.9951}, "caption": {1: 0.9955, 2: 0.9876}}


def spread(metric: str, value: float) -> float | None:
    return None if is_fast() else float(np.ptp([value, *OTHER_SEEDS[metric].values()]))


assert causal_ok and torch.equal(with_cache, without) and "block_size" in context_error
assert zero_gate_equal
assert lm_val_loss < unigram - 0.5
assert 1 / 13 < blind_em < em[best] - 0.2  # the image matters
assert formed[0.5] >= formed[1.0] > formed[2.0] and formed_top5 > formed[2.0]
assert em_closed < em["cross-attention (Flamingo)"] - 0.1  # the image gets in through the gates only
if not is_fast():  # a full-mode claim: with 600 training images (fast mode) the order may change
    assert em["prefix (LLaVA)"] > em["cross-attention (Flamingo)"]  # at this budget the prefix design wins
    assert best == "prefix (LLaVA)"  # the design whose seed spread was measured (OTHER_SEEDS)
assert n_params["cross-attention (Flamingo)"] > n_params["prefix (LLaVA)"]
assert invalid["greedy, constrained"] == 0 and invalid["T = 2, constrained"] == 0
assert invalid["T = 2"] > 0  # without the constraint, sampling says things that are not answers
assert exact(greedy_c) >= exact(greedy)  # the constraint never turns a valid answer invalid
assert cap_em_t[0.0] > cap_em_t[1.5]  # hotter captions are less often right
assert max(n_params.values()) <= 5_000_000
assert ddp_diff <= 1e-4 and (ddp_dir / "gpt.pt").is_file()

rec.record("vqa_generated_exact_match_best", em[best], target=pick(fast=0.6, full=0.95),
           spread=spread("vqa", em[best]))
for d in DESIGNS:
    rec.record(f"vqa_generated_exact_match_{d.split()[0].replace('-', '_')}", em[d])
    rec.record(f"caption_exact_match_{d.split()[0].replace('-', '_')}", cap_em[d])
rec.record("caption_exact_match_best", cap_em[best], target=pick(fast=0.3, full=0.90),
           spread=spread("caption", cap_em[best]))
rec.record("caption_token_accuracy_best", cap_tok[best])
rec.record("invalid_answers_sampled_t2_unconstrained", invalid["T = 2"], higher_is_better=False)
rec.record("vqa_blind_text_lm_exact_match", blind_em)
rec.record("vqa_bow_classifier_acc", clf_acc)
rec.record("ddp_max_loss_diff_2_vs_1_process", ddp_diff, target=1e-4, higher_is_better=False)
rec.record("largest_model_parameters", max(n_params.values()), target=5_000_000, higher_is_better=False)
rec.record("chapter_seconds", time.perf_counter() - t_start, higher_is_better=False)
print(rec.check_targets())

# %% [markdown]
# ## Exercises
# 1. **Top-k = 1.** Sample questions from the text LM with `top_k=1` at temperatures 0.5 and 2.0. Explain
#    what you get, and check it against greedy decoding.
# 2. **Freeze the LM, as Flamingo does.** Train the cross-attention VLM with the GPT's weights frozen (only
#    the projector, the image positions and the gated layers learn). How much exact match does it keep, and
#    how many parameters does it train?
# 3. **Double the batch instead.** Run `mmcourse.distributed` with 2 processes and `--batch 64` (32 per
#    process, twice the global batch) and compare its loss curve with one process at `--batch 32`. Are they
#    still equal? What would the linear scaling rule change?
