"""Figure lint: the mechanical part of the course's figure rules, checked whenever a figure is saved.

    problems = figure_problems(fig)      # [] for a good figure
    exempt(ax, "colorbar", reason="the colours are the class legend")

Rules, for every visible axes that shows data (lines, markers, bars, images, meshes) and is not
turned off (``ax.set_axis_off()`` axes are pictures, not plots: exempt):

- ``labels``   the x and y axis each have a label (on this axes, on an axes sharing that axis,
  or the figure's ``supxlabel``/``supylabel``), unless that axis has no ticks at all;
- ``colorbar`` every image or mesh of scalar data (``imshow``/``matshow``/``pcolormesh`` of a
  2-D array through a colour map) has a colour bar (one bar may serve several panels that share
  its colour map and limits); RGB(A) pictures need none;
- ``ticks``    an axis that shows tick labels does not show only empty ones (the usual accident:
  ``sharey=True`` plus ``ax.set_yticklabels([])`` on one panel blanks them on all).

``install()`` (done when :mod:`mmcourse.viz` is imported) wraps
``FigureCanvasBase.print_figure``, which the inline backend and :class:`mmcourse.viz.Panel` both
go through, so that every problem becomes a ``warnings.warn("figure lint: ...")`` in the cell's
output; ``tools/hygiene.py`` fails a notebook whose outputs hold one.
"""

from __future__ import annotations

import functools
import warnings

from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage

RULES = ("labels", "colorbar", "ticks")
_ATTR = "_mmcourse_lint_exempt"


def exempt(ax: Axes, *rules: str, reason: str) -> Axes:
    """Exempt ``ax`` from some ``rules`` (all when none are named), saying why."""
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"unknown lint rules {sorted(unknown)}; the rules are {RULES}")
    if not reason.strip():
        raise ValueError("say why the axes is exempt (reason=...)")
    setattr(ax, _ATTR, set(rules or RULES) | getattr(ax, _ATTR, set()))
    return ax


def _all_axes(fig: Figure | SubFigure) -> list[Axes]:
    out = list(fig.axes)
    for sub in fig.subfigs:
        out += [a for a in _all_axes(sub) if a not in out]
    return out


def _name(ax: Axes, i: int) -> str:
    title = ax.get_title() or ax.get_title("left") or ax.get_title("right")
    if not title and ax.figure is not None and getattr(ax.figure, "_suptitle", None) is not None:
        title = f"{ax.figure._suptitle.get_text()} / panel {i + 1}"
    return repr(title) if title else f"#{i + 1} (untitled)"


def _shows_data(ax: Axes) -> bool:
    return bool(ax.lines or ax.collections or ax.images or ax.patches)


def _scalar_mappables(ax: Axes) -> list:
    out = []
    for m in [*ax.images, *ax.collections]:
        if not isinstance(m, (AxesImage, QuadMesh)):
            continue
        arr = m.get_array()
        if arr is not None and (arr.ndim == 2 or (isinstance(m, QuadMesh) and arr.ndim == 1)):
            out.append(m)
    return out


def _colorbars(fig: Figure | SubFigure) -> list:
    root = fig.get_figure(root=True) if hasattr(fig, "get_figure") else fig
    return [a._colorbar for a in _all_axes(root) if getattr(a, "_colorbar", None) is not None]


def _has_colorbar(m, bars: list) -> bool:
    for cb in bars:
        cm = cb.mappable
        if cm is m:
            return True
        if cm.get_cmap().name == m.get_cmap().name and (cm.norm is m.norm or (
                type(cm.norm) is type(m.norm) and (cm.norm.vmin, cm.norm.vmax) == (m.norm.vmin, m.norm.vmax))):
            return True
    return False


def _axis_labelled(ax: Axes, which: str) -> bool:
    axis = ax.xaxis if which == "x" else ax.yaxis
    if not axis.get_visible() or len(axis.get_majorticklocs()) == 0:
        return True
    group = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    if any((a.get_xlabel() if which == "x" else a.get_ylabel()).strip() for a in group.get_siblings(ax)):
        return True
    fig = ax.figure
    while fig is not None:
        sup = getattr(fig, "_supxlabel" if which == "x" else "_supylabel", None)
        if sup is not None and sup.get_text().strip():
            return True
        fig = fig._parent if isinstance(fig, SubFigure) else None
    return False


def _ticks_blank(ax: Axes, which: str) -> bool:
    axis = ax.xaxis if which == "x" else ax.yaxis
    params = axis.get_tick_params(which="major")
    sides = ("labelbottom", "labeltop") if which == "x" else ("labelleft", "labelright")
    if not axis.get_visible() or not any(params.get(s, s in ("labelbottom", "labelleft")) for s in sides):
        return False
    lo, hi = sorted(axis.get_view_interval())
    shown = [t for t, loc in zip(axis.get_majorticklabels(), axis.get_majorticklocs(), strict=False)
             if lo - 1e-9 * (hi - lo + 1) <= loc <= hi + 1e-9 * (hi - lo + 1)]
    return bool(shown) and all(not t.get_text().strip() for t in shown)


def figure_problems(fig: Figure | SubFigure) -> list[str]:
    """Every rule the figure breaks, one line each: ``"axes 'title': what is wrong (the fix)"``."""
    problems = []
    bars = _colorbars(fig)
    for i, ax in enumerate(_all_axes(fig)):
        skip = getattr(ax, _ATTR, set())
        if getattr(ax, "_colorbar", None) is not None or not ax.get_visible() or not ax.axison:
            continue
        if not _shows_data(ax):
            continue
        name = _name(ax, i)
        if "labels" not in skip:
            for which in "xy":
                if not _axis_labelled(ax, which):
                    problems.append(f"axes {name}: no {which} label (ax.set_{which}label, with units where there are)")
        if "ticks" not in skip:
            for which in "xy":
                if _ticks_blank(ax, which):
                    problems.append(f"axes {name}: the {which} tick labels are all empty (shared axes? "
                                    f"set the labels on one panel and hide the others with tick_params)")
        if "colorbar" not in skip:
            for m in _scalar_mappables(ax):
                if not _has_colorbar(m, bars):
                    problems.append(f"axes {name}: a heatmap/image of scalar data without a colour bar "
                                    "(fig.colorbar(im, ax=ax, label=...))")
                    break
    return problems


def _linted(print_figure):
    @functools.wraps(print_figure)
    def wrapper(self, *args, **kwargs):
        try:
            problems = figure_problems(self.figure)
        except Exception as e:  # the lint must never break saving a figure
            problems = [f"could not check the figure ({type(e).__name__}: {e})"]
        for p in problems:
            warnings.warn(f"figure lint: {p}", UserWarning, stacklevel=2)
        return print_figure(self, *args, **kwargs)

    wrapper._mmcourse_lint = True
    return wrapper


def install() -> None:
    """Lint every figure that is saved or shown inline (idempotent)."""
    if not getattr(FigureCanvasBase.print_figure, "_mmcourse_lint", False):
        FigureCanvasBase.print_figure = _linted(FigureCanvasBase.print_figure)
