"""The Motion panel's 3D view: a character as bones and joints over a ground grid, with its shadow,
a root trail, a goal marker, and a camera that follows it; clicking the floor reports a point.

What is drawn lives in `SkeletonScene`, plain numpy (testable without OpenGL); `SkeletonView` is
the VisPy canvas that shows a scene. Points come in the motion model's world frame (metres, Y up,
shape (J, 3)); VisPy's turntable camera is Z up, so the view shows (x, -z, y) — a rotation, so the
character is not mirrored.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from widgets.theme import canvas_colours

GRID_HALF = 6  # metres of grid on each side of the character
TRAIL = 240  # root positions kept for the trail (8 s at 30 fps)


def to_view(p: np.ndarray) -> np.ndarray:
    """World (..., 3) Y-up -> view (..., 3) Z-up: (x, -z, y)."""
    p = np.asarray(p, np.float32)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], -1)


def from_view(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return np.stack([v[..., 0], v[..., 2], -v[..., 1]], -1)


class SkeletonScene:
    """Everything the view draws, as numpy arrays in view coordinates."""

    def __init__(self, parents: list[int] | None = None):
        self.set_skeleton(parents or [-1])
        self.goal: np.ndarray | None = None  # world (x, z)
        self.center = np.zeros(3, np.float32)  # camera target, view coords

    def set_skeleton(self, parents: list[int]) -> None:
        self.parents = list(parents)
        self.bones = np.array([(i, p) for i, p in enumerate(self.parents) if p >= 0], np.int64).reshape(-1, 2)
        self.points = np.zeros((len(self.parents), 3), np.float32)
        self.trail: list[np.ndarray] = []

    def clear(self) -> None:
        self.trail = []

    def set_pose(self, points: np.ndarray) -> None:
        """points (J, 3) world metres."""
        pts = np.asarray(points, np.float32)
        if pts.shape != (len(self.parents), 3):
            raise ValueError(f"pose has shape {pts.shape}, the skeleton needs ({len(self.parents)}, 3)")
        if not np.isfinite(pts).all():
            raise ValueError("pose has non-finite coordinates")
        self.points = to_view(pts)
        root = self.points[0]
        self.trail.append(np.array([root[0], root[1], 0.005], np.float32))
        del self.trail[:-TRAIL]
        target = np.array([root[0], root[1], 0.9], np.float32)
        self.center += 0.15 * (target - self.center) if self.trail[:-1] else target - self.center

    # ---- drawn data ------------------------------------------------------------------------
    def bone_segments(self) -> np.ndarray:
        """(2 * n_bones, 3): start, end pairs for a 'segments' line."""
        return self.points[self.bones.reshape(-1)] if len(self.bones) else np.zeros((0, 3), np.float32)

    def shadow_segments(self) -> np.ndarray:
        """The bones flattened onto the floor (a vertical light): same layout as bone_segments."""
        s = self.bone_segments().copy()
        s[:, 2] = 0.002
        return s

    def grid_segments(self) -> np.ndarray:
        """1 m grid lines around the character, snapped to whole metres so the floor does not slide."""
        cx, cy = np.round(self.center[:2])
        ticks = np.arange(-GRID_HALF, GRID_HALF + 1, dtype=np.float32)
        segs = []
        for t in ticks:
            segs += [[cx + t, cy - GRID_HALF, 0], [cx + t, cy + GRID_HALF, 0],
                     [cx - GRID_HALF, cy + t, 0], [cx + GRID_HALF, cy + t, 0]]
        return np.array(segs, np.float32)

    def trail_points(self) -> np.ndarray:
        return np.array(self.trail, np.float32) if self.trail else np.zeros((0, 3), np.float32)

    def goal_point(self) -> np.ndarray | None:
        if self.goal is None:
            return None
        return to_view(np.array([self.goal[0], 0.0, self.goal[1]]))

    @staticmethod
    def ground_hit(p0: np.ndarray, p1: np.ndarray) -> np.ndarray | None:
        """The floor point (world x, z) where the ray p0 -> p1 (view coords) meets z = 0, or None."""
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        d = p1 - p0
        if abs(d[2]) < 1e-9:
            return None
        t = -p0[2] / d[2]
        if t < 0:
            return None
        hit = p0 + t * d
        w = from_view(hit)
        return np.array([w[0], w[2]], np.float32)


class SkeletonView(QWidget):
    """VisPy canvas showing a SkeletonScene. Emits floorClicked(x, z) in world metres."""

    floorClicked = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        from vispy import scene

        self.scene_data = SkeletonScene()
        self.canvas = scene.SceneCanvas(keys=None, bgcolor=self._background(), show=False)
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(fov=45, elevation=18, azimuth=-60, distance=4.2,
                                                 center=(0, 0, 0.9), up="+z")
        self.grid = scene.visuals.Line(pos=self.scene_data.grid_segments(), connect="segments",
                                       color=(0.45, 0.5, 0.58, 0.6), parent=self.view.scene)
        self.shadow = scene.visuals.Line(pos=np.zeros((2, 3), np.float32), connect="segments",
                                         color=(0.05, 0.05, 0.07, 0.8), width=6, parent=self.view.scene)
        self.trail = scene.visuals.Line(pos=np.zeros((2, 3), np.float32), color=(0.95, 0.75, 0.3, 0.5),
                                        width=2, parent=self.view.scene)
        self.bones = scene.visuals.Line(pos=np.zeros((2, 3), np.float32), connect="segments",
                                        color=(0.55, 0.78, 1.0, 1.0), width=5, parent=self.view.scene)
        self.joints = scene.visuals.Markers(parent=self.view.scene)
        self.goal = scene.visuals.Markers(parent=self.view.scene)
        self.goal.visible = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas.native)
        self.canvas.events.mouse_press.connect(self._on_press)
        self.click_to_goal = False

    def _background(self) -> str:
        return "#20242b" if canvas_colours(self).dark else "#dfe3e8"

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange:  # the theme changed: the floor follows it
            self.canvas.bgcolor = self._background()
            self.canvas.update()
        super().changeEvent(ev)

    def set_skeleton(self, parents: list[int]) -> None:
        self.scene_data.set_skeleton(parents)

    def set_pose(self, points: np.ndarray) -> None:
        s = self.scene_data
        s.set_pose(points)
        self.bones.set_data(pos=s.bone_segments())
        self.shadow.set_data(pos=s.shadow_segments())
        self.joints.set_data(s.points, size=9, face_color=(1.0, 0.95, 0.85, 1.0), edge_width=0)
        tr = s.trail_points()
        if len(tr) >= 2:
            self.trail.set_data(pos=tr)
        self.grid.set_data(pos=s.grid_segments())
        self.view.camera.center = tuple(float(v) for v in s.center)
        self.canvas.update()

    def set_goal(self, goal) -> None:
        s = self.scene_data
        s.goal = None if goal is None else np.asarray(goal, np.float32)
        g = s.goal_point()
        self.goal.visible = g is not None
        if g is not None:
            self.goal.set_data(g[None] + [0, 0, 0.02], size=16, face_color=(1.0, 0.35, 0.3, 1.0), symbol="disc")
        self.canvas.update()

    def clear(self) -> None:
        self.scene_data.clear()
        self.trail.set_data(pos=np.zeros((2, 3), np.float32))

    def _on_press(self, event) -> None:
        if not self.click_to_goal or event.button != 1:
            return
        hit = self.floor_at(event.pos)
        if hit is not None:
            self.floorClicked.emit(float(hit[0]), float(hit[1]))

    def floor_at(self, pos) -> np.ndarray | None:
        """The world floor point (x, z) under canvas pixel `pos`."""
        tr = self.canvas.scene.node_transform(self.view.scene)
        p0 = tr.map([pos[0], pos[1], 0, 1])
        p1 = tr.map([pos[0], pos[1], 1, 1])
        return SkeletonScene.ground_hit(p0[:3] / p0[3], p1[:3] / p1[3])
