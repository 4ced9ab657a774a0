# %% [markdown]
# # 05 · Attention and Transformers
#
# **Book:** Chapter 6 — attention, multi-head attention, the Transformer, ViT, BERT.
#
# **You will be able to:**
# - compute scaled dot-product attention by hand, and mask padding and the future;
# - build multi-head attention and a Transformer encoder block from their parts, and show they equal PyTorch's own modules;
# - explain why Transformers need positional encodings, and draw sinusoidal and learned ones;
# - train a Transformer encoder-decoder that normalises dates written in formats it has never seen, and read its cross-attention;
# - train a small Vision Transformer on handwritten digits and a tiny BERT that fills in blanks, and look at where they attend.
#
# Every chapter runs on its own: run the cells top to bottom. `MMCOURSE_FAST=1` gives a quick pass;
# the numbers shown here come from a full run.

# %%
import re
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from mmcourse.config import is_fast, pick, seed_everything
from mmcourse.device import describe, get_device
from mmcourse.results import Results

t_start = time.perf_counter()
device = get_device()
rec = Results("05_attention_and_transformers")
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small
seed_everything(0)
print(f"mode: {'fast' if is_fast() else 'full'}, device: {describe()}")

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# A recurrent network reads a sequence one step at a time. **Attention** lets every position
# look at every other position directly. Each token emits a **query** $q$ ("what am I looking
# for?"), a **key** $k$ ("what do I contain?") and a **value** $v$ ("what do I pass on?"). A
# query's match with each key is their dot product; a softmax turns the matches into weights
# that sum to one, and the output is the weighted average of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V$$
#
# Dividing by $\sqrt{d}$ keeps the dot products of $d$-dimensional vectors at unit scale, so
# the softmax does not saturate (exercise 1 measures what happens without it). The whole
# function is a few lines in `mmcourse/models/attention.py`:

# %%
import inspect

from mmcourse.models.attention import (
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)

src = inspect.getsource(scaled_dot_product_attention)
print(src[src.index("    scores"):])

# %% [markdown]
# Two **masks** decide which keys a query may use (True = allowed):
#
# - a **padding mask** hides the padding of shorter sequences in a batch, so that padding never
#   changes a result;
# - a **causal mask** hides the future: position $i$ may only look at positions $\le i$. This is
#   what lets a decoder be trained on whole sequences at once and still generate left to right.
#
# Two sequences of lengths 6 and 4 (padded to 6), 8-dimensional random tokens:

# %%
from mmcourse.viz.attention import draw_heatmap

g = torch.Generator().manual_seed(0)
x = torch.randn(2, 6, 8, generator=g)  # [B, T, D]
keep = padding_mask(torch.tensor([6, 4]), 6)  # [B, T]: True on real tokens
_, w_plain = scaled_dot_product_attention(x, x, x)
_, w_pad = scaled_dot_product_attention(x, x, x, mask=keep[:, None, :])  # [B, 1, Tk] -> every query
_, w_causal = scaled_dot_product_attention(x, x, x, mask=causal_mask(6))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
tokens = [f"t{i}" for i in range(6)]
for ax, w, title in zip(axes, (w_plain[1], w_pad[1], w_causal[1]),
                        ("no mask", "padding mask (length 4)", "causal mask")):
    draw_heatmap(ax, w, tokens, tokens, title)
fig.tight_layout()
plt.show()
rows_sum_to_one = all(torch.allclose(w.sum(-1), torch.ones(2, 6)) for w in (w_plain, w_pad, w_causal))
padding_ignored = float(w_pad[1, :, 4:].abs().max()) == 0.0
future_hidden = float(w_causal.triu(1).abs().max()) == 0.0
print(f"every row sums to 1: {rows_sum_to_one}")
print(f"padding gets zero weight: {padding_ignored}")
print(f"no weight on the future: {future_hidden}")
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 2. Multi-head attention
#
# One attention computes one weighting. **Multi-head attention** projects the tokens into $H$
# smaller query/key/value spaces (size $D/H$ each), runs $H$ attentions in parallel (one
# may follow syntax, another position, another meaning), concatenates the results and mixes
# them with one more linear map:
#
# $$\mathrm{MHA}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\,W^O,\qquad
# \mathrm{head}_h = \mathrm{Attention}(X W^Q_h, X W^K_h, X W^V_h)$$
#
# Our `MultiHeadAttention` keeps four `nn.Linear` layers ($W^Q, W^K, W^V, W^O$) and splits
# them into heads by a reshape (`[B, T, D] -> [B, H, T, D/H]`). If we copy the weights of
# PyTorch's `nn.MultiheadAttention` into it, the two must compute exactly the same thing,
# including the per-head weights and the padding mask:

# %%
print(inspect.getsource(MultiHeadAttention._heads))
torch.manual_seed(0)
x_q, memory = torch.randn(3, 5, 32), torch.randn(3, 7, 32)  # queries [B, Tq, D], memory [B, Tk, D]
keep_mem = padding_mask(torch.tensor([7, 5, 2]), 7)
torch_mha = nn.MultiheadAttention(32, num_heads=4, batch_first=True).eval()
our_mha = MultiHeadAttention(32, n_heads=4).load_torch(torch_mha).eval()
with torch.no_grad():
    y_ref, w_ref = torch_mha(x_q, memory, memory, key_padding_mask=~keep_mem, average_attn_weights=False)
    y_ours, w_ours = our_mha(x_q, memory, key_mask=keep_mem, return_attention=True)
