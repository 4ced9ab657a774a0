"""Plots for sequence models: gradient norms through time, padded vs packed batches,
and what a character language model samples at a temperature."""

from __future__ import annotations

import math
import textwrap

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mmcourse.viz.lint import exempt


def plot_gradient_norms(ax: Axes, norms: dict[str, torch.Tensor]) -> Axes:
    """``||dloss/dx_t||`` against the step ``t`` (log scale), one line per model; ``norms[name]`` is ``[T]``."""
    for name, n in norms.items():
        if n.ndim != 1:
            raise ValueError(f"norms[{name!r}] must be [T], got {tuple(n.shape)}")
        ax.semilogy(range(len(n)), n.clamp_min(1e-30).numpy(), label=name)
    ax.set(xlabel="input step t (the loss is read at the last step)", ylabel="gradient norm  ||dL/dx_t||")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def draw_packing(fig: Figure, lengths: torch.Tensor, padded_length: int | None = None) -> Figure:
    """Left: a padded batch (rows = sequences, dark = real frames, light = padding), padded to
    ``padded_length`` steps (default: the longest sequence in ``lengths``).
    Right: the packed batch: how many sequences are still running at each step
    (``PackedSequence.batch_sizes``), which is all the RNN computes."""
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or len(lengths) == 0:
        raise ValueError(f"lengths must be a non-empty [B], got {tuple(lengths.shape)}")
    longest = int(lengths.max())
    steps = longest if padded_length is None else int(padded_length)
    if steps < longest:
        raise ValueError(f"padded_length={padded_length} is shorter than the longest sequence ({longest})")
    order = lengths.argsort(descending=True)
    sorted_lengths = lengths[order]
    mask = (torch.arange(steps)[None, :] < sorted_lengths[:, None]).float()  # [B, T]
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    ax1.imshow(mask.numpy(), aspect="auto", cmap="Blues", vmin=-0.3, vmax=1.2, interpolation="nearest")
    exempt(ax1, "colorbar", reason="two colours only: dark = real frame, light = padding (said in the title)")
    ax1.set(xlabel="time step (frame)", ylabel="sequence (sorted by length)",
            title=f"padded to {steps} steps: {len(lengths)} x {steps} = {mask.numel()} cells, "
                  f"{int(mask.sum())} real (dark)")
    batch_sizes = mask[:, :longest].sum(0)  # [T]
    ax2.bar(range(longest), batch_sizes.numpy(), width=1.0, color="tab:blue")
    ax2.set(xlabel="time step (frame)", ylabel="sequences still running",
            title=f"packed: batch_sizes, {int(batch_sizes.sum())} cells")
    fig.tight_layout()
    return fig


def plot_until_diverged(ax: Axes, values: list[float], label: str, **kw) -> int | None:
    """Plot ``values`` against the step on a log axis up to their first non-finite value, and
    mark that step with a red cross at the top of the axes. Returns that step (None if all finite)."""
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    finite = values if bad is None else values[:bad]
    line = ax.semilogy(range(len(finite)), finite, "o-", ms=3, label=label, **kw)[0]
    if bad is not None:
        ax.plot([bad], [1.0], "x", color="red", ms=10, mew=2, transform=ax.get_xaxis_transform(), clip_on=False)
        ax.annotate(f"step {bad}: {values[bad]} ({label})", (bad, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(8, -12), textcoords="offset points", color=line.get_color(), fontsize=8)
    return bad


def draw_sampling(fig: Figure, probs: torch.Tensor, chars: list[str], text: str, temperature: float,
                  top: int = 20) -> Figure:
    """Top: the ``top`` most likely next characters, ``probs [V]`` at this temperature.
    Bottom: a text sampled at the same temperature."""
    if probs.ndim != 1 or len(probs) != len(chars):
        raise ValueError(f"probs must be [V={len(chars)}], got {tuple(probs.shape)}")
    ax1, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 1.4]})
    p, idx = probs.topk(min(top, len(probs)))
    names = [repr(chars[i])[1:-1] if chars[i].strip() else {" ": "space", "\n": "\\n"}.get(chars[i], "?")
             for i in idx.tolist()]
    ax1.bar(range(len(p)), p.numpy(), color="tab:orange")
    ax1.set_xticks(range(len(p)), names, fontsize=8)
    entropy = float(-(probs * probs.clamp_min(1e-12).log()).sum())
    ax1.set(xlabel=f"the {len(p)} most likely next characters", ylabel="p(next char)", ylim=(0, 1),
            title=f"temperature {temperature:.2f}: next-character distribution (entropy {entropy:.2f} nats)")
    ax2.axis("off")
    lines = []
    for line in text.splitlines()[:9]:
        lines += textwrap.wrap(line, 90) or [""]
    ax2.text(0, 1, "\n".join(lines[:10]), va="top", ha="left", family="monospace", fontsize=8,
             transform=ax2.transAxes)
    fig.tight_layout()
    return fig
