"""Base class of every studio panel: a QWidget that submits jobs through the bridge, shows errors
inline, and survives engine restarts with whatever the user typed or made still in place.

Each panel also has one QUndoStack for the user's edits (the Edit menu acts on the open panel's),
`save_state`/`restore_state` for its inputs and `save_results`/`restore_results` for what it made
(both go into a `.weft` project file, see app/project.py), and `import_formats` it can open."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.bridge import EngineBridge
from app.settings import Settings
from app.undo import FieldUndo
from engine.protocol import Event
from widgets.error_box import ErrorBox


class Panel(QWidget):
    title = "Panel"  # tab title
    task = ""  # engine task this panel runs
    import_formats: tuple[str, ...] = ()  # file suffixes File > Import and drag-and-drop open here
    can_export = False  # File > Export… has something to do here
    jobStarted = Signal(str)
    jobEnded = Signal(str, str)  # job id, final kind
    jobNote = Signal(str)  # where the job is: "queued (position 3)", "running on <worker>" (status bar)

    def __init__(self, bridge: EngineBridge, settings: Settings, parent=None):
        super().__init__(parent)
        self.bridge, self.settings = bridge, settings
        self.job: str | None = None
        self.undo_stack = QUndoStack(self)
        self.fields = FieldUndo(self.undo_stack)  # subclasses watch their input widgets
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
        note = job_note(self.title, ev)
        if note:
            self.jobNote.emit(note)
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

    # ---- results kept in project files -----------------------------------------------------
    def save_results(self) -> dict[str, bytes]:
        """What the panel made, as files (name -> bytes) for the project file."""
        return {}

    def restore_results(self, files: dict[str, bytes]) -> None:
        """Show these results instead of the current ones (an empty dict clears them)."""

    def load_project(self, state: dict, files: dict[str, bytes]) -> None:
        """Open a project's part for this panel: inputs and results replaced, job stopped, undo history cleared."""
        self.stop_job()
        self.error_box.clear()
        with self.fields.paused():
            self.restore_state(state)
            self.restore_results(files)
        self.undo_stack.clear()

    # ---- files -----------------------------------------------------------------------------
    def open_file(self, path: str) -> bool:
        """Open a file of one of `import_formats` (drag-and-drop, File > Open Recent)."""
        return False

    def file_import(self) -> None:
        """File > Import…: ask for a file and open it here."""

    def file_export(self) -> None:
        """File > Export…: ask where, then write the panel's result."""


def job_note(title: str, ev: Event) -> str:
    """A status-bar line for where a job is: its place in the engine's queue (shared engines, Ray) and
    the worker that runs it (the Ray backend names one in `started`)."""
    d = ev.data
    if ev.kind == "queued" and int(d.get("position") or 0) > 1:
        return f"{title}: queued, position {int(d['position'])}"
    if ev.kind == "started":
        w = d.get("worker")
        if isinstance(w, dict):
            where = w.get("host") or w.get("ip") or "a Ray worker"
            what = ", ".join(str(x) for x in (w.get("kind"), f"pid {w['pid']}" if w.get("pid") else None,
                                              w.get("device")) if x)
            return f"{title}: running on {where}" + (f" ({what})" if what else "")
        if d.get("queue_s"):
            return f"{title}: started after {float(d['queue_s']):.1f} s in the queue"
    return ""
