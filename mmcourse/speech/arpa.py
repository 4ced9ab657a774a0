"""A word n-gram language model written as an ARPA file, the format pocketsphinx (and most decoders) read.

The model is interpolated absolute discounting (as :mod:`mmcourse.speech.lm`, over words): for a context
``h`` and its back-off ``h'``::

    P(w | h) = max(c(h, w) - D, 0) / c(h)  +  D * N(h) / c(h) * P(w | h')

with a uniform base over the vocabulary (the words and ``</s>``). An ARPA file stores a *back-off*
model, so the interpolated one is written in back-off form: each seen n-gram gets its interpolated
probability, and each context the weight that gives its unseen words the rest of the mass,
``bow(h) = (1 - sum_seen P(w | h)) / (1 - sum_seen P(w | h'))``. Both forms give the same
probabilities (``tests/test_speech_arpa.py`` checks it, and that every distribution sums to one).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

BOS, EOS = "<s>", "</s>"


class WordNGram:
    """``WordNGram(order).fit(sentences)``; ``prob(context, word)``; ``arpa()`` -> the ARPA text."""

    def __init__(self, order: int = 3, discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0 < discount < 1:
            raise ValueError(f"discount must lie in (0, 1), got {discount}")
        self.order, self.discount = order, discount
        self.counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)  # context -> next-word counts
        self.vocab: set[str] = set()

    def fit(self, sentences: Iterable[Sequence[str]]) -> WordNGram:
        n = 0
        for words in sentences:
            words = [w for w in words if w]
            if not words:
                continue
            if any(w in (BOS, EOS) for w in words):
                raise ValueError(f"a sentence may not contain {BOS} or {EOS}: {words}")
            seq = [BOS, *words, EOS]
            self.vocab.update(words)
            for i in range(1, len(seq)):
                for k in range(min(self.order - 1, i) + 1):  # context length k (<s> only at the start)
                    self.counts[tuple(seq[i - k : i])][seq[i]] += 1
            n += 1
        if n == 0:
            raise ValueError("WordNGram.fit needs at least one non-empty sentence")
        self.vocab.add(EOS)
        return self

    def prob(self, context: Sequence[str], word: str) -> float:
        """``P(word | context)`` (the last ``order - 1`` words of ``context`` count)."""
        if word not in self.vocab:
            raise ValueError(f"{word!r} is not in the vocabulary")
        h = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        return self._prob(h, word)

    def _prob(self, h: tuple[str, ...], w: str) -> float:
        lower = 1.0 / len(self.vocab) if not h else self._prob(h[1:], w)
        c = self.counts.get(h)
        if not c:
            return lower
        total = sum(c.values())
        return max(c[w] - self.discount, 0) / total + self.discount * len(c) / total * lower

    def arpa(self) -> str:
        """The model as ARPA text (log10 probabilities and back-off weights)."""
        grams: list[dict[tuple[str, ...], tuple[float, float | None]]] = [dict() for _ in range(self.order)]
        for h, c in self.counts.items():
            for w in c:
                grams[len(h)][(*h, w)] = (self._prob(h, w), None)
        for w in self.vocab:  # every word is a unigram, seen or not (a word seen only after <s> too)
            grams[0].setdefault((w,), (self._prob((), w), None))
        grams[0][(BOS,)] = (0.0, None)  # never predicted: log10 -99 below
        for k in range(self.order - 1):  # back-off weights of the contexts (entries of orders 1 .. order-1)
            for g in list(grams[k]):
                c = self.counts.get(g)
                if not c:
                    continue
                seen = sum(self._prob(g, w) for w in c)
                seen_lower = sum(self._prob(g[1:], w) for w in c)
                bow = (1.0 - seen) / (1.0 - seen_lower) if seen_lower < 1.0 else 1.0
                grams[k][g] = (grams[k][g][0], bow)
        lines = ["\\data\\", *(f"ngram {k + 1}={len(grams[k])}" for k in range(self.order)), ""]
        for k in range(self.order):
            lines.append(f"\\{k + 1}-grams:")
            for g, (p, bow) in sorted(grams[k].items()):
                lp = -99.0 if g == (BOS,) else math.log10(p)
                lines.append(f"{lp:.6f}\t{' '.join(g)}" + (f"\t{math.log10(bow):.6f}" if bow is not None else ""))
            lines.append("")
        lines.append("\\end\\")
        return "\n".join(lines) + "\n"


def read_arpa(text: str) -> dict[tuple[str, ...], tuple[float, float]]:
    """``{n-gram: (log10 p, log10 bow)}`` from ARPA text (bow 0 where none is written)."""
    out: dict[tuple[str, ...], tuple[float, float]] = {}
    order = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
            continue
        if not line or line.startswith("\\") or line.startswith("ngram ") or order == 0:
            continue
        parts = line.split("\t")
        gram = tuple(parts[1].split())
        if len(gram) != order:
            raise ValueError(f"ARPA line {line!r} is in the {order}-grams section")
        out[gram] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return out


def backoff_prob(model: dict[tuple[str, ...], tuple[float, float]], context: Sequence[str], word: str) -> float:
    """``P(word | context)`` from a read ARPA model, by the back-off rule."""
    h = tuple(context)
    if (*h, word) in model:
        return 10 ** model[(*h, word)][0]
    if not h:
        raise ValueError(f"{word!r} is not in the model")
    bow = 10 ** model[h][1] if h in model else 1.0
    return bow * backoff_prob(model, h[1:], word)
