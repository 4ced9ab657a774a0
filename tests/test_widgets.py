"""Panel: draws at once, redraws when a control changes, carries a static PNG."""

from __future__ import annotations

import ipywidgets as W
import pytest

from mmcourse.viz import Panel


def _draw(fig, slope, offset):
    ax = fig.subplots()
    ax.plot([0, 1], [offset, offset + slope])
    ax.set_ylim(-5, 5)
    return f"slope {slope}"


def test_panel_redraws_on_change_and_has_static_picture():
    p = Panel(_draw, slope=W.FloatSlider(1.0, min=-3, max=3), offset=W.IntSlider(0, -2, 2))
    first = p.png
    assert p.draws == 1 and first.startswith(b"\x89PNG")
    p.controls["slope"].value = -2.0  # as a user moving the slider
    assert p.draws == 2 and p.png != first and p.caption.value == "slope -2.0"
    png = p.set(slope=1.0, offset=0)  # both at once, one redraw
    assert p.draws == 3 and png == first
    bundle = p._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle


def test_panel_errors():
    with pytest.raises(ValueError, match="at least one control"):
        Panel(_draw)
    p = Panel(_draw, slope=W.FloatSlider(1.0), offset=W.IntSlider(0))
    with pytest.raises(KeyError, match="no control named 'gain'"):
        p.set(gain=2)
