"""A decoder-only language model in nanoGPT's style, from chapter 05's parts, with a KV cache.

    tokens [B, T] -> token + position embeddings -> n_layer x Block -> LayerNorm -> logits [B, T, V]
    Block:  x -> x + CausalSelfAttention(LN(x)) -> x + FeedForward(LN(x))      (pre-norm, as GPT-2)

The attention's projections are chapter 05's :class:`~mmcourse.models.attention.MultiHeadAttention`
(q/k/v/out); :class:`CausalSelfAttention` adds what generation needs: the keys and values of
earlier positions are kept in a :class:`KVCache`, so each new token costs one query, not a
recomputation of the whole sequence. :func:`generate` samples with temperature and top-k (or
greedily), with or without the cache (the tests check both give the same tokens), optionally
restricted by a :class:`Constraint` (a trie of allowed continuations, e.g. the 13 easy-VQA answers).

Models that :func:`generate` drives implement ``forward(idx [B, T], image=None, cache=None,
return_attention=False) -> logits [B, T, V]`` (and ``(logits, attention)`` with
``return_attention=True``), and ``block_size`` / ``prefix_length`` (the positions an image prefix takes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.models.attention import MultiHeadAttention
from mmcourse.models.transformer import FeedForward


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 64  # the longest context, in positions (an image prefix included)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0


class KVCache:
    """Keys and values of every layer for the positions seen so far: ``k[l], v[l]`` ``[B, H, T, C/H]``."""

    def __init__(self, n_layer: int):
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        """How many positions the cache holds (0 when empty)."""
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k, v [B, H, T_new, C/H]`` to layer ``layer``; returns the whole ``[B, H, T, C/H]``."""
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], 2), torch.cat([self.v[layer], v], 2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention ``[B, T, C] -> [B, T, C]``: position i sees positions <= i."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.mha = MultiHeadAttention(n_embd, n_head, dropout)  # chapter 05: q/k/v/out projections
        self.n_head = n_head

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, T, C]`` are the new positions; ``cache`` holds the earlier ones (``P`` of them).
        Returns ``(y [B, T, C], weights [B, H, T, P + T] or None)``."""
        b, t, c = x.shape
        m = self.mha
        q, k, v = m._heads(m.q_proj(x)), m._heads(m.k_proj(x)), m._heads(m.v_proj(x))  # [B, H, T, C/H]
        if cache is not None:
            k, v = cache.update(layer, k, v)  # [B, H, P + T, C/H]
        past = k.shape[2] - t
        # query i (absolute position past + i) may see keys j <= past + i
        mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)  # [T, P + T]
        p = m.dropout if self.training else 0.0
        if return_attention:
            att = (q @ k.transpose(-2, -1)) * (k.shape[-1] ** -0.5)  # [B, H, T, P + T]
            w = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = F.dropout(w, p) @ v if p else w @ v
        else:
            y, w = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        return m.out_proj(y.transpose(1, 2).reshape(b, t, c)), w


class Block(nn.Module):
    """Pre-norm Transformer decoder block without cross-attention (GPT-2's). ``[B, T, C] -> [B, T, C]``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg.n_embd, cfg.n_head, cfg.dropout)
        self.mlp = FeedForward(cfg.n_embd, 4 * cfg.n_embd, cfg.dropout)  # chapter 05
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, w = self.attn(self.ln_1(x), cache, layer, return_attention)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.ln_2(x))), w