mha_diff = max(float((y_ref - y_ours).abs().max()), float((w_ref - w_ours).abs().max()))
print(f"output {tuple(y_ours.shape)}, weights {tuple(w_ours.shape)} = [B, H, Tq, Tk]")
print(f"equal to nn.MultiheadAttention within 1e-5: {mha_diff < 1e-5}")
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 3. Positional encodings
#
# Attention is a weighted average over a *set*: shuffle the tokens and the outputs are shuffled
# the same way, nothing else changes (exercise 2 checks this). Word order matters, so
# Transformers add a **positional encoding** to each token embedding:
#
# - **sinusoidal** (the original Transformer): dimension pairs $(2i, 2i{+}1)$ hold
#   $\sin(p/10000^{2i/D})$ and $\cos(p/10000^{2i/D})$, waves of geometrically growing
#   wavelength. No parameters, and nearby positions get similar vectors;
# - **learned** (BERT, ViT): one trained vector per position, limited to the table's length
#   (section 6 looks at the table a ViT learns).
#
# Both refuse a sequence longer than their table, with a clear error.

# %%
from mmcourse.models.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from mmcourse.viz.attention import draw_positional

sinus = SinusoidalPositionalEncoding(d_model=64, max_len=100)
fig = plt.figure(figsize=(10, 3.4))
draw_positional(fig, sinus.pe, "sinusoidal encoding, D = 64")
plt.show()
try:
    LearnedPositionalEncoding(64, max_len=16)(torch.zeros(1, 20, 64))
except ValueError as err:
    print("ValueError:", err)
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 4. A Transformer encoder block, from its parts
#
# An encoder block wraps multi-head self-attention and a position-wise feed-forward network
# (two linear layers with a GELU or ReLU between) in **residual connections** with **layer
# normalisation**. Post-norm (the 2017 paper) normalises after each residual sum; pre-norm
# (GPT-2, ViT) normalises each branch's input, which trains more stably in deep stacks:
#
#     post-norm:  x = LN(x + MHA(x));   x = LN(x + FFN(x))
#     pre-norm:   x = x + MHA(LN(x));   x = x + FFN(LN(x))
#
# `EncoderBlock` in `mmcourse/models/transformer.py` is exactly that. Copying the weights of
# `nn.TransformerEncoderLayer` (and of `nn.TransformerDecoderLayer` into our `DecoderBlock`,
# which adds causal self-attention and cross-attention to an encoder's output) gives the same
# function in all four variants:

# %%
from mmcourse.models.transformer import DecoderBlock, EncoderBlock

print(inspect.getsource(EncoderBlock.forward).split('"""')[-1])
torch.manual_seed(0)
xb, mem = torch.randn(2, 6, 32), torch.randn(2, 9, 32)
block_diff = {}
for norm_first in (False, True):
    for act in ("relu", "gelu"):
        ref = nn.TransformerEncoderLayer(32, 4, 64, activation=act, batch_first=True, norm_first=norm_first).eval()
        ours = EncoderBlock(32, 4, 64, norm_first=norm_first, activation=act).load_torch(ref).eval()
        ref_d = nn.TransformerDecoderLayer(32, 4, 64, activation=act, batch_first=True, norm_first=norm_first).eval()
        ours_d = DecoderBlock(32, 4, 64, norm_first=norm_first, activation=act).load_torch(ref_d).eval()
        with torch.no_grad():
            enc_d = float((ref(xb) - ours(xb)).abs().max())
            dec_d = float((ref_d(xb, mem, tgt_mask=~causal_mask(6)) - ours_d(xb, mem)).abs().max())
        name = f"{'pre' if norm_first else 'post'}-norm, {act}"
        block_diff[name] = max(enc_d, dec_d)
        print(f"{name:<16} encoder and decoder block equal to PyTorch's within 1e-5: {block_diff[name] < 1e-5}")
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 5. Sequence to sequence: normalising dates
#
# An **encoder-decoder** Transformer reads a source sequence with an encoder and writes the
# target with a decoder that attends (**cross-attention**) to the encoder's output. Our task:
# write any date as ISO 8601, e.g. `3rd of March 2021 -> 2021-03-03`, one character at a time.
#
# The pairs are generated in code (`mmcourse/data/dates.py`): a random day between 1950 and
# 2049 written in one of 19 training formats. The test set uses 4 **held-out formats** the model
# never sees in training. What we test is the lesson of attention: a seq2seq model with attention
# generalises to **new combinations of parts it has seen**. So every held-out format is a
# recombination of training formats' components, the same renderings of day, month and year
# and the same separators, in a new combination:
#
# - `3rd of Mar 2021`: "of" came only with full month names, abbreviations only without "of";
# - `Mar 3rd, 2021`: ordinals after the month only with full names, `Mar 3, 2021` without ordinal;
# - `3/4/2021` (day/month): training has `3/04/2021` and `03/4/2021`, never both unpadded;
# - `Wednesday, 3 Mar 2021`: the weekday came only with full month names (`Wednesday, 3 March 2021`,
#   `Wednesday, March 3, 2021`), abbreviations only without a weekday.
#
# A date format with a part the model has never seen (a month in Roman numerals, say) would
# be a different question, one no amount of attention answers. A test string that a training
# format could also produce (`3rd of May 2021`, `12/3/2021`) is skipped, so the test measures
# generalisation to new formats, not memory: a program that memorised the 19 training formats,
# one regular expression each (`format_regex`), reads every validation date and not one test
# date (the cell counts both).

# %%
from mmcourse.data.dates import TEST_FORMATS, TRAIN_FORMATS, date_splits, field_spans, format_parts, matches_any

