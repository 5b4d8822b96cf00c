"""The studio's main window: panels as tabs, the Engine dock (live throughput plot and log), a status
bar with engine state, device and memory; the engine supervised in the background.

The File menu saves and opens `.weft` project files (app/project.py) holding every panel's inputs
and results; Import… / Export… and drag-and-drop go to the panel a file belongs to; the session is
autosaved to the user data dir and restored at the next start. The Edit menu's Undo / Redo act on
the open panel's QUndoStack."""
from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.bridge import EngineBridge
from app.panels import panel_classes
from app.project import SUFFIX, PanelData, Project, ProjectFileError, read_project, write_project
from app.settings import Settings, config_dir, data_dir, log_dir
from app.supervisor import EngineSupervisor
from app.theme import apply_theme, theme_name  # noqa: F401  (apply_theme: used by main and docs/screenshot.py)
from widgets.stats_plot import ThroughputPlot

log = logging.getLogger("weft.app")

RECENT_MAX = 10

class EngineDock(QDockWidget):
    def __init__(self, parent=None):
        super().__init__("Engine", parent)
        self.setObjectName("EngineDock")
        split = QSplitter(Qt.Horizontal)
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("Engine log")
        self.plot = ThroughputPlot()
        split.addWidget(self.plot)
        split.addWidget(self.log_view)
        self.setWidget(split)

    def append(self, line: str) -> None:
        self.log_view.appendPlainText(line)

class WelcomePanel(QWidget):
    title = "Welcome"

    def __init__(self, n_panels: int):
        super().__init__()
        lay = QVBoxLayout(self)
        text = ("<h2>Weft Studio</h2><p>Generate and steer shapes, icons, motion, speech and worlds with models "
                "that stream their output live.</p>")
        if n_panels == 0:
            text += "<p>No panels are installed in this build yet; the engine is running and <tt>weft-cli</tt> works.</p>"
        lbl = QLabel(text)
        lbl.setWordWrap(True)
        lbl.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        lay.addWidget(lbl)

def window_settings() -> QSettings:
    """QSettings for window geometry and dock state (beside settings.json when WEFT_CONFIG_DIR overrides it)."""
    if os.environ.get("WEFT_CONFIG_DIR"):
        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)
    return QSettings("Weft", "Weft Studio")


