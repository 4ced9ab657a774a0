"""Plots for looking at data: image grids, waveforms and spectrograms, the fusion-levels diagram."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from mmcourse.audio import FeatureConfig, mel_centres_hz


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
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def spectrogram(ax, spec: torch.Tensor, config: FeatureConfig, title: str = "", clabel: str = "dB",
                cmap: str = "magma", first: int = 0, vmin: float | None = None, vmax: float | None = None):
    """Draw one ``[C, frames]`` feature of ``config.kind`` with time (s) across and a colour bar.

    The y axis is in Hz for an STFT (bin k sits at k * sample_rate / n_fft), the Mel bands'
    centre frequencies for ``mel``/``logmel``, and the coefficient index for ``mfcc``
    (``first``: the index of row 0, e.g. 1 when c0 is left out). Returns the image.
    """
    if spec.ndim != 2:
        raise ValueError(f"spectrogram needs one [C, frames] feature, got shape {tuple(spec.shape)}")
    spec = spec.detach().cpu()
    c, frames = spec.shape
    t_end = frames * config.hop_length / config.sample_rate
    if config.kind == "stft":
        bin_hz = config.sample_rate / config.n_fft
        extent, ylabel = (0, t_end, -bin_hz / 2, (c - 0.5) * bin_hz), "frequency (Hz)"
    else:
        extent = (0, t_end, first - 0.5, first + c - 0.5)
        ylabel = "MFCC coefficient" if config.kind == "mfcc" else "Mel band centre (Hz)"
    im = ax.imshow(spec, origin="lower", aspect="auto", cmap=cmap, extent=extent, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    if config.kind in ("mel", "logmel"):
        centres = mel_centres_hz(config)
        rows = sorted({0, *range(c // 4, c, max(1, c // 4)), c - 1})
        ax.set_yticks(rows, [f"{centres[r]:.0f}" for r in rows])
    ax.set(title=title, xlabel="time (s)", ylabel=ylabel)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=clabel)
    return im


def waveform(ax, wave: torch.Tensor, sample_rate: int, title: str = "") -> None:
    """Draw a ``[T]`` waveform against time (s); amplitude in units of full scale (±1)."""
    t = torch.arange(wave.shape[-1]) / sample_rate
    ax.plot(t, wave.detach().cpu(), lw=0.6)
    ax.set(title=title, xlabel="time (s)", ylabel="amplitude (full scale 1)")


def fusion_levels(fig: Figure | None = None) -> Figure:
    """The three fusion levels in one picture: data (early), feature, decision (late)."""
    fig = fig or plt.figure(figsize=(12, 3.4))
    titles = ["data-level (early) fusion", "feature-level fusion", "decision-level (late) fusion"]
    layouts = [  # (label, x centre, y centre) in axes coordinates; boxes are W wide, H high
        [("image", 0.11, 0.78), ("audio", 0.11, 0.22), ("join\ninputs", 0.37, 0.5), ("encoder", 0.63, 0.5),
         ("head", 0.89, 0.5)],
        [("image", 0.11, 0.78), ("audio", 0.11, 0.22), ("image\nencoder", 0.37, 0.78),
         ("audio\nencoder", 0.37, 0.22), ("fuse\nfeatures", 0.63, 0.5), ("head", 0.89, 0.5)],
        [("image", 0.11, 0.78), ("audio", 0.11, 0.22), ("image\nmodel", 0.45, 0.78), ("audio\nmodel", 0.45, 0.22),
         ("combine\ndecisions", 0.84, 0.5)],
    ]  # fmt: skip
    edges = [
        [(0, 2), (1, 2), (2, 3), (3, 4)],
        [(0, 2), (1, 3), (2, 4), (3, 4), (4, 5)],
        [(0, 2), (1, 3), (2, 4), (3, 4)],
    ]
    w, h = 0.2, 0.24
    colours = {"image": "#cfe2ff", "audio": "#ffe5b4"}
    for k, (title, nodes, es) in enumerate(zip(titles, layouts, edges, strict=True)):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.set_xlim(-0.02, 1.02), ax.set_ylim(0, 1), ax.set_axis_off(), ax.set_title(title, fontsize=11)
        for a, b in es:
            (_, x0, y0), (_, x1, y1) = nodes[a], nodes[b]
            ax.add_patch(FancyArrowPatch((x0 + w / 2, y0), (x1 - w / 2, y1), arrowstyle="->", mutation_scale=12))
        for name, x, y in nodes:
            ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01",
                                        fc=colours.get(name, "#e8e8e8"), ec="k", lw=0.8))
            ax.text(x, y, name, ha="center", va="center", fontsize=10)
    fig.tight_layout()
    return fig
