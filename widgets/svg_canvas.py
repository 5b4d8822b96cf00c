"""Icon editor canvas (QGraphicsView): draws icon paths, lets the user select a path, drag its points
and handles, zoom, and drop SVG files on it. Works on plain data only: a path is
{"cmds": "MCLZ...", "pts": (n, 2) float32 numpy} on the 0..511 grid, the Icon engine's wire format.

The canvas never changes its paths by itself: a finished drag is reported through `pointsEdited`
(old and new points) so the owner can put it on its undo stack and call `set_paths` / `set_path`.
"""
from __future__ import annotations

import numpy as np
from pathlib import Path

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from widgets.theme import canvas_colours

GRID_MAX = 511  # the icon grid: viewBox 0 0 511 511
N_POINTS = {"M": 1, "L": 1, "C": 3, "Z": 0}


def painter_path(cmds: str, pts) -> QPainterPath:
    """Icon path data -> QPainterPath (nonzero fill, like the SVG the engine writes)."""
    # plain Python floats: handing numpy scalars to Qt's overloaded methods corrupts bool refcounts (shiboken)
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2).tolist()
    qp = QPainterPath()
    qp.setFillRule(Qt.FillRule.WindingFill)
    i = 0
    for c in cmds:
        if c == "M":
            qp.moveTo(*pts[i])
        elif c == "L":
            qp.lineTo(*pts[i])
        elif c == "C":
            qp.cubicTo(QPointF(*pts[i]), QPointF(*pts[i + 1]), QPointF(*pts[i + 2]))
        elif c == "Z":
            qp.closeSubpath()
        i += N_POINTS.get(c, 0)
    return qp


def path_d(cmds: str, pts) -> str:
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    out, i = [], 0
    for c in cmds:
        n = N_POINTS[c]
        out.append(c + " ".join(f"{_num(x)} {_num(y)}" for x, y in pts[i:i + n]))
        i += n
    return "".join(out)


def _num(v: float) -> str:
    r = round(float(v), 2)
    return str(int(r)) if r == int(r) else f"{r:g}"


def icon_svg(paths: list[dict], size: int | None = None, fill: str = "currentColor") -> str:
    """Paths -> a standalone SVG document (what Export SVG writes)."""
    wh = f' width="{size}" height="{size}"' if size else ""
    body = "".join(f'<path d="{path_d(p["cmds"], p["pts"])}"/>' for p in paths)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {GRID_MAX} {GRID_MAX}"{wh}>'
            f'<g fill="{fill}">{body}</g></svg>')


def point_roles(cmds: str) -> list[str]:
    """For each point of a path: 'anchor' (on the outline) or 'handle' (a cubic control point)."""
    roles = []
    for c in cmds:
        roles += ["handle", "handle", "anchor"] if c == "C" else ["anchor"] * N_POINTS[c]
    return roles


class _Handle(QGraphicsEllipseItem):
    """A draggable point of the selected path."""

    def __init__(self, canvas: "IconCanvas", k: int, anchor: bool):
        r = 5.0
        super().__init__(-r, -r, 2 * r, 2 * r)
        self.canvas, self.k = canvas, k
        self.setBrush(QBrush(QColor("#2b7de9") if anchor else QColor("white")))
        self.setPen(QPen(QColor("#2b7de9"), 1.5))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(10)
        self.setCursor(Qt.CursorShape.SizeAllCursor)

    def mouseMoveEvent(self, ev):
        # tracked here rather than in itemChange: no QVariant round trip on every scene change
        super().mouseMoveEvent(ev)
        self.place(self.pos())

    def place(self, p: QPointF) -> None:
        """Move to p, kept inside the grid, and redraw the path."""
        p = QPointF(min(max(p.x(), 0.0), GRID_MAX), min(max(p.y(), 0.0), GRID_MAX))
        if p != self.pos():
            self.setPos(p)
        self.canvas._handle_moved(self.k, p)

    def mousePressEvent(self, ev):
        self.canvas._drag_start()
        super().mousePressEvent(ev)

    def mouseReleaseEvent(self, ev):
        super().mouseReleaseEvent(ev)
        self.canvas._drag_end()


