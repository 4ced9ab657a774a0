"""Interactive panels: ipywidgets controls driving a matplotlib figure.

Only core ipywidgets and matplotlib's PNG output are used, so a panel needs no
JavaScript from a CDN and works in JupyterLab, Colab and VS Code. A :class:`Panel`
displays as the live widget wherever widgets render, and carries a PNG of its
current picture in the same output, so a notebook run headless (nbval, nbclient,
GitHub's viewer) still shows a sensible static picture.

>>> panel = Panel(draw_fn, n_fft=IntSlider(256, 64, 1024, 64), hop=IntSlider(80, 20, 256))
>>> panel          # in a notebook: controls + figure; moving a control redraws
>>> panel.set(n_fft=512)   # the same redraw, from code (tests use this)

``draw_fn(fig, **values)`` draws on an empty :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import ipywidgets as W
from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class Panel:
    """Controls (``name=widget``) that redraw ``draw(fig, **values)`` whenever one changes.

    Attributes: ``controls`` (dict of widgets), ``image`` (the ``W.Image`` showing the
    figure), ``png`` (its bytes), ``widget`` (the whole ``VBox``), ``draws`` (how many times it has drawn),
    ``extra`` (optional HTML widget for a caption the draw function may set).
    """

    def __init__(self, draw: Callable[..., object], figsize: tuple[float, float] = (8, 3.2),
                 dpi: int = 80, columns: int = 3, extra: list[W.Widget] | None = None,
                 **controls: W.ValueWidget):
        if not controls:
            raise ValueError("a Panel needs at least one control, e.g. n_fft=IntSlider(...)")
        self.draw_fn, self.figsize, self.dpi = draw, figsize, dpi
        self.controls = controls
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.caption = W.HTML()
        self.draws = 0
        for c in controls.values():
            c.continuous_update = False
            c.observe(self._on_change, names="value")
        rows = [W.HBox(list(controls.values())[i : i + columns]) for i in range(0, len(controls), columns)]
        # ``extra`` widgets (e.g. a W.Audio player the draw function updates) go below the picture.
        self.widget = W.VBox([*rows, self.image, self.caption, *(extra or [])])
        self.redraw()

    @property
    def values(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def _on_change(self, _change) -> None:
        self.redraw()

    def redraw(self) -> bytes:
        """Draw with the controls' current values; returns the PNG bytes shown."""
        fig = Figure(figsize=self.figsize)
        caption = self.draw_fn(fig, **self.values)
        png = figure_png(fig, self.dpi)
        self.png = png
        self.image.value = png
        self.caption.value = caption if isinstance(caption, str) else ""
        self.draws += 1
        return png

    def set(self, **values) -> bytes:
        """Set controls from code (one redraw in all) and return the new PNG."""
        for k, v in values.items():
            if k not in self.controls:
                raise KeyError(f"no control named {k!r}; controls: {list(self.controls)}")
            self.controls[k].unobserve(self._on_change, names="value")
            self.controls[k].value = v
            self.controls[k].observe(self._on_change, names="value")
        return self.redraw()

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        # A static picture next to the widget: frontends without widgets show this.
        bundle["image/png"] = base64.b64encode(self.png).decode()
        bundle["text/plain"] = f"Panel({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"
        return bundle
