"""The engine process: one ZeroMQ ROUTER socket, a request handler and the scheduler loop.

    python -m engine serve                       # ipc:// in the user runtime dir
    python -m engine serve --listen tcp://0.0.0.0:5555 --token-file token.txt

Prints one readiness line (`WEFT-ENGINE READY <endpoint> ...`) once it accepts requests.
TCP listening requires a token. With a token the socket authenticates each peer during ZeroMQ's
handshake (the PLAIN mechanism through pyzmq's ZAP authenticator, user "weft", password = token),
so a client without it cannot deliver a single message, small or large; every request also carries
the token and is checked again.

No request can stop the engine: every op checks its fields' types and answers a plain error, and
anything unexpected inside an op becomes an error reply (logged with its traceback).
"""
from __future__ import annotations

import hmac
import logging
import os
import platform
import threading
import time

import torch
import zmq

from engine.protocol import OPS, PLAIN_USER, READY_LINE, Event, ProtocolError, event_message, pack, unpack
from engine.runtime import Runtime, device_name
from engine.sandbox import warm as warm_sandbox
from engine.scheduler import Scheduler
from models.common.session import ParamError

log = logging.getLogger("weft.engine")

MAX_REQUEST_BYTES = 256 * 2**20  # largest single request frame (an imported mesh or image fits easily)
MAX_ID_CHARS = 128  # job ids and task names

# op -> {field: (type, required)}: checked before the op runs
FIELDS: dict[str, dict[str, tuple[type | tuple, bool]]] = {
    "submit": {"job": (str, True), "task": (str, True), "params": ((dict, type(None)), False)},
    "steer": {"job": (str, True), "params": (dict, True)},
    "cancel": {"job": (str, True)},
    "pause": {"job": (str, True)},
    "resume": {"job": (str, True)},
    "warm": {"task": (str, True)},
}


def check_fields(op: str, msg: dict) -> None:
    for name, (kind, required) in FIELDS.get(op, {}).items():
        if name not in msg:
            if required:
                raise ProtocolError(f"'{op}' needs the field '{name}'")
            continue
        if not isinstance(msg[name], kind):
            want = "text" if kind is str else "a map"
            raise ProtocolError(f"'{op}': field '{name}' must be {want}, got {type(msg[name]).__name__}")
        if kind is str and not 0 < len(msg[name]) <= MAX_ID_CHARS:
            raise ProtocolError(f"'{op}': field '{name}' must be 1 to {MAX_ID_CHARS} characters")


