"""The icon library browser: search the shipped library by text, see each icon with its set, licence
and author (CC-BY sets need the attribution), open one in the editor or use it as an exemplar for the
next generation. Plain data in: the engine's library items {id, name, set, license, author,
attribution, svg, paths}; the search itself runs in the engine (it needs the text encoder)."""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
                               QWidget)

from widgets.theme import canvas_colours

THUMB = 56


def svg_pixmap(svg: str, size: int, ink: str) -> QPixmap:
    """An icon's SVG text drawn in `ink` on a transparent square."""
    r = QSvgRenderer(QByteArray(svg.replace('fill="black"', f'fill="{ink}"').encode()))
    img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    r.render(p, QRectF(2, 2, size - 4, size - 4))
    p.end()
    return QPixmap.fromImage(img)


class LibraryBrowser(QWidget):
    searchRequested = Signal(str)
    openRequested = Signal(dict)  # an item: put its paths on the canvas
    exemplarRequested = Signal(dict)  # an item: show it to the model on the next generation

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[dict] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setPlaceholderText("search the library, e.g. umbrella")
        self.query.returnPressed.connect(self._search)
        self.search_btn = QPushButton("Search")
        self.search_btn.clicked.connect(self._search)
        row.addWidget(self.query, 1)
        row.addWidget(self.search_btn)
        lay.addLayout(row)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 28, THUMB + 30))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setWordWrap(True)
        self.list.currentRowChanged.connect(self._show_info)
        self.list.itemDoubleClicked.connect(lambda _it: self._emit(self.openRequested))
        lay.addWidget(self.list, 1)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.info)
        btns = QHBoxLayout()
        self.open_btn = QPushButton("Open in editor")
        self.open_btn.clicked.connect(lambda: self._emit(self.openRequested))
        self.use_btn = QPushButton("Use as exemplar")
        self.use_btn.setToolTip("The next generation draws a new icon after this one (and any others you add)")
        self.use_btn.clicked.connect(lambda: self._emit(self.exemplarRequested))
        btns.addWidget(self.open_btn)
        btns.addWidget(self.use_btn)
        lay.addLayout(btns)
        self._enable()

    def _search(self) -> None:
        text = self.query.text().strip()
        if text:
            self.info.setText("Searching…")
            self.searchRequested.emit(text)

    def show_items(self, items: list[dict]) -> None:
        self.items = list(items)
        self.list.clear()
        ink = canvas_colours(self).ink.name()
        for it in self.items:
            label = it["name"].split(":", 1)[-1]
            w = QListWidgetItem(QIcon(svg_pixmap(it["svg"], THUMB, ink)), label[:18])
            w.setToolTip(it.get("attribution", it["name"]))
            self.list.addItem(w)
        self.info.setText(f"{len(self.items)} icons" if self.items else "Nothing found.")
        if self.items:
            self.list.setCurrentRow(0)
        self._enable()

    def show_error(self, message: str) -> None:
        self.info.setText(message)

    def current(self) -> dict | None:
        r = self.list.currentRow()
        return self.items[r] if 0 <= r < len(self.items) else None

    def _show_info(self, _row: int) -> None:
        it = self.current()
        if it is not None:
            who = f", by {it['author']}" if it.get("author") else ""
            self.info.setText(f"{it['name']} — {it['license']}{who}")
        self._enable()

    def _emit(self, signal) -> None:
        it = self.current()
        if it is not None:
            signal.emit(it)

    def _enable(self) -> None:
        ok = self.current() is not None
        self.open_btn.setEnabled(ok)
        self.use_btn.setEnabled(ok)
