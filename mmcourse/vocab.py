"""Text preprocessing for word-level models: tokenise, build a vocabulary, encode, pad.

>>> vocab = Vocab.build([tokenize(s) for s in sentences], min_freq=2)
>>> ids, lengths = pad_batch([vocab.encode(tokenize(s)) for s in batch])   # [B, T], [B]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words (with inner apostrophes), numbers and single punctuation marks."""
    return _TOKEN.findall(text.lower())


class Vocab:
    """Token <-> id. Id 0 is ``<pad>``, id 1 is ``<unk>`` (every token not in the vocabulary)."""

    def __init__(self, tokens: Sequence[str]):
        self.itos = [PAD, UNK, *[t for t in tokens if t not in (PAD, UNK)]]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """From tokenised texts: tokens seen at least ``min_freq`` times, most frequent first."""
        counts = Counter(t for toks in texts for t in toks)
        kept = [t for t, c in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0])) if c >= min_freq]
        return cls(kept[:max_size] if max_size else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, 1) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids if i != 0]

    def coverage(self, texts: Iterable[Sequence[str]]) -> float:
        """Share of tokens in ``texts`` that are in the vocabulary (1 - OOV rate)."""
        toks = [t for toks in texts for t in toks]
        return sum(t in self.stoi for t in toks) / max(1, len(toks))


def pad_batch(seqs: Sequence[Sequence[int]], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists with 0: ``(ids [B, T] int64, lengths [B] int64)``; longer ones are cut."""
    if not seqs:
        raise ValueError("pad_batch needs at least one sequence")
    lengths = [min(len(s), max_len or len(s)) for s in seqs]
    t = max(lengths)
    ids = torch.zeros(len(seqs), t, dtype=torch.int64)
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        ids[i, :n] = torch.as_tensor(list(s[:n]), dtype=torch.int64)
    return ids, torch.tensor(lengths)
