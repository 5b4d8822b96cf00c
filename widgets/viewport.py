"""A VisPy 3D viewport in a Qt widget: turntable camera (orbit, pan, zoom), a ground grid, and
meshes / point clouds given as numpy arrays. The data it draws stays in plain numpy attributes
(`self.mesh_data`, `self.points_data`) so tests can check it without a GL context."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget
from vispy import scene

from widgets.theme import canvas_colours


class Viewport3D(QWidget):
    def __init__(self, parent=None, bgcolor: str | None = None):
        """bgcolor: a fixed background; None follows the theme (dark or light)."""
        super().__init__(parent)
        self.fixed_bgcolor = bgcolor
        c = canvas_colours(self)
        self.canvas = scene.SceneCanvas(keys=None, bgcolor=bgcolor or c.viewport, show=False)
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.cameras.TurntableCamera(fov=45, elevation=25, azimuth=35, distance=3.0)
        self.grid = scene.visuals.GridLines(parent=self.view.scene, color=c.grid)
        if bgcolor is None and not c.dark:
            self.grid.set_gl_state("translucent", cull_face=False)
        self.mesh = scene.visuals.Mesh(parent=self.view.scene, shading="smooth", color=(0.75, 0.78, 0.85, 1.0))
        self.points = scene.visuals.Markers(parent=self.view.scene)
        self.mesh_data: tuple[np.ndarray, np.ndarray] | None = None
        self.points_data: np.ndarray | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas.native)

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange and self.fixed_bgcolor is None:
            self.apply_theme()
        super().changeEvent(ev)

    def apply_theme(self) -> None:
        """Background and ground grid in the theme's colours."""
        c = canvas_colours(self)
        self.canvas.bgcolor = c.viewport
        # light lines add onto a dark background; on a light one dark lines must blend instead
        self.grid._grid_color_fn["color"] = c.grid
        self.grid.set_gl_state("additive" if c.dark else "translucent", cull_face=False)
        self.canvas.update()

    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, color=(0.75, 0.78, 0.85, 1.0)) -> None:
        """vertices: (V, 3) float, faces: (F, 3) int."""
        vertices = np.asarray(vertices, dtype=np.float32)
        faces = np.asarray(faces, dtype=np.uint32)
        self.mesh_data = (vertices, faces)
        self.mesh.set_data(vertices=vertices, faces=faces, color=color)
        self.canvas.update()

    def set_points(self, xyz: np.ndarray, size: float = 6.0, color=(0.3, 0.75, 1.0, 1.0)) -> None:
        """xyz: (N, 3) float."""
        xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
        self.points_data = xyz
        self.points.set_data(xyz, size=size, face_color=color, edge_width=0)
        self.canvas.update()

    def render_image(self) -> np.ndarray:
        """Render offscreen-equivalent: (H, W, 4) uint8 of what the canvas shows."""
        return self.canvas.render()
