"""Plots for looking at data: image grids, waveforms and spectrograms, the fusion-levels diagram."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def image_grid(images: torch.Tensor, titles: list[str] | None = None, ncols: int = 8,
               fig: Figure | None = None, size: float = 1.3) -> Figure:
    """Show ``[N, C, H, W]`` images (C = 1 or 3, values in [0, 1]) in a grid."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got {tuple(images.shape)}")
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig = fig or plt.figure(figsize=(size * min(n, ncols), size * nrows * 1.1))
    for i, img in enumerate(images):
        ax = fig.add_subplot(nrows, min(n, ncols), i + 1)
        img = img.detach().cpu().clamp(0, 1)
        ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None)
        ax.set_axis_off()
        if titles:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def spectrogram(ax, spec: torch.Tensor, sample_rate: int, hop_length: int, title: str = "",
                ylabel: str = "bin", cmap: str = "magma") -> None:
    """Draw a ``[C, frames]`` spectrogram (or MFCC) with time in seconds on the x axis."""
    spec = spec.detach().cpu()
    t_end = spec.shape[-1] * hop_length / sample_rate
    im = ax.imshow(spec, origin="lower", aspect="auto", cmap=cmap, extent=(0, t_end, 0, spec.shape[0]))
    ax.set(title=title, xlabel="time (s)", ylabel=ylabel)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)


def waveform(ax, wave: torch.Tensor, sample_rate: int, title: str = "") -> None:
    t = torch.arange(wave.shape[-1]) / sample_rate
    ax.plot(t, wave.detach().cpu(), lw=0.6)
    ax.set(title=title, xlabel="time (s)", ylabel="amplitude")


def fusion_levels(fig: Figure | None = None) -> Figure:
    """The three fusion levels in one picture: data (early), feature, decision (late)."""
    fig = fig or plt.figure(figsize=(11, 3.3))
    titles = ["data-level (early) fusion", "feature-level fusion", "decision-level (late) fusion"]
    layouts = [
        [("image", 0.1, 0.75), ("audio", 0.1, 0.25), ("join inputs", 0.45, 0.5), ("encoder", 0.68, 0.5), ("head", 0.9, 0.5)],
        [("image", 0.1, 0.75), ("audio", 0.1, 0.25), ("image enc.", 0.38, 0.75), ("audio enc.", 0.38, 0.25),
         ("fuse features", 0.66, 0.5), ("head", 0.9, 0.5)],
        [("image", 0.1, 0.75), ("audio", 0.1, 0.25), ("image model", 0.42, 0.75), ("audio model", 0.42, 0.25),
         ("combine decisions", 0.8, 0.5)],
    ]  # fmt: skip
    edges = [
        [(0, 2), (1, 2), (2, 3), (3, 4)],
        [(0, 2), (1, 3), (2, 4), (3, 4), (4, 5)],
        [(0, 2), (1, 3), (2, 4), (3, 4)],
    ]
    colours = {"image": "#cfe2ff", "audio": "#ffe5b4"}
    for k, (title, nodes, es) in enumerate(zip(titles, layouts, edges, strict=True)):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1), ax.set_axis_off(), ax.set_title(title, fontsize=10)
        for a, b in es:
            (_, x0, y0), (_, x1, y1) = nodes[a], nodes[b]
            ax.add_patch(FancyArrowPatch((x0 + 0.1, y0), (x1 - 0.1, y1), arrowstyle="->", mutation_scale=10))
        for name, x, y in nodes:
            ax.add_patch(FancyBboxPatch((x - 0.1, y - 0.08), 0.2, 0.16, boxstyle="round,pad=0.01",
                                        fc=colours.get(name, "#e8e8e8"), ec="k", lw=0.8))
            ax.text(x, y, name.replace(" ", "\n"), ha="center", va="center", fontsize=7.5)
    fig.tight_layout()
    return fig
