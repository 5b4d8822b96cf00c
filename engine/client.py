"""Client side of the engine protocol, for the studio's bridge and for the CLI (no Qt, no torch).

A background I/O thread owns the ZeroMQ DEALER socket; any thread may call `submit`, `steer`,
`cancel`, ... which never block on the engine. Events arrive through the `on_event` callback on the
I/O thread; replies resolve `concurrent.futures.Future`s.
"""
from __future__ import annotations

import itertools
import queue
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import zmq

from engine.protocol import Event, ProtocolError, pack, to_event, unpack


def default_endpoint() -> str:
    from platformdirs import user_runtime_dir

    d = Path(user_runtime_dir("weft"))
    d.mkdir(parents=True, exist_ok=True)
    return f"ipc://{d}/engine.sock"


def read_token(path: str | None) -> str | None:
    if not path:
        return None
    tok = Path(path).read_text().strip()
    if not tok:
        raise ValueError(f"token file {path} is empty")
    return tok


class EngineError(RuntimeError):
    """The engine refused a request or a job failed."""


class EngineClient:
    def __init__(self, endpoint: str, token: str | None = None, on_event: Callable[[Event], None] | None = None):
        self.endpoint, self.token = endpoint, token
        self.on_event = on_event or (lambda ev: None)
        self._ctx = zmq.Context.instance()
        self._out: queue.Queue = queue.Queue()
        self._pending: dict[int, Future] = {}
        self._submits: dict[int, str] = {}  # rid -> job id, to turn a refused submit into an error event
        self._rid = itertools.count(1)
        self._lock = threading.Lock()
        wake_addr = f"inproc://weft-client-{uuid.uuid4().hex}"
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        self._wake_rx.bind(wake_addr)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        self._wake_tx.connect(wake_addr)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="weft-engine-io", daemon=True)
        self._thread.start()

    # ---- public API (any thread) -----------------------------------------------------------
    def request(self, op: str, **fields) -> Future:
        rid = next(self._rid)
        fut: Future = Future()
        head = {"type": "req", "op": op, "rid": rid, "token": self.token, **fields}
        with self._lock:
            self._pending[rid] = fut
            if op == "submit":
                self._submits[rid] = fields["job"]
            self._out.put(pack(head))
            self._wake_tx.send(b"")
        return fut

    def submit(self, task: str, params: dict | None = None, job: str | None = None) -> str:
        job = job or uuid.uuid4().hex[:12]
        self.request("submit", job=job, task=task, params=params or {})
        return job

    def steer(self, job: str, params: dict) -> Future:
        return self.request("steer", job=job, params=params)

    def cancel(self, job: str) -> Future:
        return self.request("cancel", job=job)

    def pause(self, job: str) -> Future:
        return self.request("pause", job=job)

    def resume(self, job: str) -> Future:
        return self.request("resume", job=job)

    def warm(self, task: str) -> Future:
        """Ask the engine to load `task`'s weights while it is idle (a panel was opened)."""
        return self.request("warm", task=task)

    def status(self, timeout: float = 5.0) -> dict:
        return self.call("status", timeout=timeout)

    def shutdown(self, timeout: float = 5.0) -> dict:
        return self.call("shutdown", timeout=timeout)

    def call(self, op: str, timeout: float = 5.0, **fields):
        """Blocking request; raises EngineError on refusal, TimeoutError when nobody answers."""
        fut = self.request(op, **fields)
        try:
            return fut.result(timeout)
        except TimeoutError:
            raise TimeoutError(f"the engine at {self.endpoint} did not answer '{op}' within {timeout:.0f} s") from None

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._wake_tx.send(b"")
        self._thread.join(2)
        self._wake_tx.close(0)

    # ---- I/O thread ------------------------------------------------------------------------
    def _run(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self._wake_rx in ready:
                    while True:
                        try:
                            self._wake_rx.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                    while not self._out.empty():
                        sock.send_multipart(self._out.get_nowait(), copy=False)
                if sock in ready:
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._dispatch(frames)
        finally:
            sock.close(0)
            self._wake_rx.close(0)

    def _dispatch(self, frames: list) -> None:
        try:
            msg = unpack(frames)
        except ProtocolError:
            return
        if msg["type"] == "event":
            self._deliver(to_event(msg))
        elif msg["type"] == "reply":
            rid = msg.get("rid")
            with self._lock:
                fut = self._pending.pop(rid, None)
                job = self._submits.pop(rid, None)
            if msg.get("ok"):
                if fut:
                    fut.set_result(msg.get("result"))
                return
            err = msg.get("error") or "request refused"
            if fut:
                fut.set_exception(EngineError(err))
            if job is not None:  # a refused submit still ends its job, so a waiting panel hears of it
                self._deliver(Event(job, "error", 0, {"message": err, "kind": "refused"}))

    def _deliver(self, ev: Event) -> None:
        try:
            self.on_event(ev)
        except Exception:  # a broken listener must not kill the I/O thread
            import logging

            logging.getLogger("weft.client").exception("event listener failed")

    def run(self, task: str, params: dict | None = None, on_event: Callable[[Event], None] | None = None,
            timeout: float | None = None) -> list[Event]:
        """Submit a job and block until it ends; returns all its events. Raises EngineError on error."""
        done, events = threading.Event(), []
        prev = self.on_event
        job_holder: dict = {}

        def listen(ev: Event):
            if ev.job != job_holder.get("job"):
                prev(ev)
                return
            events.append(ev)
            if on_event:
                on_event(ev)
            if ev.terminal:
                done.set()

        job = uuid.uuid4().hex[:12]
        job_holder["job"] = job
        self.on_event = listen
        try:
            self.submit(task, params, job=job)
            if not done.wait(timeout):
                self.cancel(job)
                raise TimeoutError(f"job '{task}' did not finish within {timeout} s")
        finally:
            self.on_event = prev
        last = events[-1]
        if last.kind == "error":
            raise EngineError(last.data.get("message", "job failed"))
        return events
