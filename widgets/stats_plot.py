"""Live throughput plot (pyqtgraph): one line per task, the last `span_s` seconds of `stats` figures."""
from __future__ import annotations

import time
from collections import defaultdict, deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent

from widgets.theme import canvas_colours, style_plot_item

COLORS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176"]


class ThroughputPlot(pg.PlotWidget):
    def __init__(self, parent=None, span_s: float = 60.0):
        super().__init__(parent)
        self.span_s = span_s
        self.setLabel("left", "units / s")
        self.setLabel("bottom", "seconds ago")
        self.showGrid(x=True, y=True, alpha=0.25)
        self.getAxis("left").setWidth(62)  # room for "149.8" and the axis title side by side
        for side in ("left", "bottom"):  # plain numbers: no "(x0.001)" rescaling of short spans
            self.getAxis(side).enableAutoSIPrefix(False)
        self.enableAutoRange(x=False)
        self.setXRange(-span_s, 0, padding=0)  # always the last minute, newest at the right edge
        self.setMouseEnabled(x=False, y=False)
        self.legend = self.addLegend(offset=(5, 5))
        self.series: dict[str, deque] = defaultdict(lambda: deque(maxlen=600))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.t0 = time.monotonic()
        self.apply_theme()

    def apply_theme(self) -> None:
        c = canvas_colours(self)
        self.setBackground(c.plot_background)
        style_plot_item(self.getPlotItem(), c)
        self.legend.setLabelTextColor(c.plot_foreground)

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange and hasattr(self, "legend"):
            self.apply_theme()
        super().changeEvent(ev)

    def add_point(self, label: str, value: float, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        self.series[label].append((t, float(value)))
        if label not in self.curves:
            pen = pg.mkPen(COLORS[len(self.curves) % len(COLORS)], width=2)
            self.curves[label] = self.plot([], [], pen=pen, name=label, symbol="o", symbolSize=4)
        self.redraw(t)

    def data(self, label: str) -> np.ndarray:
        """(N, 2) of (time, value) for `label` (for tests and export)."""
        return np.array(self.series.get(label, []), dtype=float).reshape(-1, 2)

    def redraw(self, now: float) -> None:
        for label, pts in self.series.items():
            arr = np.array(pts, dtype=float)
            keep = arr[:, 0] > now - self.span_s
            self.curves[label].setData(arr[keep, 0] - now, arr[keep, 1])
