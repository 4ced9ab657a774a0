"""Text as integers: a character vocabulary for character-level language models.

>>> vocab = CharVocab.from_text("to be or not to be")
>>> ids = vocab.encode("to be")          # [5] int64
>>> vocab.decode(ids)
'to be'
>>> train, val = split_text(text, val_fraction=0.1)   # the last 10 % held out
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class CharVocab:
    """A fixed, sorted set of characters and their ids ``0 .. len(vocab) - 1``.

    ``encode`` raises a ``ValueError`` on characters outside the vocabulary, so that
    a model is never fed ids it was not trained on.
    """

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("a CharVocab holds single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("the characters of a vocabulary must be distinct")
        self.chars: list[str] = chars
        self.index: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """Every distinct character of ``text``, sorted by code point."""
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: str) -> bool:
        return ch in self.index

    def encode(self, text: str) -> torch.Tensor:
        """``str`` of length T -> ids ``[T]`` int64."""
        missing = sorted(set(text) - self.index.keys())
        if missing:
            raise ValueError(f"characters not in the vocabulary: {missing[:10]!r}")
        return torch.tensor([self.index[c] for c in text], dtype=torch.int64)

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        """ids ``[T]`` -> ``str`` of length T."""
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 1:
                raise ValueError(f"decode expects ids of shape [T], got {tuple(ids.shape)}")
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= int(i) < len(self.chars):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.chars) - 1})")
            out.append(self.chars[int(i)])
        return "".join(out)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, val)``: the last ``val_fraction`` of the text is held out (no shuffling,
    so no sentence leaks across the split)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n = int(len(text) * (1 - val_fraction))
    return text[:n], text[n:]