class IconCanvas(QGraphicsView):
    selectionChanged = Signal(int)  # selected path index, -1 = none
    pointsEdited = Signal(int, object, object)  # path index, old pts, new pts (numpy)
    fileDropped = Signal(str)  # a local SVG file dropped on the canvas (other files go on to the window)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAcceptDrops(True)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMinimumSize(280, 280)
        self.paths: list[dict] = []
        self.selected = -1
        self.preview: dict | None = None  # a path being drawn by the engine (shown in a live colour)
        self.preview_index = -1
        self._items: list[QGraphicsPathItem] = []
        self._handles: list[_Handle] = []
        self._handle_lines: QGraphicsPathItem | None = None
        self._drag_old: np.ndarray | None = None
        self._zoom = 1.0
        self.page = QGraphicsRectItem(0, 0, GRID_MAX, GRID_MAX)
        self.page.setZValue(-10)
        self.scene().addItem(self.page)
        self.scene().setSceneRect(QRectF(-20, -20, GRID_MAX + 40, GRID_MAX + 40))
        self._apply_colours()

    def _apply_colours(self) -> None:
        """Background, page and ink from the theme (dark: a dark page with light ink)."""
        self.colours = canvas_colours(self)
        self.setBackgroundBrush(self.colours.background)
        self.page.setBrush(QBrush(self.colours.paper))
        self.page.setPen(QPen(self.colours.border, 0))
        self._rebuild()

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange:
            self._apply_colours()
        super().changeEvent(ev)

    # ---- data ---------------------------------------------------------------------------------
    def set_paths(self, paths: list[dict], selected: int | None = None) -> None:
        self.paths = [{"cmds": p["cmds"], "pts": np.array(p["pts"], dtype=np.float32).reshape(-1, 2)} for p in paths]
        if selected is not None:
            self.selected = selected
        if self.selected >= len(self.paths):
            self.selected = -1
        self._rebuild()

    def set_preview(self, path: dict | None, index: int = -1) -> None:
        """Show (or clear) a path the engine is drawing right now, in the live colour."""
        self.preview, self.preview_index = path, index
        self._rebuild()

    def select(self, index: int) -> None:
        self.selected = index if 0 <= index < len(self.paths) else -1
        self._rebuild()
        self.selectionChanged.emit(self.selected)

    # ---- view ---------------------------------------------------------------------------------
    def fit(self) -> None:
        self.resetTransform()
        self._zoom = 1.0
        self.fitInView(QRectF(-10, -10, GRID_MAX + 20, GRID_MAX + 20), Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_by(self, factor: float) -> None:
        new = min(max(self._zoom * factor, 0.25), 16.0)
        self.scale(new / self._zoom, new / self._zoom)
        self._zoom = new

    def wheelEvent(self, ev):
        self.zoom_by(1.15 if ev.angleDelta().y() > 0 else 1 / 1.15)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if self._zoom == 1.0:
            self.fit()

    # ---- drawing ------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        sc = self.scene()
        for it in self._items + self._handles:
            sc.removeItem(it)
        if self._handle_lines is not None:
            sc.removeItem(self._handle_lines)
            self._handle_lines = None
        self._items, self._handles = [], []
        for i, p in enumerate(self.paths):
            if i == self.preview_index and self.preview is not None:
                continue  # being redrawn: the preview stands in for it
            item = QGraphicsPathItem(painter_path(p["cmds"], p["pts"]))
            sel = i == self.selected
            item.setBrush(QBrush(QColor("#3d7fd9" if self.colours.dark else "#1d4f91") if sel else self.colours.ink))
            item.setPen(QPen(QColor("#2b7de9"), 2) if sel else QPen(Qt.PenStyle.NoPen))
            item.setData(0, i)
            sc.addItem(item)
            self._items.append(item)
        if self.preview is not None and self.preview.get("cmds"):
            item = QGraphicsPathItem(painter_path(self.preview["cmds"], self.preview["pts"]))
            item.setBrush(QBrush(QColor(230, 120, 30, 170)))
            item.setPen(QPen(QColor("#e6781e"), 2))
            item.setData(0, -1)
            sc.addItem(item)
            self._items.append(item)
        if 0 <= self.selected < len(self.paths):
            self._add_handles()

    def _add_handles(self) -> None:
        p = self.paths[self.selected]
        roles = point_roles(p["cmds"])
        self._handle_lines = QGraphicsPathItem(self._handle_line_path(p))
        self._handle_lines.setPen(QPen(QColor("#2b7de9"), 0, Qt.PenStyle.DashLine))
        self._handle_lines.setZValue(5)
        self.scene().addItem(self._handle_lines)
        for k, (x, y) in enumerate(p["pts"]):
            h = _Handle(self, k, roles[k] == "anchor")
            h.setPos(float(x), float(y))
            self.scene().addItem(h)
            self._handles.append(h)

    @staticmethod
    def _handle_line_path(p: dict) -> QPainterPath:
        """Dashed lines from each cubic's control points to their anchors."""
        qp = QPainterPath()
        pts, i, prev = p["pts"], 0, None
        for c in p["cmds"]:
            if c == "C":
                if prev is not None:
                    qp.moveTo(*prev)
                    qp.lineTo(*pts[i])
                qp.moveTo(*pts[i + 1])
                qp.lineTo(*pts[i + 2])
            n = N_POINTS[c]
            if n:
                prev = pts[i + n - 1]
            i += n
        return qp

    # ---- interaction --------------------------------------------------------------------------
    def mousePressEvent(self, ev):
        item = self.itemAt(ev.position().toPoint())
        if isinstance(item, _Handle):
            super().mousePressEvent(ev)
            return
        idx = item.data(0) if isinstance(item, QGraphicsPathItem) and item.data(0) is not None else -1
        self.select(int(idx) if idx is not None and idx >= 0 else -1)
        super().mousePressEvent(ev)

    def _drag_start(self) -> None:
        if 0 <= self.selected < len(self.paths):
            self._drag_old = self.paths[self.selected]["pts"].copy()

    def _handle_moved(self, k: int, pos: QPointF) -> None:
        if not (0 <= self.selected < len(self.paths)) or self._drag_old is None:
            return
        p = self.paths[self.selected]
        p["pts"][k] = (pos.x(), pos.y())
        item = next((it for it in self._items if it.data(0) == self.selected), None)
        if item is not None:
            item.setPath(painter_path(p["cmds"], p["pts"]))
        if self._handle_lines is not None:
            self._handle_lines.setPath(self._handle_line_path(p))

    def _drag_end(self) -> None:
        if self._drag_old is None or not (0 <= self.selected < len(self.paths)):
            return
        old, new = self._drag_old, self.paths[self.selected]["pts"].copy()
        self._drag_old = None
        if not np.array_equal(old, new):
            self.pointsEdited.emit(self.selected, old, new)

    def move_point(self, path_index: int, k: int, xy) -> None:
        """Programmatic drag of one point (tests, keyboard nudges): reported like a mouse drag."""
        self.select(path_index)
        self._drag_start()
        self._handles[k].place(QPointF(float(xy[0]), float(xy[1])))
        self._drag_end()

    # ---- drag and drop ------------------------------------------------------------------------
    @staticmethod
    def _svg_url(ev) -> str:
        for url in ev.mimeData().urls() if ev.mimeData().hasUrls() else []:
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() == ".svg":
                return url.toLocalFile()
        return ""

    def dragEnterEvent(self, ev):
        if self._svg_url(ev):
            ev.acceptProposedAction()
        else:
            ev.ignore()  # a mesh, a motion, a project: the window routes it to its panel

    def dragMoveEvent(self, ev):
        if self._svg_url(ev):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dropEvent(self, ev):
        path = self._svg_url(ev)
        if path:
            self.fileDropped.emit(path)
            ev.acceptProposedAction()
        else:
            ev.ignore()
