"""Pictures for chapter 10 (VQA): attention over image regions, accuracy per question type, Sort-of-CLEVR
scenes and the Relation Network's pair scores. Each function draws on axes it is given, from tensors
computed beforehand, so the attention widget redraws instantly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

FONT = 9  # points: >= 8 px at the notebooks' 72 dpi


def draw_image(ax, image: torch.Tensor, title: str = "") -> None:
    """An RGB image ``[3, H, W]`` in [0, 1], axes off."""
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize=FONT)
    ax.set_axis_off()


def draw_attention(ax, image: torch.Tensor, attention: torch.Tensor, title: str = "") -> None:
    """Attention over a ``G x G`` grid of regions (``attention [G*G]``, sums to one) laid over the
    image ``[3, H, W]``, upsampled with nearest neighbours; a colour bar gives the weights."""
    g = int(round(len(attention) ** 0.5))
    h = image.shape[-1]
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, h, h, 0))
    im = ax.imshow(attention.reshape(g, g).numpy(), cmap="magma", alpha=0.55, extent=(0, h, h, 0),
                   vmin=0, vmax=float(attention.max()))
    ax.set_xlabel("x (pixels)", fontsize=FONT)
    ax.set_ylabel("y (pixels)", fontsize=FONT)
    ax.set_title(title, fontsize=FONT)
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label(f"attention weight ({g}x{g} regions)", fontsize=FONT)


def draw_answer_bars(ax, probs: torch.Tensor, answers: Sequence[str], k: int = 5) -> None:
    """The ``k`` most probable answers, as horizontal bars."""
    p, idx = probs.topk(k)
    ax.barh(np.arange(k)[::-1], p.numpy(), color="tab:blue")
    ax.set_yticks(np.arange(k)[::-1], [answers[i] for i in idx.tolist()], fontsize=FONT)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability", fontsize=FONT)
    ax.set_ylabel("answer", fontsize=FONT)


def draw_type_bars(ax, table: dict[str, dict[str, float]], types: Sequence[str], title: str = "") -> None:
    """Grouped bars: accuracy per question type (groups) for each model (``table[model][type]``)."""
    names = list(table)
    w = 0.8 / len(names)
    for k, name in enumerate(names):
        ax.bar(np.arange(len(types)) + k * w, [table[name][t] for t in types], w, label=name)
    ax.set_xticks(np.arange(len(types)) + 0.4 - w / 2, list(types), fontsize=FONT)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("question type", fontsize=FONT)
    ax.set_ylabel("test accuracy", fontsize=FONT)
    ax.set_title(title, fontsize=FONT + 1)
    ax.legend(fontsize=FONT - 1, ncol=2, loc="lower left")


def draw_pairs(ax_img, ax_heat, image: torch.Tensor, scores: torch.Tensor, title: str = "", top: int = 5) -> None:
    """A Relation Network's pair scores ``[N, N]`` (``||g(o_i, o_j, q)||``, ``N = G*G`` cells): the
    heatmap (with colour bar) and the ``top`` strongest pairs drawn as lines between cell centres."""
    n = scores.shape[0]
    g, h = int(round(n**0.5)), image.shape[-1]
    cell = h / g
    ax_img.imshow(image.permute(1, 2, 0).numpy(), extent=(0, h, h, 0))
    flat = scores.flatten()
    best = flat.topk(top).indices.tolist()
    for rank, k in enumerate(best):
        i, j = divmod(k, n)
        (yi, xi), (yj, xj) = divmod(i, g), divmod(j, g)
        pts = np.array([[xi, yi], [xj, yj]]) * cell + cell / 2
        ax_img.plot(pts[:, 0], pts[:, 1], "-o", color="k", lw=2.5 - 0.3 * rank, ms=4, alpha=0.9 - 0.12 * rank)
    ax_img.set_xlim(0, h)
    ax_img.set_ylim(h, 0)
    ax_img.set_xlabel("x (pixels)", fontsize=FONT)
    ax_img.set_ylabel("y (pixels)", fontsize=FONT)
    ax_img.set_title(title, fontsize=FONT)
    im = ax_heat.imshow(scores.numpy(), cmap="viridis")
    ax_heat.set_xlabel("cell j (row-major)", fontsize=FONT)
    ax_heat.set_ylabel("cell i", fontsize=FONT)
    ax_heat.set_title("||g(o_i, o_j, q)||", fontsize=FONT)
    cb = ax_heat.figure.colorbar(im, ax=ax_heat, fraction=0.046, pad=0.04)
    cb.set_label("pair score", fontsize=FONT)


def upsample(attention: torch.Tensor, size: int) -> torch.Tensor:
    """``[G*G] -> [size, size]`` nearest-neighbour upsampling of a region map."""
    g = int(round(len(attention) ** 0.5))
    return F.interpolate(attention.reshape(1, 1, g, g), size=(size, size), mode="nearest")[0, 0]
