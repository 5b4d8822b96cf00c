"""Start a private engine process and wait for its readiness line (used by the CLI; the studio's
supervisor builds the same command and runs it under QProcess)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from engine.protocol import READY_LINE


def private_endpoint() -> str:
    return f"ipc://{tempfile.gettempdir()}/weft-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"


def engine_command(endpoint: str, device: str = "auto", parent_pid: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "engine", "serve", "--listen", endpoint, "--device", device]
    if parent_pid:
        cmd += ["--parent-pid", str(parent_pid)]
    return cmd


def engine_env() -> dict:
    """The engine's environment: this checkout importable, no hub access, one BLAS pool per process."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class EngineProcess:
    """A child engine on a private ipc endpoint; `with EngineProcess() as ep: EngineClient(ep.endpoint)`."""

    def __init__(self, device: str = "auto", timeout: float = 60.0):
        self.endpoint = private_endpoint()
        self.proc = subprocess.Popen(engine_command(self.endpoint, device, os.getpid()), env=engine_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr_tail: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.stdout.readline()
            if line.startswith(READY_LINE):
                break
            if not line and self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                tail = "".join(self.stderr_tail[-15:])
                raise RuntimeError(f"the engine did not start:\n{tail}")

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_tail.append(line)
            del self.stderr_tail[:-200]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        path = self.endpoint[len("ipc://"):]
        if os.path.exists(path):
            os.unlink(path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
