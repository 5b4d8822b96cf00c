"""The 3D panel's viewport: a `Viewport3D` that keeps every streamed octree level, draws one of
them as voxel cubes (or the final mesh shaded / as wireframe), with the camera framed on the unit
cube. Everything it draws is built as plain numpy first (`voxel_mesh`, `self.levels`,
`self.shown`) so tests can check it without a GL context."""
from __future__ import annotations

import numpy as np
from vispy.visuals.filters import WireframeFilter
from vispy.visuals.transforms import MatrixTransform

from widgets.viewport import Viewport3D

MODES = ("shaded", "wireframe", "voxels")
SOLID, BOUNDARY = 1, 2  # voxel states as the engine sends them
_CUBE_FACES = [  # (axis, sign): the 4 corners of that face as offsets in units of half a voxel, CCW from outside
    (0, +1, [(1, -1, -1), (1, 1, -1), (1, 1, 1), (1, -1, 1)]),
    (0, -1, [(-1, -1, -1), (-1, -1, 1), (-1, 1, 1), (-1, 1, -1)]),
    (1, +1, [(-1, 1, -1), (-1, 1, 1), (1, 1, 1), (1, 1, -1)]),
    (1, -1, [(-1, -1, -1), (1, -1, -1), (1, -1, 1), (-1, -1, 1)]),
    (2, +1, [(-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1)]),
    (2, -1, [(-1, -1, -1), (-1, 1, -1), (1, 1, -1), (1, -1, -1)]),
]
COLOURS = {SOLID: (0.55, 0.72, 0.95, 1.0), BOUNDARY: (0.98, 0.70, 0.35, 1.0)}


def voxel_mesh(centres: np.ndarray, size: float, states: np.ndarray | None = None):
    """Voxel cubes -> (vertices (V, 3) float32, faces (F, 3) uint32, face colours (F, 4) float32),
    with the faces between two neighbouring voxels left out. centres: (N, 3) in [-0.5, 0.5]."""
    centres = np.asarray(centres, np.float32).reshape(-1, 3)
    n = len(centres)
    if n == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32), np.zeros((0, 4), np.float32)
    states = np.full(n, SOLID, np.uint8) if states is None else np.asarray(states, np.uint8)
    R = max(1, int(round(1.0 / size)))
    idx = np.clip(np.floor((centres + 0.5) * R).astype(np.int64), 0, R - 1)
    occupied = np.zeros((R + 2,) * 3, bool)
    occupied[idx[:, 0] + 1, idx[:, 1] + 1, idx[:, 2] + 1] = True
    verts, faces, cols = [], [], []
    base = 0
    for axis, sign, corners in _CUBE_FACES:
        nb = idx + 1
        nb[:, axis] += sign
        keep = ~occupied[nb[:, 0], nb[:, 1], nb[:, 2]]
        c = centres[keep]
        if not len(c):
            continue
        off = np.asarray(corners, np.float32) * (size / 2)  # (4, 3)
        v = (c[:, None, :] + off[None]).reshape(-1, 3)
        k = len(c)
        q = base + 4 * np.arange(k, dtype=np.uint32)[:, None]
        faces.append(np.concatenate([q + np.array([0, 1, 2], np.uint32), q + np.array([0, 2, 3], np.uint32)]))
        shade = 1.0 if axis == 1 and sign > 0 else 0.8 if axis != 1 else 0.6  # cheap directional look
        col = np.array([COLOURS.get(int(s), COLOURS[SOLID]) for s in (SOLID, BOUNDARY)], np.float32)
        fc = col[(states[keep] == BOUNDARY).astype(int)] * np.array([shade, shade, shade, 1], np.float32)
        cols.append(np.concatenate([fc, fc]))
        verts.append(v)
        base += len(v)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(cols)


class ShapeViewport(Viewport3D):
    """Octree levels as they stream in, the final mesh, and the display mode."""

    def __init__(self, parent=None, bgcolor: str | None = None):
        super().__init__(parent, bgcolor=bgcolor)
        cam = self.view.camera
        cam.up = "+y"  # shapes are Y-up
        cam.center = (0.0, 0.0, 0.0)
        cam.distance = 2.0
        floor = MatrixTransform()  # the grid lies on the floor of the unit cube (XZ plane, y = -0.5)
        floor.rotate(90, (1, 0, 0))
        floor.scale((0.1, 0.1, 0.1))
        floor.translate((0, -0.5, 0))
        self.grid.transform = floor
        self.levels: dict[int, dict] = {}  # level -> {"centres", "states", "size", "grid"}
        self.final_mesh: tuple[np.ndarray, np.ndarray] | None = None
        self.mode = "shaded"
        self.shown_level: int | None = None  # None = follow the newest level
        self.shown: str = "empty"  # what is on screen: "empty", "level N", "mesh"
        self.wireframe = WireframeFilter(color=(0.85, 0.9, 1.0, 1.0), width=1.0)
        self.mesh.attach(self.wireframe)
        self.wireframe.enabled = False
        self._empty()

    # ---- data in -------------------------------------------------------------------------------
    def clear_shape(self) -> None:
        self.levels.clear()
        self.final_mesh = None
        self.shown_level = None
        self._empty()

    def add_level(self, level: int, centres: np.ndarray, states: np.ndarray, size: float, grid: int | None = None) -> None:
        """One finished octree level from the engine; shown at once unless the user scrubbed back."""
        self.levels[int(level)] = {"centres": np.array(centres, np.float32).reshape(-1, 3),
                                   "states": np.array(states, np.uint8), "size": float(size),
                                   "grid": int(grid or round(1 / float(size)))}
        self.refresh()

    def set_final_mesh(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        self.final_mesh = (np.asarray(vertices, np.float32), np.asarray(faces, np.uint32))
        self.shown_level = None
        self.refresh()

    # ---- what to show --------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.refresh()

    def show_level(self, level: int | None) -> None:
        """Scrub to one level (None = the newest / the final mesh)."""
        self.shown_level = level
        self.refresh()

    def refresh(self) -> None:
        level = self.shown_level
        if level is None and self.final_mesh is not None and self.mode != "voxels":
            v, f = self.final_mesh
            if len(f) == 0:  # an empty result: nothing to draw
                self._empty()
                return
            self.wireframe.enabled = self.mode == "wireframe"
            self.wireframe.wireframe_only = self.mode == "wireframe"
            self.set_mesh(v, f, color=(0.78, 0.8, 0.86, 1.0))
            if self.mesh.shading != "smooth":
                self.mesh.shading = "smooth"
            self.shown = "mesh"
            return
        if level is None and self.levels:
            level = max(self.levels)
        if level is None or level not in self.levels:
            self._empty()
            return
        lv = self.levels[level]
        v, f, c = voxel_mesh(lv["centres"], lv["size"], lv["states"])
        self.wireframe.enabled = self.mode == "wireframe"
        self.wireframe.wireframe_only = False
        self.mesh_data = (v, f)
        if len(f):
            self.mesh.set_data(vertices=v, faces=f, face_colors=c)
            if self.mesh.shading is not None:
                self.mesh.shading = None  # voxels carry their own per-face shade
        else:
            self.mesh.set_data()
        self.shown = f"level {level}"
        self.canvas.update()

    def _empty(self) -> None:
        self.mesh.set_data()
        self.mesh_data = None
        self.shown = "empty"
        self.canvas.update()