class GPT(nn.Module):
    """A GPT: ``forward(idx [B, T]) -> logits [B, T, vocab]`` (weights of the embedding and the head tied)."""

    prefix_length = 0  # a text-only model has no image prefix

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as GPT-2
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale the residual projections by 1/sqrt(2 L)
            if name.endswith(("out_proj.weight", "linear2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / (2 * cfg.n_layer) ** 0.5)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    @property
    def block_size(self) -> int:
        return self.cfg.block_size

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.n_layer)

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token + position embeddings of ``idx [B, T]`` at positions ``start .. start + T - 1`` -> ``[B, T, C]``."""
        if idx.ndim != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be token ids [B, T] (int64), got {tuple(idx.shape)} {idx.dtype}")
        check_context(start + idx.shape[1], self.cfg.block_size)
        pos = torch.arange(start, start + idx.shape[1], device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))

    def run_blocks(self, x: torch.Tensor, cache: KVCache | None = None, return_attention: bool = False,
                   between=None) -> tuple[torch.Tensor, list]:
        """The blocks over embeddings ``x [B, T, C]``, then the final LayerNorm -> ``h [B, T, C]``.

        ``between(layer, x) -> x`` (optional) runs before each block: the hook the
        cross-attention VLM uses to insert its gated layers. Returns ``(h, weights per layer)``.
        """
        weights = []
        for i, block in enumerate(self.blocks):
            if between is not None:
                x = between(i, x)
            x, w = block(x, cache, i, return_attention)
            weights.append(w)
        return self.ln_f(x), weights

    def forward(self, idx: torch.Tensor, image: torch.Tensor | None = None, cache: KVCache | None = None,
                return_attention: bool = False):
        """Logits ``[B, T, V]`` of the next token at each position of ``idx [B, T]`` (``image``: unused)."""
        start = 0 if cache is None else cache.length
        h, w = self.run_blocks(self.embed(idx, start), cache, return_attention)
        logits = self.lm_head(h)  # [B, T, V]
        return (logits, {"self": w}) if return_attention else logits


def check_context(length: int, block_size: int) -> None:
    if length > block_size:
        raise ValueError(f"the sequence has {length} positions but the model's context (block_size) is "
                         f"{block_size}: shorten the prompt, lower max_new_tokens, or build the model "
                         f"with a larger block_size")


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Next-token cross-entropy: ``logits [B, T, V]``, ``targets [B, T]`` (``ignore_index`` where no loss)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index)


class Constraint:
    """A trie of allowed token sequences: :meth:`allowed` names the tokens that may come next.

    >>> c = Constraint([[5, 2], [7, 2]])   # e.g. "blue <eos>", "red <eos>"
    >>> c.allowed([])  -> [5, 7];  c.allowed([5]) -> [2];  c.allowed([5, 2]) -> []  (complete)
    """

    def __init__(self, sequences: list[list[int]]):
        if not sequences or any(len(s) == 0 for s in sequences):
            raise ValueError("a Constraint needs at least one non-empty allowed sequence")
        self.root: dict = {}
        for s in sequences:
            node = self.root
            for t in s:
                node = node.setdefault(int(t), {})

    def allowed(self, prefix: list[int]) -> list[int]:
        node = self.root
        for t in prefix:
            if int(t) not in node:
                raise ValueError(f"the prefix {prefix} is not the start of any allowed sequence")
            node = node[int(t)]
        return sorted(node)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of ``logits [B, V]`` -> ``[B]``: greedy when ``temperature == 0``, else
    sampled from ``softmax(logits / temperature)`` restricted to the ``top_k`` largest."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, image: torch.Tensor | None = None,
             temperature: float = 1.0, top_k: int | None = None, eos_id: int | None = None,
             constraint: Constraint | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None, return_attention: bool = False):
    """Continue the prompts ``idx [B, T]`` by up to ``max_new_tokens`` -> ``new [B, N]`` (N <= max_new_tokens).

    ``temperature=0`` is greedy. After ``eos_id`` a row keeps emitting ``eos_id``; generation stops
    when every row has. ``constraint`` masks the logits to its trie's allowed tokens (generation
    then also stops when every row completed an allowed sequence). ``use_cache=False`` recomputes
    the whole sequence at every step (slow; the same tokens). With ``return_attention=True``, also
    returns the attention of each new token (a list of N model-specific dicts, see the models).
    """
    if idx.ndim != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be a batch of prompts [B, T] with T >= 1, got {tuple(idx.shape)}")
    check_context(model.prefix_length + idx.shape[1] + max_new_tokens - 1, model.block_size)
    model.eval()
    b = idx.shape[0]
    cache = model.new_cache() if use_cache else None
    new, atts = [], []
    hist: list[list[int]] = [[] for _ in range(b)]  # each row's tokens, for the constraint
    done = torch.zeros(b, dtype=torch.bool, device=idx.device)
    seq, step_in = idx, idx
    for _ in range(max_new_tokens):
        if use_cache:
            out = model(step_in, image=image, cache=cache, return_attention=return_attention)
        else:
            out = model(seq, image=image, return_attention=return_attention)
        logits, att = out if return_attention else (out, None)
        logits = logits[:, -1].float()  # [B, V]
        if constraint is not None:
            mask = torch.zeros_like(logits)
            for r in range(b):
                if not done[r]:
                    mask[r] = float("-inf")
                    mask[r, constraint.allowed(hist[r])] = 0.0
            logits = logits + mask
        nxt = sample_next(logits, temperature, top_k, generator)  # [B]
        if eos_id is not None:
            nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
        finished = done.clone()
        if eos_id is not None:
            finished |= nxt == eos_id
        if constraint is not None:  # a row whose allowed sequence is complete stops too
            for r in range(b):
                if not done[r]:
                    hist[r].append(int(nxt[r]))
                    finished[r] = finished[r] or not constraint.allowed(hist[r])
        done = finished
        new.append(nxt)
        if return_attention:
            atts.append(att)
        seq, step_in = torch.cat([seq, nxt[:, None]], 1), nxt[:, None]
        if bool(done.all()):
            break
    out = torch.stack(new, 1)  # [B, N]
    return (out, atts) if return_attention else out