def session_path() -> Path:
    """The autosaved session (a .weft project file) in the user data dir."""
    return data_dir() / "session.weft"


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, start_engine: bool = True, restore_session: bool = True):
        super().__init__()
        self.settings = settings
        self.project_path: str = ""  # the .weft file this work was opened from / saved as
        self.saved_digest = ""  # content fingerprint at the last save / open / new
        self._autosaved_digest = ""
        self.undo_group = QUndoGroup(self)
        self.resize(1280, 800)
        self.bridge = EngineBridge(self)
        self.supervisor = EngineSupervisor(settings.device, self)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.panels = []
        self._defaults: dict[str, dict] = {}
        for cls in panel_classes():
            try:
                panel = cls(self.bridge, settings)
            except Exception:
                log.exception("panel %s failed to build", cls.__name__)
                continue
            self._defaults[panel.task] = panel.save_state()  # what File > New goes back to
            with panel.fields.paused():
                panel.restore_state(settings.panel_state.get(cls.__name__, {}))
            self.panels.append(panel)
            self.tabs.addTab(panel, panel.title)
            self.undo_group.addStack(panel.undo_stack)
            panel.undo_stack.indexChanged.connect(self._mark_modified)  # a bound slot: gone with the window
            panel.jobEnded.connect(self._mark_modified)
            panel.jobNote.connect(lambda text: self.statusBar().showMessage(text, 8000))
        if not self.panels:
            self.tabs.addTab(WelcomePanel(0), "Welcome")
        self.dock = EngineDock(self)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.dock)
        self._build_status_bar()
        self._build_menus()
        self.setAcceptDrops(True)
        self.tabs.currentChanged.connect(lambda _=0: self._current_changed())
        self.supervisor.stateChanged.connect(self._on_state)
        self.supervisor.logLine.connect(self.dock.append)
        self.supervisor.ready.connect(self._on_ready)
        self.tabs.currentChanged.connect(lambda _=0: self._warm_current())
        self.supervisor.crashed.connect(self._on_crash)
        self.bridge.busyChanged.connect(self.supervisor.set_busy)
        self.bridge.statsReceived.connect(self._on_stats)
        self.bridge.statusReceived.connect(self._on_status)
        self.status_timer = QTimer(self, interval=2000, timeout=self.bridge.request_status)
        self.status_timer.start()
        qs = window_settings()
        if qs.value("geometry") is not None:
            self.restoreGeometry(qs.value("geometry"))
            self.restoreState(qs.value("windowState"))
        else:
            self.resizeDocks([self.dock], [170], Qt.Vertical)  # the panels keep most of 800 px
        self._current_changed()
        self.saved_digest = self.snapshot().digest()
        if restore_session:
            self.restore_session()
        self._update_title()
        self.autosave_timer = QTimer(self, timeout=self.autosave)
        if settings.autosave_s > 0:
            self.autosave_timer.start(int(settings.autosave_s * 1000))
        if start_engine:
            self.start_engine()

    def start_engine(self):
        if self.settings.engine_endpoint:
            from engine.client import read_token

            self.bridge.connect_to(self.settings.engine_endpoint, read_token(self.settings.engine_token_file or None))
            self._on_state("ready")
        else:
            self.supervisor.start()

    def _build_status_bar(self):
        sb = self.statusBar()
        self.state_label = QLabel("engine: stopped")
        self.device_label = QLabel("device: –")
        self.mem_label = QLabel("memory: –")
        for w in (self.state_label, self.device_label, self.mem_label):
            sb.addPermanentWidget(w)

    def _build_menus(self):
        m = self.menuBar()
        f = m.addMenu("&File")
        self.act_new = QAction("&New", self, shortcut=QKeySequence.New, triggered=lambda: self.new_project())
        self.act_open = QAction("&Open…", self, shortcut=QKeySequence.Open, triggered=lambda: self.open_dialog())
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()
        self.act_save = QAction("&Save", self, shortcut=QKeySequence.Save, triggered=lambda: self.save())
        self.act_save_as = QAction("Save &As…", self, shortcut=QKeySequence.SaveAs, triggered=lambda: self.save_as())
        self.act_import = QAction("&Import…", self, shortcut=QKeySequence("Ctrl+I"), triggered=self.import_current)
        self.act_export = QAction("&Export…", self, shortcut=QKeySequence("Ctrl+E"), triggered=self.export_current)
        quit_act = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        f.insertAction(self.recent_menu.menuAction(), self.act_new)
        f.insertAction(self.recent_menu.menuAction(), self.act_open)
        for a in (self.act_save, self.act_save_as, None, self.act_import, self.act_export, None, quit_act):
            f.addSeparator() if a is None else f.addAction(a)
        e = m.addMenu("&Edit")
        self.act_undo = self.undo_group.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.Undo)
        self.act_redo = self.undo_group.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(QKeySequence.Redo)
        e.addAction(self.act_undo)
        e.addAction(self.act_redo)
        v = m.addMenu("&View")
        v.addAction(self.dock.toggleViewAction())
        v.addSeparator()
        themes = QActionGroup(self)
        self.theme_actions = {}
        for name in ("dark", "light"):
            a = QAction(f"{name.capitalize()} theme", self, checkable=True,
                        triggered=lambda _=False, n=name: self.set_theme(n))
            a.setChecked(theme_name(self.settings.theme) == name)
            themes.addAction(a)
            v.addAction(a)
            self.theme_actions[name] = a
        e = m.addMenu("&Engine")
        e.addAction(QAction("&Restart engine", self, triggered=self.restart_engine))
        e.addAction(QAction("Show &status", self, triggered=self.bridge.request_status))
        h = m.addMenu("&Help")
        h.addAction(QAction("&About Weft Studio", self, triggered=lambda: QMessageBox.about(
            self, "Weft Studio", "Weft Studio 0.1 — streaming autoregressive generation.\n"
            f"Logs: {log_dir()}")))

    def set_theme(self, name: str):
        name = apply_theme(QApplication.instance(), name)
        self.settings.set("theme", name)
        self.theme_actions[name].setChecked(True)

    def _mark_modified(self, *_):
        self.setWindowModified(True)

    # ---- panels ------------------------------------------------------------------------------
    def panel_for(self, task: str):
        return next((p for p in self.panels if p.task == task), None)

    def current_panel(self):
        w = self.tabs.currentWidget()
        return w if w in self.panels else None

    def _current_changed(self) -> None:
        panel = self.current_panel()
        self.undo_group.setActiveStack(panel.undo_stack if panel else None)
        self.act_import.setEnabled(bool(panel and panel.import_formats))
        self.act_export.setEnabled(bool(panel and panel.can_export))
        name = panel.title if panel else ""
        self.act_import.setText(f"&Import into {name}…" if panel and panel.import_formats else "&Import…")
        self.act_export.setText(f"&Export from {name}…" if panel and panel.can_export else "&Export…")

    def import_current(self) -> None:
        panel = self.current_panel()
        if panel is not None and panel.import_formats:
            panel.file_import()

    def export_current(self) -> None:
        panel = self.current_panel()
        if panel is not None and panel.can_export:
            panel.file_export()

    # ---- opening files -----------------------------------------------------------------------
    def panel_for_file(self, path: str):
        suffix = Path(path).suffix.lower()
        return next((p for p in self.panels if suffix in p.import_formats), None)

    def open_path(self, path: str) -> bool:
        """Open any file the studio knows: a project, or a file for the panel that imports it (its tab opens)."""
        path = str(path)
        if Path(path).suffix.lower() == SUFFIX:
            return self.open_project(path)
        panel = self.panel_for_file(path)
        if panel is None:
            known = sorted({s for p in self.panels for s in p.import_formats} | {SUFFIX})
            self.statusBar().showMessage(f"Weft Studio cannot open {Path(path).name}: it opens {', '.join(known)} files.",
                                         8000)
            return False
        if not Path(path).is_file():
            self.statusBar().showMessage(f"{path} no longer exists.", 8000)
            return False
        self.tabs.setCurrentWidget(panel)
        ok = panel.open_file(path)
        if ok:
            self.settings.add_recent(path, RECENT_MAX)
        return ok

    def dragEnterEvent(self, ev):
        if any(self._openable(u.toLocalFile()) for u in ev.mimeData().urls() if u.isLocalFile()):
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev):
        self.dragEnterEvent(ev)

    def dropEvent(self, ev):
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile() and self._openable(u.toLocalFile())]
        projects = [p for p in paths if p.lower().endswith(SUFFIX)]
        for p in projects[:1] or paths:  # a project replaces everything: one at a time
            self.open_path(p)
        if paths:
            ev.acceptProposedAction()

    def _openable(self, path: str) -> bool:
        return Path(path).suffix.lower() == SUFFIX or self.panel_for_file(path) is not None

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = [p for p in self.settings.recent_files if self._openable(p)][:RECENT_MAX]
        for i, path in enumerate(files):
            a = self.recent_menu.addAction(f"&{(i + 1) % 10} {Path(path).name}   ({Path(path).parent})")
            a.setData(path)
            a.setEnabled(Path(path).exists())
            a.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if not files:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear the list")
        clear.setEnabled(bool(files))
        clear.triggered.connect(lambda: self.settings.set("recent_files", []))

    # ---- projects ----------------------------------------------------------------------------
    def snapshot(self) -> Project:
        """Every panel's inputs and results, as a project."""
        current = self.current_panel()
        return Project({p.task: PanelData(p.save_state(), p.save_results()) for p in self.panels},
                       current=current.task if current else "")

    def load_snapshot(self, project: Project) -> None:
        for p in self.panels:
            data = project.panels.get(p.task, PanelData(self._defaults.get(p.task, {}), {}))
            try:
                p.load_project(data.state, data.files)
            except Exception as e:  # one panel's bad part must not stop the others from opening
                log.exception("panel %s could not load its part of the project", p.task)
                p.error_box.show_error(f"This panel's part of the project could not be opened: {e}")
        current = self.panel_for(project.current)
        if current is not None:
            self.tabs.setCurrentWidget(current)

    def is_modified(self) -> bool:
        return self.snapshot().digest() != self.saved_digest

    def _confirm_discard(self, doing: str) -> bool:
        """True when the current work may be replaced (saved first if the user says so)."""
        if not self.is_modified():
            return True
        answer = QMessageBox.question(
            self, "Weft Studio", f"Save the changes to {self._project_name()} before {doing}?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def new_project(self, ask: bool = True) -> bool:
        if ask and not self._confirm_discard("starting a new project"):
            return False
        self.load_snapshot(Project(current=self.current_panel().task if self.current_panel() else ""))
        self.project_path = ""
        self._saved()
        self.statusBar().showMessage("New project.", 4000)
        return True

    def open_dialog(self) -> bool:
        if not self._confirm_discard("opening another project"):
            return False
        start = str(Path(self.project_path).parent) if self.project_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", start, f"Weft projects (*{SUFFIX})")
        return bool(path) and self.open_project(path, ask=False)

    def open_project(self, path: str, ask: bool = True) -> bool:
        if ask and not self._confirm_discard("opening another project"):
            return False
        try:
            project = read_project(path)
        except ProjectFileError as e:
            QMessageBox.warning(self, "Weft Studio", str(e)) if self.isVisible() else None
            self.statusBar().showMessage(str(e), 10000)
            return False
        self.load_snapshot(project)
        self.project_path = os.path.abspath(path)
        self._saved()
        self.settings.add_recent(self.project_path, RECENT_MAX)
        self.statusBar().showMessage(f"Opened {Path(path).name}.", 5000)
        return True

    def save(self) -> bool:
        if not self.project_path:
            return self.save_as()
        return self.save_project(self.project_path)

    def save_as(self) -> bool:
        start = self.project_path or str(Path.home() / f"untitled{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save the project", start, f"Weft projects (*{SUFFIX})")
        if not path:
            return False
        if not path.lower().endswith(SUFFIX):
            path += SUFFIX
        return self.save_project(path)

    def save_project(self, path: str) -> bool:
        project = self.snapshot()
        try:
            write_project(path, project)
        except (OSError, ValueError) as e:
            QMessageBox.warning(self, "Weft Studio", f"Could not save {path}: {e}") if self.isVisible() else None
            self.statusBar().showMessage(f"Could not save {path}: {e}", 10000)
            return False
        self.project_path = os.path.abspath(path)
        self._saved(project.digest())
        self.settings.add_recent(self.project_path, RECENT_MAX)
        self.statusBar().showMessage(f"Saved {Path(path).name}.", 5000)
        return True

    def _saved(self, digest: str | None = None) -> None:
        self.saved_digest = digest or self.snapshot().digest()
        self.setWindowModified(False)
        self._update_title()

    def _project_name(self) -> str:
        return Path(self.project_path).name if self.project_path else "the untitled project"

    def _update_title(self) -> None:
        name = Path(self.project_path).name if self.project_path else "untitled"
        self.setWindowTitle(f"{name}[*] — Weft Studio")

    # ---- session autosave --------------------------------------------------------------------
    def autosave(self, force: bool = False) -> bool:
        """Save the whole session to the data dir (when it changed since the last autosave)."""
        project = self.snapshot()
        digest = project.digest()
        if digest == self._autosaved_digest and not force:
            return False
        project.extra = {"session_of": self.project_path, "saved_digest": self.saved_digest}
        try:
            write_project(session_path(), project)
        except (OSError, ValueError):
            log.exception("could not autosave the session")
            return False
        self._autosaved_digest = digest
        return True

    def restore_session(self) -> bool:
        """Reopen what the last run left (after a quit or a crash); a broken session file is set aside."""
        path = session_path()
        if not path.exists():
            return False
        try:
            project = read_project(path)
        except ProjectFileError as e:
            log.warning("last session unreadable: %s", e)
            try:
                path.replace(path.with_name(path.name + ".bad"))
            except OSError:
                pass
            self.statusBar().showMessage(f"The last session could not be restored: {e}", 10000)
            return False
        self.load_snapshot(project)
        self.project_path = str(project.extra.get("session_of") or "")
        digest = project.digest()
        self._autosaved_digest = digest
        self.saved_digest = str(project.extra.get("saved_digest") or "")
        self.setWindowModified(digest != self.saved_digest)
        when = project.extra.get("saved_at", "")
        try:
            when = time.strftime("%H:%M", time.strptime(when, "%Y-%m-%dT%H:%M:%S"))
        except (TypeError, ValueError):
            when = ""
        self.statusBar().showMessage("Restored your last session" + (f" (saved at {when})." if when else "."), 8000)
        return True

    def restart_engine(self):
        self.bridge.disconnect_engine("The engine was restarted; run the job again.")
        self.supervisor.restart()

    def _on_ready(self, endpoint: str):
        self.bridge.connect_to(endpoint)
        self.bridge.request_status()
        self._warm_current()
        self.statusBar().showMessage("Engine ready", 3000)

    def _warm_current(self):
        """The engine loads the open panel's model while idle, so its first job does not wait for it."""
        panel = self.tabs.currentWidget()
        if getattr(panel, "task", ""):
            self.bridge.warm(panel.task)

    def _on_crash(self, message: str):
        self.bridge.disconnect_engine(message)
        self.statusBar().showMessage(message, 10000)
        self.dock.append(f"*** {message}")

    def _on_state(self, state: str):
        self.state_label.setText(f"engine: {state}")
        colors = {"ready": "#81c784", "busy": "#ffb74d", "starting": "#90caf9", "crashed": "#e57373"}
        self.state_label.setStyleSheet(f"color: {colors.get(state, '')}")

    def _on_status(self, st: dict):
        self.device_label.setText(f"device: {st.get('device_name', st.get('device', '?'))}")
        mem = f"memory: {st.get('rss_mb', 0):.0f} MB"
        if "cuda_mb" in st:
            mem += f", GPU {st['cuda_mb']:.0f} MB"
        self.mem_label.setText(mem)

    def _on_stats(self, ev):
        d = ev.data
        for unit in ("tokens_per_s", "frames_per_s", "samples_per_s"):
            if unit in d:
                self.dock.plot.add_point(f"{d.get('task', '?')} {unit.split('_')[0]}/s", d[unit])

    def closeEvent(self, event):
        self.autosave_timer.stop()
        self.autosave(force=True)
        qs = window_settings()
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("windowState", self.saveState())
        self.settings.panel_state = {type(p).__name__: p.save_state() for p in self.panels}
        try:
            self.settings.save()
        except OSError:
            log.exception("could not save settings")
        self.status_timer.stop()
        self.bridge.disconnect_engine()
        self.supervisor.stop()
        super().closeEvent(event)

def excepthook(exc_type, exc, tb):
    """Show unexpected errors instead of dying; the traceback goes to the log."""
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("unhandled exception:\n%s", text)
    app = QApplication.instance()
    if app is not None:
        box = QMessageBox(QMessageBox.Warning, "Weft Studio", f"Something went wrong: {exc}")
        box.setDetailedText(text)
        box.exec()
