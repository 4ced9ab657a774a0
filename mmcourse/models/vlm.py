"""Two ways to let a language model see an image, built around :class:`~mmcourse.models.gpt.GPT`.

* :class:`PrefixVLM` (LLaVA-style): a projector maps the image's patch features ``[B, P, F]`` to ``P``
  tokens in the LM's embedding space; the LM reads ``[image tokens] <bos> question ?`` and writes the
  answer. The image is just more context: ordinary causal self-attention reads it.
* :class:`CrossAttnVLM` (Flamingo-style): the text alone goes through the LM; before each block a
  :class:`GatedCrossAttention` layer lets the text attend to the projected image tokens, scaled by
  ``tanh(gate)`` with the gate initialised at 0, so the untrained model *is* the plain LM.

Both follow the interface of :func:`~mmcourse.models.gpt.generate`. The rest of the module is the
prompt format: :func:`vqa_vocab`, :func:`encode_pair` (loss on the answer only), :func:`collate`,
:func:`answer` (batched generation, grouped by prompt length) and :func:`answer_constraint`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmcourse.models.attention import MultiHeadAttention
from mmcourse.models.gpt import GPT, Constraint, KVCache, generate
from mmcourse.models.transformer import FeedForward
from mmcourse.text import Vocab, tokenize

SPECIALS = {"pad": "<pad>", "bos": "<bos>", "eos": "<eos>"}
CAPTION_PROMPT = "describe the image ."
IGNORE = -100  # targets with this id carry no loss


class Projector(nn.Module):
    """Image features ``[B, P, F]`` -> tokens ``[B, P, C]`` (LLaVA-1.5's two-layer MLP)."""

    def __init__(self, feat_dim: int, n_embd: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(feat_dim), nn.Linear(feat_dim, n_embd), nn.GELU(),
                                 nn.Linear(n_embd, n_embd))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)


def _check_image(image: torch.Tensor | None, p: int, f: int, b: int) -> torch.Tensor:
    if image is None:
        raise ValueError(f"this model needs image features [B, {p}, {f}] (image=...)")
    if image.ndim != 3 or image.shape[1:] != (p, f) or image.shape[0] != b:
        raise ValueError(f"image must be [B={b}, P={p}, F={f}] patch features, got {tuple(image.shape)}")
    return image


class _OnGPT(nn.Module):
    """A VLM built around ``self.gpt``: its context length and KV cache are the GPT's (what ``generate`` asks for)."""

    gpt: GPT

    @property
    def block_size(self) -> int:
        return self.gpt.block_size

    def new_cache(self) -> KVCache:
        return self.gpt.new_cache()


class PrefixVLM(_OnGPT):
    """LLaVA-style: ``[projected image tokens, text tokens]`` through the GPT; logits of the text only."""

    def __init__(self, gpt: GPT, feat_dim: int, n_image_tokens: int):
        super().__init__()
        if n_image_tokens >= gpt.block_size:
            raise ValueError(f"{n_image_tokens} image tokens leave no room in a context of {gpt.block_size}")
        self.gpt, self.feat_dim, self.prefix_length = gpt, feat_dim, n_image_tokens
        self.proj = Projector(feat_dim, gpt.cfg.n_embd)

    def forward(self, idx: torch.Tensor, image: torch.Tensor | None = None, cache: KVCache | None = None,
                return_attention: bool = False):
        """``idx [B, T]``, ``image [B, P, F]`` (needed unless the cache already holds it).
        Returns ``logits [B, T, V]`` (and ``{"self": per layer [B, H, T, P+T], "image": per layer
        [B, H, T, P]}``, the share of each text query's attention that lands on each image token)."""
        p, start = self.prefix_length, 0 if cache is None else cache.length
        if start == 0:
            img = self.proj(_check_image(image, p, self.feat_dim, idx.shape[0]))  # [B, P, C]
            img = img + self.gpt.wpe(torch.arange(p, device=idx.device))
            x = torch.cat([img, self.gpt.embed(idx, start=p)], 1)  # [B, P + T, C]
        else:
            x = self.gpt.embed(idx, start)  # [B, T, C]: the image is in the cache
        h, w = self.gpt.run_blocks(x, cache, return_attention)
        logits = self.gpt.lm_head(h[:, -idx.shape[1]:])  # [B, T, V]
        if not return_attention:
            return logits
        t = idx.shape[1]
        return logits, {"self": w, "image": [a[:, :, -t:, :p] for a in w]}


