"""Plots for chapter 02 (deep-learning basics): activations, losses and their gradients,
optimiser trajectories on 2-D surfaces, training curves side by side, a confusion matrix.

Every function draws on axes (or a figure) it is given and returns them; none of them trains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.colors import LogNorm

from mmcourse.optim_demo import OPTIMIZERS, Surface, get_surface, steps_to_reach, trajectory

COLORS = {"sgd": "tab:blue", "momentum": "tab:orange", "adam": "tab:green"}


def plot_activations(axes, names: Sequence[str] = ("sigmoid", "tanh", "relu")):
    """Each activation (solid) and its derivative (dashed, by autograd) on ``axes[0]`` and ``axes[1]``."""
    z = torch.linspace(-4, 4, 401, requires_grad=True)  # [401]
    fns = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "gelu": torch.nn.functional.gelu}  # fmt: skip
    for name in names:
        if name not in fns:
            raise ValueError(f"unknown activation {name!r}; choose from {sorted(fns)}")
        (d,) = torch.autograd.grad(fns[name](z).sum(), z)
        axes[0].plot(z.detach(), fns[name](z).detach(), label=name)
        axes[1].plot(z.detach(), d, "--", label=f"{name}'")
    axes[0].set(title="activation f(z)", xlabel="z (pre-activation)", ylabel="f(z)")
    axes[1].set(title="derivative f'(z)", xlabel="z (pre-activation)", ylabel="f'(z)")
    for a in axes:
        a.axhline(0, color="gray", lw=0.5)
        a.legend(fontsize=8)
    return axes


def plot_loss_gradients(axes, p: torch.Tensor, losses: Mapping[str, torch.Tensor],
                        grads: Mapping[str, torch.Tensor]):
    """Losses (``axes[0]``) and |dL/dlogit| (``axes[1]``) against ``p [N]``, the probability given to
    the true class."""
    for name, v in losses.items():
        axes[0].plot(p, v, label=name)
    for name, g in grads.items():
        axes[1].plot(p, g.abs(), label=name)
    axes[0].set(title="loss for one example", xlabel="p(true class)", ylabel="loss")
    axes[1].set(title="|gradient w.r.t. the logit|", xlabel="p(true class)", ylabel="|dL/dz|")
    for a in axes:
        a.legend(fontsize=8)
    return axes


def plot_trajectories(ax, surface: str | Surface, paths: Mapping[str, torch.Tensor],
                      radius: float | None = None, levels: int = 30):
    """Log-scaled contours of ``surface`` with one path ``[n, 2]`` per optimiser name, the start
    (black dot) and the minimum (star, circled with ``radius`` when given)."""
    s = get_surface(surface)
    X, Y, Z = s.grid(200)
    Z = Z + 1e-3  # log scale needs > 0
    ax.contour(X, Y, Z, levels=np.logspace(np.log10(float(Z.min())), np.log10(float(Z.max())), levels),
               norm=LogNorm(), cmap="Greys", linewidths=0.6)
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1, color=COLORS.get(name), label=name)
    ax.plot(*s.start, "ko", ms=5)
    ax.plot(*s.minimum, "r*", ms=12)
    if radius:
        ax.add_patch(_circle(s.minimum, radius))
    ax.set(xlim=s.xlim, ylim=s.ylim, title=s.name, xlabel="x", ylabel="y")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def _circle(center, radius):
    from matplotlib.patches import Circle

    return Circle(center, radius, fill=False, color="red", lw=0.8, ls="--")


def draw_race(fig, surface: str = "rosenbrock", optimizer: str = "all", lr: float = 1e-3,
              steps: int = 300, radius: float = 0.1) -> str:
    """A Panel draw function: trajectories of ``optimizer`` (or all three) on ``surface`` (left)
    and their loss per step (right). Returns a caption with steps-to-minimum per optimiser."""
    s = get_surface(surface)
    names = list(OPTIMIZERS) if optimizer == "all" else [optimizer]
    paths = {n: trajectory(s, n, lr, steps) for n in names}
    ax0, ax1 = fig.subplots(1, 2)
    plot_trajectories(ax0, s, paths, radius)
    parts = []
    for n, path in paths.items():
        loss = s(path)  # [n]
        ax1.semilogy(loss + 1e-12, color=COLORS.get(n), label=n)
        k = steps_to_reach(path, s.minimum, radius)
        state = "diverged" if len(path) < steps + 1 else (f"reached the minimum in {k} steps" if k is not None
                                                          else f"loss {float(loss[-1]):.3g} after {steps} steps")
        parts.append(f"<b>{n}</b>: {state}")
    ax1.set(title=f"loss per step (lr={lr:g})", xlabel="step", ylabel="loss (log)")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return "; ".join(parts)


def plot_curves(ax, histories: Mapping[str, object], key: str = "val_loss", title: str | None = None,
                ylabel: str | None = None, styles: Mapping[str, dict] | None = None):
    """One curve of ``history[key]`` per named :class:`mmcourse.train.History` (``styles[name]``:
    keyword arguments for that curve's ``ax.plot``)."""
    for name, h in histories.items():
        ax.plot(h["epoch"][: len(h[key])], h[key], label=name, **(styles or {}).get(name, {}))
    ax.set(xlabel="epoch", ylabel=ylabel or key, title=title or key)
    ax.legend(fontsize=8)
    return ax


def plot_confusion(ax, cm: torch.Tensor, classes: Sequence[str] | None = None, normalize: bool = True):
    """A ``[K, K]`` confusion matrix (rows: true class, columns: predicted), counts written in."""
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be [K, K], got shape {tuple(cm.shape)}")
    k = cm.shape[0]
    shown = cm.double() / cm.sum(1, keepdim=True).clamp_min(1) if normalize else cm.double()
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03,
                       label="share of the true class's examples" if normalize else "examples")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > 0.5 * shown.max() else "black")
    names = list(classes) if classes else [str(i) for i in range(k)]
    ax.set(xticks=range(k), yticks=range(k), xticklabels=names, yticklabels=names,
           xlabel="predicted class", ylabel="true class", title="confusion matrix")
    return ax
