"""CTC decoding: the collapse rule, greedy decoding, prefix beam search with shallow fusion of a
language model, and brute-force enumeration (the reference the tests compare beam search with).

Emissions are log-probabilities ``[T, C]`` (one utterance); class ``blank`` is CTC's blank.
A *path* is one class per frame; it *collapses* to a labelling by merging repeats, then
dropping blanks: ``a a - a b b -`` -> ``a a b``.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch

LMFn = Callable[[tuple[int, ...], int | None], float]  # (prefix, next label or None = end) -> log P
NEG_INF = -math.inf


def collapse(path: Sequence[int], blank: int = 0) -> list[int]:
    """Merge repeated classes, then drop blanks: ``[1, 1, 0, 1, 2, 2] -> [1, 1, 2]``."""
    out, prev = [], None
    for p in (int(q) for q in path):
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return out


def _check(log_probs: torch.Tensor) -> torch.Tensor:
    if not isinstance(log_probs, torch.Tensor) or log_probs.ndim != 2:
        raise ValueError(f"expected log-probabilities [T, C] for one utterance, got "
                         f"{getattr(log_probs, 'shape', type(log_probs).__name__)}")
    return log_probs.detach().float().cpu()


def greedy(log_probs: torch.Tensor, blank: int = 0) -> list[int]:
    """Best class per frame, collapsed: ``[T, C] -> labels``."""
    return collapse(_check(log_probs).argmax(-1).tolist(), blank)


def _lse(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(log_probs: torch.Tensor, beam: int = 8, blank: int = 0, lm: LMFn | None = None,
                       alpha: float = 0.0, beta: float = 0.0, prune: float | None = -12.0,
                       ) -> list[tuple[list[int], float]]:
    """CTC prefix beam search, ``[T, C]`` -> the ``beam`` best ``(labels, score)``, best first.

    Each prefix keeps two probabilities: of the paths so far ending in a blank (``pb``) and
    ending in its last label (``pnb``); a repeated label only extends the prefix after a blank.
    Shallow fusion: ``score = log P_ctc(prefix) + alpha * log P_lm(prefix) + beta * len(prefix)``,
    the LM's end-of-string probability added at the end. ``prune``: skip classes whose frame
    log-probability is below it (``None``: try every class; then, with a beam as large as the
    number of labellings, the search is exact).
    """
    lp = _check(log_probs)
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    T, C = lp.shape
    rows = lp.tolist()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    lm_score: dict[tuple[int, ...], float] = {(): 0.0}

    def fused(prefix: tuple[int, ...]) -> float:
        if prefix not in lm_score:
            step = alpha * lm(prefix[:-1], prefix[-1]) if lm is not None and alpha else 0.0
            lm_score[prefix] = fused(prefix[:-1]) + step + beta
        return lm_score[prefix]

    for t in range(T):
        row = rows[t]
        cands = [c for c in range(C) if c != blank and (prune is None or row[c] >= prune)]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            e = nxt[prefix]
            e[0] = _lse(e[0], total + row[blank])
            if prefix:  # the last label again, without a blank: the same prefix
                e[1] = _lse(e[1], pnb + row[prefix[-1]])
            for c in cands:
                new = prefix + (c,)
                n = nxt[new]
                n[1] = _lse(n[1], (pb if prefix and c == prefix[-1] else total) + row[c])
        alive = [kv for kv in nxt.items() if _lse(*kv[1]) > NEG_INF]
        ranked = sorted(alive, key=lambda kv: _lse(*kv[1]) + fused(kv[0]), reverse=True)
        beams = {p: (v[0], v[1]) for p, v in ranked[:beam]}
    final = []
    for prefix, (pb, pnb) in beams.items():
        end = alpha * lm(prefix, None) if lm is not None and alpha else 0.0
        final.append((list(prefix), _lse(pb, pnb) + fused(prefix) + end))
    return sorted(final, key=lambda x: x[1], reverse=True)


def beam_decode(log_probs: torch.Tensor, **kwargs) -> list[int]:
    """The best labelling of :func:`prefix_beam_search`."""
    return prefix_beam_search(log_probs, **kwargs)[0][0]


def brute_force(log_probs: torch.Tensor, blank: int = 0) -> dict[tuple[int, ...], float]:
    """Every labelling's exact CTC log-probability, by enumerating all ``C ** T`` paths (tiny inputs only)."""
    lp = _check(log_probs)
    T, C = lp.shape
    if C**T > 2_000_000:
        raise ValueError(f"{C}**{T} paths are too many to enumerate; use T * log(C) < 14.5")
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        score = float(lp[torch.arange(T), torch.tensor(path)].sum())
        key = tuple(collapse(path, blank))
        out[key] = _lse(out.get(key, NEG_INF), score)
    return out


def paths_to(labels: Sequence[int], T: int, C: int, blank: int = 0) -> list[tuple[int, ...]]:
    """All length-``T`` paths over ``C`` classes that collapse to ``labels`` (for pictures and tests)."""
    target = list(labels)
    return [p for p in itertools.product(range(C), repeat=T) if collapse(p, blank) == target]