N_DATES = pick(fast=3000, full=32000)
dates = date_splits(n_train=N_DATES, n_val=500, n_test=1000, seed=0)
print(f"{len(TRAIN_FORMATS)} training formats, {len(TEST_FORMATS)} held-out formats")
print("held out:", " | ".join(TEST_FORMATS))
train_parts = set().union(*(format_parts(f) for f in TRAIN_FORMATS))
recombined = all(format_parts(f) <= train_parts for f in TEST_FORMATS)
print(f"every field and separator of a held-out format occurs in a training format: {recombined}")
held_out_disjoint = not any(matches_any(p.source, TRAIN_FORMATS) for p in dates["test"])
print(f"no test source could come from a training format: {held_out_disjoint}")
parser_reads = {split: sum(matches_any(p.source, TRAIN_FORMATS) for p in dates[split]) for split in ("val", "test")}
print(f"a parser of the training formats reads: {parser_reads['val']} of {len(dates['val'])} validation dates, "
      f"{parser_reads['test']} of {len(dates['test'])} test dates")
# NBVAL_CHECK_OUTPUT

# %%
for split in ("train", "test"):
    print(split, "examples:")
    for p in dates[split][:4]:
        print(f"   {p.source:<30} -> {p.target}    ({p.format})")
print({k: len(v) for k, v in dates.items()})

# %% [markdown]
# Characters become ids (a character `Vocab` with `SEQ2SEQ_SPECIALS`: 0 is padding, 1 `<bos>`, 2 `<eos>`). For **teacher
# forcing** the decoder input is `<bos>` + target and the label is target + `<eos>`: at every
# position the decoder predicts the next character from the true previous ones, all positions at
# once thanks to the causal mask. The model: 2 encoder and 2 decoder blocks (pre-norm, 4 heads,
# $D = 64$), sinusoidal positions, trained with AdamW and a one-cycle schedule by the course's
# `fit`, without dropout: the pairs are generated (32,000 in full mode, 3,000 in fast mode), and
# the validation set (new dates in the training formats) shows whether the model overfits them.

# %%
from mmcourse.models.seq2seq import SEQ2SEQ_SPECIALS, PairData, Seq2SeqTransformer, seq2seq_batch, token_loss
from mmcourse.text import Vocab
from mmcourse.train import fit, loaders

vocab = Vocab.characters([p.source + p.target for p in dates["train"]], **SEQ2SEQ_SPECIALS)


def pair_data(pairs):
    return PairData(*seq2seq_batch(vocab, [p.source for p in pairs], [p.target for p in pairs]))


DATE_EPOCHS = pick(fast=3, full=10)
date_train, date_val = loaders(pair_data(dates["train"]), pair_data(dates["val"]),
                             batch_size=pick(fast=64, full=128))
seed_everything(0)
date_model = Seq2SeqTransformer(len(vocab), len(vocab), d_model=64, n_heads=4, n_enc=2, n_dec=2, d_ff=128,
                                dropout=0.0)
date_opt = torch.optim.AdamW(date_model.parameters(), lr=4e-3, weight_decay=0.01)
date_sched = torch.optim.lr_scheduler.OneCycleLR(date_opt, max_lr=4e-3, total_steps=DATE_EPOCHS * len(date_train),
                                                 pct_start=0.15)
t0 = time.perf_counter()
date_hist = fit(date_model, date_train, date_val, epochs=DATE_EPOCHS, optimizer=date_opt, scheduler=date_sched,
                loss_fn=token_loss, monitor="val_loss", progress=False)
date_seconds = time.perf_counter() - t0
print(f"{sum(p.numel() for p in date_model.parameters()):,} parameters, trained in {date_seconds:.0f} s, "
      f"val loss {date_hist['val_loss'][-1]:.4f}")

# %% [markdown]
# Generation is **greedy**: start from `<bos>`, append the most likely character, repeat until
# `<eos>`. A date counts only if all ten characters are right (**exact match**).

# %%
def normalise(model, pairs) -> list[str]:
    src = vocab.batch([p.source for p in pairs]).to(device)
    return [vocab.decode(ids) for ids in model.greedy_decode(src, max_len=12).cpu()]


def exact_match(pairs, preds) -> float:
    return sum(p.target == q for p, q in zip(pairs, preds)) / len(pairs)


date_model.to(device)
preds = {split: normalise(date_model, dates[split]) for split in ("val", "test")}
date_val_em, date_test_em = exact_match(dates["val"], preds["val"]), exact_match(dates["test"], preds["test"])
print(f"exact match, training formats (val): {date_val_em:.3f}")
print(f"exact match, held-out formats (test): {date_test_em:.3f}")
per_format, n_per_format = {}, {}
for fmt in TEST_FORMATS:
    idx = [i for i, p in enumerate(dates["test"]) if p.format == fmt]
    per_format[fmt] = exact_match([dates["test"][i] for i in idx], [preds["test"][i] for i in idx])
    n_per_format[fmt] = len(idx)
    print(f"   {fmt:<30} {per_format[fmt]:.3f}  ({len(idx)} examples)")
date_macro_em = sum(per_format.values()) / len(per_format)
worst_format = min(per_format, key=per_format.get)
print(f"macro average over the 4 formats: {date_macro_em:.3f}; worst format: {worst_format} {per_format[worst_format]:.3f}")
wrong = [(p.source, p.target, q, p.format) for p, q in zip(dates["test"], preds["test"]) if p.target != q]
print("some mistakes:", [w[:3] for w in wrong[:4]])

