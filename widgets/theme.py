"""The colours every canvas uses (icon page, sketch pad, plots, 3D viewports), picked from the widget's
palette: the app's dark or light theme (app/theme.py) reaches canvases that paint themselves through
here. Canvases repaint on QEvent.PaletteChange, so a theme switch reaches them at once."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette


@dataclass(frozen=True)
class CanvasColours:
    dark: bool
    background: QColor  # around a page / behind a scene
    paper: QColor  # an icon's page, a candidate tile, the sketch pad
    ink: QColor  # icon fill, sketch strokes as shown
    border: QColor  # page outlines
    faint_text: QColor  # labels drawn on a canvas
    viewport: str  # VisPy canvases' bgcolor
    grid: tuple  # VisPy grid lines (r, g, b, a)
    plot_background: str  # pyqtgraph
    plot_foreground: str  # pyqtgraph axes and labels


DARK = CanvasColours(True, QColor("#1b1c1f"), QColor("#2b2d31"), QColor("#e8e8e8"), QColor("#4a4c52"),
                     QColor("#a8a8a8"), "#202124", (1.0, 1.0, 1.0, 0.15), "#1e1e22", "#c8c8c8")
LIGHT = CanvasColours(False, QColor("#e9e9e9"), QColor("#ffffff"), QColor("#202020"), QColor("#c8c8c8"),
                      QColor("#606060"), "#e8eaed", (0.0, 0.0, 0.0, 0.25), "#ffffff", "#404040")


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def canvas_colours(widget=None) -> CanvasColours:
    """The colours for `widget`'s palette (the application's when None)."""
    if widget is None:
        from PySide6.QtGui import QGuiApplication

        palette = QGuiApplication.palette()
    else:
        palette = widget.palette()
    return DARK if is_dark(palette) else LIGHT


def style_plot_item(item, c: CanvasColours) -> None:
    """Axes, tick labels and axis titles of a pyqtgraph PlotItem in the theme's foreground."""
    for side in ("left", "bottom", "right", "top"):
        axis = item.getAxis(side)
        axis.setPen(c.plot_foreground)
        axis.setTextPen(c.plot_foreground)
        axis.labelStyle = {**axis.labelStyle, "color": c.plot_foreground}  # keeps the axis' SI-prefix choice
        axis._updateLabel()
