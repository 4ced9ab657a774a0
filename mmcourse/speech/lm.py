"""An n-gram language model over digit strings: interpolated absolute discounting.

Tokens are the digits ``0..9`` and the end-of-string token ``EOS = 10``; contexts are padded with
``BOS`` (never predicted). For a context ``h`` of ``n - 1`` tokens and its back-off ``h'`` (one
token shorter)::

    P(w | h) = max(c(h, w) - D, 0) / c(h)  +  D * N(h) / c(h) * P(w | h')      (c(h) > 0)
    P(w | h) = P(w | h')                                                       (c(h) = 0)

with ``N(h)`` the number of distinct tokens seen after ``h``; the base case is uniform over the 11
tokens. For every context the 11 probabilities sum to one (``tests/test_speech_lm.py`` checks it).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

EOS, BOS, VOCAB = 10, 11, 11  # VOCAB: the predicted tokens 0..10


class NGramLM:
    """``NGramLM(order).fit(strings)``; ``logprob(context, token)``, ``score(digits)``, ``perplexity(strings)``."""

    def __init__(self, order: int = 3, discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0 < discount <= 1:
            raise ValueError(f"discount must lie in (0, 1], got {discount}")
        self.order, self.discount = order, discount
        self.counts: list[dict[tuple[int, ...], Counter]] = [defaultdict(Counter) for _ in range(order)]
        self._cache: dict[tuple[tuple[int, ...], int], float] = {}

    @staticmethod
    def tokens(digits: str | Sequence[int]) -> list[int]:
        if isinstance(digits, str):
            if not digits.isdigit():
                raise ValueError(f"digit strings must contain only 0-9, got {digits!r}")
            return [int(c) for c in digits]
        toks = [int(t) for t in digits]
        if any(not 0 <= t <= 9 for t in toks):
            raise ValueError(f"tokens must be digits 0-9, got {toks}")
        return toks

    def fit(self, strings: Iterable[str]) -> NGramLM:
        n_strings = 0
        for s in strings:
            seq = [BOS] * (self.order - 1) + self.tokens(s) + [EOS]
            for i in range(self.order - 1, len(seq)):
                for n in range(self.order):  # n = context length
                    self.counts[n][tuple(seq[i - n : i])][seq[i]] += 1
            n_strings += 1
        if n_strings == 0:
            raise ValueError("NGramLM.fit needs at least one digit string")
        self._cache.clear()
        return self

    def prob(self, context: Sequence[int], token: int) -> float:
        """``P(token | context)``; ``token`` in 0..10 (10 = end of string); ``context``: the digits so far."""
        if not 0 <= token < VOCAB:
            raise ValueError(f"token must be a digit 0-9 or EOS={EOS}, got {token}")
        h = tuple(int(t) for t in context)[-(self.order - 1):] if self.order > 1 else ()
        h = (BOS,) * (self.order - 1 - len(h)) + h
        key = (h, token)
        if key not in self._cache:
            self._cache[key] = self._prob(h, token)
        return self._cache[key]

    def _prob(self, h: tuple[int, ...], w: int) -> float:
        p = 1.0 / VOCAB
        for n in range(len(h) + 1):  # from the unigram up to the full context
            ctx = h[len(h) - n :]
            c = self.counts[n].get(ctx)
            if not c:
                continue
            total = sum(c.values())
            p = max(c[w] - self.discount, 0) / total + self.discount * len(c) / total * p
        return p

    def logprob(self, context: Sequence[int], token: int | None) -> float:
        """``log P(token | context)``; ``token=None`` means the end of the string."""
        return math.log(self.prob(context, EOS if token is None else token))

    def score(self, digits: str | Sequence[int]) -> float:
        """``log P(digits, end)``: the whole string's log-probability (nats)."""
        toks = self.tokens(digits)
        return sum(self.logprob(toks[:i], t) for i, t in enumerate(toks)) + self.logprob(toks, None)

    def perplexity(self, strings: Iterable[str]) -> float:
        """Per-token perplexity (the end token counts) over ``strings``."""
        total, n = 0.0, 0
        for s in strings:
            total += self.score(s)
            n += len(s) + 1
        return math.exp(-total / n)
