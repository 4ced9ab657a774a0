"""A tiny BERT: a Transformer encoder trained to fill in masked tokens (masked language modelling).

    tokens [B, T] -> 15% chosen: 80% -> [MASK], 10% -> a random token, 10% kept
    -> embed + learned positions -> Encoder (sees both sides) -> MLM head -> logits [B, T, V]
    loss: cross-entropy on the chosen positions only (labels elsewhere are -100)

The vocabulary is a :class:`mmcourse.text.Vocab` with ``BERT_SPECIALS`` ([PAD] 0, [UNK] 1,
[MASK] 2): of characters (``Vocab.characters(text, order="frequency", **BERT_SPECIALS)``, what
the chapter trains: it learns quickly on a CPU) or of words (``Vocab.build(token_lists,
max_size=2000, **BERT_SPECIALS)``); real BERT uses sub-word (WordPiece) tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmcourse.models.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from mmcourse.models.transformer import Encoder

PAD, UNK, MASK = 0, 1, 2
IGNORE = -100  # label of positions that carry no loss (cross_entropy's ignore_index)
BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]"}  # ids PAD, UNK, MASK


def windows(ids: Sequence[int] | torch.Tensor, length: int) -> torch.Tensor:
    """Cut a token stream ``[L]`` into non-overlapping windows ``[N, length]`` (the tail is dropped)."""
    n = len(ids) // length
    if n == 0:
        raise ValueError(f"{len(ids)} tokens do not fill one window of {length}")
    return torch.as_tensor(ids[: n * length], dtype=torch.long).reshape(n, length)


def mask_tokens(ids: torch.Tensor, vocab_size: int, p: float = 0.15, mask_frac: float = 0.8,
                random_frac: float = 0.1, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: ``ids [..., T]`` -> ``(inputs [..., T], labels [..., T])``.

    Each ordinary token (not PAD/UNK/MASK) is chosen with probability ``p``; a chosen one
    becomes ``[MASK]`` with probability ``mask_frac``, a random token with ``random_frac``,
    else stays. ``labels`` hold the original id at chosen positions and ``-100`` elsewhere.
    """
    if not 0 < p <= 1 or mask_frac + random_frac > 1:
        raise ValueError(f"need 0 < p <= 1 and mask_frac + random_frac <= 1, got {p}, {mask_frac}, {random_frac}")
    u = torch.rand(ids.shape, generator=generator)
    chosen = (u < p) & (ids > MASK)
    how = torch.rand(ids.shape, generator=generator)
    rand_ids = torch.randint(MASK + 1, vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (how < mask_frac), MASK, ids)
    inputs = torch.where(chosen & (how >= mask_frac) & (how < mask_frac + random_frac), rand_ids, inputs)
    labels = torch.where(chosen, ids, IGNORE)
    return inputs, labels


class MaskedLMData(torch.utils.data.Dataset):
    """Windows ``[N, T]`` masked afresh every time an item is read (dynamic masking, as RoBERTa).
    Items: ``(inputs [T], labels [T])``."""

    def __init__(self, windows: torch.Tensor, vocab_size: int, p: float = 0.15):
        if windows.ndim != 2:
            raise ValueError(f"windows must be [N, T], got {tuple(windows.shape)}")
        self.windows, self.vocab_size, self.p = windows, vocab_size, p

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int):
        return mask_tokens(self.windows[i], self.vocab_size, self.p)


class TinyBERT(nn.Module):
    """Token + position embeddings, a pre-norm Transformer encoder, and an MLM head whose
    output layer shares its weights with the token embedding (as in BERT).

    ``positions``: ``"learned"`` (BERT's table) or ``"sinusoidal"`` (fixed; a small model on
    a small budget learns to use its neighbours sooner, since a shift is linear in them)."""

    def __init__(self, vocab_size: int, max_len: int = 64, d_model: int = 128, depth: int = 2,
                 n_heads: int = 4, d_ff: int = 256, dropout: float = 0.1, positions: str = "learned"):
        super().__init__()
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.vocab_size = vocab_size
        self.tok = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        pos_cls = LearnedPositionalEncoding if positions == "learned" else SinusoidalPositionalEncoding
        self.pos = pos_cls(d_model, max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(depth, d_model, n_heads, d_ff, dropout, norm_first=True)
        self.transform = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, vocab_size)
        self.out.weight = self.tok.weight  # tied
        # BERT's init: small token vectors, as small as its learned positions. Fixed sinusoidal
        # positions have entries of size 1, so then the tokens are scaled up to match (as in the
        # original Transformer, x sqrt(D)), else the positions would drown them.
        self.emb_scale = 1.0 if positions == "learned" else d_model**0.5
        nn.init.normal_(self.tok.weight, std=0.02 if positions == "learned" else d_model**-0.5)
        with torch.no_grad():
            self.tok.weight[PAD].zero_()

    def features(self, ids: torch.Tensor, return_attention: bool = False):
        """``ids [B, T]`` -> contextual vectors ``[B, T, D]`` (and a list of ``[B, H, T, T]``)."""
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
            raise ValueError(f"ids must be integer token ids [B, T], got {getattr(ids, 'shape', type(ids))}")
        x = self.drop(self.pos(self.tok(ids) * self.emb_scale))  # [B, T, D]
        return self.encoder(x, key_mask=ids != PAD, return_attention=return_attention)

    def forward(self, ids: torch.Tensor, return_attention: bool = False):
        """``ids [B, T]`` -> logits ``[B, T, V]`` (and a list of ``[B, H, T, T]``, one per layer)."""
        if return_attention:
            x, att = self.features(ids, return_attention=True)
            return self.out(self.transform(x)), att
        return self.out(self.transform(self.features(ids)))

    def masked_loss(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MLM loss computing logits only where ``labels != -100`` (about 15% of the positions:
        the ``[D, V]`` output layer is most of the cost). Equals ``mlm_loss(self(ids), labels)``."""
        if labels.shape != ids.shape:
            raise ValueError(f"labels {tuple(labels.shape)} must match ids {tuple(ids.shape)}")
        chosen = labels != IGNORE  # [B, T]
        h = self.features(ids)[chosen]  # [M, D]
        return nn.functional.cross_entropy(self.out(self.transform(h)), labels[chosen])

    @torch.no_grad()
    def fill_mask(self, ids: torch.Tensor, k: int = 3) -> list[list[tuple[int, list[int], list[float]]]]:
        """For each row of ``ids [B, T]`` and each ``[MASK]`` in it: ``(position, top-k ids, their probs)``."""
        self.eval()
        probs = self(ids).softmax(-1)  # [B, T, V]
        top = probs.topk(k, dim=-1)
        return [[(int(t), top.indices[b, t].tolist(), top.values[b, t].tolist())
                 for t in (ids[b] == MASK).nonzero().flatten()] for b in range(len(ids))]


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the masked positions: ``logits [B, T, V]``, ``labels [B, T]`` (-100 elsewhere)."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def masked_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of masked positions (``labels != -100``) whose top prediction is the original token."""
    chosen = labels != IGNORE
    if not chosen.any():
        raise ValueError("no masked positions (every label is -100)")
    return float((logits.argmax(-1)[chosen] == labels[chosen]).float().mean())
