"""The Icon panel: type a prompt, watch 1-8 candidate SVG icons draw themselves path by path, open one
in the editor to move points, delete paths, ask the model to redraw a path or suggest the next one,
import an SVG (file or drag-and-drop) and export SVG / PNG. Talks to the engine's "icon" task only."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QImage, QKeySequence, QPainter, QUndoCommand
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QScrollArea, QSpinBox, QSplitter, QTabWidget,
                               QToolBar, QVBoxLayout, QWidget)

from app.panel import Panel
from engine.protocol import Event
from widgets.icon_grid import CandidateGrid
from widgets.icon_library import LibraryBrowser
from widgets.svg_canvas import N_POINTS, IconCanvas, icon_svg

MAX_IMPORT_BYTES = 2_000_000


def _copy(paths: list[dict]) -> list[dict]:
    return [{"cmds": p["cmds"], "pts": np.array(p["pts"], dtype=np.float32).reshape(-1, 2)} for p in paths]


def _wire(paths: list[dict]) -> list[dict]:
    """Paths as JSON: {"cmds": "MLCZ", "pts": [[x, y], ...]} on the 0..511 grid."""
    return [{"cmds": p["cmds"], "pts": np.asarray(p["pts"], np.float32).reshape(-1, 2).round(3).tolist()}
            for p in paths]


def _paths_from_wire(raw) -> list[dict]:
    out = []
    for p in raw:
        cmds = str(p["cmds"])
        if set(cmds) - set("MLCZ"):
            raise ValueError(f"unknown path command in {cmds[:20]!r}")
        pts = np.asarray(p["pts"], np.float32).reshape(-1, 2)
        if len(pts) != sum(N_POINTS[c] for c in cmds):
            raise ValueError(f"a path has {len(pts)} points for commands {cmds[:20]!r}")
        out.append({"cmds": cmds, "pts": pts})
    return out


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
    import_formats = (".svg",)
    can_export = True

    def __init__(self, bridge, settings, parent=None):
        super().__init__(bridge, settings, parent)
        self.candidates: list[dict] = []  # finished candidates of the last generation
        self.scores: list[float] | None = None  # their text-match scores, when the engine sent them
        self.job_mode: str | None = None
        self._running_text = ""  # the status shown while the job runs (replaced when it ends)
        self.queued_import: tuple[str, str] | None = None  # (svg text, file name) waiting for a generation
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
        dice = QPushButton("Random")
        dice.setToolTip("New random seed")
        dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31 - 1)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        self.random_seed = QCheckBox("New seed each time")
        self.random_seed.setChecked(True)
        self.random_seed.setToolTip("Pick a fresh random seed for every generation (shown above, so you can repeat one)")
        self.rerank = QCheckBox("Rerank by text match")
        self.rerank.setChecked(True)
        self.use_library = QCheckBox("Draw after library icons")
        self.use_library.setChecked(True)
        self.use_library.setToolTip("Show the model the library icons you picked in the Library tab (and, with a "
                                    "model fine-tuned for it, the best matches for the prompt); it draws a new icon "
                                    "after them")
        self.picked: list[dict] = []  # library items the user chose as exemplars
        self.picked_label = QLabel("")
        self.picked_label.setWordWrap(True)
        self.clear_picks = QPushButton("Clear picks")
        self.clear_picks.clicked.connect(self._clear_picks)
        self.clear_picks.setEnabled(False)
        self.inspired = QLabel("")
        self.inspired.setWordWrap(True)
        self.inspired.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        form.addRow(self.random_seed)
        form.addRow(self.rerank)
        form.addRow(self.use_library)
        form.addRow(self.picked_label)
        form.addRow(self.clear_picks)
        form.addRow(btns)
        form.addRow(self.progress)
        form.addRow(self.status)
        form.addRow(self.inspired)
        for w, label in ((self.prompt, "prompt"), (self.n_spin, "candidates"), (self.temp, "temperature"),
                         (self.top_p, "top-p"), (self.guidance, "guidance"), (self.seed, "seed"),
                         (self.rerank, "rerank"), (self.random_seed, "new seed each time"),
                         (self.use_library, "draw after library icons")):
            self.fields.watch(w, label)
        # the inputs scroll when the window is short (1280x800 with the Engine dock open)
        self.controls_scroll = QScrollArea()
        self.controls_scroll.setWidgetResizable(True)
        self.controls_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.controls_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_scroll.setWidget(controls)
        self.controls_scroll.setMinimumWidth(controls.sizeHint().width()
                                             + self.controls_scroll.verticalScrollBar().sizeHint().width())

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
        self.act_suggest = self._action("Suggest next path", self.suggest_next, "Ctrl+Shift+N")
        self.act_delete = self._action("Delete path", self.delete_selected, QKeySequence.StandardKey.Delete)
        self.toolbar.addSeparator()
        # no shortcuts here: Ctrl+Z / Ctrl+Shift+Z belong to the window's Edit menu, which acts on this stack;
        # fixed texts (the step undone is in the tooltip) keep the toolbar's width steady
        for text, slot, can, what in (("Undo", self.undo_stack.undo, self.undo_stack.canUndoChanged,
                                       self.undo_stack.undoTextChanged),
                                      ("Redo", self.undo_stack.redo, self.undo_stack.canRedoChanged,
                                       self.undo_stack.redoTextChanged)):
            a = QAction(text, self, enabled=False)
            a.triggered.connect(slot)
            can.connect(a.setEnabled)
            what.connect(lambda t, a=a, v=text: a.setToolTip(f"{v} {t}".strip()))
            self.toolbar.addAction(a)
        # a second row: at 1280x800 one row would hide Import / Export behind the overflow arrow
        self.view_bar = QToolBar()
        self._action("Zoom in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn, self.view_bar)
        self._action("Zoom out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut, self.view_bar)
        self._action("Fit", self.canvas.fit, bar=self.view_bar)
        self.view_bar.addSeparator()
        # File > Import… / Export… (Ctrl+I / Ctrl+E) reach these too; Ctrl+O / Ctrl+S open and save projects
        self._action("Import SVG…", self.import_dialog, bar=self.view_bar)
        self._action("Export SVG…", self.export_svg_dialog, bar=self.view_bar)
        self.png_size = QSpinBox(minimum=16, maximum=4096, value=512, suffix=" px")
        self.png_size.setToolTip("Size of exported PNG files")
        self._action("Export PNG…", self.export_png_dialog, bar=self.view_bar)
        self.view_bar.addWidget(self.png_size)
        ev.addWidget(self.toolbar)
        ev.addWidget(self.view_bar)
        ev.addWidget(self.canvas, 1)

        self.library = LibraryBrowser()
        self.library.searchRequested.connect(self.search_library)
        self.library.openRequested.connect(self.open_library_item)
        self.library.exemplarRequested.connect(self.pick_exemplar)
        self.library_job: str | None = None
        self.middle = QTabWidget()
        self.middle.addTab(self.grid, "Candidates")
        self.middle.addTab(self.library, "Library")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.controls_scroll)
        split.addWidget(self.middle)
        split.addWidget(editor)
        split.setStretchFactor(1, 2)
        split.setStretchFactor(2, 3)
        split.setSizes([260, 440, 700])  # the candidate grid gets room to show the icons drawing
        self.root.addWidget(split, 1)
        self.jobStarted.connect(lambda _j: self._set_running(True))
        self.jobEnded.connect(self._job_ended)
        self._update_actions()

    def _action(self, text, slot, shortcut=None, bar: QToolBar | None = None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        a.triggered.connect(slot)
        (bar or self.toolbar).addAction(a)
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
        if self.random_seed.isChecked():
            self.seed.setValue(random.randrange(2**31 - 1))
        self.grid.reset(n)
        self.middle.setCurrentWidget(self.grid)
        self.candidates = []
        self.inspired.setText("")
        exemplars = "off" if not self.use_library.isChecked() else [it["id"] for it in self.picked] or "auto"
        self._start({"mode": "generate", "prompt": prompt, "n": n, **self.sampling(), "exemplars": exemplars},
                    "generate")
        if self.job and self.library.query.text().strip() != prompt:  # the library's drawings of it, a tab away
            self.library.query.setText(prompt)
            self.search_library(prompt)

    # ---- the library ---------------------------------------------------------------------------
    def search_library(self, query: str) -> None:
        if not self.bridge.connected:
            self.library.show_error("The engine is not running yet.")
            return
        if self.library_job:
            self.bridge.cancel(self.library_job)
        self.library_job = self.bridge.submit("icon", {"mode": "library", "query": query, "k": 48}, self._library_event)

    def _library_event(self, ev: Event) -> None:
        if ev.job != self.library_job:
            return
        if ev.kind == "output":
            items = ev.data.get("items", [])
            self.library.show_items(items)
            self.middle.setTabText(1, f"Library ({len(items)})" if items else "Library")
        elif ev.kind == "error":
            self.library.show_error(ev.data.get("message", "The search failed."))
        if ev.terminal:
            self.library_job = None

    def open_library_item(self, item: dict) -> None:
        paths = _paths_from_wire(item.get("paths", []))
        if paths:
            self.undo_stack.push(SetPathsCommand(self, self.canvas.paths, paths, f"Open {item['name']}"))
            self.canvas.fit()
            self.status.setText(f"Opened {item.get('attribution', item['name'])} from the library.")

    def pick_exemplar(self, item: dict) -> None:
        if any(it["id"] == item["id"] for it in self.picked):
            return
        self.picked = (self.picked + [item])[-3:]  # the model takes up to three
        self._show_picks()

    def _clear_picks(self) -> None:
        self.picked = []
        self._show_picks()

    def _show_picks(self) -> None:
        names = ", ".join(it["name"] for it in self.picked)
        self.picked_label.setText(f"Exemplars you picked: {names}" if self.picked else "")
        self.clear_picks.setEnabled(bool(self.picked))

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
        if mode != "generate":  # tiles of a generation this request replaces stop saying "drawing…"
            self._stop_drawing("stopped")
        self.job_mode = mode
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._running_text = {"generate": "Generating…", "infill": "Redrawing the selected path…",
                              "suggest": "Suggesting the next path…", "import": "Importing…"}[mode]
        self.status.setText(self._running_text)
        if self.run_job(params) is None:  # no engine: nothing runs, so nothing may say it does
            self._running_text = ""
            self.status.setText("")
            self.job_mode = None
            if mode == "generate":
                self._stop_drawing("stopped")

    def _stop_drawing(self, state: str) -> None:
        for t in self.grid.tiles:
            if t.state == "drawing":
                t.stop(state)

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
        self._running_text = ""
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
            self.scores = None
            if "scores" in d:
                self.scores = [float(x) for x in np.asarray(d["scores"]).reshape(-1)]
                self.grid.set_scores(self.scores, rerank=self.rerank.isChecked())
            n_ok = sum(c["valid"] for c in cands)
            self.status.setText(f"{n_ok} of {len(cands)} candidates complete (seed {self.seed.value()}). "
                                "Click one to edit it.")
            ex = d.get("exemplars") or []
            self.inspired.setText("Drawn after: " + "; ".join(e["attribution"] for e in ex) if ex else "")
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
        """Whatever way a job ends, nothing keeps saying it runs ("drawing…", "Importing…")."""
        self._set_running(False)
        self.canvas.set_preview(None)
        if kind == "finished" and self.progress.maximum() > 1:
            self.progress.setValue(self.progress.maximum())
        elif kind != "finished":
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self._stop_drawing("stopped" if kind == "cancelled" else "invalid")
        if kind == "cancelled":
            self.status.setText("Stopped.")
        elif kind == "error":
            self.status.setText("The job failed (see the message above).")
        elif self._running_text:  # finished without an output to report
            self.status.setText("Done.")
        self._running_text = ""
        self.job_mode = None
        if self.queued_import is not None:
            text, name = self.queued_import
            self.queued_import = None
            self._start({"mode": "import", "svg": text}, "import")
            if self.job:
                self.status.setText(f"Importing {name}…")

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
        self.settings.add_recent(str(p))
        if self.job is not None and self.job_mode in ("generate", "infill", "suggest"):
            # a running generation is not thrown away for an import: it waits, and says so
            self.queued_import = (text, p.name)
            self.status.setText(f"The import of {p.name} waits for the current generation "
                                "(press Stop to import it now).")
            return
        self._start({"mode": "import", "svg": text}, "import")

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

    # ---- File menu ----------------------------------------------------------------------------
    def open_file(self, path: str) -> bool:
        self.import_file(path)
        return True

    def file_import(self) -> None:
        self.import_dialog()

    def file_export(self) -> None:
        if not self.canvas.paths:
            self.error_box.show_error("Nothing to export: open a candidate or import an icon first.")
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export the icon", "icon.svg",
                                                   "SVG files (*.svg);;PNG images (*.png)")
        if not path:
            return
        if Path(path).suffix.lower() not in (".svg", ".png"):
            path += ".png" if "PNG" in chosen else ".svg"
        try:
            if path.lower().endswith(".png"):
                if not self.export_png(path, int(self.png_size.value())):
                    raise OSError("the image could not be written")
            else:
                self.export_svg(path)
        except OSError as e:
            self.error_box.show_error(f"Could not write {path}: {e}")
            return
        self.status.setText(f"Exported {Path(path).name}.")

    # ---- results in project files -------------------------------------------------------------
    def save_results(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        if self.canvas.paths:
            out["editor.json"] = json.dumps({"paths": _wire(self.canvas.paths)}).encode()
            out["editor.svg"] = self.svg_text().encode()
        cands = self.candidates or [{"paths": t.paths, "valid": False} for t in self.grid.tiles if t.paths]
        if cands:
            chosen = next((t.index for t in self.grid.tiles if t.chosen), -1)
            out["candidates.json"] = json.dumps({"candidates": [{"paths": _wire(c["paths"]), "valid": bool(c["valid"])}
                                                                for c in cands],
                                                 "scores": self.scores, "chosen": chosen}).encode()
            for i, c in enumerate(cands):
                if c["paths"]:
                    out[f"candidate-{i + 1}.svg"] = icon_svg(c["paths"], fill="#000000").encode()
        return out

    def restore_results(self, files: dict[str, bytes]) -> None:
        self.queued_import = None
        try:
            editor = _paths_from_wire(json.loads(files["editor.json"])["paths"]) if "editor.json" in files else []
            cands = []
            scores, chosen = None, -1
            if "candidates.json" in files:
                raw = json.loads(files["candidates.json"])
                cands = [{"paths": _paths_from_wire(c["paths"]), "valid": bool(c["valid"])} for c in raw["candidates"]]
                if raw.get("scores") is not None:
                    scores = [float(x) for x in raw["scores"]][:len(cands)]
                chosen = int(raw.get("chosen", -1))
        except (KeyError, TypeError, ValueError) as e:
            self.error_box.show_error(f"The project's icon results could not be read ({e}); the inputs were restored.")
            return
        self.canvas.set_paths(editor, selected=-1)
        self.canvas.fit()
        self.candidates = cands
        self.scores = scores
        self.grid.reset(len(cands))
        for i, c in enumerate(cands):
            self.grid.tile(i).finish(c["paths"], c["valid"])
        if scores and len(scores) == len(cands):
            self.grid.set_scores(scores, rerank=self.rerank.isChecked())
        self.grid.set_chosen(chosen)
        self.status.setText("")
        self._update_actions()

    # ---- state --------------------------------------------------------------------------------
    def save_state(self) -> dict:
        return {"prompt": self.prompt.text(), "n": self.n_spin.value(), **self.sampling(),
                "rerank": self.rerank.isChecked(), "png_size": self.png_size.value(),
                "random_seed": self.random_seed.isChecked(), "use_library": self.use_library.isChecked(),
                "picked": [{k: it[k] for k in ("id", "name", "attribution") if k in it} for it in self.picked]}

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
        self.random_seed.setChecked(bool(state.get("random_seed", True)))
        self.use_library.setChecked(bool(state.get("use_library", True)))
        picked = state.get("picked") or []
        self.picked = [it for it in picked if isinstance(it, dict) and isinstance(it.get("id"), int)][:3]
        self._show_picks()
