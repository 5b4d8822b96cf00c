"""The World panel's view: generated frames drawn nearest-neighbour upscaled (crisp pixels), an
overlay with frames per second and key-to-frame latency, keyboard capture while focused, and an
on-screen key legend. Frames are plain numpy (H, W, 3) uint8; nothing here knows about models.

Key handling is plain Python (`KeyState`): held keys in press order, the most recent one wins, no
key held = noop — the way Crafter's own player maps a keyboard to its 17 actions.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from widgets.theme import canvas_colours

# (label shown in the legend, action, Qt keys)
KEY_LEGEND: list[tuple[str, str, tuple[int, ...]]] = [
    ("W / ↑", "move_up", (Qt.Key.Key_W, Qt.Key.Key_Up)),
    ("A / ←", "move_left", (Qt.Key.Key_A, Qt.Key.Key_Left)),
    ("S / ↓", "move_down", (Qt.Key.Key_S, Qt.Key.Key_Down)),
    ("D / →", "move_right", (Qt.Key.Key_D, Qt.Key.Key_Right)),
    ("Space", "do", (Qt.Key.Key_Space,)),
    ("Tab", "sleep", (Qt.Key.Key_Tab,)),
    ("R", "place_stone", (Qt.Key.Key_R,)),
    ("T", "place_table", (Qt.Key.Key_T,)),
    ("F", "place_furnace", (Qt.Key.Key_F,)),
    ("P", "place_plant", (Qt.Key.Key_P,)),
    ("1", "make_wood_pickaxe", (Qt.Key.Key_1,)),
    ("2", "make_stone_pickaxe", (Qt.Key.Key_2,)),
    ("3", "make_iron_pickaxe", (Qt.Key.Key_3,)),
    ("4", "make_wood_sword", (Qt.Key.Key_4,)),
    ("5", "make_stone_sword", (Qt.Key.Key_5,)),
    ("6", "make_iron_sword", (Qt.Key.Key_6,)),
]
KEYMAP: dict[int, str] = {int(k): action for _, action, keys in KEY_LEGEND for k in keys}


class KeyState:
    """Which action the held keys mean: the most recently pressed key still held, else noop."""

    def __init__(self):
        self.held: list[int] = []

    def press(self, key: int) -> bool:
        """True when the key is one of ours (and the action may have changed)."""
        key = int(key)
        if key not in KEYMAP:
            return False
        if key in self.held:
            self.held.remove(key)
        self.held.append(key)
        return True

    def release(self, key: int) -> bool:
        key = int(key)
        if key not in KEYMAP:
            return False
        if key in self.held:
            self.held.remove(key)
        return True

    def clear(self) -> None:
        self.held.clear()

    @property
    def action(self) -> str:
        return KEYMAP[self.held[-1]] if self.held else "noop"


class FrameClock:
    """Frames per second over the last second or so, and key-to-frame latency percentiles (ms)."""

    def __init__(self, window: int = 30):
        self.stamps: deque = deque(maxlen=window)
        self.latencies: deque = deque(maxlen=200)

    def tick(self, t: float | None = None) -> None:
        self.stamps.append(time.monotonic() if t is None else t)

    def add_latency(self, ms: float) -> None:
        self.latencies.append(float(ms))

    def reset(self) -> None:
        self.stamps.clear()

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(self.stamps[-1] - self.stamps[0], 1e-9)

    def latency(self, q: float = 50) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None


def frame_to_image(frame: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> QImage (a copy, so the array may go away)."""
    f = np.ascontiguousarray(frame, dtype=np.uint8)
    h, w = f.shape[:2]
    return QImage(f.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class WorldView(QWidget):
    """Draws the latest frame as large as fits, integer-free nearest-neighbour scaling, with an overlay.
    Focus it (click) to play: key presses and releases become `actionChanged(action)`."""

    actionChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(256, 256)
        self.frame: np.ndarray | None = None
        self.image: QImage | None = None
        self.keys = KeyState()
        self.clock = FrameClock()
        self.status = "loading model…"  # the panel says when the world can start
        self.paused = False
        self.recording = False
        self.index = 0

    # ---- frames ---------------------------------------------------------------------------
    def show_frame(self, frame: np.ndarray, index: int | None = None, t: float | None = None) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"a frame is (H, W, 3) uint8, got shape {frame.shape}")
        self.frame = frame
        self.image = frame_to_image(frame)
        self.index = self.index + 1 if index is None else int(index)
        self.clock.tick(t)
        self.update()

    def overlay_lines(self) -> list[str]:
        lat50, lat90 = self.clock.latency(50), self.clock.latency(90)
        lines = [f"{self.clock.fps:5.1f} FPS   frame {self.index}"]
        lines.append(f"key→frame p50 {lat50:.0f} ms  p90 {lat90:.0f} ms" if lat50 is not None else "key→frame: press a key")
        lines.append(f"key: {self.keys.action}" + ("   PAUSED" if self.paused else "") + ("   ● REC" if self.recording else ""))
        return lines

    def target_rect(self) -> QRectF:
        if self.image is None:
            return QRectF(0, 0, 0, 0)
        side = min(self.width(), self.height())
        w = side * self.image.width() / max(self.image.width(), self.image.height())
        h = side * self.image.height() / max(self.image.width(), self.image.height())
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, ev) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(18, 18, 22) if canvas_colours(self).dark else QColor(200, 203, 208))
        if self.image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # nearest neighbour
            p.drawImage(self.target_rect(), self.image)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(10)
        p.setFont(font)
        lines = self.overlay_lines() if self.image is not None else [self.status]
        box_h = 18 * len(lines) + 8
        p.fillRect(QRectF(6, 6, 330, box_h), QColor(0, 0, 0, 150))
        p.setPen(QColor(235, 235, 235))
        for i, line in enumerate(lines):
            p.drawText(12, 22 + 18 * i, line)
        if not self.hasFocus() and self.image is not None:
            p.setPen(QColor(255, 220, 120))
            p.drawText(12, self.height() - 12, "click the world to steer it with the keys")
        p.end()

    # ---- keyboard -------------------------------------------------------------------------
    def event(self, ev) -> bool:
        # Tab is a game key here, not focus navigation
        if ev.type() == ev.Type.KeyPress and isinstance(ev, QKeyEvent) and ev.key() == Qt.Key.Key_Tab:
            self.keyPressEvent(ev)
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: QKeyEvent) -> None:
        if ev.isAutoRepeat():
            return
        before = self.keys.action
        if self.keys.press(ev.key()):
            if self.keys.action != before or KEYMAP.get(int(ev.key())) == before:
                self.actionChanged.emit(self.keys.action)
            self.update()
        else:
            super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: QKeyEvent) -> None:
        if ev.isAutoRepeat():
            return
        before = self.keys.action
        if self.keys.release(ev.key()):
            if self.keys.action != before:
                self.actionChanged.emit(self.keys.action)
            self.update()
        else:
            super().keyReleaseEvent(ev)

    def focusOutEvent(self, ev) -> None:
        if self.keys.held:  # keys released while we were not looking must not stay stuck
            self.keys.clear()
            self.actionChanged.emit("noop")
        self.update()
        super().focusOutEvent(ev)

    def focusInEvent(self, ev) -> None:
        self.update()
        super().focusInEvent(ev)


class KeyLegend(QWidget):
    """A compact table of the keys and what they do; the held key's row is highlighted."""

    def __init__(self, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(1)
        self.rows: dict[str, tuple[QLabel, QLabel]] = {}
        for i, (label, action, _) in enumerate(KEY_LEGEND):
            k = QLabel(label)
            k.setStyleSheet("font-family: monospace; font-weight: bold;")
            a = QLabel(action.replace("_", " "))
            grid.addWidget(k, i, 0)
            grid.addWidget(a, i, 1)
            self.rows[action] = (k, a)
        grid.addWidget(QLabel("(no key: noop)"), len(KEY_LEGEND), 0, 1, 2)
        self.active = ""

    def set_active(self, action: str) -> None:
        for name, (k, a) in self.rows.items():
            style = "background: rgba(80, 160, 255, 90);" if name == action else ""
            a.setStyleSheet(style)
        self.active = action
