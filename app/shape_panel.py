"""The 3D panel: type and/or sketch an object and watch its octree grow coarse-to-fine in the viewport.

Every octree level the engine finishes arrives as a `partial` event and is drawn at once as voxels;
the final smoothed mesh replaces them. A level slider scrubs back through the levels; the viewport
shows the mesh shaded, as wireframe or as voxels. Import OBJ/PLY/GLB to view (drag and drop works
too), export the result as OBJ, PLY or GLB in metres, standing on the floor: "Size" Auto takes a typical
size for the object the prompt names (app/object_sizes.py), a number is the longest side in metres.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QScrollArea, QSlider, QSpinBox,
                               QVBoxLayout, QWidget)

from app.panel import Panel
from app.object_sizes import MAX_SIZE_M, MIN_SIZE_M, explicit_size, size_for
from app.project import load_npz, npz_bytes
from app.shape_files import EXPORT_FORMATS, IMPORT_FORMATS, MeshFileError, export_mesh, import_mesh, place
from engine.protocol import Event
from widgets.shape_view import MODES, ShapeViewport
from widgets.sketch_pad import SketchPad

INPUT_MODES = ("text", "sketch", "both")
VIEWS = ("front", "side", "top")
SKETCH_FORMATS = (".png", ".jpg", ".jpeg", ".bmp")


class ShapePanel(Panel):
    title = "3D"
    task = "shape"
    import_formats = IMPORT_FORMATS + SKETCH_FORMATS  # meshes to view, pictures to sketch from
    can_export = True

    def __init__(self, bridge, settings, parent=None):
        super().__init__(bridge, settings, parent)
        self.setAcceptDrops(True)
        body = QHBoxLayout()
        self.root.addLayout(body, 1)

        # ---- left: viewport + its toolbar ----
        left = QVBoxLayout()
        body.addLayout(left, 1)
        self.viewport = ShapeViewport()
        left.addWidget(self.viewport, 1)
        bar = QHBoxLayout()
        self.display_box = QComboBox()
        self.display_box.addItems(MODES)
        self.display_box.setToolTip("How the shape is drawn: smooth mesh, its wireframe, or the octree voxels")
        self.level_slider = QSlider(Qt.Orientation.Horizontal)
        self.level_slider.setRange(0, 0)
        self.level_slider.setToolTip("Scrub the octree levels coarse-to-fine; the right end shows the newest / the mesh")
        self.level_label = QLabel("no shape")
        self.level_label.setMinimumWidth(140)
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.display_box)
        bar.addWidget(QLabel("Level"))
        bar.addWidget(self.level_slider, 1)
        bar.addWidget(self.level_label)
        left.addLayout(bar)

        # ---- right: inputs (scrolls when the window is too short for them) ----
        side_w = QWidget()
        side = QVBoxLayout(side_w)
        side.setContentsMargins(0, 0, 4, 0)
        self.side_scroll = QScrollArea()
        self.side_scroll.setWidgetResizable(True)
        self.side_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        column = QVBoxLayout()  # the inputs scroll; Generate, progress and files stay in view below them
        column.addWidget(self.side_scroll, 1)
        body.addLayout(column)
        box = QGroupBox("Describe it")
        form = QFormLayout(box)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("e.g. a wooden chair, a table lamp, a tree")
        self.prompt.returnPressed.connect(self.generate)
        self.mode_box = QComboBox()
        self.mode_box.addItems(INPUT_MODES)
        self.mode_box.setToolTip("Condition on the text, on the sketch, or on both")
        form.addRow("Prompt", self.prompt)
        form.addRow("Use", self.mode_box)
        side.addWidget(box)

        sk = QGroupBox("Sketch")
        skl = QVBoxLayout(sk)
        self.pad = SketchPad(220, undo_stack=self.undo_stack)  # strokes undo with the panel's other edits
        skl.addWidget(self.pad, 0, Qt.AlignmentFlag.AlignHCenter)
        tools = QHBoxLayout()
        self.pen_btn = QPushButton("Pen")
        self.eraser_btn = QPushButton("Eraser")
        for b in (self.pen_btn, self.eraser_btn):
            b.setCheckable(True)
        self.pen_btn.setChecked(True)
        self._pens = QButtonGroup(self)
        self._pens.addButton(self.pen_btn)
        self._pens.addButton(self.eraser_btn)
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.setToolTip("Undo the last edit in this panel (Ctrl+Z): a stroke, a clear, a setting")
        self.clear_btn = QPushButton("Clear")
        self.load_btn = QPushButton("Load…")
        for b in (self.pen_btn, self.eraser_btn, self.undo_btn, self.clear_btn, self.load_btn):
            tools.addWidget(b)
        skl.addLayout(tools)
        vrow = QHBoxLayout()
        self.view_box = QComboBox()
        self.view_box.addItems(VIEWS)
        self.view_box.setToolTip("Which side of the object the sketch shows")
        vrow.addWidget(QLabel("Drawn from the"))
        vrow.addWidget(self.view_box)
        vrow.addStretch(1)
        skl.addLayout(vrow)
        side.addWidget(sk)

        gen = QGroupBox("Generation")
        gf = QFormLayout(gen)
        seed_row = QHBoxLayout()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.dice = QPushButton("Random")
        self.dice.setToolTip("New random seed")
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        seed_w = QWidget()
        seed_w.setLayout(seed_row)
        seed_row.setContentsMargins(0, 0, 0, 0)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(1.0, 10.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(2.5)
        self.guidance.setToolTip("Classifier-free guidance: higher follows the prompt / sketch more closely")
        self.steps = QSpinBox()
        self.steps.setRange(1, 8)
        self.steps.setValue(4)
        self.steps.setToolTip("Masked decoding steps per octree level: 1 = the whole level in one token-parallel "
                              "pass; more steps let the nodes of a level agree with each other (cleaner shapes)")
        gf.addRow("Seed", seed_w)
        gf.addRow("Guidance", self.guidance)
        gf.addRow("Steps / level", self.steps)
        side.addWidget(gen)

        row = QHBoxLayout()
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.setDefault(True)
        row.addWidget(self.generate_btn)
        column.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        column.addWidget(self.progress)
        size_row = QHBoxLayout()
        self.export_size = QDoubleSpinBox()
        self.export_size.setRange(0.0, MAX_SIZE_M)  # 0 shows as "Auto"
        self.export_size.setDecimals(3)
        self.export_size.setSingleStep(0.1)
        self.export_size.setSuffix(" m")
        self.export_size.setSpecialValueText("Auto")
        self.export_size.setToolTip("Size of exported files: Auto = a typical size for the object the prompt names "
                                    "(a chair 0.9 m tall, a cup 0.1 m; 1 m on the longest side when unknown); "
                                    "a number = the longest side in metres")
        size_row.addWidget(QLabel("Export size"))
        size_row.addWidget(self.export_size, 1)
        column.addLayout(size_row)
        files = QHBoxLayout()
        self.import_btn = QPushButton("Import…")
        self.export_btn = QPushButton("Export…")
        files.addWidget(self.import_btn)
        files.addWidget(self.export_btn)
        column.addLayout(files)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setMinimumWidth(260)
        self.info.setMinimumHeight(3 * self.info.fontMetrics().lineSpacing())  # room for the timings line
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.info)
        side.addStretch(1)
        self.side_scroll.setWidget(side_w)
        self.side_scroll.setMinimumWidth(side_w.sizeHint().width() + self.side_scroll.verticalScrollBar().sizeHint().width())

        self.mesh: tuple[np.ndarray, np.ndarray] | None = None  # the shape to export
        self.mesh_source = ""
        self.generate_btn.clicked.connect(self.generate)
        self.dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31 - 1)))
        self.pen_btn.toggled.connect(lambda on: self.pad.set_pen("ink" if on else "erase"))
        self.undo_btn.clicked.connect(self.undo_stack.undo)
        self.undo_stack.canUndoChanged.connect(self.undo_btn.setEnabled)
        self.undo_btn.setEnabled(False)
        for w, label in ((self.prompt, "prompt"), (self.mode_box, "input"), (self.view_box, "sketch view"),
                         (self.seed, "seed"), (self.guidance, "guidance"), (self.steps, "steps"),
                         (self.export_size, "export size")):
            self.fields.watch(w, label)
        self.clear_btn.clicked.connect(self.pad.clear)
        self.load_btn.clicked.connect(self.ask_load_sketch)
        self.pad.changed.connect(self._sketch_changed)
        self.display_box.currentTextChanged.connect(self.viewport.set_mode)
        self.level_slider.valueChanged.connect(self._scrub)
        self.import_btn.clicked.connect(self.ask_import)
        self.export_btn.clicked.connect(self.ask_export)
        self._sync()

    # ---- generating ----------------------------------------------------------------------------
    def params(self) -> dict:
        mode = self.mode_box.currentText()
        p = {"prompt": self.prompt.text().strip(), "mode": mode, "view": self.view_box.currentText(),
             "seed": self.seed.value(), "guidance": self.guidance.value(), "steps": self.steps.value()}
        if mode in ("sketch", "both") and not self.pad.is_empty():
            p["sketch"] = self.pad.image()
        return p

    def generate(self) -> None:
        if self.job:
            self.stop_job()
            return
        p = self.params()
        if p["mode"] in ("text", "both") and not p["prompt"]:
            self.error_box.show_error("Type a prompt first (for example 'a wooden chair'), or switch 'Use' to sketch.")
            return
        if p["mode"] in ("sketch", "both") and "sketch" not in p:
            self.error_box.show_error("Draw a sketch first (or load an image), or switch 'Use' to text.")
            return
        self.viewport.clear_shape()
        self.mesh = None
        self.level_slider.blockSignals(True)
        self.level_slider.setRange(0, 0)
        self.level_slider.blockSignals(False)
        self.level_label.setText("growing…")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if self.run_job(p):
            self.info.setText("Growing the octree…")
        self._sync()

    def on_event(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "partial" and "centres" in d:
            self.viewport.add_level(d["level"], d["centres"], d["states"], d["size"], d.get("grid"))
            self._levels_changed(follow=True)
            self.info.setText(f"Level {d['level']}: {d['grid']}³ grid, {len(d['centres'])} surface cells, "
                              f"{d.get('tokens', 0)} octree nodes decoded")
        elif ev.kind == "progress" and "total" in d:
            self.progress.setRange(0, int(d["total"]))
            self.progress.setValue(min(int(d["done"]), int(d["total"]) - 1))  # full only with the output
        elif ev.kind == "output" and "vertices" in d:
            self.mesh = (np.array(d["vertices"], np.float32), np.array(d["faces"], np.uint32))
            self.mesh_source = self.prompt.text().strip() or "sketch"
            self.viewport.set_final_mesh(*self.mesh)
            self.progress.setValue(self.progress.maximum())
            self._levels_changed(follow=True)
            if len(d["faces"]) == 0:
                self.mesh = None
                self.info.setText("The model grew an empty shape this time; try another seed or prompt.")
                return
            self.info.setText(f"Done: {len(d['faces'])} triangles from {d.get('tokens', 0)} octree nodes. "
                              f"First level after {d.get('level1_ms', 0):.0f} ms, octree {d.get('octree_ms', 0):.0f} ms, "
                              f"mesh {d.get('mesh_ms', 0):.0f} ms, total {d.get('total_ms', 0):.0f} ms.")
        if ev.terminal:
            if ev.kind == "cancelled":
                self.info.setText("Stopped; the levels decoded so far stay on screen.")
                self.progress.setValue(0)
            QTimer.singleShot(0, self._sync)

    # ---- viewport controls ---------------------------------------------------------------------
    def _levels_changed(self, follow: bool) -> None:
        n = len(self.viewport.levels) + (1 if self.viewport.final_mesh is not None else 0)
        at_end = self.level_slider.value() >= self.level_slider.maximum()
        self.level_slider.blockSignals(True)
        self.level_slider.setRange(0, max(0, n - 1))
        if follow and at_end:
            self.level_slider.setValue(n - 1)
        self.level_slider.blockSignals(False)
        self._scrub(self.level_slider.value())

    def _scrub(self, value: int) -> None:
        levels = sorted(self.viewport.levels)
        if value < len(levels) and (value < len(levels) - 1 or self.viewport.final_mesh is not None):
            self.viewport.show_level(levels[value])
            lv = self.viewport.levels[levels[value]]
            self.level_label.setText(f"level {levels[value]} · {lv['grid']}³")
        else:
            self.viewport.show_level(None)
            if self.viewport.final_mesh is not None:
                self.level_label.setText("final mesh")
            elif levels:
                self.level_label.setText(f"level {levels[-1]} · {self.viewport.levels[levels[-1]]['grid']}³")
            else:
                self.level_label.setText("no shape")

    # ---- sketch --------------------------------------------------------------------------------
    def _sketch_changed(self) -> None:
        if not self.pad.is_empty() and self.mode_box.currentText() == "text":
            with self.fields.paused():  # follows from the stroke: not an undo step of its own
                self.mode_box.setCurrentText("both" if self.prompt.text().strip() else "sketch")

    def load_sketch(self, path: str | Path) -> None:
        from app.sketch_files import SketchFileError, load_sketch

        try:
            img = load_sketch(path)
        except SketchFileError as e:
            self.error_box.show_error(str(e))
            return
        self.pad.load_image(img)

    def ask_load_sketch(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a sketch", "", "Images (*.png *.jpg *.jpeg *.bmp)")
        if path:
            self.load_sketch(path)

    # ---- files ---------------------------------------------------------------------------------
    def import_file(self, path: str | Path) -> bool:
        """Show a mesh file in the viewport; a broken file gives a message and changes nothing."""
        try:
            v, f = import_mesh(path)
        except MeshFileError as e:
            self.error_box.show_error(str(e))
            return False
        self.error_box.clear()
        self.viewport.clear_shape()
        self.viewport.set_final_mesh(v, f)
        self.mesh = (v, f)
        self.mesh_source = Path(path).name
        self._levels_changed(follow=True)
        self.info.setText(f"Imported {Path(path).name}: {len(v)} vertices, {len(f)} triangles.")
        self.settings.add_recent(str(path))
        return True

    def export_file(self, path: str | Path) -> Path | None:
        if self.mesh is None:
            self.error_box.show_error("There is no mesh to export yet: generate or import one first.")
            return None
        size = self.export_target()
        try:
            out = export_mesh(*self.mesh, path, size.metres, size.measure)
        except MeshFileError as e:
            self.error_box.show_error(str(e))
            return None
        self.info.setText(f"Saved {out.name}: {size.describe(np.ptp(place(self.mesh[0], size.metres, size.measure), 0))}.")
        return out

    def export_target(self):
        """What an export is scaled to: the Size box when set, else a typical size for the prompt's object
        (or, for an imported mesh, the words of its file name)."""
        if self.export_size.value() >= MIN_SIZE_M:
            return explicit_size(self.export_size.value())
        return size_for(self.mesh_source.replace("_", " "))

    def ask_import(self) -> None:
        pattern = " ".join(f"*{e}" for e in IMPORT_FORMATS)
        path, _ = QFileDialog.getOpenFileName(self, "Import a mesh", "", f"Meshes ({pattern})")
        if path:
            self.import_file(path)

    def ask_export(self) -> None:
        if self.mesh is None:
            self.error_box.show_error("There is no mesh to export yet: generate or import one first.")
            return
        stem = "".join(c if c.isalnum() else "_" for c in self.mesh_source)[:40].strip("_") or "shape"
        path, _ = QFileDialog.getSaveFileName(self, "Export the mesh", f"{stem}.glb",
                                              "glTF binary (*.glb);;Wavefront OBJ (*.obj);;Stanford PLY (*.ply)")
        if path:
            if Path(path).suffix.lower() not in EXPORT_FORMATS:
                path += ".glb"
            self.export_file(path)

    def dragEnterEvent(self, ev):
        urls = ev.mimeData().urls() if ev.mimeData().hasUrls() else []
        if any(Path(u.toLocalFile()).suffix.lower() in self.import_formats for u in urls):
            ev.acceptProposedAction()
        else:
            ev.ignore()  # a project or another panel's file: the window routes it

    def dropEvent(self, ev):
        for u in ev.mimeData().urls():
            if Path(u.toLocalFile()).suffix.lower() in self.import_formats:
                self.open_file(u.toLocalFile())
                ev.acceptProposedAction()
                return
        ev.ignore()

    # ---- File menu -----------------------------------------------------------------------------
    def open_file(self, path: str) -> bool:
        if Path(path).suffix.lower() in SKETCH_FORMATS:
            self.load_sketch(path)
            return not self.error_box.isVisible()
        return self.import_file(path)

    def file_import(self) -> None:
        meshes = " ".join(f"*{e}" for e in IMPORT_FORMATS)
        sketches = " ".join(f"*{e}" for e in SKETCH_FORMATS)
        path, _ = QFileDialog.getOpenFileName(self, "Import a mesh or a sketch", "",
                                              f"Meshes and sketches ({meshes} {sketches});;Meshes ({meshes});;"
                                              f"Sketch pictures ({sketches})")
        if path:
            self.open_file(path)

    def file_export(self) -> None:
        self.ask_export()

    # ---- results in project files --------------------------------------------------------------
    def save_results(self) -> dict[str, bytes]:
        arrays: dict[str, np.ndarray] = {}
        if self.mesh is not None:
            arrays["vertices"], arrays["faces"] = self.mesh  # (V, 3) float32, (F, 3) uint32
            arrays["source"] = np.array(self.mesh_source)
        for lv, d in self.viewport.levels.items():  # the streamed octree levels, for the level slider
            arrays[f"level{lv}_centres"] = d["centres"]
            arrays[f"level{lv}_states"] = d["states"]
            arrays[f"level{lv}_size_grid"] = np.array([d["size"], d["grid"]], np.float64)
        if self.pad.background is not None:
            arrays["sketch_background"] = self.pad.background  # (side, side) uint8, a loaded picture
        return {"shape.npz": npz_bytes(**arrays)} if arrays else {}

    def restore_results(self, files: dict[str, bytes]) -> None:
        self.viewport.clear_shape()
        self.mesh, self.mesh_source = None, ""
        self.info.setText("")
        self.pad.background = None
        self.pad.update()
        if "shape.npz" in files:
            try:
                z = load_npz(files["shape.npz"])
                for key in sorted(k for k in z if k.endswith("_centres")):
                    lv = int(key[len("level"):-len("_centres")])
                    size, grid = z[f"level{lv}_size_grid"]
                    self.viewport.add_level(lv, z[key], z[f"level{lv}_states"], float(size), int(grid))
                if "vertices" in z and len(z["faces"]):
                    v, f = np.asarray(z["vertices"], np.float32).reshape(-1, 3), np.asarray(z["faces"], np.uint32).reshape(-1, 3)
                    if len(f) and int(f.max()) >= len(v):
                        raise ValueError("a face points past the last vertex")
                    self.mesh, self.mesh_source = (v, f), str(z.get("source", "shape"))
                    self.viewport.set_final_mesh(v, f)
                    self.info.setText(f"{len(f)} triangles (from the project).")
                if "sketch_background" in z:
                    bg = np.asarray(z["sketch_background"], np.uint8)
                    if bg.shape == (self.pad.side, self.pad.side):
                        self.pad.background = bg
                        self.pad.update()
            except (KeyError, ValueError, TypeError, OSError) as e:
                self.error_box.show_error(f"The project's 3D result could not be read ({e}); the inputs were restored.")
        self.level_slider.blockSignals(True)
        self.level_slider.setRange(0, 0)
        self.level_slider.blockSignals(False)
        self._levels_changed(follow=True)

    # ---- state ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        running = self.job is not None
        self.generate_btn.setText("Stop" if running else "Generate")
        self.export_btn.setEnabled(not running)
        self.import_btn.setEnabled(not running)

    def save_state(self) -> dict:
        return {"prompt": self.prompt.text(), "mode": self.mode_box.currentText(), "view": self.view_box.currentText(),
                "seed": self.seed.value(), "guidance": self.guidance.value(), "steps": self.steps.value(),
                "display": self.display_box.currentText(), "strokes": self.pad.to_state(),
                "export_size": self.export_size.value()}

    def restore_state(self, state: dict) -> None:
        self.prompt.setText(str(state.get("prompt", "")))
        for box, key in ((self.mode_box, "mode"), (self.view_box, "view"), (self.display_box, "display")):
            if state.get(key) in [box.itemText(i) for i in range(box.count())]:
                box.setCurrentText(state[key])
        try:
            self.seed.setValue(int(state.get("seed", 0)))
            self.guidance.setValue(float(state.get("guidance", 2.5)))
            self.steps.setValue(int(state.get("steps", 4)))
            self.export_size.setValue(float(state.get("export_size", 0.0)))
            self.pad.from_state(state.get("strokes"))
        except (TypeError, ValueError):
            pass
