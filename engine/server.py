"""The engine process: one ZeroMQ ROUTER socket, a request handler and the scheduler loop.

    python -m engine serve                       # ipc:// in the user runtime dir
    python -m engine serve --listen tcp://0.0.0.0:5555 --token-file token.txt

Prints one readiness line (`WEFT-ENGINE READY <endpoint> ...`) once it accepts requests.
TCP listening requires a token; every request must carry it or is refused.
"""
from __future__ import annotations

import hmac
import logging
import os
import platform
import time

import torch
import zmq

from engine.protocol import OPS, READY_LINE, Event, ProtocolError, event_message, pack, unpack
from engine.runtime import Runtime, device_name
from engine.scheduler import Scheduler
from models.common.session import ParamError

log = logging.getLogger("weft.engine")

MAX_REQUEST_BYTES = 256 * 2**20  # largest single request frame (an imported mesh or image fits easily)


class Engine:
    def __init__(self, endpoint: str, token: str | None = None, device: str = "auto", ctx: zmq.Context | None = None):
        if endpoint.startswith("tcp://") and not token:
            raise ValueError("listening on TCP needs a token (--token-file); refusing to serve without one")
        self.token = token
        self.runtime = Runtime(device)
        self.scheduler = Scheduler(self.runtime, self._send_event)
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)  # a peer sending more is disconnected
        if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
            port = self.sock.bind_to_random_port(endpoint[:-2])
            endpoint = f"{endpoint[:-2]}:{port}"
        else:
            self.sock.bind(endpoint)
        self.endpoint = endpoint
        self.t0 = time.monotonic()
        self.running = True

    # ---- transport -------------------------------------------------------------------------
    def _send_event(self, client: bytes, ev: Event) -> None:
        if client:
            self.sock.send_multipart([client] + event_message(ev), copy=False)
        if ev.kind == "error" and "traceback" in ev.data:
            log.error("job %s failed:\n%s", ev.job, ev.data["traceback"])

    def _reply(self, client: bytes, rid, ok: bool, result=None, error: str | None = None) -> None:
        head = {"type": "reply", "rid": rid, "ok": ok}
        if ok:
            head["result"] = result
        else:
            head["error"] = error
        self.sock.send_multipart([client] + pack(head), copy=False)

    # ---- requests --------------------------------------------------------------------------
    def handle(self, client: bytes, frames: list) -> None:
        rid = None
        try:
            msg = unpack(frames)
            rid = msg.get("rid")
            if msg.get("type") != "req" or msg.get("op") not in OPS:
                raise ProtocolError(f"not a request: type={msg.get('type')!r} op={msg.get('op')!r}")
            if self.token is not None and not hmac.compare_digest(str(msg.get("token") or ""), self.token):
                log.warning("refused a request without the right token")
                self._reply(client, rid, False, error="unauthorized: this engine needs its token")
                return
            op = msg["op"]
            result = getattr(self, f"op_{op}")(client, msg)
            self._reply(client, rid, True, result)
        except (ProtocolError, ParamError, KeyError, TypeError, ValueError) as e:
            self._reply(client, rid, False, error=str(e) if not isinstance(e, KeyError) else f"missing field {e}")

    def op_submit(self, client, msg):
        job = str(msg["job"])
        self.scheduler.submit(job, str(msg["task"]), msg.get("params") or {}, client)
        return {"job": job}

    def op_steer(self, client, msg):
        self.scheduler.steer(str(msg["job"]), msg.get("params") or {})
        return {}

    def op_cancel(self, client, msg):
        self.scheduler.cancel(str(msg["job"]))
        return {}

    def op_pause(self, client, msg):
        self.scheduler.pause(str(msg["job"]), True)
        return {}

    def op_resume(self, client, msg):
        self.scheduler.pause(str(msg["job"]), False)
        return {}

    def op_warm(self, client, msg):
        return {"queued": self.scheduler.warm(str(msg["task"]))}

    def op_ping(self, client, msg):
        return {"t": time.time()}

    def op_status(self, client, msg):
        return self.status()

    def op_shutdown(self, client, msg):
        self.running = False
        return {}

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
            "jobs": [{"job": j.id, "task": j.task, "state": j.state} for j in self.scheduler.jobs.values()],
            **self.runtime.memory(),
        }

    # ---- loop ------------------------------------------------------------------------------
    def serve(self, ready_line: bool = True) -> None:
        if ready_line:
            print(f"{READY_LINE} {self.endpoint} device={self.runtime.device}", flush=True)
        log.info("engine serving on %s (device %s)", self.endpoint, device_name(self.runtime.device))
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
                self.scheduler.step()
        self.scheduler.shutdown()
        self.sock.close()
        log.info("engine stopped")
