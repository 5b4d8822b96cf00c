"""The one bridge from engine events into Qt: an EngineClient whose I/O thread hands every event to
the GUI thread as a queued Qt signal. Nothing here blocks the GUI thread on the engine.

Panels call `submit(task, params, listener)`; the listener runs on the GUI thread for each event of
that job. When the engine dies, every job in flight gets a final `error` event so no panel waits
forever, and whatever the panels hold stays where it is.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.client import EngineClient
from engine.protocol import Event

log = logging.getLogger("weft.bridge")

Listener = Callable[[Event], None]


class EngineBridge(QObject):
    eventReceived = Signal(object)  # every Event, on the GUI thread
    statsReceived = Signal(object)  # Event of kind "stats"
    statusReceived = Signal(dict)  # reply to status()
    busyChanged = Signal(bool)
    _incoming = Signal(object)  # from the I/O thread (queued into the GUI thread)
    _status_reply = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.client: EngineClient | None = None
        self.listeners: dict[str, Listener] = {}
        self._incoming.connect(self._on_event)
        self._status_reply.connect(self._on_status)
        self._busy = False

    # ---- connection ----------------------------------------------------------------------
    def connect_to(self, endpoint: str, token: str | None = None) -> None:
        self.disconnect_engine()
        self.client = EngineClient(endpoint, token, on_event=self._incoming.emit)

    def disconnect_engine(self, reason: str | None = None) -> None:
        """Drop the connection; every job in flight ends with an error event carrying `reason`."""
        if self.client is not None:
            self.client.close()
            self.client = None
        for job, listener in list(self.listeners.items()):
            self._deliver(listener, Event(job, "error", 1 << 30, {
                "message": reason or "The engine went away while this job ran.", "kind": "engine"}))
        self.listeners.clear()
        self._set_busy(False)

    @property
    def connected(self) -> bool:
        return self.client is not None

    # ---- jobs ------------------------------------------------------------------------------
    def submit(self, task: str, params: dict, listener: Listener) -> str | None:
        if self.client is None:
            return None
        job = self.client.submit(task, params)
        self.listeners[job] = listener
        self._set_busy(True)
        return job

    def steer(self, job: str, params: dict) -> None:
        if self.client is not None and job in self.listeners:
            self.client.steer(job, params)

    def cancel(self, job: str) -> None:
        if self.client is not None and job in self.listeners:
            self.client.cancel(job)

    def pause(self, job: str, paused: bool = True) -> None:
        if self.client is not None and job in self.listeners:
            (self.client.pause if paused else self.client.resume)(job)

    def warm(self, task: str) -> None:
        """Have the engine load `task`'s model ahead of the first job (best effort: no reply needed)."""
        if self.client is not None and task:
            self.client.warm(task)

    def request_status(self) -> None:
        """Ask for status; the answer arrives as statusReceived (or nothing when the engine is gone)."""
        if self.client is None:
            return
        fut = self.client.request("status")
        fut.add_done_callback(lambda f: self._status_reply.emit(f))

    # ---- GUI-thread side -------------------------------------------------------------------
    @Slot(object)
    def _on_status(self, fut) -> None:
        if fut.exception() is None:
            self.statusReceived.emit(fut.result())

    @Slot(object)
    def _on_event(self, ev: Event) -> None:
        self.eventReceived.emit(ev)
        if ev.kind == "stats" or (ev.kind == "finished" and ev.data):
            self.statsReceived.emit(ev)
        listener = self.listeners.get(ev.job)
        if ev.terminal:
            self.listeners.pop(ev.job, None)
            if not self.listeners:
                QTimer.singleShot(0, lambda: self._set_busy(bool(self.listeners)))
        if listener is not None:
            self._deliver(listener, ev)

    def _deliver(self, listener: Listener, ev: Event) -> None:
        try:
            listener(ev)
        except Exception:
            log.exception("panel failed while handling a %s event", ev.kind)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)
