"""Pictures for chapter 07: similarity matrices, 2-D embedding maps, retrieval results.

Every function draws on axes or a figure it is given, from tensors computed beforehand
(embeddings, similarities), so the retrieval widget redraws instantly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from mmcourse.viz.lint import exempt

FONT = 9  # points: >= 8 px at the notebooks' 72 dpi
MODALITY_MARKERS = {"image": "o", "audio": "^"}


def draw_similarity(ax, sim: torch.Tensor, title: str, labels: Sequence[str] | None = None,
                    xlabel: str = "audio clip j", ylabel: str = "image i", vmin: float = -1, vmax: float = 1):
    """Heatmap of a similarity matrix ``sim [N, M]`` (cosine), with a colour bar; returns the image."""
    im = ax.imshow(sim.detach().cpu().numpy(), cmap="RdBu_r", vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=FONT + 1)
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel(ylabel, fontsize=FONT)
    if labels is not None:
        ticks = np.arange(len(labels))
        ax.set_xticks(ticks, labels, fontsize=FONT - 1)
        ax.set_yticks(ticks[: sim.shape[0]], list(labels)[: sim.shape[0]], fontsize=FONT - 1)
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("cosine similarity", fontsize=FONT)
    return im


def pca_2d(*embeddings: torch.Tensor) -> list[np.ndarray]:
    """One PCA (scikit-learn) fitted on all sets together; each set's 2-D points ``[N_i, 2]``."""
    from sklearn.decomposition import PCA

    joint = torch.cat([e.detach().cpu().float() for e in embeddings]).numpy()
    pts = PCA(n_components=2, random_state=0).fit_transform(joint)  # [sum N_i, 2]
    return np.split(pts, np.cumsum([len(e) for e in embeddings])[:-1])


def draw_embedding_map(ax, points: dict[str, np.ndarray], labels: dict[str, torch.Tensor], title: str) -> None:
    """Scatter of 2-D points per modality (marker) coloured by class (digits 0-9); a legend names both."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    for m, p in points.items():
        y = labels[m].cpu().numpy()
        ax.scatter(p[:, 0], p[:, 1], c=[cmap(int(k) % 10) for k in y], s=10, marker=MODALITY_MARKERS.get(m, "o"),
                   alpha=0.7, edgecolors="none", label=m)
    ax.set_title(title, fontsize=FONT + 1)
    ax.set_xlabel("principal component 1", fontsize=FONT)
    ax.set_ylabel("principal component 2", fontsize=FONT)
    handles = [ax.scatter([], [], marker=MODALITY_MARKERS.get(m, "o"), c="gray", label=m) for m in points]
    handles += [ax.scatter([], [], marker="o", color=cmap(k), label=str(k)) for k in range(10)]
    ax.legend(handles=handles, fontsize=FONT - 2, ncol=2, loc="best", framealpha=0.6)


def _show(ax, item, title: str, ok: bool | None = None) -> None:
    """An image ``[C, H, W]``, a spectrogram ``[F, T]`` or a string, in one small panel."""
    if isinstance(item, str):
        ax.text(0.5, 0.5, item, ha="center", va="center", fontsize=FONT, wrap=True, transform=ax.transAxes)
    else:
        x = item.detach().cpu()
        if x.ndim == 3 and x.shape[0] == 3:
            ax.imshow(x.permute(1, 2, 0).clamp(0, 1).numpy())
        elif x.ndim == 3:
            ax.imshow(x[0].numpy(), cmap="gray")
            exempt(ax, "colorbar", reason="a thumbnail of a digit: its grey levels need no scale")
        else:
            ax.imshow(x.numpy(), origin="lower", aspect="auto", cmap="magma")
            exempt(ax, "colorbar", reason="a thumbnail of the query's log-Mel: its pattern, not its dB values")
    ax.set_title(title, fontsize=FONT, color={True: "green", False: "red", None: "black"}[ok])
    ax.set_xticks([]), ax.set_yticks([])
    if ok is not None:
        for s in ax.spines.values():
            s.set_edgecolor("green" if ok else "red")
            s.set_linewidth(2)


def draw_retrieval(fig: Figure, query, query_title: str, results: Sequence, scores: Sequence[float],
                   correct: Sequence[bool] | None = None, result_kind: str = "image") -> None:
    """The query (left) and its top-k results with their cosine similarity (green: a match)."""
    k = len(results)
    axes = fig.subplots(1, k + 1, gridspec_kw={"width_ratios": [1.3] + [1] * k})
    _show(axes[0], query, query_title)
    axes[0].set_xlabel("query", fontsize=FONT)
    for j, (ax, r, s) in enumerate(zip(axes[1:], results, scores, strict=True)):
        ok = None if correct is None else bool(correct[j])
        _show(ax, r, f"#{j + 1}  cos {s:.2f}", ok)
        ax.set_xlabel(result_kind, fontsize=FONT)