# %% [markdown]
# The headline number, exact match over all 1,000 test dates, is a **micro average**: each
# format counts by its number of examples, and these are very unequal. `{d}/{m}/{yyyy}`
# (`9/6/2031`) has only 65 examples: in training a slash date always had at least one two-digit
# field (`9/06/2031`, `09/6/2031`), and the test keeps only the dates that no training format
# could have written, which leaves only days and months below 10. So we also record the
# **macro average** (the mean of the four per-format scores, each format weighted equally) and
# the **worst format**, printed above; the micro average hides how much weaker one format is.
#
# Which part of the answer goes wrong? Counting the wrong fields (year, month, day) of the mistakes:

# %%
FIELDS = {"year": slice(0, 4), "month": slice(5, 7), "day": slice(8, 10)}  # in YYYY-MM-DD
field_errors = {name: sum(t[sl] != q[sl] for _, t, q, _ in wrong) for name, sl in FIELDS.items()}
n_wrong_fields = [sum(t[sl] != q[sl] for sl in FIELDS.values()) for _, t, q, _ in wrong]
by_count = {k: n_wrong_fields.count(k) for k in (1, 2, 3)}
well_formed = sum(bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", q)) for _, _, q, _ in wrong)
print(f"{len(wrong)} wrong dates ({sum(f == worst_format for *_, f in wrong)} of them in {worst_format}); "
      f"wrong fields among them: {field_errors}")
print(f"wrong dates with 1, 2, 3 wrong fields: {by_count}; well-formed YYYY-MM-DD answers among them: {well_formed}")

# %% [markdown]
# The counts answer it: most wrong dates have a **single** wrong field, and most wrong answers
# are still well-formed `YYYY-MM-DD` dates (both asserted in the checks). The model has not lost
# the output format; it misreads one number of the source. The first line says which field that
# is most often.

# %% [markdown]
# **Where does each output character look?** The panel shows the decoder's cross-attention for
# a few held-out examples: rows are the generated characters, columns the source characters.
# Choose the example, the decoder layer and the head (-1 averages the heads). Do the year digits
# read the year, the month digits the month, the day digits the day? The cell after the panel
# measures it over 300 test dates.

# %%
from mmcourse.viz.attention import seq2seq_attention_panel

show = dates["test"][:12]
show_src = vocab.batch([p.source for p in show]).to(device)
show_out, show_att = date_model.greedy_decode(show_src, max_len=12, return_attention=True)
date_panel = seq2seq_attention_panel([p.source for p in show], [vocab.decode(o) for o in show_out.cpu()],
                                     [a.cpu() for a in show_att["cross"]])
date_panel

# %%
# The same panel drawn from code (the widget redraws itself when you move a slider):
png_before = date_panel.image.value
date_panel_redraws = date_panel.set(example=3, layer=0, head=1) != png_before
date_panel.set(example=0, layer=1, head=-1)
print(f"panel redraws: {date_panel_redraws}")
# NBVAL_CHECK_OUTPUT

# %%
# For each output field (e.g. the 4 year digits), the share of its cross-attention (mean of the
# heads) that falls on the same field of the source, per decoder layer; over the correctly
# normalised dates among the first 300 test dates. "Chance" is the field's share of the source
# characters (what uniform attention would give).
probe_pairs = dates["test"][:300]
probe_src = vocab.batch([p.source for p in probe_pairs]).to(device)
with torch.no_grad():
    probe_out, probe_att = date_model.greedy_decode(probe_src, max_len=12, return_attention=True)
probe_ok = [i for i, (p, o) in enumerate(zip(probe_pairs, probe_out.cpu())) if vocab.decode(o) == p.target]
own_share = {(layer, f): [] for layer in range(len(probe_att["cross"])) for f in FIELDS}
chance = {f: [] for f in FIELDS}
for i in probe_ok:
    spans = field_spans(probe_pairs[i].source, probe_pairs[i].format)
    n_src = len(probe_pairs[i].source)
    for f, sl in FIELDS.items():
        a, b = spans[f]
        chance[f].append((b - a) / n_src)
        for layer, att in enumerate(probe_att["cross"]):
            w = att[i].mean(0)[sl].cpu()  # [field length, S]: the rows that wrote this field
            own_share[layer, f].append(float(w[:, a:b].sum(1).mean()))
field_attention = {k: sum(v) / len(v) for k, v in own_share.items()}
chance = {f: sum(v) / len(v) for f, v in chance.items()}
print(f"{len(probe_ok)} correct dates; share of attention on the same field of the source:")
for f in FIELDS:
    print(f"   {f:<6} " + "  ".join(f"layer {layer}: {field_attention[layer, f]:.2f}"
                                   for layer in range(len(probe_att["cross"]))) + f"   (chance {chance[f]:.2f})")
min_attention_ratio = min(v / chance[f] for (_, f), v in field_attention.items())
print(f"smallest ratio of own-field attention to chance: {min_attention_ratio:.1f}")

# %% [markdown]
# In both decoder layers, each output field puts more of its cross-attention on the same field
# of the source than uniform attention would (at least 1.5 times its chance share, asserted
# below): the decoder has learned to look up the part of the source it is writing.

# %% [markdown]
# ## 6. A Vision Transformer on handwritten digits
#
# ViT treats an image as a sequence: cut the 28×28 digit into 4×4 **patches** (a 7×7 grid of 49),
# project each to $D = 48$ (a 4×4 convolution with stride 4 does exactly that), prepend a learned
# `[CLS]` token, add learned positions, run a pre-norm Transformer encoder, and classify from
# `[CLS]`. Nothing in it knows that patches are arranged in a grid: it must learn that from data.
# ViTs need a lot of data; we have the 8,000 training images of the MNIST pool (3,000 in fast
# mode), so we help with small random shifts (±2 pixels) as augmentation.

# %%
from mmcourse.data import mnist_pool
from mmcourse.models.vit import ViT
from mmcourse.train import evaluate


def random_shift(img: torch.Tensor) -> torch.Tensor:
    """Shift a [1, 28, 28] digit by up to 2 pixels (the border is black, so rolling is a shift)."""
    dx, dy = torch.randint(-2, 3, (2,)).tolist()
    return torch.roll(img, (dy, dx), dims=(-2, -1))


vit_train = mnist_pool("train", transform=random_shift).subset(pick(fast=3000, full=None))
vit_val, vit_test = mnist_pool("val"), mnist_pool("test")
VIT_EPOCHS = pick(fast=5, full=25)
tr_loader, va_loader, te_loader = loaders(vit_train, vit_val, vit_test, batch_size=128)
seed_everything(0)
PATCH = 4
vit = ViT(image_size=28, patch_size=PATCH, d_model=48, depth=3, n_heads=4, d_ff=96, dropout=0.05)
GRID = vit.grid  # patches per side
vit_opt = torch.optim.AdamW(vit.parameters(), lr=3e-3, weight_decay=0.05)
vit_sched = torch.optim.lr_scheduler.OneCycleLR(vit_opt, max_lr=3e-3, total_steps=VIT_EPOCHS * len(tr_loader),
                                                pct_start=0.1)
t0 = time.perf_counter()
vit_hist = fit(vit, tr_loader, va_loader, epochs=VIT_EPOCHS, optimizer=vit_opt, scheduler=vit_sched, progress=False)
vit_seconds = time.perf_counter() - t0
vit_test_acc = evaluate(vit, te_loader)["accuracy"]
print(f"{sum(p.numel() for p in vit.parameters()):,} parameters, {len(vit_train)} training images, "
      f"trained in {vit_seconds:.0f} s")
print(f"val accuracy {vit_hist.best['val_acc']:.3f} (epoch {vit_hist.best_epoch}), test accuracy {vit_test_acc:.3f}")
vit_hist.plot(title="ViT on the MNIST pool")
plt.show()

# %% [markdown]
# **What did the positional table learn?** Each patch position has a learned vector, and the
# model was given them as a flat list. A caution before reading the pictures: MNIST digits sit in
# the central 20×20 pixels, so the outer ring of patches (24 of the 49) is almost always empty,
# and the vectors of positions that only ever see black tend to end up alike whatever their
# place. A similarity map over all 49 patches would mostly show *border against interior*. So we
# measure the 2-D layout on the 5×5 interior patches only: there, are grid neighbours (in rows
# and in columns) more alike than patches far apart? The maps show the cosine similarity of
# four interior positions (red +) with the other interior positions; the grey ring is the
# border, left out.

# %%
from mmcourse.models.vit import attention_rollout

pos = vit.pos.pe.detach().cpu()[1:]  # [N, D], without [CLS]
pos = pos / pos.norm(dim=1, keepdim=True)
sim = pos @ pos.T  # [N, N]
grid_pos = torch.stack(torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij"), -1)
grid_pos = grid_pos.view(-1, 2)  # [N, 2] (row, column) of each patch
border = (grid_pos == 0).any(1) | (grid_pos == GRID - 1).any(1)  # [N] the outer ring
train_images = mnist_pool("train").x  # [8000, 1, 28, 28], unshifted
patch_ink = torch.nn.functional.avg_pool2d(train_images, PATCH).flatten(1) > 0.1  # [8000, N]
border_ink, interior_ink = float(patch_ink[:, border].float().mean()), float(patch_ink[:, ~border].float().mean())
off_diag = ~torch.eye(len(sim), dtype=torch.bool)  # [N, N] pairs of different patches
sim_bb = float(sim[border][:, border][off_diag[border][:, border]].mean())
sim_ii = float(sim[~border][:, ~border][off_diag[~border][:, ~border]].mean())
sim_bi = float(sim[border][:, ~border].mean())
print(f"mean similarity of positions: border-border {sim_bb:.2f}, interior-interior {sim_ii:.2f}, "
      f"border-interior {sim_bi:.2f}")
print(f"share of patches with ink (mean pixel > 0.1) in the training images: border {border_ink:.3f}, "
      f"interior {interior_ink:.3f}")
inner = (~border).nonzero().flatten()  # the 25 interior patches
dist = torch.cdist(grid_pos[inner].float(), grid_pos[inner].float())  # [25, 25] grid distance
sim_in = sim[inner][:, inner]
neighbour_sim = float(sim_in[(dist > 0) & (dist <= 1)].mean())
far_sim = float(sim_in[dist >= 3].mean())
print(f"interior patches: mean similarity of grid neighbours {neighbour_sim:.2f}, of patches >= 3 apart {far_sim:.2f}")
centre = (GRID // 2) * GRID + GRID // 2  # row 3, column 3 of the 7 x 7 grid
shown = (GRID + 1, GRID + GRID - 2, centre, (GRID - 2) * GRID + GRID // 2)  # interior: (1,1), (1,5), (3,3), (5,3)
fig, axes = plt.subplots(1, 4, figsize=(11, 3), layout="constrained")
for ax, p in zip(axes, shown):
    m = sim[p].clone().view(GRID, GRID)
    m[border.view(GRID, GRID)] = float("nan")  # the border ring, left out (drawn grey)
    im = ax.imshow(m, cmap=plt.get_cmap("viridis").with_extremes(bad="0.8"), vmin=-1, vmax=1)
    ax.plot(p % GRID, p // GRID, "r+", ms=12, mew=2)
    ax.set(title=f"patch ({p // GRID}, {p % GRID})", xlabel="patch column", ylabel="patch row")
fig.colorbar(im, ax=axes, fraction=0.02, label="cosine similarity")
fig.suptitle("learned ViT positions: similarity of patch (row, column) + with the 5 x 5 interior", fontsize=10)
plt.show()

# %% [markdown]
# What the numbers say (all asserted in the checks): the border ring is almost always empty in
# the training images, and the border positions are more alike among themselves than the interior
# ones are, which is the "empty patch" signal a map over all 49 patches would be dominated by.
# On the interior, where the digits are, grid neighbours are clearly more alike than patches
# three or more apart: from a flat list of positions the model has learned the image's 2-D
# neighbourhood, at least where the digits are.

# %% [markdown]
# **Where does `[CLS]` look?** The panel lays the attention of `[CLS]` to every patch over the
# digit: per layer and head, or (layer -1) the **attention rollout** over all layers
# (Abnar & Zuidema, 2020: average the heads, add the residual path, multiply the layers).

# %%
from mmcourse.viz.attention import vit_attention_panel

vit.eval()
images, labels = vit_test.x[:10], vit_test.y[:10]
with torch.no_grad():
    logits, vit_att = vit(images.to(device), return_attention=True)
titles = [f"label {int(t)}, predicted {int(p)}" for t, p in zip(labels, logits.argmax(-1).cpu())]
vit_panel = vit_attention_panel(images, [a.cpu() for a in vit_att], grid=GRID, titles=titles)
vit_panel

# %%
# The rollout is where the digit is: more attention on the patches with ink than on the empty border.
ink = torch.nn.functional.avg_pool2d(images, PATCH).flatten(1) > 0.1  # [10, N] patches with ink
roll = attention_rollout([a.cpu() for a in vit_att], grid=GRID).flatten(1)  # [10, N]
ink_ratio = float((roll * ink).sum(1).div(ink.sum(1)).mean() / (roll * ~ink).sum(1).div((~ink).sum(1)).mean())
png_before = vit_panel.image.value
vit_panel_redraws = vit_panel.set(example=4, layer=2, head=0) != png_before
vit_panel.set(example=0, layer=-1, head=-1)
print(f"rollout attention per ink patch / per empty patch: {ink_ratio:.2f}")
print(f"panel redraws: {vit_panel_redraws}")

# %% [markdown]
# ## 7. A tiny BERT fills in blanks
#
# BERT is a Transformer *encoder* pre-trained by **masked language modelling**: hide 15% of the
# tokens (80% of those become `[MASK]`, 10% a random token, 10% stay unchanged) and predict the
# originals from both sides of the context. Real BERT reads sub-word tokens; ours reads Tiny
# Shakespeare **character by character** (65 characters), in windows of 32 characters, which a
# small model learns quickly on a CPU. To restore a hidden letter it has to work out the word
# around it from both sides. The last 10% of the text is held out. Two encoder blocks,
# $D = 64$, the output layer tied to the character embedding. One change from BERT: fixed
# sinusoidal positions instead of a learned table (we did not compare the two here). To beat
# the character frequencies, attention has to learn to look at the neighbours of a blank; the
# loss curve below ends under the dashed line of the frequencies alone.

# %%
from mmcourse.data import tiny_shakespeare
from mmcourse.models.bert import (
    BERT_SPECIALS,
    IGNORE,
    MASK,
    UNK,
    MaskedLMData,
    TinyBERT,
    mask_tokens,
    masked_accuracy,
    mlm_loss,
    windows,
)

text = tiny_shakespeare()
cut = int(0.9 * len(text))
cvocab = Vocab.characters(text[:cut], order="frequency", **BERT_SPECIALS)  # most frequent first
WINDOW = 32
bert_train_w = windows(cvocab.encode(text[:cut]), WINDOW)  # [N, WINDOW]
bert_test_w = windows(cvocab.encode(text[cut:]), WINDOW)
# The test windows are masked once, with a fixed seed, every chosen character replaced by [MASK].
test_in, test_labels = mask_tokens(bert_test_w, len(cvocab), p=0.15, mask_frac=1.0, random_frac=0.0,
                                   generator=torch.Generator().manual_seed(0))
chosen = test_labels != IGNORE
print(f"{len(text):,} characters; vocabulary {len(cvocab)} = {len(cvocab) - 3} characters + [PAD], [UNK], [MASK]")
print(f"{len(bert_test_w)} test windows of {WINDOW}; {int(chosen.sum())} masked characters "
      f"({float(chosen.float().mean()):.3f} of all)")
print("a masked test window:", repr(cvocab.decode(test_in[0]).replace("[MASK]", "_")))
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# Training: dynamic masking with BERT's 80/10/10 recipe (every epoch masks different
# characters), AdamW, one-cycle. `TinyBERT.masked_loss` computes logits only at the masked
# positions (about 15% of them).

# %%
bert_train_w = bert_train_w[: pick(fast=12800, full=len(bert_train_w))]
BERT_EPOCHS = pick(fast=2, full=4)
bert_loader = loaders(MaskedLMData(bert_train_w, len(cvocab)), batch_size=64)
seed_everything(0)
bert = TinyBERT(len(cvocab), max_len=WINDOW, d_model=64, depth=2, n_heads=4, d_ff=128, dropout=0.0,
                positions="sinusoidal").to(device)
bert_opt = torch.optim.AdamW(bert.parameters(), lr=3e-3, weight_decay=0.01)
bert_sched = torch.optim.lr_scheduler.OneCycleLR(bert_opt, max_lr=3e-3, total_steps=BERT_EPOCHS * len(bert_loader),
                                                 pct_start=0.1)
t0 = time.perf_counter()
bert_losses = []
for epoch in range(BERT_EPOCHS):
    bert.train()
    for xb, yb in bert_loader:
        loss = bert.masked_loss(xb.to(device), yb.to(device))
        bert_opt.zero_grad()
        loss.backward()
        bert_opt.step()
        bert_sched.step()
        bert_losses.append(loss.item())
bert_seconds = time.perf_counter() - t0
bert.eval()
with torch.no_grad():
    test_logits = torch.cat([bert(b.to(device)).cpu() for b in test_in.split(256)])
mlm_acc = masked_accuracy(test_logits, test_labels)
mlm_test_loss = float(mlm_loss(test_logits, test_labels))
# Baselines that know the character frequencies of the training text but not the context:
counts = torch.bincount(bert_train_w.flatten(), minlength=len(cvocab)).float() + 1  # add-one smoothing
counts[:MASK + 1] = 0  # [PAD], [UNK], [MASK] are never targets
unigram = counts / counts.sum()
most_frequent = int(unigram.argmax())
freq_baseline = float((test_labels[chosen] == most_frequent).float().mean())  # always guess the top character
unigram_loss = float(-unigram[test_labels[chosen]].log().mean())  # cross-entropy of the frequencies
print(f"{len(bert_train_w)} training windows, {len(bert_losses)} steps in {bert_seconds:.0f} s; train loss "
      f"first 20 steps {sum(bert_losses[:20]) / 20:.2f}, last 20 {sum(bert_losses[-20:]) / 20:.2f}")
print(f"masked test characters: accuracy {mlm_acc:.3f} (always {cvocab.itos[most_frequent]!r}: {freq_baseline:.3f}); "
      f"loss {mlm_test_loss:.2f} nats (character frequencies alone: {unigram_loss:.2f})")
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(bert_losses, lw=0.8, label="masked-character loss (train)")
ax.axhline(unigram_loss, color="gray", ls="--", label="character frequencies alone (test)")
ax.set(xlabel="training step (batch of 64 windows)", ylabel="loss (nats per masked character)")
ax.legend()
plt.show()

# %% [markdown]
# Filling in blanks (`_`). *Hamlet* is not in Tiny Shakespeare, so its famous line is new to the
# model; Juliet's line is in the training text; then a line of the held-out text. Below each line:
# the model's filling, then the three most likely characters for each blank with their
# probabilities.

# %%
def fill(line: str, k: int = 3) -> tuple[str, list[str]]:
    """Replace each ``_`` in ``line`` by the model's most likely character; also the top-k per blank."""
    ids = torch.tensor([[MASK if c == "_" else cvocab.stoi.get(c, UNK) for c in line]])  # [1, T]
    out, tops = list(line), []
    for pos_, top_ids, probs in bert.fill_mask(ids.to(device), k=k)[0]:
        out[pos_] = cvocab.itos[top_ids[0]]
        tops.append(" / ".join(f"{cvocab.itos[i]!r} {p:.2f}" for i, p in zip(top_ids, probs)))
    return "".join(out), tops


held_out_line = next(line for line in text[cut:].split("\n") if len(line) >= 24)[:WINDOW]
blanked = "".join("_" if i % 6 == 3 and c.isalpha() else c for i, c in enumerate(held_out_line))
for line in ("To b_, or n_t to be: th_t is the",  # at most WINDOW = 32 characters
             "Romeo! wherefore art th_u R_meo?",
             blanked):
    filled, tops = fill(line)
    print(line + "\n" + filled.replace("\n", "\\n"))  # a filled-in newline is shown as \n
    print("   " + "  |  ".join(tops[:6]))
print("the held-out line:", held_out_line)
hamlet_unseen = "or not to be" not in text
juliet_in_training = "Romeo! wherefore art thou Romeo?" in text[:cut]
print(f"'or not to be' nowhere in Tiny Shakespeare: {hamlet_unseen}; Juliet's line in the training text: "
      f"{juliet_in_training}")

# %% [markdown]
# ## Checks
# The headline numbers with their targets, and every claim made above.
#
# - **Dates**: exact match on the held-out formats, three ways. The micro average over all 1,000
#   test dates (target 0.98 in full mode); the macro average over the four formats, each weighted
#   equally (target 0.92); and the worst format, `{d}/{m}/{yyyy}` with its 65 examples (target
#   0.65: two single-digit numbers side by side, a combination never seen in training, right in
#   at least two cases of three). A parser of the training formats reads none of these dates
#   (section 5), so every point above zero is generalisation.
# - **Seed spread** (full mode, the same data; measured once): besides this run (seed 0, in the
#   table below), the model and training seeded with 1 and 2 (`seed_everything`, `fit(seed=...)`),
#   and one more seed-0 run whose batches were shuffled differently (before `loaders` took a
#   seeded generator). Those three gave micro averages 0.990 / 0.992 / 0.988, macro 0.962 / 0.985 /
#   0.954 and worst format 0.846 / 0.954 / 0.815. The spread (max - min over all four runs) is
#   recorded with each number, and every target sits below the lowest run by more than it.
# - **ViT**: test accuracy on the 1,000 test images of the MNIST pool, target 0.96; over seeds
#   0, 1, 2 (measured once, as for the dates) 0.972 / 0.966 / 0.972, a spread of 0.006.
# - **BERT**: accuracy on the masked held-out characters. The frequency baseline (always the most
#   common character, the space) is what knowing the characters without context gives; the
#   target is the baseline + 0.2 in full mode (+ 0.05 in fast mode), on the same masked
#   characters. The check also asserts that the model's loss is below the cross-entropy of the
#   character frequencies alone (it uses the context).
# - In fast mode the targets are lower but far above chance (an exact date by chance: about 1 in
#   36,500; a digit: 1 in 10).

# %%
rec.record("dates_heldout_formats_exact_match", date_test_em, target=pick(fast=0.02, full=0.98),
           spread=pick(fast=None, full=0.007))  # other runs: 0.990, 0.992, 0.988
rec.record("dates_heldout_formats_macro_exact_match", date_macro_em, target=pick(fast=0.02, full=0.92),
           spread=pick(fast=None, full=0.031))  # other runs: 0.962, 0.985, 0.954
rec.record("dates_worst_heldout_format_exact_match", per_format[worst_format], target=pick(fast=0.02, full=0.65),
           spread=pick(fast=None, full=0.139))  # other runs: 0.846, 0.954, 0.815 (65 examples)
rec.record("dates_train_formats_val_exact_match", date_val_em, target=pick(fast=0.02, full=0.98))
rec.record("vit_mnist_pool_test_acc", vit_test_acc, target=pick(fast=0.3, full=0.96),
           spread=pick(fast=None, full=0.006))  # seeds 0, 1, 2: 0.972, 0.966, 0.972
rec.record("mlm_masked_char_acc", mlm_acc, target=freq_baseline + pick(fast=0.05, full=0.2))
rec.record("mlm_frequency_baseline_acc", freq_baseline)
rec.record("mlm_masked_char_loss", mlm_test_loss, target=unigram_loss, higher_is_better=False)
rec.record("mlm_unigram_baseline_loss", unigram_loss)
rec.record("mha_max_abs_diff_vs_torch", mha_diff, target=1e-5, higher_is_better=False)
rec.record("encoder_block_max_abs_diff_vs_torch", max(block_diff.values()), target=1e-5, higher_is_better=False)
assert rows_sum_to_one and padding_ignored and future_hidden
assert mha_diff < 1e-5 and max(block_diff.values()) < 1e-5
assert held_out_disjoint and recombined
assert not {p.source for p in dates["test"]} & {p.source for p in dates["train"]}
# A parser of the 19 training formats reads every validation date and no test date.
assert parser_reads == {"val": len(dates["val"]), "test": 0}, parser_reads
# Dates: 65 examples in the smallest format; the macro average is below the micro average, the worst
# format is {d}/{m}/{yyyy}; most mistakes have one wrong field and a well-formed YYYY-MM-DD answer.
assert n_per_format["{d}/{m}/{yyyy}"] == 65 == min(n_per_format.values()), n_per_format
assert date_macro_em < date_test_em and worst_format == "{d}/{m}/{yyyy}", (date_macro_em, date_test_em, per_format)
assert by_count[1] > len(wrong) / 2 and well_formed > len(wrong) / 2, (by_count, well_formed, len(wrong))
# Cross-attention: every output field, in every decoder layer, reads its own source field >= 1.5x chance.
assert min_attention_ratio >= 1.5, field_attention
assert date_panel_redraws and vit_panel_redraws
assert mlm_test_loss < unigram_loss - pick(fast=0.2, full=0.5), "BERT must use the context"
assert mlm_acc >= freq_baseline + pick(fast=0.05, full=0.2), "BERT must beat the frequency baseline"
# ViT positions: the border ring is almost always empty, the interior often has ink; border positions
# are more alike than interior ones; on the interior, grid neighbours are more alike than patches >= 3 apart.
assert border_ink < 0.05 and interior_ink > 0.4, (border_ink, interior_ink)
assert sim_bb > sim_ii, (sim_bb, sim_ii)
assert neighbour_sim > far_sim + 0.1, "learned positions: interior neighbours more alike than distant patches"
assert centre == 24 and tuple(grid_pos[centre].tolist()) == (3, 3)  # the centre of the 7 x 7 grid
assert hamlet_unseen and juliet_in_training
assert ink_ratio > 1.0, "rollout: more attention on patches with ink"
chapter_seconds = time.perf_counter() - t_start
print(f"chapter ran in {chapter_seconds:.0f} s")
print(rec.check_targets())

# %% [markdown]
# ## Exercises
# Solutions: `notebooks/solutions/05_attention_and_transformers.py` (each one asserts its answer).
#
# 1. **Why $\sqrt{d}$?** Draw random queries and keys with $d = 512$ (standard normal entries).
#    Compute the attention weights with and without the $1/\sqrt{d}$ scaling and compare the
#    entropy of the softmax rows and the largest weight. What happens to the gradient of a
#    saturated softmax?
# 2. **Order blindness.** Show that an `Encoder` without positional encoding is permutation
#    equivariant (permuting the input tokens permutes the outputs), and that adding a
#    `SinusoidalPositionalEncoding` first breaks this.
# 3. **Causal means causal.** Build a `DecoderBlock`, run it on a sequence, then change only the
#    last three tokens. Which outputs change? Then check that `greedy_decode` of the date model
#    gives the same answers as feeding its own output back with teacher forcing.
