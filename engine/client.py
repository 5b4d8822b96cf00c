"""Client side of the engine protocol, for the studio's bridge and for the CLI (no Qt, no torch).

A background I/O thread owns the ZeroMQ DEALER socket; any thread may call `submit`, `steer`,
`cancel`, ... which never block on the engine. Events arrive through the `on_event` callback on the
I/O thread; replies resolve `concurrent.futures.Future`s.
"""
from __future__ import annotations

import collections
import itertools
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import zmq

from engine.protocol import PLAIN_USER, Event, ProtocolError, pack, to_event, unpack


def default_endpoint() -> str:
    """The user's shared engine socket (ipc, in the user runtime dir: only this user can reach it)."""
    from platformdirs import user_runtime_dir

    d = Path(user_runtime_dir("weft"))
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = f"{d}/engine.sock"
    if len(path) > 100:  # a Unix socket path must stay under ~107 bytes
        import hashlib
        import tempfile

        path = f"{tempfile.gettempdir()}/weft-{os.getuid()}-{hashlib.sha1(path.encode()).hexdigest()[:10]}.sock"
    return f"ipc://{path}"


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
        if not isinstance(endpoint, str) or not endpoint.startswith(("ipc://", "tcp://", "inproc://")):
            raise ValueError(f"'{endpoint}' is not an engine address (ipc://PATH or tcp://HOST:PORT)")
        self.endpoint, self.token = endpoint, token
        self.on_event = on_event or (lambda ev: None)
        self._ctx = zmq.Context.instance()
        self._out: collections.deque = collections.deque()  # requests waiting for the I/O thread
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
        self._refused: str | None = None  # set when the engine's handshake refused us
        self._thread = threading.Thread(target=self._run, name="weft-engine-io", daemon=True)
        self._thread.start()

    # ---- public API (any thread) -----------------------------------------------------------
    def request(self, op: str, **fields) -> Future:
        rid = next(self._rid)
        fut: Future = Future()
        if self._stop.is_set() or self._refused:
            fut.set_exception(EngineError(self._refused or "this engine connection is closed"))
            if op == "submit":
                self._deliver(Event(fields["job"], "error", 0, {"message": str(fut.exception()), "kind": "refused"}))
            return fut
        head = {"type": "req", "op": op, "rid": rid, "token": self.token, **fields}
        with self._lock:
            self._pending[rid] = fut
            if op == "submit":
                self._submits[rid] = fields["job"]
            self._out.append(pack(head))
            self._wake()
        return fut

    def _wake(self) -> None:
        """Nudge the I/O thread; never blocks (a full pipe means a nudge is pending already).
        Callers hold self._lock: a ZeroMQ socket is used by one thread at a time."""
        try:
            self._wake_tx.send(b"", zmq.NOBLOCK)
        except zmq.ZMQError:  # Again (pipe full) or the socket closed by close(): the I/O thread polls anyway
            pass

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

    def close(self, timeout: float = 2.0) -> None:
        """Stop the I/O thread and drop the connection. Never blocks for more than `timeout`, whatever
        the engine or the I/O thread is doing (the thread polls the stop flag every 200 ms)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._lock.acquire(timeout=timeout / 2):
            try:
                self._wake()
            finally:
                self._lock.release()
        self._thread.join(timeout / 2)
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            self._wake_tx.close(0)
        for fut in pending:
            if not fut.done():
                fut.set_exception(EngineError("this engine connection is closed"))

    # ---- I/O thread ------------------------------------------------------------------------
    def _run(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.token:  # the engine authenticates the handshake (PLAIN) before it reads any message
            sock.setsockopt(zmq.PLAIN_USERNAME, PLAIN_USER)
            sock.setsockopt(zmq.PLAIN_PASSWORD, self.token.encode())
        # handshake outcomes: an engine that refuses our token (or wants one) fails every request at once
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                          | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        sock.connect(self.endpoint)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self._wake_rx in ready:
                    while True:
                        try:
                            self._wake_rx.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                while self._out:
                    try:
                        sock.send_multipart(self._out[0], flags=zmq.NOBLOCK, copy=False)
                    except zmq.Again:  # the engine's queue is full: try again on the next turn
                        break
                    self._out.popleft()
                if monitor in ready:
                    self._handshake(monitor)
                if sock in ready:
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._dispatch(frames)
        finally:
            sock.disable_monitor()
            monitor.close(0)
            sock.close(0)
            self._wake_rx.close(0)

    def _handshake(self, monitor) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._refused = None
                continue
            self._refused = ("unauthorized: the engine refused this client's token" if self.token else
                             "unauthorized: this engine needs its token (--token-file)")
            with self._lock:
                pending, self._pending = self._pending, {}
                submits, self._submits = self._submits, {}
                self._out.clear()
            for rid, fut in pending.items():
                if not fut.done():
                    fut.set_exception(EngineError(self._refused))
                if rid in submits:
                    self._deliver(Event(submits[rid], "error", 0, {"message": self._refused, "kind": "refused"}))

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
            try:
                finished = done.wait(timeout)
            except KeyboardInterrupt:  # Ctrl-C: the (shared) engine must not go on with our job
                self.cancel(job)
                done.wait(2)
                raise
            if not finished:
                self.cancel(job)
                raise TimeoutError(f"job '{task}' did not finish within {timeout} s")
        finally:
            self.on_event = prev
        last = events[-1]
        if last.kind == "error":
            raise EngineError(last.data.get("message", "job failed"))
        return events
