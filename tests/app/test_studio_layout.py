"""The studio at the sizes people use (1280x800 and 1920x1080, Engine dock open): every button of every
panel lies inside what its parents show (inside a scroll area: inside the scrolled content, and the
scroll area itself inside the window), and no button is squeezed below the size its text needs.
Also the theme: dark by default, on the icon canvas and the sketch pad too."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, QRect  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import (QAbstractButton, QAbstractScrollArea, QApplication, QPushButton,  # noqa: E402
                               QToolButton)

from app.settings import Settings  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def _rect_in(widget, ancestor) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def _scroll_viewport(w) -> bool:
    parent = w.parentWidget()
    return isinstance(parent, QAbstractScrollArea) and parent.viewport() is w


def clipped_controls(win) -> list[str]:
    """Buttons (and scroll areas) of the visible panel that are cut off by a parent, or squeezed."""
    bad = []
    items = [w for w in win.findChildren(QAbstractButton) if isinstance(w, (QPushButton, QToolButton))]
    items += [w for w in win.findChildren(QAbstractScrollArea)]
    for w in items:
        if not w.isVisibleTo(win) or w.width() <= 0:
            continue
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r} in {type(w.parentWidget()).__name__}"
        child = w
        while child is not win:
            parent = child.parentWidget()
            if _scroll_viewport(parent):
                break  # inside scrolled content: reachable by scrolling (the scroll area is checked itself)
            if not QRect(QPoint(0, 0), parent.size()).contains(_rect_in(w, parent)):
                bad.append(f"{name}: {_rect_in(w, parent).getRect()} outside {type(parent).__name__} "
                           f"{parent.size().toTuple()}")
                break
            child = parent
        if isinstance(w, QPushButton) and w.width() < w.minimumSizeHint().width() - 1:
            bad.append(f"{name}: {w.width()} px wide, its text needs {w.minimumSizeHint().width()}")
    return bad


@pytest.mark.gl
@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_every_panel_fits_the_window(qtbot, size):
    from app.window import MainWindow

    win = MainWindow(Settings(), start_engine=False)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    assert win.dock.isVisible()
    for i in range(win.tabs.count()):
        win.tabs.setCurrentIndex(i)
        QApplication.processEvents()
        assert win.size().toTuple() == size, f"{win.tabs.tabText(i)} makes the window grow to {win.size().toTuple()}"
        bad = clipped_controls(win)
        assert not bad, f"{win.tabs.tabText(i)} at {size}: " + "; ".join(bad)
    # the check can fail: a button pushed out of its parent is reported
    panel = win.panel_for("world")
    win.tabs.setCurrentWidget(panel)
    panel.start_btn.move(panel.start_btn.parentWidget().width() - 5, 0)
    assert any("'Start'" in b for b in clipped_controls(win))


def _pixel(widget, x, y) -> QColor:
    return widget.grab().toImage().pixelColor(x, y)


@pytest.fixture
def themed():
    from app.theme import apply_theme

    app = QApplication.instance()

    def switch(name):
        apply_theme(app, name)
        app.processEvents()  # Qt posts the palette change to each widget

    yield switch
    switch("light")  # other tests expect Qt's standard palette
    app.setStyleSheet("")


def test_dark_theme_reaches_the_icon_canvas_and_the_sketch_pad(qtbot, themed):
    from widgets.sketch_pad import SketchPad
    from widgets.svg_canvas import IconCanvas

    themed("dark")
    canvas, pad = IconCanvas(), SketchPad(160)
    for w in (canvas, pad):
        qtbot.addWidget(w)
        w.resize(300, 300)
        w.show()
    qtbot.waitExposed(pad)
    canvas.fit()
    assert _pixel(canvas, 3, 3).lightness() < 60  # around the page
    assert _pixel(canvas, 150, 150).lightness() < 80  # the page itself
    assert _pixel(pad, 80, 80).lightness() < 80
    pad.add_stroke([(20, 80), (140, 80)])
    assert _pixel(pad, 80, 80).lightness() > 180  # light ink on the dark pad
    assert pad.image()[80, 80] < 60 and pad.image()[20, 20] == 255  # the engine still gets dark ink on white
    themed("light")  # a switch reaches them at once
    assert _pixel(canvas, 150, 150).lightness() > 240 and _pixel(pad, 30, 30).lightness() > 240
    assert _pixel(pad, 80, 80).lightness() < 80


def test_dark_is_the_default_and_plots_follow_the_theme(qtbot, themed):
    import pyqtgraph as pg

    from widgets.speech_plots import SpeechPlots
    from widgets.stats_plot import ThroughputPlot

    assert Settings().theme == "dark"
    themed("dark")
    assert QApplication.palette().window().color().lightness() < 80
    plot, speech = ThroughputPlot(), SpeechPlots()
    for w in (plot, speech):
        qtbot.addWidget(w)
    assert pg.mkColor(plot.backgroundBrush().color()).lightness() < 60
    assert speech.view.backgroundBrush().color().lightness() < 60
    assert plot.getAxis("left").textPen().color().lightness() > 150
    themed("light")
    assert plot.backgroundBrush().color().lightness() > 240 and speech.view.backgroundBrush().color().lightness() > 240
    assert plot.getAxis("left").textPen().color().lightness() < 100


def test_no_missing_glyph_buttons(qtbot):
    """Button texts use characters every font has (the Icon seed button once showed a box for a dice emoji)."""
    from app.bridge import EngineBridge
    from app.icon_panel import IconPanel

    panel = IconPanel(EngineBridge(), Settings())
    qtbot.addWidget(panel)
    texts = [b.text() for b in panel.findChildren(QPushButton)]
    assert "Random" in texts
    assert all(ord(c) < 0x2600 for t in texts for c in t), texts  # no emoji / pictographs
