"""The Icon panel: type a prompt, watch 1-8 candidate SVG icons draw themselves path by path, open one
in the editor to move points, delete paths, ask the model to redraw a path or suggest the next one,
import an SVG (file or drag-and-drop) and export SVG / PNG. Talks to the engine's "icon" task only."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QImage, QKeySequence, QPainter, QUndoCommand, QUndoStack
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QSplitter, QToolBar, QVBoxLayout, QWidget)

from app.panel import Panel
from engine.protocol import Event
from widgets.icon_grid import CandidateGrid
from widgets.svg_canvas import IconCanvas, icon_svg

MAX_IMPORT_BYTES = 2_000_000


def _copy(paths: list[dict]) -> list[dict]:
    return [{"cmds": p["cmds"], "pts": np.array(p["pts"], dtype=np.float32).reshape(-1, 2)} for p in paths]


class SetPathsCommand(QUndoCommand):
    """Replace the editor's whole icon (open a candidate, import, redraw, suggest, delete)."""

    def __init__(self, panel: "IconPanel", old: list[dict], new: list[dict], text: str, select: int = -1):
        super().__init__(text)
        self.panel, self.old, self.new, self.sel = panel, _copy(old), _copy(new), select

    def redo(self):
        self.panel.canvas.set_paths(_copy(self.new), selected=self.sel)

    def undo(self):
        self.panel.canvas.set_paths(_copy(self.old), selected=-1)


class MovePointsCommand(QUndoCommand):
    def __init__(self, panel: "IconPanel", index: int, old, new):
        super().__init__("Move points")
        self.panel, self.index, self.old, self.new = panel, index, np.array(old), np.array(new)

    def _apply(self, pts):
        paths = _copy(self.panel.canvas.paths)
        paths[self.index]["pts"] = np.array(pts, dtype=np.float32)
        self.panel.canvas.set_paths(paths, selected=self.index)

    def redo(self):
        self._apply(self.new)

    def undo(self):
        self._apply(self.old)


