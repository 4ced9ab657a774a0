"""Plotting and interactive panels. Models never plot; they expose what is drawn
(feature maps, attention weights) through their own API, and these functions draw it."""

from mmcourse.viz.widgets import Panel, figure_png

__all__ = ["Panel", "figure_png"]
