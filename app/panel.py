"""Base class of every studio panel: a QWidget that submits jobs through the bridge, shows errors
inline, and survives engine restarts with whatever the user typed or made still in place."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.bridge import EngineBridge
from app.settings import Settings
from engine.protocol import Event
from widgets.error_box import ErrorBox


class Panel(QWidget):
    title = "Panel"  # tab title
    task = ""  # engine task this panel runs
    jobStarted = Signal(str)
    jobEnded = Signal(str, str)  # job id, final kind

    def __init__(self, bridge: EngineBridge, settings: Settings, parent=None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.job: str | None = None
        self.error_box = ErrorBox()
        self.root = QVBoxLayout(self)
        self.root.setContentsMargins(6, 6, 6, 6)
        self.root.addWidget(self.error_box)

    # ---- jobs ------------------------------------------------------------------------------
    def run_job(self, params: dict, task: str | None = None) -> str | None:
        """Submit a job; its events go to `on_event`. Returns the job id (None if no engine).
        A job still running in this panel is cancelled first: the newest request wins at once."""
        self.error_box.clear()
        if self.job:
            self.bridge.cancel(self.job)
            self.job = None
        if not self.bridge.connected:
            self.error_box.show_error("The engine is not running yet; wait for 'ready' in the status bar.")
            return None
        self.job = self.bridge.submit(task or self.task, params, self._route)
        if self.job:
            self.jobStarted.emit(self.job)
        return self.job

    def stop_job(self) -> None:
        if self.job:
            self.bridge.cancel(self.job)

    def _route(self, ev: Event) -> None:
        if ev.job != self.job:  # a superseded job's last words
            return
        if ev.kind == "error":
            self.error_box.show_error(ev.data.get("message", "The job failed."), ev.data.get("traceback", ""))
        self.on_event(ev)
        if ev.terminal and ev.job == self.job:
            self.job = None
            self.jobEnded.emit(ev.job, ev.kind)

    def on_event(self, ev: Event) -> None:
        """Override: draw partial results as they arrive."""

    # ---- state kept across restarts --------------------------------------------------------
    def save_state(self) -> dict:
        """Small preferences to restore next time (prompt, seed, sliders)."""
        return {}

    def restore_state(self, state: dict) -> None:
        pass