class GatedCrossAttention(nn.Module):
    """Flamingo's gated cross-attention dense layer: text ``[B, T, C]`` attends to image ``[B, P, C]``.

        x = x + tanh(a) * MHA(LN(x), image);   x = x + tanh(b) * FFN(LN(x));   a = b = 0 at start
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, dropout)  # chapter 05
        self.mlp = FeedForward(n_embd, 4 * n_embd, dropout)
        self.attn_gate = nn.Parameter(torch.zeros(()))
        self.ff_gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, image: torch.Tensor, return_attention: bool = False):
        a, w = self.attn(self.ln_1(x), image, return_attention=True) if return_attention \
            else (self.attn(self.ln_1(x), image), None)  # [B, T, C], [B, H, T, P]
        x = x + torch.tanh(self.attn_gate) * a
        return x + torch.tanh(self.ff_gate) * self.mlp(self.ln_2(x)), w


class CrossAttnVLM(_OnGPT):
    """Flamingo-style: the GPT reads the text; a :class:`GatedCrossAttention` before each block reads the image."""

    prefix_length = 0  # the image takes no positions of the context

    def __init__(self, gpt: GPT, feat_dim: int, n_image_tokens: int):
        super().__init__()
        c = gpt.cfg
        self.gpt, self.feat_dim, self.n_image_tokens = gpt, feat_dim, n_image_tokens
        self.proj = Projector(feat_dim, c.n_embd)
        self.img_pos = nn.Parameter(torch.zeros(n_image_tokens, c.n_embd))  # where each patch is
        self.xattn = nn.ModuleList(GatedCrossAttention(c.n_embd, c.n_head, c.dropout) for _ in range(c.n_layer))

    def forward(self, idx: torch.Tensor, image: torch.Tensor | None = None, cache: KVCache | None = None,
                return_attention: bool = False):
        """``idx [B, T]``, ``image [B, P, F]`` (at every step). Returns ``logits [B, T, V]`` (and
        ``{"self": per layer [B, H, T, P'+T], "cross": per layer [B, H, T, P]}``)."""
        img = self.proj(_check_image(image, self.n_image_tokens, self.feat_dim, idx.shape[0])) + self.img_pos
        start = 0 if cache is None else cache.length
        cross = []

        def between(i: int, x: torch.Tensor) -> torch.Tensor:
            x, w = self.xattn[i](x, img, return_attention)
            cross.append(w)
            return x

        h, w = self.gpt.run_blocks(self.gpt.embed(idx, start), cache, return_attention, between)
        logits = self.gpt.lm_head(h)  # [B, T, V]
        return (logits, {"self": w, "cross": cross}) if return_attention else logits

    def gates(self) -> list[tuple[float, float]]:
        """``(tanh(attn_gate), tanh(ff_gate))`` of every layer: how much each lets the image in."""
        return [(float(torch.tanh(x.attn_gate.detach())), float(torch.tanh(x.ff_gate.detach()))) for x in self.xattn]


# ---- the prompt format -------------------------------------------------------------------


def vqa_vocab(questions: Sequence[str], answers: Sequence[str], captions: Sequence[str] = ()) -> Vocab:
    """Word vocabulary (sorted) of the questions, answers, captions and :data:`CAPTION_PROMPT`, plus <pad> <bos> <eos>."""
    words = {w for t in [*questions, *answers, *captions, CAPTION_PROMPT] for w in tokenize(t)}
    return Vocab(sorted(words), **SPECIALS)


def encode_pair(vocab: Vocab, prompt: str, answer: str, loss_on_prompt: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``<bos> prompt answer <eos>`` as ``(inputs [L], targets [L])``, targets shifted by one;
    prompt positions have no loss (``IGNORE``) unless ``loss_on_prompt``."""
    p, a = tokenize(prompt), tokenize(answer)
    ids = vocab.encode([SPECIALS["bos"], *p, *a, SPECIALS["eos"]])  # [L + 1]
    x, y = ids[:-1], ids[1:].clone()
    if not loss_on_prompt:
        y[: len(p)] = IGNORE  # the targets of <bos> .. the last prompt word but one are prompt words
    return x, y


def collate(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a list of ``(x [L], y [L])`` -> ``(x [B, T], y [B, T])`` (padding: ``pad_id`` / ``IGNORE``)."""
    t = max(len(x) for x, _ in pairs)
    xs = torch.full((len(pairs), t), pad_id, dtype=torch.long)
    ys = torch.full((len(pairs), t), IGNORE, dtype=torch.long)
    for i, (x, y) in enumerate(pairs):
        xs[i, : len(x)], ys[i, : len(y)] = x, y
    return xs, ys


def prompt_ids(vocab: Vocab, prompt: str) -> torch.Tensor:
    """``<bos> prompt`` -> ``[T]``."""
    return vocab.encode([SPECIALS["bos"], *tokenize(prompt)])


def answer_constraint(vocab: Vocab, answers: Sequence[str]) -> Constraint:
    """The allowed continuations: each answer's tokens, then ``<eos>``."""
    return Constraint([[*vocab.encode(tokenize(a)).tolist(), vocab.eos_id] for a in answers])


@torch.no_grad()
def answer(model: nn.Module, vocab: Vocab, prompts: Sequence[str], image: torch.Tensor | None = None,
           max_new_tokens: int = 4, batch_size: int = 512, generator: torch.Generator | None = None,
           **kwargs) -> list[str]:
    """Generate an answer to each prompt (with ``image [N, P, F]``, one per prompt); returns N strings.

    Prompts are batched by token length (no padding needed); ``kwargs`` go to :func:`generate`
    (``temperature=0`` for greedy, ``constraint=...``).
    """
    if image is not None and len(image) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(image)} images: give one image per prompt")
    ids = [prompt_ids(vocab, p) for p in prompts]
    out: list[str] = [""] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        by_len.setdefault(len(x), []).append(i)
    for _, rows in sorted(by_len.items()):
        for k in range(0, len(rows), batch_size):
            r = rows[k : k + batch_size]
            new = generate(model, torch.stack([ids[i] for i in r]), max_new_tokens,
                           image=None if image is None else image[r], eos_id=vocab.eos_id,
                           generator=generator, **kwargs)
            for i, row in zip(r, new, strict=True):
                out[i] = vocab.decode(row)
    return out


# ---- training with mmcourse.train.fit ------------------------------------------------------


class Batches:
    """Mini-batches ``({"idx": [B, T], "image": [B, P, F]}, targets [B, T])`` for ``fit``.

    ``idx`` / ``targets`` ``[N, T]`` (from :func:`collate`), ``image_index [N]`` picks each row's
    features in ``features [M, P, F]`` (None: text only). Each batch is cut to its longest row.
    ``shuffle=True`` reshuffles every epoch with its own generator (seed + ``MMCOURSE_SEED``).
    """

    def __init__(self, idx: torch.Tensor, targets: torch.Tensor, image_index: torch.Tensor | None = None,
                 features: torch.Tensor | None = None, batch_size: int = 128, shuffle: bool = False,
                 seed: int = 0, pad_id: int = 0):
        from mmcourse.config import offset_seed

        if idx.shape != targets.shape:
            raise ValueError(f"idx {tuple(idx.shape)} and targets {tuple(targets.shape)} differ in shape")
        if (image_index is None) != (features is None):
            raise ValueError("give both image_index and features, or neither")
        self.idx, self.targets, self.image_index, self.features = idx, targets, image_index, features
        self.batch_size, self.shuffle, self.pad_id = batch_size, shuffle, pad_id
        self.generator = torch.Generator().manual_seed(offset_seed(seed))

    def __len__(self) -> int:
        return -(-len(self.idx) // self.batch_size)

    def __iter__(self):
        n = len(self.idx)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for s in range(0, n, self.batch_size):
            i = order[s : s + self.batch_size]
            t = int((self.targets[i] != IGNORE).any(0).nonzero().max()) + 1  # longest row
            x = {"idx": self.idx[i, :t]}
            if self.features is not None:
                x["image"] = self.features[self.image_index[i]]
            yield x, self.targets[i, :t]


class ForFit(nn.Module):
    """``fit`` passes one input: ``ForFit(model)({"idx": ..., "image": ...}) == model(idx, image=image)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: dict) -> torch.Tensor:
        return self.model(x["idx"], image=x.get("image"))


# ---- the image encoder: frozen MobileNetV2 feature-map cells ------------------------------

PATCH_SIZE = 112  # input resized to 112 x 112 -> a 4 x 4 grid of 1,280-d cells (stride 32)


def patch_features(images: torch.Tensor, input_set: str, size: int = PATCH_SIZE) -> torch.Tensor:
    """Frozen ImageNet MobileNetV2's last feature map, one token per cell: ``[N, 3, H, W]`` in [0, 1]
    -> ``[N, (size/32)^2, 1280]`` (16 tokens at 112 px), cached on disk by :func:`mmcourse.pretrained.cached`."""
    from mmcourse.pretrained import IMAGE_PREP, cached, image_encoder

    enc: list = []

    def encode(x: torch.Tensor) -> torch.Tensor:
        if not enc:
            enc.append(image_encoder(size))
        e = enc[0]
        with torch.no_grad():
            h = e.model.features(e._prep(x))  # [B, 1280, g, g]
        return h.flatten(2).transpose(1, 2)  # [B, g*g, 1280]

    return cached("mobilenet_v2-imagenet1k_v1-cells", input_set, IMAGE_PREP.format(size=size), images, encode)


def image_attention(steps: list[dict]) -> torch.Tensor:
    """Per generated token, the attention its query paid to each image token, averaged over heads and
    layers: ``generate(..., return_attention=True)``'s list of N dicts -> ``[B, N, P]``.

    For :class:`PrefixVLM` a row sums to the share of attention that went to the image (the rest went
    to the text); for :class:`CrossAttnVLM` (cross-attention reads only the image) it sums to 1.
    """
    out = []
    for att in steps:
        per_layer = att["image"] if "image" in att else att["cross"]  # each [B, H, T, P]
        out.append(torch.stack([w[:, :, -1] for w in per_layer]).mean((0, 2)))  # [B, P]
    return torch.stack(out, 1)
