"""Start engine processes: a private one for a single caller (EngineProcess), or the user's shared
one that every `weft-cli` call reuses and that stops by itself after a while unused
(ensure_shared_engine). The studio's supervisor builds the same command and runs it under QProcess,
on the shared endpoint when no other engine holds it, so CLIs reuse the studio's warm engine.

One engine per ipc endpoint: a serving engine holds an exclusive lock on `<socket>.lock` for its
life (hold_endpoint); the OS drops it when the process dies, so a crashed engine never blocks the
next one and two CLIs starting at once end up on one engine."""
from __future__ import annotations

import fcntl
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


def engine_command(endpoint: str, device: str = "auto", parent_pid: int | None = None,
                   idle_exit_s: float = 0) -> list[str]:
    cmd = [sys.executable, "-m", "engine", "serve", "--listen", endpoint, "--device", device]
    if parent_pid:
        cmd += ["--parent-pid", str(parent_pid)]
    if idle_exit_s:
        cmd += ["--idle-exit", str(idle_exit_s)]
    return cmd


_held: list = []  # lock files this process holds (kept open for its life)


def _lock_path(endpoint: str) -> str:
    return endpoint[len("ipc://"):] + ".lock"


def hold_endpoint(endpoint: str) -> bool:
    """Take the endpoint's lock for this process's life; False when another engine holds it."""
    f = open(_lock_path(endpoint), "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return False
    _held.append(f)
    return True


def endpoint_in_use(endpoint: str) -> bool:
    """True when an engine serves (or is starting on) this ipc endpoint. Instant, never blocks."""
    try:
        f = open(_lock_path(endpoint), "a")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def ensure_shared_engine(device: str = "auto", idle_exit_s: float = 900, timeout: float = 90.0) -> str:
    """The user's shared engine endpoint, starting the engine (detached, stopping itself after
    `idle_exit_s` without requests) when none serves it. Returns once it answers."""
    from engine.client import EngineClient, default_endpoint

    endpoint = default_endpoint()
    proc = None
    if not endpoint_in_use(endpoint):
        from platformdirs import user_log_dir

        log_dir = os.environ.get("WEFT_LOG_DIR") or user_log_dir("weft")
        os.makedirs(log_dir, exist_ok=True)
        out = open(os.path.join(log_dir, "engine-shared.out"), "a")
        proc = subprocess.Popen(engine_command(endpoint, device, idle_exit_s=idle_exit_s), env=engine_env(),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # outlives this CLI call
        out.close()
    deadline = time.monotonic() + timeout
    client = EngineClient(endpoint)
    try:
        while True:
            try:
                client.call("ping", timeout=0.5)
                return endpoint
            except Exception:  # noqa: BLE001 - not up yet (timeout) or refused while starting
                if proc is not None and proc.poll() is not None and proc.returncode != 3:
                    raise RuntimeError(f"the shared engine did not start (exit code {proc.returncode}); "
                                       "see engine-shared.out in the log folder") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the shared engine at {endpoint} did not answer within {timeout:.0f} s") from None
    finally:
        client.close()


def stop_shared_engine(timeout: float = 10.0) -> bool:
    """Ask the user's shared engine to stop; False when none was running."""
    from engine.client import EngineClient, default_endpoint

    endpoint = default_endpoint()
    if not endpoint_in_use(endpoint):
        return False
    client = EngineClient(endpoint)
    try:
        client.call("shutdown", timeout=5)
    finally:
        client.close()
    deadline = time.monotonic() + timeout
    while endpoint_in_use(endpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


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
