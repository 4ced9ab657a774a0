"""Plots for convolutional networks: filtered images, learned filters, feature maps, masks.

Every function draws on a matplotlib ``Figure`` it is given (so :class:`~mmcourse.viz.Panel`
can redraw it) and takes plain tensors: the models expose them (``feature_maps(x)``,
``first_conv.weight``), these functions only draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as W
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mmcourse.viz.lint import exempt
from mmcourse.viz.widgets import Panel

MASK_COLORS = ListedColormap(["#222222", "#e45756", "#4c78a8", "#f2cf5b", "#72b7b2", "#b279a2"])


def _img(t: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` or ``[H, W]`` tensor -> array imshow understands (``[H, W]`` or ``[H, W, 3]``)."""
    t = t.detach().float().cpu()
    if t.ndim == 3:
        t = t[0] if t.shape[0] == 1 else t.permute(1, 2, 0).clamp(0, 1)
    if t.ndim != 2 and not (t.ndim == 3 and t.shape[-1] == 3):
        raise ValueError(f"expected an image [C, H, W] or [H, W], got {tuple(t.shape)}")
    return t.numpy()


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def signed_limit(a: np.ndarray | torch.Tensor, percentile: float = 99.0) -> float:
    """A symmetric colour limit for signed data: the ``percentile`` of ``|a|`` (not the max).

    Edge responses are near 0 almost everywhere with a few large peaks; scaling to the max would
    map nearly every pixel to the white centre of a diverging colour map.
    """
    v = float(np.percentile(np.abs(np.asarray(a, dtype=np.float64)), percentile))
    return v if v > 0 else float(np.abs(np.asarray(a)).max()) or 1.0


def plot_filtered(fig: Figure, images: Mapping[str, torch.Tensor], ncols: int = 4, cmap: str = "gray",
                  percentile: float = 99.0, labels: Mapping[str, str] | None = None) -> None:
    """A grid of titled images, e.g. ``{"input": img, "sobel x": filter_image(img, k), ...}``.

    Signed results (edge filters, kernels) are drawn with a diverging colour map centred on 0,
    limited symmetrically at the ``percentile`` of their absolute values (brighter pixels are
    clipped to the end colours); non-negative maps beyond [0, 1] (edge strength) from 0 to that percentile. Every one-channel image gets a colour bar, labelled
    ``labels[name]`` (default "intensity", or "response" for signed images); RGB pictures get none.
    """
    n = len(images)
    rows = (n + ncols - 1) // ncols
    labels = labels or {}
    for i, (name, t) in enumerate(images.items()):
        ax = fig.add_subplot(rows, ncols, i + 1)
        a = _img(t)
        if a.ndim == 2 and a.min() < -1e-6:
            v = signed_limit(a, percentile)
            im = ax.imshow(a, cmap="RdBu_r", vmin=-v, vmax=v)
            label = labels.get(name, "response")
        else:  # intensities in [0, 1] as they are; other magnitudes (edge strength) up to their percentile
            vmax = float(np.percentile(a, percentile)) if a.ndim == 2 and a.max() > 1 else None
            im = ax.imshow(a, cmap=cmap, vmin=0 if vmax else None, vmax=vmax)
            label = labels.get(name, "intensity")
        if a.ndim == 2:
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
            cb.set_label(label, fontsize=8)
            cb.ax.tick_params(labelsize=7)
        ax.set_title(name, fontsize=9)
        _off(ax)
    fig.subplots_adjust(wspace=0.45)


