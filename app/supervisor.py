"""Starts the local engine process, watches it, restarts it after a crash, and says what happened.

States: starting -> ready (readiness line seen) -> busy (jobs in flight) -> crashed -> starting ...
stopped after `stop()`. The engine dies with the studio (--parent-pid; PR_SET_PDEATHSIG). Its own
messages (the `weft.*` loggers, the readiness line, crash tracebacks) stream into `logLine` for the
Engine dock; what libraries print (warnings, tqdm progress bars) goes only to the studio's log file.
A remote engine (settings.engine_endpoint) is not supervised: the bridge connects to it directly.
"""
from __future__ import annotations

import logging
import os
import re
import time

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from engine.client import default_endpoint
from engine.launch import endpoint_in_use, engine_command, engine_env, private_endpoint
from engine.protocol import READY_LINE

log = logging.getLogger("weft.supervisor")

_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ (\S+): ")  # engine/__main__.py's format
_LIBRARY_NOISE = re.compile(r"(\w+Warning: |^\s*warnings\.warn\(|\d+%\|[^|]*\|| \d+/\d+ \[\d)")
log_lib = logging.getLogger("weft.engine.stderr")


class EngineLogFilter:
    """Which engine output lines are the project's own (for the dock) and which are library noise (log file).

    A line in the engine's log format shows when its logger is `weft.*`; a library warning
    ("...FutureWarning: ...") or a progress bar ("Loading weights:  40%|####  | 2/5 [...]") never does;
    other lines (a traceback, a source line under a warning) follow the line they continue."""

    def __init__(self):
        self.showing = True

    def shows(self, line: str) -> bool:
        m = _LOG_LINE.match(line)
        if m:
            self.showing = m.group(1).startswith("weft")
            return self.showing
        if line.startswith(READY_LINE) or line.startswith("Traceback (most recent call last)"):
            self.showing = True
            return True
        if "\r" in line or _LIBRARY_NOISE.search(line):
            self.showing = False
            return False
        return self.showing


MAX_RESTARTS = 5  # within RESTART_WINDOW_S; past that we stop and let the user decide
RESTART_WINDOW_S = 120.0


class EngineSupervisor(QObject):
    stateChanged = Signal(str)
    ready = Signal(str)  # endpoint
    crashed = Signal(str)  # a plain sentence about what happened
    logLine = Signal(str)

    def __init__(self, device: str = "auto", parent: QObject | None = None, startup_timeout_s: float = 90.0,
                 share: bool = True):
        super().__init__(parent)
        self.device = device
        self.share = share  # serve on the user's shared endpoint when free (CLI calls reuse the engine)
        self.state = "stopped"
        self.endpoint = ""
        self.proc: QProcess | None = None
        self.restarts: list[float] = []
        self._stopping = False
        self._buf = b""
        self.log_filter = EngineLogFilter()
        self._startup = QTimer(self)
        self._startup.setSingleShot(True)
        self._startup.setInterval(int(startup_timeout_s * 1000))
        self._startup.timeout.connect(self._startup_timed_out)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            log.info("engine state: %s", state)
            self.stateChanged.emit(state)

    def start(self) -> None:
        if self.proc is not None and self.proc.state() != QProcess.NotRunning:
            return
        self._stopping = False
        # the user's shared endpoint when no engine serves it, so `weft-cli` calls reuse this warm engine
        shared = default_endpoint()
        self.endpoint = private_endpoint() if (not self.share or endpoint_in_use(shared)) else shared
        cmd = engine_command(self.endpoint, self.device, os.getpid())
        proc = QProcess(self)
        env = QProcessEnvironment()
        for k, v in engine_env().items():
            env.insert(k, v)
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.MergedChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self.proc = proc
        self._buf = b""
        self._set_state("starting")
        proc.start(cmd[0], cmd[1:])
        self._startup.start()

    def stop(self) -> None:
        self._stopping = True
        self._startup.stop()
        if self.proc is not None and self.proc.state() != QProcess.NotRunning:
            self.proc.terminate()
            if not self.proc.waitForFinished(3000):
                self.proc.kill()
                self.proc.waitForFinished(1000)
        self._set_state("stopped")

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill_for_test(self) -> None:
        """Simulate a crash (tests, 'Engine > Kill' in the debug menu)."""
        if self.proc is not None:
            self.proc.kill()

    def pid(self) -> int:
        return int(self.proc.processId()) if self.proc is not None else 0

    def set_busy(self, busy: bool) -> None:
        if self.state in ("ready", "busy"):
            self._set_state("busy" if busy else "ready")

    # ---- process events ---------------------------------------------------------------------
    def _read(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith(READY_LINE):
                self._startup.stop()
                self._set_state("ready")
                self.ready.emit(self.endpoint)
            if self.log_filter.shows(line):
                self.logLine.emit(line)
            elif line.strip():
                log_lib.info("%s", line.rsplit("\r", 1)[-1])

    def _finished(self, code: int, status) -> None:
        self._startup.stop()
        if self._stopping:
            return
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
        how = "crashed" if status == QProcess.CrashExit else f"exited with code {code}"
        self._set_state("crashed")
        if len(self.restarts) > MAX_RESTARTS:
            msg = (f"The engine {how} {len(self.restarts)} times in two minutes; not restarting it again. "
                   "See the Engine log, then use Engine > Restart.")
            self.crashed.emit(msg)
            return
        self.crashed.emit(f"The engine {how}; restarting it. Your work in the panels is kept.")
        QTimer.singleShot(300, self.start)

    def _error(self, err) -> None:
        if err == QProcess.FailedToStart:
            self._set_state("crashed")
            self.crashed.emit(f"The engine could not be started ({self.proc.errorString()}).")

    def _startup_timed_out(self) -> None:
        self.crashed.emit("The engine did not become ready in time; restarting it.")
        if self.proc is not None:
            self.proc.kill()  # -> _finished -> restart
