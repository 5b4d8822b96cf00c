"""The streaming-session contract between a model package and the engine.

Each model package's `stream.py` defines one subclass. The engine's scheduler creates it for a
job, calls `start(params)` once, then `step()` repeatedly (checking cancel between steps), passes
`steer(params)` through whenever the user changes something mid-stream, and calls `close()` at the
end. A step should take a few to a few tens of milliseconds so cancel and steer feel instant.

`step()` returns a list of (kind, data) with kind in "partial", "progress", "output", "stats";
the engine wraps them into wire events with the job id and sequence number. Numpy arrays in
data travel as raw frames.
"""
from __future__ import annotations

from typing import Any, ClassVar

Emitted = list[tuple[str, dict]]


class ParamError(ValueError):
    """Bad request parameters: shown to the user as is."""


class StreamSession:
    task: ClassVar[str] = ""  # the task name clients submit, e.g. "icon"
    realtime: ClassVar[bool] = False  # stepped first, against `next_due()` deadlines
    demo: ClassVar[dict] = {}  # a typical request: what `python -m engine bench` runs

    def __init__(self, bundle: Any, device: str):
        self.bundle, self.device = bundle, device
        self.done = False

    @classmethod
    def load(cls, device: str) -> Any:
        """Load (and warm up) the weights shared by every session of this task. Called once per engine."""
        return None

    @classmethod
    def parse_job(cls, params: dict) -> tuple | None:
        """Slow, weight-free work a request needs before `start` (reading an imported file):
        (function, argument, what) with a module-level function of models.common.file_readers, run by
        the engine in a limited child process; its result arrives as params["parsed"]. None: nothing.
        A fourth item, when present, is the time limit in seconds (default engine.sandbox.TIME_LIMIT_S)."""
        return None

    @classmethod
    def needs_weights(cls, params: dict) -> bool:
        """False for requests that never touch the model (e.g. an icon import): they skip loading."""
        return True

    def start(self, params: dict) -> Emitted:
        raise NotImplementedError

    def step(self) -> Emitted:
        raise NotImplementedError

    def steer(self, params: dict) -> None:
        raise ParamError(f"task '{self.task}' cannot be steered")

    def close(self) -> None:
        pass

    def next_due(self) -> float:
        """time.monotonic() at which the next step is wanted (real-time sessions); 0 = now."""
        return 0.0

    def stats(self) -> dict:
        """Figures for the stats event: e.g. {"tokens": n, "frames": n, "latency_ms": x}."""
        return {}


def check_range(params: dict, name: str, lo: float, hi: float, default: float, kind=float):
    """Read params[name] as `kind` within [lo, hi], or raise ParamError with a plain sentence."""
    v = params.get(name, default)
    try:
        v = kind(v)
    except (TypeError, ValueError):
        raise ParamError(f"{name} must be a number, got {v!r}") from None
    if not (lo <= v <= hi):
        raise ParamError(f"{name} must be between {lo} and {hi}, got {v}")
    return v
