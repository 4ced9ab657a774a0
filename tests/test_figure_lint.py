"""The figure lint: good figures pass, each broken rule is reported, saving a figure warns."""

import io
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import mmcourse.viz  # noqa: F401  (installs the lint hook)
from mmcourse.viz import Panel, exempt, figure_problems

matplotlib.use("agg")
RNG = np.random.default_rng(0)


def good_figure() -> Figure:
    fig = Figure(figsize=(8, 3))
    ax = fig.subplots(1, 3)
    ax[0].plot([0, 1, 2], [1, 0, 2], label="loss")
    ax[0].set(title="curve", xlabel="epoch", ylabel="loss (nats)")
    im = ax[1].imshow(RNG.random((4, 5)), cmap="viridis")
    ax[1].set(title="heatmap", xlabel="key", ylabel="query")
    fig.colorbar(im, ax=ax[1], label="weight")
    ax[2].imshow(RNG.random((8, 8, 3)))  # an RGB picture, axes off: exempt
    ax[2].set_axis_off()
    return fig


def test_good_figure_has_no_problems():
    assert figure_problems(good_figure()) == []


def test_missing_labels_are_reported_with_the_axes_title():
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set(title="accuracy", xlabel="epoch")
    assert figure_problems(fig) == ["axes 'accuracy': no y label (ax.set_ylabel, with units where there are)"]


def test_shared_axes_need_the_label_once_and_suplabels_count():
    fig = Figure()
    ax = fig.subplots(2, 2, sharex=True, sharey=True)
    for a in ax.flat:
        a.plot([0, 1], [0, 1])
    ax[1, 0].set_xlabel("time (s)")
    ax[1, 1].set_xlabel("time (s)")
    fig.supylabel("amplitude")
    assert figure_problems(fig) == []


def test_heatmap_without_colour_bar_is_reported_and_one_bar_may_serve_two_panels():
    fig = Figure()
    ax = fig.subplots(1, 2)
    for a in ax:
        a.imshow(RNG.random((3, 3)), vmin=0, vmax=1, cmap="magma")
        a.set(xlabel="x", ylabel="y", title="panel")
    assert figure_problems(fig) == ["axes 'panel': a heatmap/image of scalar data without a colour bar "
                                    "(fig.colorbar(im, ax=ax, label=...))"] * 2
    fig.colorbar(ax[0].images[0], ax=list(ax), label="value")
    assert figure_problems(fig) == []
    fig2 = Figure()
    a = fig2.subplots()
    a.pcolormesh(RNG.random((3, 4)))
    a.set(xlabel="frame", ylabel="Mel band")
    assert len(figure_problems(fig2)) == 1


def test_blanked_shared_tick_labels_are_reported():
    """The chapter 06 accident: sharey=True, names on the left panel, then [] on the right one."""
    fig = Figure()
    ax = fig.subplots(1, 2, sharey=True)
    for a in ax:
        fig.colorbar(a.imshow(RNG.random((3, 4)), aspect="auto"), ax=a, label="accuracy")
        a.set(xlabel="noise level", ylabel="method", title="robustness")
    ax[0].set_yticks(range(3), ["early", "late", "hybrid"])
    ax[1].set_yticklabels([])
    probs = figure_problems(fig)
    assert len(probs) == 1 and "'robustness': the y tick labels are all empty" in probs[0]
    ax[0].set_yticks(range(3), ["early", "late", "hybrid"])  # the fix: hide the right ones instead
    ax[1].tick_params(labelleft=False)
    assert figure_problems(fig) == []


def test_exemptions():
    fig = Figure()
    ax = fig.subplots()
    ax.imshow(RNG.random((3, 3)), cmap="tab10")
    ax.set(xlabel="x", ylabel="y")
    assert len(figure_problems(fig)) == 1
    exempt(ax, "colorbar", reason="the colours are the class legend")
    assert figure_problems(fig) == []
    with pytest.raises(ValueError, match="unknown lint rules"):
        exempt(ax, "colours", reason="x")
    with pytest.raises(ValueError, match="reason"):
        exempt(ax, reason=" ")
    fig2 = Figure()
    fig2.subplots().text(0.5, 0.5, "a diagram: text only, no data")
    assert figure_problems(fig2) == []
    fig3 = Figure()
    a3 = fig3.subplots()
    a3.plot([0, 1], [0, 1])
    a3.set_xticks([])
    a3.set_ylabel("y")
    assert figure_problems(fig3) == []  # an axis with no ticks at all needs no label


def test_saving_a_figure_warns_and_a_panel_too():
    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    with pytest.warns(UserWarning, match="figure lint: axes #1 \\(untitled\\): no x label"):
        fig.savefig(io.BytesIO(), format="png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good_figure().savefig(io.BytesIO(), format="png")

    def draw(fig, n):
        fig.subplots().plot(range(n))

    from ipywidgets import IntSlider

    with pytest.warns(UserWarning, match="figure lint"):
        Panel(draw, n=IntSlider(value=3, min=2, max=5))
