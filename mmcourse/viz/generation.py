"""Token-by-token generation over an image: where each generated token looked (chapter 14)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure


def draw_generation(fig: Figure, image: torch.Tensor, prompt: str, tokens: Sequence[str],
                    attention: torch.Tensor, grid: int = 4, max_tokens: int = 5) -> None:
    """The image, then one panel per generated token with its attention over the image tokens.

    ``image [3, H, W]`` in [0, 1]; ``attention [N, grid*grid]`` (from ``vlm.image_attention``), one
    row per generated token; each panel's title is the token and the share of attention on the image.
    """
    if attention.ndim != 2 or attention.shape[1] != grid * grid:
        raise ValueError(f"attention must be [N, {grid * grid}] (one row per token), got {tuple(attention.shape)}")
    if len(tokens) != len(attention):
        raise ValueError(f"{len(tokens)} tokens but {len(attention)} attention rows")
    n = min(len(tokens), max_tokens)
    axes = fig.subplots(1, n + 1, squeeze=False)[0]
    rgb = image.permute(1, 2, 0).clamp(0, 1).numpy()
    h, w = rgb.shape[:2]
    axes[0].imshow(rgb)
    axes[0].set_title(_wrap(prompt), fontsize=9)
    axes[0].set_axis_off()
    vmax = max(float(attention[:n].max()), 1e-6)
    im = None
    for k in range(n):
        ax = axes[k + 1]
        a = attention[k].view(grid, grid).numpy()
        ax.imshow(rgb * 0.45 + 0.55)  # the image, faded
        im = ax.imshow(a, cmap="magma", alpha=0.65, vmin=0.0, vmax=vmax, extent=(0, w, h, 0),
                       interpolation="nearest")
        ax.set_title(f"{k + 1}. '{tokens[k]}'\n{attention[k].sum():.0%} on image", fontsize=9)
        ax.set_axis_off()
    if im is not None:
        bar = fig.colorbar(im, ax=list(axes[1:]), fraction=0.03, pad=0.02)
        bar.set_label("attention weight", fontsize=9)


def _wrap(text: str, width: int = 22) -> str:
    words, lines, cur = text.split(), [], ""
    for wd in words:
        if cur and len(cur) + len(wd) + 1 > width:
            lines.append(cur)
            cur = wd
        else:
            cur = f"{cur} {wd}".strip()
    lines.append(cur)
    return "\n".join(lines)

