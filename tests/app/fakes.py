"""A stand-in for EngineBridge that records what panels ask of the engine, so panel logic (queues,
status texts, buffering) is tested without starting one. Events are delivered by calling `emit`."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engine.protocol import Event


class FakeBridge(QObject):
    statusReceived = Signal(dict)
    eventReceived = Signal(object)
    statsReceived = Signal(object)
    busyChanged = Signal(bool)

    def __init__(self, connected: bool = True):
        super().__init__()
        self.connected = connected
        self.submitted: list[tuple[str, str, dict]] = []  # (job, task, params)
        self.cancelled: list[str] = []
        self.steered: list[tuple[str, dict]] = []
        self.listeners: dict = {}
        self._seq = 0

    def submit(self, task, params, listener):
        if not self.connected:
            return None
        job = f"job-{len(self.submitted) + 1}"
        self.submitted.append((job, task, params))
        self.listeners[job] = listener
        return job

    def cancel(self, job):
        self.cancelled.append(job)

    def steer(self, job, params):
        self.steered.append((job, params))

    def pause(self, job, paused=True):
        pass

    def warm(self, task):
        pass

    def request_status(self):
        pass

    def emit(self, job: str, kind: str, data: dict | None = None) -> None:
        """Deliver one engine event of `job` to its panel."""
        self._seq += 1
        listener = self.listeners[job]
        if kind in ("finished", "cancelled", "error"):
            self.listeners.pop(job)
        listener(Event(job, kind, self._seq, data or {}))
