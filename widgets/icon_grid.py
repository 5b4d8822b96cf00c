"""Grid of icon candidates that draw themselves live, path by path. Plain data in (the Icon engine's
wire paths {"cmds", "pts"} on the 0..511 grid); a click on a tile emits `candidateClicked(i)`."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from widgets.svg_canvas import GRID_MAX, painter_path
from widgets.theme import canvas_colours


class CandidateTile(QWidget):
    clicked = Signal(int)

    def __init__(self, index: int, parent=None):
        super().__init__(parent)
        self.index = index
        self.paths: list[dict] = []  # finished paths
        self.current: dict | None = None  # the path being drawn
        self.state = "empty"  # empty, drawing, done, invalid (ended unfinished), stopped (by the user)
        self.score: float | None = None
        self.rank: int | None = None
        self.chosen = False
        self.setMinimumSize(96, 96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to open this candidate in the editor")

    def clear(self) -> None:
        self.paths, self.current, self.state, self.score, self.rank = [], None, "drawing", None, None
        self.update()

    def set_path(self, index: int, path: dict, final: bool) -> None:
        if final:
            while len(self.paths) <= index:
                self.paths.append({"cmds": "", "pts": path["pts"][:0]})
            self.paths[index] = path
            self.current = None
        else:
            self.current = path
        self.update()

    def finish(self, paths: list[dict], valid: bool) -> None:
        self.paths, self.current = list(paths), None
        self.state = "done" if valid else "invalid"
        self.update()

    def stop(self, state: str = "stopped") -> None:
        """The job ended before this candidate did: keep what is drawn, stop saying "drawing…"."""
        if self.current is not None and self.current.get("cmds"):
            self.paths.append(self.current)  # shown while drawing: it stays shown, so it is counted
        self.current = None
        self.state = state
        self.update()

    def drawn_paths(self) -> int:
        """How many paths are on the tile now, the one being drawn included (what the label says)."""
        return sum(1 for p in self.paths if p["cmds"]) + bool(self.current is not None and self.current.get("cmds"))

    def label(self) -> str:
        n = self.drawn_paths()
        paths = f"{n} path" + ("" if n == 1 else "s")
        if self.state == "drawing":
            return f"drawing… {paths}"
        if self.state == "invalid":
            return f"incomplete · {paths}"
        if self.state == "stopped":
            return f"stopped · {paths}"
        if self.state == "done":
            label = paths
            if self.score is not None:
                label += f" · match {self.score:.2f}" + (f" #{self.rank + 1}" if self.rank is not None else "")
            return label
        return ""

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange:
            self.update()
        super().changeEvent(ev)

    def heightForWidth(self, w: int) -> int:
        return w

    def mousePressEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.index)

    def paintEvent(self, ev):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(self.width(), self.height()) - 8
        x0, y0 = (self.width() - side) / 2, (self.height() - side) / 2
        c = canvas_colours(self)
        p.fillRect(QRectF(x0, y0, side, side), c.paper)
        border = QColor("#2b7de9") if self.chosen else c.border
        p.setPen(QPen(border, 2 if self.chosen else 1))
        p.drawRect(QRectF(x0, y0, side, side))
        p.save()
        icon = side - 26  # the icon above a strip for its label, so the text never covers the drawing
        p.translate(x0 + (side - icon) / 2, y0 + 4)
        p.scale(icon / GRID_MAX, icon / GRID_MAX)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(c.ink)
        for path in self.paths:
            if path["cmds"]:
                p.drawPath(painter_path(path["cmds"], path["pts"]))
        if self.current is not None and self.current.get("cmds"):
            p.setBrush(QColor(230, 120, 30, 170))
            p.drawPath(painter_path(self.current["cmds"], self.current["pts"]))
        p.restore()
        p.setPen(c.faint_text)
        p.drawText(QRectF(x0 + 4, y0 + side - 20, side - 8, 16), Qt.AlignmentFlag.AlignLeft, self.label())
        p.end()


class CandidateGrid(QWidget):
    candidateClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setSpacing(6)
        self.tiles: list[CandidateTile] = []

    def reset(self, n: int) -> None:
        """Show n empty tiles, drawing."""
        for t in self.tiles:
            self.grid.removeWidget(t)
            t.deleteLater()
        self.tiles = []
        cols = 1 if n == 1 else 2 if n <= 4 else 4
        for i in range(n):
            t = CandidateTile(i, self)
            t.clicked.connect(self.candidateClicked)
            t.clear()
            self.grid.addWidget(t, i // cols, i % cols)
            self.tiles.append(t)

    def tile(self, i: int) -> CandidateTile | None:
        return self.tiles[i] if 0 <= i < len(self.tiles) else None

    def set_scores(self, scores, rerank: bool = False) -> list[int]:
        """Show each tile's text-match score; with rerank, lay the tiles out best first. -> display order."""
        order = sorted(range(min(len(scores), len(self.tiles))), key=lambda i: -float(scores[i]))
        for rank, i in enumerate(order):
            self.tiles[i].score, self.tiles[i].rank = float(scores[i]), rank
            self.tiles[i].update()
        if rerank and self.tiles:
            cols = 1 if len(self.tiles) == 1 else 2 if len(self.tiles) <= 4 else 4
            for t in self.tiles:
                self.grid.removeWidget(t)
            for pos, i in enumerate(order):
                self.grid.addWidget(self.tiles[i], pos // cols, pos % cols)
        return order

    def set_chosen(self, i: int) -> None:
        for t in self.tiles:
            t.chosen = t.index == i
            t.update()
