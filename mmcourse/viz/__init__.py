"""Plotting and interactive panels. Models never plot; they expose what is drawn
(feature maps, attention weights) through their own API, and these functions draw it.

Importing this package installs the figure lint (:mod:`mmcourse.viz.lint`): every figure that is
saved or shown is checked for axis labels, colour bars and blanked tick labels, and each problem
becomes a ``figure lint: ...`` warning."""

from mmcourse.viz.lint import exempt, figure_problems, install
from mmcourse.viz.widgets import Panel, figure_png

install()

__all__ = ["Panel", "exempt", "figure_png", "figure_problems"]
