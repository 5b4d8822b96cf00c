"""The studio's main window: panels as tabs, the Engine dock (live throughput plot and log), a status
bar with engine state, device and memory; the engine supervised in the background."""
from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
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
from app.settings import Settings, log_dir
from app.supervisor import EngineSupervisor
from widgets.stats_plot import ThroughputPlot

log = logging.getLogger("weft.app")



def apply_theme(app: QApplication, theme: str) -> None:
    """Dark or light Fusion palette; 'system' follows the platform's colour scheme."""
    app.setStyle("Fusion")
    dark = theme == "dark"
    if theme == "system":
        hints = QGuiApplication.styleHints()
        dark = hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark
    if not dark:
        app.setPalette(app.style().standardPalette())
        return
    p = QPalette()
    base, text, mid = QColor(32, 33, 36), QColor(230, 230, 230), QColor(45, 46, 50)
    for role, c in [(QPalette.Window, mid), (QPalette.WindowText, text), (QPalette.Base, base),
                    (QPalette.AlternateBase, mid), (QPalette.Text, text), (QPalette.Button, mid),
                    (QPalette.ButtonText, text), (QPalette.ToolTipBase, base), (QPalette.ToolTipText, text),
                    (QPalette.Highlight, QColor(66, 133, 244)), (QPalette.HighlightedText, QColor(255, 255, 255)),
                    (QPalette.PlaceholderText, QColor(140, 140, 140))]:
        p.setColor(role, c)
    app.setPalette(p)

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

class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, start_engine: bool = True):
        super().__init__()
        self.settings = settings
        self.setWindowTitle("Weft Studio")
        self.resize(1280, 800)
        self.bridge = EngineBridge(self)
        self.supervisor = EngineSupervisor(settings.device, self)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.panels = []
        for cls in panel_classes():
            try:
                panel = cls(self.bridge, settings)
            except Exception:
                log.exception("panel %s failed to build", cls.__name__)
                continue
            panel.restore_state(settings.panel_state.get(cls.__name__, {}))
            self.panels.append(panel)
            self.tabs.addTab(panel, panel.title)
        if not self.panels:
            self.tabs.addTab(WelcomePanel(0), "Welcome")
        self.dock = EngineDock(self)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.dock)
        self._build_status_bar()
        self._build_menus()
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
        qs = QSettings("Weft", "Weft Studio")
        if qs.value("geometry") is not None:
            self.restoreGeometry(qs.value("geometry"))
            self.restoreState(qs.value("windowState"))
        else:
            self.resizeDocks([self.dock], [230], Qt.Vertical)
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
        quit_act = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        f.addAction(quit_act)
        v = m.addMenu("&View")
        v.addAction(self.dock.toggleViewAction())
        for name in ("system", "dark", "light"):
            v.addAction(QAction(f"Theme: {name}", self, triggered=lambda _=False, n=name: self.set_theme(n)))
        e = m.addMenu("&Engine")
        e.addAction(QAction("&Restart engine", self, triggered=self.restart_engine))
        e.addAction(QAction("Show &status", self, triggered=self.bridge.request_status))
        h = m.addMenu("&Help")
        h.addAction(QAction("&About Weft Studio", self, triggered=lambda: QMessageBox.about(
            self, "Weft Studio", "Weft Studio 0.1 — streaming autoregressive generation.\n"
            f"Logs: {log_dir()}")))

    def set_theme(self, name: str):
        self.settings.set("theme", name)
        apply_theme(QApplication.instance(), name)

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
        qs = QSettings("Weft", "Weft Studio")
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
