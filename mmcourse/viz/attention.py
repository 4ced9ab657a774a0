"""Drawing attention: heatmaps, positional tables, and patch attention laid over images.

The models hand over their weights (``return_attention=True``); these functions only draw.
The panels redraw from cached tensors, so moving a slider is instant.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mmcourse.viz.lint import exempt
from mmcourse.viz.widgets import Panel


def draw_heatmap(ax: Axes, weights: torch.Tensor | np.ndarray, xlabels: Sequence[str] | None = None,
                 ylabels: Sequence[str] | None = None, title: str = "", cmap: str = "viridis",
                 colorbar: bool = True) -> None:
    """Attention weights ``[Tq, Tk]`` (rows: queries, columns: keys), with token labels and
    (``colorbar=True``) a colour bar of the weight."""
    w = np.asarray(torch.as_tensor(weights, dtype=torch.float32).detach().cpu())
    if w.ndim != 2:
        raise ValueError(f"draw_heatmap expects weights [Tq, Tk], got shape {w.shape}")
    im = ax.imshow(w, cmap=cmap, vmin=0, vmax=max(float(w.max()), 1e-9), aspect="auto")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="attention weight")
    for labels, setter, n in ((xlabels, ax.set_xticks, w.shape[1]), (ylabels, ax.set_yticks, w.shape[0])):
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for an axis of {n} positions")
            setter(range(n), [repr(s)[1:-1] if s == " " else s for s in labels], fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    ax.set_title(title, fontsize=10)


def draw_positional(fig: Figure, table: torch.Tensor, title: str = "positional encoding") -> None:
    """A positional table ``[T, D]`` as an image, and the dot products between positions."""
    t = table.detach().float().cpu()
    if t.ndim != 2:
        raise ValueError(f"expected a table [T, D], got shape {tuple(t.shape)}")
    a1, a2 = fig.subplots(1, 2)
    im = a1.imshow(t.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    a1.set(xlabel="dimension", ylabel="position", title=title)
    fig.colorbar(im, ax=a1, fraction=0.05, label="value")
    unit = t / t.norm(dim=1, keepdim=True).clamp_min(1e-9)
    im2 = a2.imshow((unit @ unit.T).numpy(), cmap="viridis", vmin=-1, vmax=1)
    a2.set(xlabel="position", ylabel="position", title="cosine similarity of positions")
    fig.colorbar(im2, ax=a2, fraction=0.05, label="cosine similarity")


def seq2seq_attention_panel(sources: Sequence[str], outputs: Sequence[str],
                            cross: Sequence[torch.Tensor]) -> Panel:
    """Cross-attention of a seq2seq model: which source characters each output character read.

    ``sources``/``outputs``: the strings of B examples; ``cross``: one ``[B, H, T, S]`` per
    decoder layer (from ``greedy_decode(..., return_attention=True)``). Controls: example,
    layer, head (``-1`` averages the heads).
    """
    if not cross or cross[0].ndim != 4:
        raise ValueError("cross must be a non-empty list of [B, H, T, S] tensors")
    b, h = cross[0].shape[:2]
    if len(sources) != b or len(outputs) != b:
        raise ValueError(f"{len(sources)} sources and {len(outputs)} outputs for {b} examples")

    def draw(fig: Figure, example: int, layer: int, head: int) -> str:
        w = cross[layer][example]
        w = w.mean(0) if head < 0 else w[head]  # [T, S]
        src, out = sources[example], outputs[example]
        w = w[: len(out) + 1, : len(src)]  # drop padding; the last row emits <eos>
        ax = fig.add_subplot()
        draw_heatmap(ax, w, list(src), [*out, "<eos>"][: w.shape[0]],
                     f"layer {layer}, {'mean of heads' if head < 0 else f'head {head}'}")
        ax.set(xlabel="source character (key)", ylabel="generated character (query)")
        return f"<code>{src}</code> &rarr; <code>{out}</code>"

    return Panel(draw, figsize=(7, 3.6), example=W.IntSlider(0, 0, b - 1, description="example"),
                 layer=W.IntSlider(len(cross) - 1, 0, len(cross) - 1, description="layer"),
                 head=W.IntSlider(-1, -1, h - 1, description="head"))


def overlay_attention(ax: Axes, image: torch.Tensor, amap: torch.Tensor | None, title: str = "",
                      alpha: float = 0.55, colorbar: bool = True) -> None:
    """Lay an attention map over the patch grid ``[g, g]`` on an image ``[C, H, W]`` (or ``[H, W]``),
    scaled to its maximum, with a colour bar; ``amap=None`` draws the image alone."""
    img = image.detach().float().cpu()
    img = img[0] if img.ndim == 3 and img.shape[0] == 1 else img.permute(1, 2, 0) if img.ndim == 3 else img
    hh, ww = img.shape[:2]
    ax.imshow(img.numpy(), cmap="gray")
    ax.set_title(title, fontsize=9)
    if amap is None:
        ax.set_axis_off()  # a picture, not a plot
        return
    ax.set(xlabel="pixel column", ylabel="pixel row")
    exempt(ax, "colorbar", reason="the grey digit is a picture; the attention overlay gets its own colour bar")
    a = amap.detach().float().cpu()
    if a.ndim != 2:
        raise ValueError(f"expected an attention map [g, g], got shape {tuple(a.shape)}")
    im = ax.imshow((a / a.max().clamp_min(1e-9)).numpy(), cmap="inferno", alpha=alpha, vmin=0, vmax=1,
                   extent=(-0.5, ww - 0.5, hh - 0.5, -0.5), interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="attention / its maximum")


def vit_attention_panel(images: torch.Tensor, attentions: Sequence[torch.Tensor], grid: int,
                        titles: Sequence[str] | None = None) -> Panel:
    """Where a ViT's [CLS] token looks: per layer and head, and the rollout over all layers.

    ``images [B, C, H, W]``; ``attentions``: one ``[B, H, N+1, N+1]`` per layer. Controls:
    example, layer, head (``-1``: mean of heads; layer ``-1``: attention rollout).
    """
    from mmcourse.models.vit import attention_rollout, cls_attention

    if images.ndim != 4 or not attentions or attentions[0].shape[0] != images.shape[0]:
        raise ValueError("need images [B, C, H, W] and a list of [B, H, N+1, N+1] with the same B")
    b, h = attentions[0].shape[:2]
    rollout = attention_rollout(list(attentions), grid)  # [B, g, g]

    def draw(fig: Figure, example: int, layer: int, head: int) -> str:
        a1, a2 = fig.subplots(1, 2)
        overlay_attention(a1, images[example], None, "image")
        if layer < 0:
            amap, what = rollout[example], "rollout over all layers"
        else:
            amap = cls_attention(attentions[layer][example : example + 1], grid, None if head < 0 else head)[0]
            what = f"layer {layer}, {'mean of heads' if head < 0 else f'head {head}'}"
        overlay_attention(a2, images[example], amap, f"[CLS] attention: {what}")
        fig.tight_layout()
        return titles[example] if titles is not None else ""

    return Panel(draw, figsize=(6, 3), example=W.IntSlider(0, 0, b - 1, description="example"),
                 layer=W.IntSlider(-1, -1, len(attentions) - 1, description="layer"),
                 head=W.IntSlider(-1, -1, h - 1, description="head"))