class Engine:
    def __init__(self, endpoint: str, token: str | None = None, device: str = "auto", ctx: zmq.Context | None = None,
                 idle_exit_s: float | None = None):
        if endpoint.startswith("tcp://") and not token:
            raise ValueError("listening on TCP needs a token (--token-file); refusing to serve without one")
        self.token = token
        self.idle_exit_s = idle_exit_s  # a shared engine started by the CLI stops after this long unused
        self.runtime = Runtime(device)
        self.scheduler = Scheduler(self.runtime, self._send_event)
        self.ctx = ctx or zmq.Context()  # its own: one ZAP authenticator per context
        self.auth = None
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)  # a peer sending more is disconnected
        if token:  # authenticate peers in the handshake, before any of their messages is read
            from zmq.auth.thread import ThreadAuthenticator

            self.auth = ThreadAuthenticator(self.ctx, log=logging.getLogger("weft.engine.auth"))
            self.auth.start()
            self.auth.configure_plain(domain="*", passwords={PLAIN_USER.decode(): token})
            self.sock.setsockopt(zmq.PLAIN_SERVER, 1)
        if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
            port = self.sock.bind_to_random_port(endpoint[:-2])
            endpoint = f"{endpoint[:-2]}:{port}"
        else:
            self.sock.bind(endpoint)
        self.endpoint = endpoint
        self.t0 = time.monotonic()
        self.last_request = self.t0
        self.running = True

    # ---- transport -------------------------------------------------------------------------
    def _send_event(self, client: bytes, ev: Event) -> None:
        if ev.kind == "error" and "traceback" in ev.data:
            log.error("job %s failed:\n%s", ev.job, ev.data["traceback"])
        if not client:
            return
        try:
            frames = event_message(ev)
        except Exception as e:  # a session emitted something the wire cannot carry: say so, keep serving
            log.exception("job %s: cannot send its %s event", ev.job, ev.kind)
            frames = event_message(Event(ev.job, "error" if ev.terminal else "progress", ev.seq,
                                         {"message": f"the engine could not send a {ev.kind} event ({type(e).__name__})",
                                          "kind": "exception"}))
        try:
            self.sock.send_multipart([client] + frames, copy=False)
        except zmq.ZMQError:  # the client went away (ROUTER drops silently; other errors land here)
            log.warning("could not deliver a %s event for job %s", ev.kind, ev.job)

    def _reply(self, client: bytes, rid, ok: bool, result=None, error: str | None = None) -> None:
        head = {"type": "reply", "rid": rid, "ok": ok}
        if ok:
            head["result"] = result
        else:
            head["error"] = error
        self.sock.send_multipart([client] + pack(head), copy=False)

    # ---- requests --------------------------------------------------------------------------
    def handle(self, client: bytes, frames: list) -> None:
        """Answer one request. Never raises: whatever goes wrong becomes an error reply."""
        rid = None
        self.last_request = time.monotonic()
        try:
            msg = unpack(frames)
            rid = msg.get("rid")
            if not isinstance(rid, (int, str, type(None))):
                rid = None
            op = msg.get("op")
            if msg.get("type") != "req" or not isinstance(op, str) or op not in OPS:
                raise ProtocolError(f"not a request: type={msg.get('type')!r:.40} op={op!r:.40}")
            if self.token is not None and not hmac.compare_digest(str(msg.get("token") or ""), self.token):
                log.warning("refused a request without the right token")
                self._reply(client, rid, False, error="unauthorized: this engine needs its token")
                return
            check_fields(op, msg)
            result = getattr(self, f"op_{op}")(client, msg)
            self._reply(client, rid, True, result)
        except (ProtocolError, ParamError) as e:
            self._reply(client, rid, False, error=str(e) or type(e).__name__)
        except Exception as e:  # noqa: BLE001 - a bug in an op refuses that request, never the engine
            log.exception("request failed")
            self._reply(client, rid, False, error=f"the engine could not do that ({type(e).__name__}); see the engine log")

    def op_submit(self, client, msg):
        job = msg["job"]
        self.scheduler.submit(job, msg["task"], msg.get("params") or {}, client)
        return {"job": job}

    def op_steer(self, client, msg):
        self.scheduler.steer(msg["job"], msg["params"])
        return {}

    def op_cancel(self, client, msg):
        self.scheduler.cancel(msg["job"])
        return {}

    def op_pause(self, client, msg):
        self.scheduler.pause(msg["job"], True)
        return {}

    def op_resume(self, client, msg):
        self.scheduler.pause(msg["job"], False)
        return {}

    def op_warm(self, client, msg):
        return {"queued": self.scheduler.warm(msg["task"])}

    def op_ping(self, client, msg):
        return {"t": time.time()}

    def op_status(self, client, msg):
        return self.status()

    def op_shutdown(self, client, msg):
        self.running = False
        return {}

    @staticmethod
    def _warm_reader() -> None:
        try:
            warm_sandbox()
        except Exception:  # noqa: BLE001 - imports will report their own failure
            log.exception("could not start the file reader")

    def status(self) -> dict:
        return {
            "state": "busy" if self.scheduler.busy() else "ready",
            "device": self.runtime.device,
            "device_name": device_name(self.runtime.device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.t0, 1),
            "endpoint": self.endpoint,
            "tasks": sorted(self.runtime.tasks),
            "loaded": sorted(self.runtime.bundles),
            "load_s": dict(self.runtime.load_s),
            "idle_exit_s": self.idle_exit_s,
            "jobs": [{"job": j.id, "task": j.task, "state": j.state} for j in self.scheduler.jobs.values()],
            **self.runtime.memory(),
        }

    # ---- loop ------------------------------------------------------------------------------
    def serve(self, ready_line: bool = True) -> None:
        if ready_line:
            print(f"{READY_LINE} {self.endpoint} device={self.runtime.device}", flush=True)
        log.info("engine serving on %s (device %s)", self.endpoint, device_name(self.runtime.device))
        # the file reader's forkserver starts beside the loop (about a second), so the first import is
        # not the slow one and requests are answered meanwhile
        threading.Thread(target=self._warm_reader, daemon=True, name="weft-reader-warm").start()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while self.running:
            wake = self.scheduler.next_wake()
            timeout = 100 if wake is None else int(1000 * wake)
            # Drain every pending request before the next step: cancel/steer act within one step.
            if poller.poll(timeout):
                while self.running:
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) >= 2:
                        self.handle(frames[0], frames[1:])
            if self.running:
                try:
                    self.scheduler.step()
                except Exception:  # noqa: BLE001 - the scheduler's own bug must not end the engine
                    log.exception("scheduler step failed")
            if self.idle_exit_s and not self.scheduler.busy() \
                    and time.monotonic() - self.last_request > self.idle_exit_s:
                log.info("no requests for %.0f s: stopping", self.idle_exit_s)
                self.running = False
        self.scheduler.shutdown()
        self.sock.close()
        if self.auth is not None:
            self.auth.stop()
        log.info("engine stopped")
