"""Pictures for chapter 06: fusion-level diagrams, accuracy bars, robustness, parameter growth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

_COLORS = {"image": "#4C72B0", "audio": "#DD8452", "text": "#55A868", "fuse": "#8172B3", "out": "#C44E52",
           "enc": "#DDDDDD"}


def _box(ax, x, y, text, color, w=0.16, h=0.12):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01", fc=color,
                                ec="black", lw=0.6, alpha=0.9))
    ax.text(x, y, text, ha="center", va="center", fontsize=7)


def _arrow(ax, a, b):
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", lw=0.8))


def draw_fusion_levels(fig: Figure) -> None:
    """Four panels: data-level (early), feature-level, decision-level (late), hybrid."""
    axes = fig.subplots(1, 4)
    c = _COLORS
    for ax, title in zip(axes, ["data-level (early)", "feature-level", "decision-level (late)", "hybrid"], strict=True):
        ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
        ax.axis("off")
        ax.title.set_fontsize(9)
    # early: inputs -> stack -> one encoder -> head
    ax = axes[0]
    _box(ax, 0.2, 0.8, "image", c["image"]); _box(ax, 0.2, 0.55, "spectro-\ngram", c["audio"])  # noqa: E702
    _box(ax, 0.55, 0.67, "stack\nchannels", c["fuse"]); _box(ax, 0.55, 0.4, "one CNN", c["enc"])  # noqa: E702
    _box(ax, 0.55, 0.15, "head", c["out"])
    for a in ((0.28, 0.8), (0.28, 0.55)):
        _arrow(ax, a, (0.47, 0.67))
    _arrow(ax, (0.55, 0.6), (0.55, 0.47)); _arrow(ax, (0.55, 0.33), (0.55, 0.22))  # noqa: E702
    # feature: encoders -> fuse -> head
    ax = axes[1]
    _box(ax, 0.2, 0.8, "image", c["image"]); _box(ax, 0.2, 0.45, "audio", c["audio"])  # noqa: E702
    _box(ax, 0.45, 0.8, "enc", c["enc"], w=0.12); _box(ax, 0.45, 0.45, "enc", c["enc"], w=0.12)  # noqa: E702
    _box(ax, 0.72, 0.62, "fuse\nh1,h2", c["fuse"]); _box(ax, 0.72, 0.2, "head", c["out"])  # noqa: E702
    for y in (0.8, 0.45):
        _arrow(ax, (0.28, y), (0.39, y)); _arrow(ax, (0.51, y), (0.64, 0.62))  # noqa: E702
    _arrow(ax, (0.72, 0.55), (0.72, 0.27))
    # late: encoders -> heads -> combine
    ax = axes[2]
    for y, m in ((0.8, "image"), (0.45, "audio")):
        _box(ax, 0.15, y, m, c[m], w=0.14); _box(ax, 0.37, y, "enc", c["enc"], w=0.12)  # noqa: E702
        _box(ax, 0.58, y, "head", c["out"], w=0.12)
        _arrow(ax, (0.22, y), (0.31, y)); _arrow(ax, (0.43, y), (0.52, y)); _arrow(ax, (0.64, y), (0.78, 0.62))  # noqa: E702
    _box(ax, 0.85, 0.62, "combine\nlogits", c["fuse"], w=0.16)
    # hybrid: both
    ax = axes[3]
    for y, m in ((0.85, "image"), (0.4, "audio")):
        _box(ax, 0.13, y, m, c[m], w=0.14); _box(ax, 0.33, y, "enc", c["enc"], w=0.12)  # noqa: E702
        _box(ax, 0.58, y, "head", c["out"], w=0.12)
        _arrow(ax, (0.2, y), (0.27, y)); _arrow(ax, (0.39, y), (0.52, y)); _arrow(ax, (0.64, y), (0.8, 0.42))  # noqa: E702
        _arrow(ax, (0.39, y), (0.5, 0.62))
    _box(ax, 0.58, 0.62, "joint\nhead", c["fuse"], w=0.14)
    _arrow(ax, (0.65, 0.62), (0.8, 0.42))
    _box(ax, 0.87, 0.2, "weighted\nsum", c["fuse"], w=0.16)
    _arrow(ax, (0.85, 0.38), (0.87, 0.27))


def draw_accuracy_bars(ax, names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                       levels: Sequence[str], title: str = "") -> None:
    """Horizontal bars of accuracy mean +- std, coloured by fusion level."""
    palette = {"unimodal": "#999999", "data": "#4C72B0", "feature": "#8172B3", "decision": "#DD8452",
               "feature + decision": "#55A868"}
    y = np.arange(len(names))
    ax.barh(y, mean, xerr=std, color=[palette.get(lv, "#333333") for lv in levels], capsize=2)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy")
    ax.set_xlim(min(0.5, min(mean) - 0.05), 1.0)
    handles = [Patch(color=c, label=k)
               for k, c in palette.items() if k in levels]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)


def draw_robustness(ax, names: Sequence[str], conditions: Sequence[str], acc: np.ndarray, title: str = "") -> None:
    """Heat map ``acc [methods, conditions]`` with the numbers written in."""
    im = ax.imshow(acc, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(conditions)), conditions, fontsize=7, rotation=20)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", fontsize=6,
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