class IconPanel(Panel):
    title = "Icon"
    task = "icon"

    def __init__(self, bridge, settings, parent=None):
        super().__init__(bridge, settings, parent)
        self.undo_stack = QUndoStack(self)
        self.candidates: list[dict] = []  # finished candidates of the last generation
        self.job_mode: str | None = None
        self._build()
        self.restore_state(self.settings.panel_state.get("icon", {}))

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        controls = QWidget()
        form = QFormLayout(controls)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("describe an icon, e.g. a rocket")
        self.prompt.returnPressed.connect(self.generate)
        self.n_spin = QSpinBox(minimum=1, maximum=8, value=4)
        self.temp = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.05, value=0.8)
        self.top_p = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.95)
        self.guidance = QDoubleSpinBox(minimum=0.0, maximum=10.0, singleStep=0.25, value=2.0)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        dice = QPushButton("🎲")
        dice.setToolTip("New random seed")
        dice.setFixedWidth(32)
        dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31 - 1)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        self.rerank = QCheckBox("Rerank by text match")
        self.rerank.setChecked(True)
        self.gen_btn = QPushButton("Generate")
        self.gen_btn.setDefault(True)
        self.gen_btn.clicked.connect(self.generate)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.clicked.connect(self.stop_job)
        btns = QHBoxLayout()
        btns.addWidget(self.gen_btn)
        btns.addWidget(self.stop_btn)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form.addRow("Prompt", self.prompt)
        form.addRow("Candidates", self.n_spin)
        form.addRow("Temperature", self.temp)
        form.addRow("Top-p", self.top_p)
        form.addRow("Guidance", self.guidance)
        form.addRow("Seed", seed_row)
        form.addRow(self.rerank)
        form.addRow(btns)
        form.addRow(self.progress)
        form.addRow(self.status)

        self.grid = CandidateGrid()
        self.grid.candidateClicked.connect(self.open_candidate)

        editor = QWidget()
        ev = QVBoxLayout(editor)
        ev.setContentsMargins(0, 0, 0, 0)
        self.toolbar = QToolBar()
        self.canvas = IconCanvas()
        self.canvas.pointsEdited.connect(lambda i, old, new: self.undo_stack.push(MovePointsCommand(self, i, old, new)))
        self.canvas.selectionChanged.connect(lambda _i: self._update_actions())
        self.canvas.fileDropped.connect(self.import_file)
        self.act_redraw = self._action("Redraw selected path", self.redraw_selected, "Ctrl+R")
        self.act_suggest = self._action("Suggest next path", self.suggest_next, "Ctrl+N")
        self.act_delete = self._action("Delete path", self.delete_selected, QKeySequence.StandardKey.Delete)
        self.toolbar.addSeparator()
        undo = self.undo_stack.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        self.toolbar.addAction(undo)
        self.toolbar.addAction(redo)
        self.addAction(undo)
        self.addAction(redo)
        self.toolbar.addSeparator()
        self._action("Zoom in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
        self._action("Zoom out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self._action("Fit", self.canvas.fit)
        self.toolbar.addSeparator()
        self._action("Import SVG…", self.import_dialog, QKeySequence.StandardKey.Open)
        self._action("Export SVG…", self.export_svg_dialog, QKeySequence.StandardKey.Save)
        self.png_size = QSpinBox(minimum=16, maximum=4096, value=512, suffix=" px")
        self.png_size.setToolTip("Size of exported PNG files")
        self._action("Export PNG…", self.export_png_dialog)
        self.toolbar.addWidget(self.png_size)
        ev.addWidget(self.toolbar)
        ev.addWidget(self.canvas, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(controls)
        split.addWidget(self.grid)
        split.addWidget(editor)
        split.setStretchFactor(1, 2)
        split.setStretchFactor(2, 3)
        split.setSizes([260, 440, 700])  # the candidate grid gets room to show the icons drawing
        self.root.addWidget(split, 1)
        self.jobStarted.connect(lambda _j: self._set_running(True))
        self.jobEnded.connect(self._job_ended)
        self._update_actions()

    def _action(self, text, slot, shortcut=None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        a.triggered.connect(slot)
        self.toolbar.addAction(a)
        self.addAction(a)
        return a

    def _update_actions(self) -> None:
        running = self.job is not None
        has_sel = 0 <= self.canvas.selected < len(self.canvas.paths)
        self.act_redraw.setEnabled(has_sel and not running)
        self.act_delete.setEnabled(has_sel and not running)
        self.act_suggest.setEnabled(bool(self.canvas.paths) and not running)

    def _set_running(self, running: bool) -> None:
        self.gen_btn.setEnabled(not running)
        self.stop_btn.setEnabled(running)
        self._update_actions()

    # ---- requests -----------------------------------------------------------------------------
    def sampling(self) -> dict:
        return {"temperature": round(self.temp.value(), 3), "top_p": round(self.top_p.value(), 3),
                "guidance": round(self.guidance.value(), 3), "seed": int(self.seed.value())}

    def generate(self) -> None:
        prompt = self.prompt.text().strip()
        if not prompt:
            self.error_box.show_error("Type a prompt first, e.g. 'a rocket'.")
            return
        n = int(self.n_spin.value())
        self.grid.reset(n)
        self.candidates = []
        self._start({"mode": "generate", "prompt": prompt, "n": n, **self.sampling()}, "generate")

    def redraw_selected(self) -> None:
        i = self.canvas.selected
        if not (0 <= i < len(self.canvas.paths)):
            self.error_box.show_error("Select a path on the canvas first.")
            return
        self._start({"mode": "infill", "paths": _copy(self.canvas.paths), "index": i,
                     "prompt": self.prompt.text().strip(), **self.sampling(), "n": 1}, "infill")

    def suggest_next(self) -> None:
        if not self.canvas.paths:
            self.error_box.show_error("Open or import an icon first.")
            return
        self._start({"mode": "suggest", "paths": _copy(self.canvas.paths), "prompt": self.prompt.text().strip(),
                     **self.sampling(), "n": 1}, "suggest")

    def delete_selected(self) -> None:
        i = self.canvas.selected
        if 0 <= i < len(self.canvas.paths):
            new = [p for k, p in enumerate(self.canvas.paths) if k != i]
            self.undo_stack.push(SetPathsCommand(self, self.canvas.paths, new, "Delete path"))
            self._update_actions()

    def _start(self, params: dict, mode: str) -> None:
        self.job_mode = mode
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText({"generate": "Generating…", "infill": "Redrawing the selected path…",
                             "suggest": "Suggesting the next path…", "import": "Importing…"}[mode])
        self.run_job(params)

    # ---- events -------------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "partial":
            path = {"cmds": d.get("cmds", ""), "pts": np.asarray(d.get("pts", np.zeros((0, 2))), np.float32)}
            if self.job_mode == "generate":
                tile = self.grid.tile(int(d.get("candidate", 0)))
                if tile is not None:
                    tile.set_path(int(d.get("index", 0)), path, bool(d.get("final")))
            elif self.job_mode in ("infill", "suggest"):
                self.canvas.set_preview(path, int(d.get("index", -1)))
        elif ev.kind == "progress" and "total" in d:
            # one step more than the work, so the bar reaches the end only with the output
            self.progress.setRange(0, int(d["total"]) + 1)
            self.progress.setValue(min(int(d.get("done", 0)), int(d["total"])))
        elif ev.kind == "output":
            self._output(d)

    def _output(self, d: dict) -> None:
        mode = d.get("mode")
        if mode == "import":
            self.undo_stack.push(SetPathsCommand(self, self.canvas.paths, d["paths"], "Import SVG"))
            self.canvas.fit()
            self.status.setText(f"Imported {len(d['paths'])} path(s).")
            return
        cands = d.get("candidates", [])
        if mode == "generate":
            self.candidates = cands
            for i, c in enumerate(cands):
                tile = self.grid.tile(i)
                if tile is not None:
                    tile.finish(c["paths"], c["valid"])
            if "scores" in d:
                self.grid.set_scores(list(np.asarray(d["scores"])), rerank=self.rerank.isChecked())
            n_ok = sum(c["valid"] for c in cands)
            self.status.setText(f"{n_ok} of {len(cands)} candidates complete. Click one to edit it.")
        elif cands:
            self.canvas.set_preview(None)
            c = cands[0]
            if not c["valid"]:
                self.error_box.show_error("The model did not finish the path within its token budget; nothing changed.")
                return
            text = "Redraw path" if mode == "infill" else "Suggest path"
            sel = int(d.get("index", -1))
            self.undo_stack.push(SetPathsCommand(self, self.canvas.paths, c["paths"], text, select=sel))
            self.status.setText(f"{text}: done.")

    def _job_ended(self, _job: str, kind: str) -> None:
        self._set_running(False)
        self.canvas.set_preview(None)
        if self.progress.maximum() > 1:
            self.progress.setValue(self.progress.maximum())
        if kind == "cancelled":
            self.status.setText("Stopped.")
            for t in self.grid.tiles:
                if t.state == "drawing":
                    t.state = "invalid"
                    t.update()
        self.job_mode = None

    # ---- editor -------------------------------------------------------------------------------
    def open_candidate(self, i: int) -> None:
        if i >= len(self.candidates):
            tile = self.grid.tile(i)
            if tile is None or not tile.paths:
                return
            paths = tile.paths
        else:
            paths = self.candidates[i]["paths"]
        self.grid.set_chosen(i)
        self.undo_stack.push(SetPathsCommand(self, self.canvas.paths, paths, f"Open candidate {i + 1}"))
        self.canvas.fit()
        self._update_actions()

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import SVG", "", "SVG files (*.svg);;All files (*)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Read a file and send it through the engine's normalisation; errors leave the icon untouched."""
        p = Path(path)
        try:
            if p.stat().st_size > MAX_IMPORT_BYTES:
                raise ValueError(f"{p.name} is larger than {MAX_IMPORT_BYTES // 1_000_000} MB; icons are small SVG files")
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            self.error_box.show_error(f"Cannot import {p.name}: it is not a text (SVG) file.")
            return
        except (OSError, ValueError) as e:
            self.error_box.show_error(f"Cannot import {p.name}: {e}")
            return
        self._start({"mode": "import", "svg": text}, "import")
        self.settings.add_recent(str(p))

    def svg_text(self, size: int | None = None) -> str:
        return icon_svg(self.canvas.paths, size=size, fill="#000000")

    def export_svg(self, path: str) -> None:
        Path(path).write_text(self.svg_text())

    def export_png(self, path: str, size: int) -> bool:
        renderer = QSvgRenderer(QByteArray(self.svg_text(size).encode()))
        img = QImage(size, size, QImage.Format.Format_ARGB32)
        img.fill(QColor(0, 0, 0, 0))
        painter = QPainter(img)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        return img.save(path)

    def export_svg_dialog(self) -> None:
        if not self.canvas.paths:
            self.error_box.show_error("Nothing to export: open a candidate or import an icon first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export SVG", "icon.svg", "SVG files (*.svg)")
        if path:
            try:
                self.export_svg(path)
            except OSError as e:
                self.error_box.show_error(f"Could not write {path}: {e}")

    def export_png_dialog(self) -> None:
        if not self.canvas.paths:
            self.error_box.show_error("Nothing to export: open a candidate or import an icon first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", "icon.png", "PNG images (*.png)")
        if path and not self.export_png(path, int(self.png_size.value())):
            self.error_box.show_error(f"Could not write {path}.")

    # ---- state --------------------------------------------------------------------------------
    def save_state(self) -> dict:
        return {"prompt": self.prompt.text(), "n": self.n_spin.value(), **self.sampling(),
                "rerank": self.rerank.isChecked(), "png_size": self.png_size.value()}

    def restore_state(self, state: dict) -> None:
        if not state:
            return
        self.prompt.setText(str(state.get("prompt", "")))
        self.n_spin.setValue(int(state.get("n", 4)))
        self.temp.setValue(float(state.get("temperature", 0.8)))
        self.top_p.setValue(float(state.get("top_p", 0.95)))
        self.guidance.setValue(float(state.get("guidance", 2.0)))
        self.seed.setValue(int(state.get("seed", 0)))
        self.rerank.setChecked(bool(state.get("rerank", True)))
        self.png_size.setValue(int(state.get("png_size", 512)))
