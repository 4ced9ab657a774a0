"""Pictures for chapter 11 (speech recognition): an utterance with its words, CTC paths over an
emission matrix, a learned alignment. Each draws on axes it is given; labels carry units."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

SR = 8000
FRAME_S = 0.04  # one output frame of the acoustic model
CLASSES = ["-"] + [str(d) for d in range(10)]  # blank, digits


def waveform_with_words(ax, wave: torch.Tensor, bounds: Sequence[tuple[int, int]], digits: str,
                        title: str = "") -> None:
    """The waveform (seconds) with each word's span shaded and its digit written above it."""
    t = torch.arange(wave.numel()) / SR
    ax.plot(t, wave, lw=0.5, color="0.3")
    for (a, b), d in zip(bounds, digits, strict=True):
        ax.axvspan(a / SR, b / SR, color="tab:orange", alpha=0.2)
        ax.text((a + b) / 2 / SR, 0.9 * float(wave.abs().max()), d, ha="center", va="top", fontsize=11)
    ax.set(xlabel="time (s)", ylabel="amplitude", title=title, xlim=(0, wave.numel() / SR))


def logmel_image(ax, feats: torch.Tensor, title: str, fig=None, label: str = "normalised log-Mel") -> None:
    """Features ``[frames, bands]`` as an image (time in s at a 10 ms hop) with a colour bar."""
    im = ax.imshow(feats.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, feats.shape[0] * 0.01, 0, feats.shape[1]))
    ax.set(xlabel="time (s)", ylabel="Mel band", title=title)
    (fig or ax.figure).colorbar(im, ax=ax, label=label)


def emissions_image(ax, log_probs: torch.Tensor, title: str, fig=None, path: Sequence[int] | None = None,
                    vmin: float = -10.0) -> None:
    """Emissions ``[T', 11]`` (log-probabilities, classes blank and 0-9) against time, with an optional
    path drawn as dots (one class per frame)."""
    T = log_probs.shape[0]
    im = ax.imshow(log_probs.T.clamp_min(vmin), origin="lower", aspect="auto", cmap="viridis",
                   extent=(0, T * FRAME_S, -0.5, 10.5), vmin=vmin, vmax=0)
    if path is not None:
        ax.plot((torch.arange(T) + 0.5) * FRAME_S, list(path), ".", color="w", ms=3)
    ax.set_yticks(range(11), CLASSES)
    ax.set(xlabel="time (s)", ylabel="class (- = blank)", title=title)
    (fig or ax.figure).colorbar(im, ax=ax, label="log-probability")


def ctc_paths(ax, log_probs: torch.Tensor, paths: Sequence[Sequence[int]], names: Sequence[str],
              title: str, fig=None) -> None:
    """A small emission matrix ``[T, C]`` with several paths drawn across it (one line each)."""
    T, C = log_probs.shape
    im = ax.imshow(log_probs.exp().T, origin="lower", aspect="auto", cmap="Blues", vmin=0, vmax=1)
    cmap = plt.get_cmap("tab10")
    for k, p in enumerate(paths):
        ax.plot(range(T), [q + 0.08 * (k - len(paths) / 2) for q in p], "o-", color=cmap(k % 10), ms=4, lw=1.5,
                label="".join(names[q] for q in p))
    ax.set_yticks(range(C), names)
    ax.set(xlabel="frame", ylabel="class", title=title)
    ax.legend(fontsize=8, loc="upper right", title="path")
    (fig or ax.figure).colorbar(im, ax=ax, label="probability")


def word_spans(ax, spans: Sequence[tuple[str, float, float]], y: float, color: str, label: str) -> None:
    """Horizontal bars ``(word, start s, end s)`` at height ``y`` (for alignment pictures)."""
    for k, (w, a, b) in enumerate(spans):
        ax.barh(y, b - a, left=a, height=0.6, color=color, alpha=0.6, label=label if k == 0 else None)
        ax.text((a + b) / 2, y, w, ha="center", va="center", fontsize=9)
