"""A sketch pad: draw strokes with the mouse, erase, undo / redo a stroke, clear, load an image.

Strokes are plain numpy polylines in pad coordinates (`self.strokes`: list of (pen, (N, 2) float
array), pen "ink" or "erase"), kept on a QUndoStack (the pad's own, or the panel's when given);
`image()` renders them (over a loaded background picture, if any) to a (H, W) uint8 array, dark
ink on white, which is what the engine takes as a sketch. On screen the pad follows the theme:
in the dark theme it shows light ink on a dark page (the same drawing, inverted).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.theme import canvas_colours

PEN_WIDTH = {"ink": 4.0, "erase": 18.0}


class _AddStroke(QUndoCommand):
    def __init__(self, pad: "SketchPad", stroke):
        super().__init__("stroke")
        self.pad, self.stroke = pad, stroke

    def redo(self):
        self.pad.strokes.append(self.stroke)
        self.pad._changed()

    def undo(self):
        self.pad.strokes.pop()
        self.pad._changed()


class _Clear(QUndoCommand):
    def __init__(self, pad: "SketchPad"):
        super().__init__("clear")
        self.pad = pad
        self.saved = (list(pad.strokes), pad.background)

    def redo(self):
        self.pad.strokes.clear()
        self.pad.background = None
        self.pad._changed()

    def undo(self):
        self.pad.strokes[:] = self.saved[0]
        self.pad.background = self.saved[1]
        self.pad._changed()


class _SetBackground(QUndoCommand):
    def __init__(self, pad: "SketchPad", img: np.ndarray):
        super().__init__("load image")
        self.pad, self.img, self.saved = pad, img, (list(pad.strokes), pad.background)

    def redo(self):
        self.pad.strokes.clear()
        self.pad.background = self.img
        self.pad._changed()

    def undo(self):
        self.pad.strokes[:] = self.saved[0]
        self.pad.background = self.saved[1]
        self.pad._changed()


class SketchPad(QWidget):
    changed = Signal()

    def __init__(self, size: int = 256, parent=None, undo_stack: QUndoStack | None = None):
        super().__init__(parent)
        self.side = size
        self.setFixedSize(QSize(size, size))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw the object as seen from the chosen view. Right-drag erases.")
        self.strokes: list[tuple[str, np.ndarray]] = []
        self.background: np.ndarray | None = None  # (side, side) uint8 grey, from a loaded image
        self.pen = "ink"
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self._current: list[tuple[float, float]] | None = None
        self._current_pen = "ink"

    # ---- editing -------------------------------------------------------------------------------
    def set_pen(self, pen: str) -> None:
        if pen not in PEN_WIDTH:
            raise ValueError(f"pen must be one of {list(PEN_WIDTH)}")
        self.pen = pen

    def add_stroke(self, points, pen: str | None = None) -> None:
        """Add one stroke (N, 2) in pad pixels as an undoable step (what a mouse drag does)."""
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        if len(pts):
            self.undo_stack.push(_AddStroke(self, (pen or self.pen, pts)))

    def undo(self) -> None:
        self.undo_stack.undo()

    def redo(self) -> None:
        self.undo_stack.redo()

    def clear(self) -> None:
        if self.strokes or self.background is not None:
            self.undo_stack.push(_Clear(self))

    def load_image(self, img: np.ndarray) -> None:
        """A picture (H, W) or (H, W, 3|4) uint8 becomes the pad's background (fit, grey); strokes
        drawn afterwards go on top of it."""
        a = np.asarray(img)
        if a.ndim not in (2, 3) or a.size == 0:
            raise ValueError(f"expected an image array, got shape {a.shape}")
        if a.ndim == 3:
            if a.shape[2] == 4:
                alpha = a[..., 3:4].astype(np.float32) / 255
                a = (a[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
            a = a[..., :3].mean(-1).astype(np.uint8)
        qimg = QImage(np.ascontiguousarray(a).data, a.shape[1], a.shape[0], a.shape[1], QImage.Format.Format_Grayscale8)
        scaled = qimg.scaled(self.side, self.side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        canvas = QImage(self.side, self.side, QImage.Format.Format_Grayscale8)
        canvas.fill(255)
        p = QPainter(canvas)
        p.drawImage((self.side - scaled.width()) // 2, (self.side - scaled.height()) // 2, scaled)
        p.end()
        self.undo_stack.push(_SetBackground(self, _qimage_grey(canvas)))

    def is_empty(self) -> bool:
        return self.background is None and not any(pen == "ink" for pen, _ in self.strokes)

    # ---- state (kept across restarts) ----------------------------------------------------------
    def to_state(self) -> list:
        return [[pen, pts.round(1).tolist()] for pen, pts in self.strokes][-400:]

    def from_state(self, state) -> None:
        self.strokes = [(str(pen), np.asarray(pts, np.float32).reshape(-1, 2)) for pen, pts in (state or [])
                        if pen in PEN_WIDTH]
        self.undo_stack.clear()
        self._changed()

    # ---- output --------------------------------------------------------------------------------
    def image(self) -> np.ndarray:
        """The drawing as (side, side) uint8, 0 = ink, 255 = paper."""
        img = QImage(self.side, self.side, QImage.Format.Format_Grayscale8)
        img.fill(255)
        p = QPainter(img)
        self._paint(p)
        p.end()
        return _qimage_grey(img)

    # ---- Qt ------------------------------------------------------------------------------------
    def _changed(self):
        self.update()
        self.changed.emit()

    def _paint(self, p: QPainter, ink: QColor = QColor(0, 0, 0), paper: QColor = QColor(255, 255, 255)) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.background is not None:
            # the picture's darkness becomes ink over the paper: black on white for the engine, the
            # theme's ink on its paper on screen
            bg = self.background
            layer = np.empty(bg.shape + (4,), np.uint8)  # (H, W, BGRA) premultiplied
            alpha = 255 - bg.astype(np.uint16)
            for k, v in enumerate((ink.blue(), ink.green(), ink.red())):
                layer[..., k] = (alpha * v // 255).astype(np.uint8)
            layer[..., 3] = alpha.astype(np.uint8)
            img = QImage(layer.data, bg.shape[1], bg.shape[0], 4 * bg.shape[1],
                         QImage.Format.Format_ARGB32_Premultiplied)
            p.drawImage(0, 0, img)
        strokes = list(self.strokes)
        if self._current:
            strokes.append((self._current_pen, np.asarray(self._current, np.float32)))
        for pen, pts in strokes:
            colour = ink if pen == "ink" else paper
            p.setPen(QPen(colour, PEN_WIDTH[pen], Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
            if len(pts) == 1:
                p.drawPoint(QPointF(*pts[0]))
                continue
            path = QPainterPath(QPointF(*pts[0]))
            for x, y in pts[1:]:
                path.lineTo(QPointF(x, y))
            p.drawPath(path)

    def paintEvent(self, ev):
        c = canvas_colours(self)
        p = QPainter(self)
        p.fillRect(self.rect(), c.paper)
        self._paint(p, c.ink, c.paper)
        p.setPen(QPen(c.border, 1))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if self.is_empty() and not self._current:
            p.setPen(c.faint_text)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "draw here")
        p.end()

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange:
            self.update()
        super().changeEvent(ev)

    def mousePressEvent(self, ev):
        self._current_pen = "erase" if ev.button() == Qt.MouseButton.RightButton else self.pen
        self._current = [(ev.position().x(), ev.position().y())]
        self.update()

    def mouseMoveEvent(self, ev):
        if self._current is not None:
            self._current.append((ev.position().x(), ev.position().y()))
            self.update()

    def mouseReleaseEvent(self, ev):
        if self._current is not None:
            pts, self._current = self._current, None
            self.add_stroke(pts, self._current_pen)


def _qimage_grey(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, :w].copy()
