"""Pictures for chapter 06: fusion-level diagrams, accuracy bars, robustness, parameter growth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

_COLORS = {"image": "#4C72B0", "audio": "#DD8452", "text": "#55A868", "fuse": "#8172B3", "out": "#C44E52",
           "enc": "#DDDDDD"}


FONT = 9  # points: >= 8 px at the notebooks' 72 dpi


def _box(ax, x: float, y: float, text: str, color: str):
    """A label at ``(x, y)`` (axes fraction) in a rounded box that is sized to fit its text."""
    return ax.text(x, y, text, ha="center", va="center", fontsize=FONT, transform=ax.transAxes,
                   bbox=dict(boxstyle="round,pad=0.3", fc=color, ec="black", lw=0.6, alpha=0.9))


def _arrow(ax, a, b) -> None:
    """An arrow from box ``a`` to box ``b``, clipped at both boxes' edges."""
    ax.annotate("", xy=b.get_position(), xytext=a.get_position(), xycoords="axes fraction",
                arrowprops=dict(arrowstyle="->", lw=0.8, patchA=a.get_bbox_patch(), patchB=b.get_bbox_patch(),
                                shrinkA=1, shrinkB=1))


def draw_fusion_levels(fig: Figure) -> list:
    """Four panels: data-level (early), feature-level, decision-level (late), hybrid.

    Returns the boxes (``matplotlib.text.Text`` with a bbox patch), so that a test can check
    that they stay inside their panels and do not overlap.
    """
    axes = list(fig.subplots(2, 2).flat)
    c = _COLORS
    for ax, title in zip(axes, ["data-level (early)", "feature-level", "decision-level (late)", "hybrid"], strict=True):
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_title(title, fontsize=FONT + 1)
        ax.axis("off")
    boxes = []

    def box(ax, x, y, text, color):
        boxes.append(_box(ax, x, y, text, color))
        return boxes[-1]

    # early: inputs -> stack -> one encoder -> head
    ax = axes[0]
    stack = box(ax, 0.4, 0.5, "stack as\nchannels", c["fuse"])
    cnn, head = box(ax, 0.65, 0.5, "one CNN", c["enc"]), box(ax, 0.88, 0.5, "head", c["out"])
    for y, m in ((0.8, "image"), (0.2, "audio")):
        _arrow(ax, box(ax, 0.1, y, m, c[m]), stack)
    _arrow(ax, stack, cnn), _arrow(ax, cnn, head)
    # feature: encoders -> fuse -> head
    ax = axes[1]
    fuse, head = box(ax, 0.62, 0.5, "fuse\nh1, h2", c["fuse"]), box(ax, 0.88, 0.5, "head", c["out"])
    for y, m in ((0.8, "image"), (0.2, "audio")):
        x, e = box(ax, 0.1, y, m, c[m]), box(ax, 0.35, y, "enc", c["enc"])
        _arrow(ax, x, e), _arrow(ax, e, fuse)
    _arrow(ax, fuse, head)
    # late: encoders -> heads -> combine
    ax = axes[2]
    comb = box(ax, 0.85, 0.5, "combine\nlogits", c["fuse"])
    for y, m in ((0.8, "image"), (0.2, "audio")):
        x, e, h = box(ax, 0.1, y, m, c[m]), box(ax, 0.35, y, "enc", c["enc"]), box(ax, 0.6, y, "head", c["out"])
        _arrow(ax, x, e), _arrow(ax, e, h), _arrow(ax, h, comb)
    # hybrid: per-modality heads and a joint head on both embeddings, combined by a weighted sum
    ax = axes[3]
    joint, wsum = box(ax, 0.6, 0.5, "joint\nhead", c["fuse"]), box(ax, 0.86, 0.5, "weighted\nsum", c["fuse"])
    for y, m in ((0.85, "image"), (0.15, "audio")):
        x, e, h = box(ax, 0.1, y, m, c[m]), box(ax, 0.35, y, "enc", c["enc"]), box(ax, 0.6, y, "head", c["out"])
        _arrow(ax, x, e), _arrow(ax, e, h), _arrow(ax, e, joint), _arrow(ax, h, wsum)
    _arrow(ax, joint, wsum)
    return boxes


def draw_accuracy_bars(ax, names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                       levels: Sequence[str], title: str = "") -> None:
    """Horizontal bars of accuracy mean +- std, coloured by fusion level."""
    palette = {"unimodal": "#999999", "data": "#4C72B0", "feature": "#8172B3", "decision": "#DD8452",
               "feature + decision": "#55A868"}
    y = np.arange(len(names))
    ax.barh(y, mean, xerr=std, color=[palette.get(lv, "#333333") for lv in levels], capsize=2)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="test accuracy", ylabel="method")
    ax.set_xlim(min(0.5, min(mean) - 0.05), 1.0)
    handles = [Patch(color=c, label=k)
               for k, c in palette.items() if k in levels]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)


def draw_robustness(ax, names: Sequence[str], conditions: Sequence[str], acc: np.ndarray, title: str = ""):
    """Heat map ``acc [methods, conditions]`` with the numbers written in; returns the image (for a colour bar)."""
    if acc.shape != (len(names), len(conditions)):
        raise ValueError(f"acc must be [len(names), len(conditions)] = [{len(names)}, {len(conditions)}], "
                         f"got {list(acc.shape)}")
    im = ax.imshow(acc, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(conditions)), conditions, fontsize=8, rotation=25, ha="right")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(xlabel="test condition", ylabel="method")
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if acc[i, j] < 0.6 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def draw_params_vs_modalities(ax, counts: dict[str, Sequence[int]], modalities: Sequence[int]) -> None:
    """Parameter count against the number of modalities, log scale, one line per method."""
    for name, n in counts.items():
        ax.plot(modalities, n, "o-", label=name)
    ax.set_yscale("log")
    ax.set(xlabel="number of modalities M", ylabel="fusion-layer parameters")
    ax.set_xticks(list(modalities))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
