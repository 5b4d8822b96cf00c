"""The wire protocol between the studio (or CLI) and the engine.

One message = ZeroMQ multipart: frame 0 is a msgpack header, frames 1.. are raw numpy buffers
referenced from the header as {"__nd__": i, "dtype": "<f4", "shape": [..]}.

Requests (client -> engine): {"type": "req", "op": OP, "rid": n, "token": str|None, ...}
Replies  (engine -> client): {"type": "reply", "rid": n, "ok": bool, "result": ..., "error": str}
Events   (engine -> client): {"type": "event", "job": id, "kind": KIND, "seq": n, "data": {...}}
Every job's events carry a sequence number that starts at 0 and rises by one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

OPS = ("submit", "steer", "cancel", "pause", "resume", "status", "shutdown", "ping", "warm")
KINDS = ("queued", "started", "partial", "progress", "output", "finished", "cancelled", "error", "stats")
TERMINAL = ("finished", "cancelled", "error")
READY_LINE = "WEFT-ENGINE READY"
PLAIN_USER = b"weft"  # the user name of ZeroMQ's PLAIN handshake when an engine has a token (its password)


class ProtocolError(ValueError):
    """A message that does not follow the protocol."""


@dataclass
class Event:
    job: str
    kind: str
    seq: int
    data: dict = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL


def _strip(obj: Any, buffers: list) -> Any:
    """Replace numpy arrays by references into `buffers`; numpy scalars by Python scalars."""
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        buffers.append(arr)
        return {"__nd__": len(buffers) - 1, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(obj, dict):
        return {k: _strip(v, buffers) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strip(v, buffers) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _restore(obj: Any, frames: list) -> Any:
    if isinstance(obj, dict):
        if "__nd__" in obj:
            i = obj["__nd__"]
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(frames):
                raise ProtocolError(f"array reference {i!r} has no frame")
            try:
                dtype = np.dtype(obj.get("dtype"))
            except (TypeError, ValueError):
                raise ProtocolError(f"array reference {i} has an unknown dtype {obj.get('dtype')!r:.40}") from None
            if dtype.hasobject:
                raise ProtocolError("object arrays are not allowed on the wire")
            try:
                return np.frombuffer(frames[i], dtype=dtype).reshape(obj.get("shape"))
            except (TypeError, ValueError):
                raise ProtocolError(f"array reference {i}: its frame does not hold a {obj.get('shape')!r:.40} "
                                    f"array of {dtype}") from None
        return {k: _restore(v, frames) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v, frames) for v in obj]
    return obj


def pack(header: dict) -> list:
    """header (may contain numpy arrays anywhere) -> multipart frames."""
    buffers: list = []
    head = _strip(header, buffers)
    return [msgpack.packb(head, use_bin_type=True)] + [memoryview(b).cast("B") if b.nbytes else b"" for b in buffers]


def unpack(frames: list) -> dict:
    """multipart frames -> header with numpy arrays restored (read-only views on the frames)."""
    if not frames:
        raise ProtocolError("empty message")
    try:
        head = msgpack.unpackb(bytes(frames[0]), raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several types for garbage
        raise ProtocolError(f"undecodable header: {e}") from None
    if not isinstance(head, dict) or "type" not in head:
        raise ProtocolError("header must be a map with a 'type'")
    return _restore(head, [memoryview(f) if not isinstance(f, (bytes, memoryview)) else f for f in frames[1:]])


def event_message(ev: Event) -> list:
    return pack({"type": "event", "job": ev.job, "kind": ev.kind, "seq": ev.seq, "data": ev.data})


def to_event(head: dict) -> Event:
    return Event(head["job"], head["kind"], head["seq"], head.get("data") or {})
