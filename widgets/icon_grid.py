"""Grid of icon candidates that draw themselves live, path by path. Plain data in (the Icon engine's
wire paths {"cmds", "pts"} on the 0..511 grid); a click on a tile emits `candidateClicked(i)`."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from widgets.svg_canvas import GRID_MAX, painter_path


class CandidateTile(QWidget):
    clicked = Signal(int)

    def __init__(self, index: int, parent=None):
        super().__init__(parent)
        self.index = index
        self.paths: list[dict] = []  # finished paths
        self.current: dict | None = None  # the path being drawn
        self.state = "empty"  # empty, drawing, done, invalid
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
        p.fillRect(QRectF(x0, y0, side, side), QColor("white"))
        border = QColor("#2b7de9") if self.chosen else QColor("#c8c8c8")
        p.setPen(QPen(border, 2 if self.chosen else 1))
        p.drawRect(QRectF(x0, y0, side, side))
        p.save()
        p.translate(x0 + 4, y0 + 4)
        p.scale((side - 8) / GRID_MAX, (side - 8) / GRID_MAX)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#202020"))
        for path in self.paths:
            if path["cmds"]:
                p.drawPath(painter_path(path["cmds"], path["pts"]))
        if self.current is not None and self.current.get("cmds"):
            p.setBrush(QColor(230, 120, 30, 170))
            p.drawPath(painter_path(self.current["cmds"], self.current["pts"]))
        p.restore()
        p.setPen(QColor("#606060"))
        label = {"drawing": f"drawing… {len(self.paths)} path(s)", "invalid": "incomplete"}.get(self.state, "")
        if self.state == "done":
            label = f"{len(self.paths)} path(s)"
            if self.score is not None:
                label += f" · match {self.score:.2f}" + (f" #{self.rank + 1}" if self.rank is not None else "")
        p.drawText(QRectF(x0 + 4, y0 + side - 20, side - 8, 16), Qt.AlignmentFlag.AlignLeft, label)
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
