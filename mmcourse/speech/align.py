"""CTC forced alignment: the single best path through the emissions that collapses to a known
transcript (Viterbi over CTC's blank-interleaved states), and the word segments it implies.
``tests/test_speech_align.py`` compares it with ``torchaudio.functional.forced_align``."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def forced_align(log_probs: torch.Tensor, labels: Sequence[int], blank: int = 0) -> tuple[torch.Tensor, float]:
    """``[T, C]`` emissions + labels ``[L]`` -> (best path ``[T]`` of classes, its log-probability).

    States: ``blank, l1, blank, l2, ..., lL, blank`` (``S = 2L + 1``). A state is reached from itself,
    the previous state, or (for a label different from the one two states back) skipping a blank.
    """
    lp = log_probs.detach().float().cpu()
    if lp.ndim != 2:
        raise ValueError(f"expected log-probabilities [T, C], got {tuple(lp.shape)}")
    labels = [int(x) for x in labels]
    states = [blank]
    for lab in labels:
        states += [lab, blank]
    T, S = lp.shape[0], len(states)
    need = len(labels) + sum(a == b for a, b in zip(labels, labels[1:], strict=False))
    if T < need:
        raise ValueError(f"{T} frames cannot hold {len(labels)} labels (need at least {need})")
    emit = lp[:, states]  # [T, S]
    neg = torch.tensor(-float("inf"))
    score = torch.full((S,), -float("inf"))
    score[0] = emit[0, 0]
    if S > 1:
        score[1] = emit[0, 1]
    skip_ok = torch.tensor([s >= 2 and states[s] != blank and states[s] != states[s - 2] for s in range(S)])
    back = torch.zeros(T, S, dtype=torch.long)
    for t in range(1, T):
        stay = score
        step = torch.cat([neg.view(1), score[:-1]])
        skip = torch.where(skip_ok, torch.cat([neg.repeat(2), score[:-2]])[:S], neg)
        cand = torch.stack([stay, step, skip])  # [3, S]
        best, arg = cand.max(0)
        back[t] = torch.arange(S) - arg
        score = best + emit[t]
    end = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    total = float(score[end])
    path = [end]
    for t in range(T - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    path.reverse()
    return torch.tensor([states[s] for s in path]), total


def segments(path: Sequence[int], blank: int = 0) -> list[tuple[int, int, int]]:
    """``(label, first frame, last frame + 1)`` of every label run in a path (blanks skipped)."""
    out: list[tuple[int, int, int]] = []
    prev = blank
    for t, p in enumerate(int(q) for q in path):
        if p != blank and p == prev:
            out[-1] = (p, out[-1][1], t + 1)
        elif p != blank:
            out.append((p, t, t + 1))
        prev = p
    return out