def plot_filters(fig: Figure, weight: torch.Tensor, ncols: int = 8, title: str | None = None) -> None:
    """Convolution kernels ``[C_out, C_in, k, k]`` as small images (first input channel, or RGB).

    Each one-channel kernel is divided by its own largest absolute weight, so all share one
    colour bar from -1 to 1: red positive, blue negative.
    """
    if weight.ndim != 4:
        raise ValueError(f"expected conv weights [C_out, C_in, k, k], got {tuple(weight.shape)}")
    w = weight.detach().float().cpu()
    n = w.shape[0]
    rows = (n + ncols - 1) // ncols
    axes, im = [], None
    for i in range(n):
        ax = fig.add_subplot(rows, ncols, i + 1)
        axes.append(ax)
        if w.shape[1] == 3:  # RGB filters: rescale to [0, 1]
            f = w[i]
            ax.imshow(((f - f.min()) / (f.max() - f.min() + 1e-8)).permute(1, 2, 0).numpy())
        else:
            f = w[i, 0]
            im = ax.imshow((f / (f.abs().max() + 1e-12)).numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        _off(ax)
    if im is not None:
        fig.colorbar(im, ax=axes, fraction=0.02, pad=0.02).set_label("weight / max |weight|", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)


def plot_feature_maps(fig: Figure, image: torch.Tensor, maps: torch.Tensor, channel: int = 0,
                      layer: str = "", max_maps: int = 16) -> None:
    """The input image, one channel of a layer's activation large, and the first ``max_maps`` channels.

    Args:
        image: ``[C, H, W]`` input. maps: ``[C_l, H_l, W_l]`` activation of one image at one layer.
    """
    if maps.ndim != 3:
        raise ValueError(f"expected one image's feature maps [C, H, W], got {tuple(maps.shape)}")
    grid = fig.subfigures(1, 2, width_ratios=[1.1, 1.6])
    ax = grid[0].subplots(1, 2)
    ax[0].imshow(_img(image), cmap="gray")
    ax[0].set_title("input", fontsize=9)
    exempt(ax[0], "colorbar", reason="the input digit: a picture")
    vmax = float(maps.max()) or 1.0  # one colour scale for every channel of this layer
    big = ax[1].imshow(maps[channel].float().cpu().numpy(), cmap="viridis", vmin=0, vmax=vmax)
    ax[1].set_title(f"{layer} channel {channel}\n{tuple(maps.shape[1:])}", fontsize=9)
    grid[0].colorbar(big, ax=list(ax), orientation="horizontal", fraction=0.06, pad=0.04).set_label(
        "activation (after ReLU)", fontsize=8)
    for a in ax:
        _off(a)
    k = min(max_maps, maps.shape[0])
    cols = 4 if k > 4 else k
    rows = (k + cols - 1) // cols
    small = grid[1].subplots(rows, cols, squeeze=False)
    for i, a in enumerate(small.flat):
        _off(a)
        if i < k:
            a.imshow(maps[i].float().cpu().numpy(), cmap="viridis", vmin=0, vmax=vmax)
            if i == channel:
                for s in a.spines.values():
                    s.set(color="red", linewidth=2)
        else:
            a.set_axis_off()
    grid[1].suptitle(f"{layer}: first {k} of {maps.shape[0]} channels (same colour scale)", fontsize=9)


def feature_map_panel(images: torch.Tensor, maps: Mapping[str, torch.Tensor],
                      titles: Sequence[str] | None = None, figsize: tuple[float, float] = (9, 3.4)) -> Panel:
    """A :class:`Panel` (image index, layer, channel) over cached activations: redraws instantly.

    Args:
        images: ``[N, C, H, W]`` inputs. maps: ``{layer: [N, C_l, H_l, W_l]}`` from ``model.feature_maps``.
        titles: optional caption per image (e.g. "label 3, predicted 3").
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {tuple(images.shape)}")
    if not maps:
        raise ValueError("maps is empty: pass model.feature_maps(images)")
    for name, m in maps.items():
        if m.ndim != 4 or m.shape[0] != images.shape[0]:
            raise ValueError(f"maps[{name!r}] must be [N={images.shape[0]}, C, H, W], got {tuple(m.shape)}")
    max_c = max(m.shape[1] for m in maps.values())

    def draw(fig: Figure, image: int, layer: str, channel: int) -> str:
        m = maps[layer][image]  # [C_l, H_l, W_l]
        c = channel % m.shape[0]
        plot_feature_maps(fig, images[image], m, c, layer)
        note = f" (channel {channel} wraps to {c}: this layer has {m.shape[0]})" if c != channel else ""
        return (titles[image] if titles else f"image {image}") + note

    return Panel(draw, figsize=figsize,
                 image=W.IntSlider(0, 0, images.shape[0] - 1, description="image"),
                 layer=W.Dropdown(options=list(maps), description="layer"),
                 channel=W.IntSlider(0, 0, max_c - 1, description="channel"))


def plot_segmentation(fig: Figure, images: torch.Tensor, masks: torch.Tensor, preds: torch.Tensor | None = None,
                      n: int = 6, classes: Sequence[str] | None = None) -> None:
    """Rows: input ``[N, 1, H, W]``, true mask ``[N, H, W]`` and (optionally) predicted mask."""
    rows = [("input", images), ("true mask", masks)] + ([("predicted", preds)] if preds is not None else [])
    n = min(n, images.shape[0])
    k = int(max(masks.max(), preds.max() if preds is not None else 0)) + 1
    for r, (name, t) in enumerate(rows):
        for i in range(n):
            ax = fig.add_subplot(len(rows), n, r * n + i + 1)
            if name == "input":
                ax.imshow(_img(t[i]), cmap="gray")
                exempt(ax, "colorbar", reason="the input image: a picture")
            else:
                exempt(ax, "colorbar", reason="the colours are classes: the legend below names them")
                ax.imshow(t[i].cpu().numpy(), cmap=MASK_COLORS, vmin=0, vmax=len(MASK_COLORS.colors) - 1,
                          interpolation="nearest")
            _off(ax)
            if i == 0:
                ax.set_ylabel(name, fontsize=9)
    if classes:
        patches = [Patch(color=MASK_COLORS.colors[i], label=c) for i, c in enumerate(classes[:k])]
        fig.legend(handles=patches, loc="lower center", ncol=k, fontsize=8, frameon=False)
