"""Cooperative scheduler: steps every running streaming session, one step at a time.

Order: real-time sessions (World, Motion, speech playback) whose deadline has come, earliest
first; then the other sessions round-robin. The server handles incoming requests between any two
steps, so cancel, pause and steer take effect within one step. A session that raises becomes an
`error` event for its job and nothing else is disturbed.

Work that is not a model step never runs on this thread: a request's file parsing (an imported
SVG, BVH or sketch: `Session.parse_job`) runs in a limited child process (engine/sandbox.py) and
loading a model's weights in a loader thread; the job waits in state "parsing" / "loading"
meanwhile while every other session keeps its rate.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from engine.protocol import Event
from engine.registry import session_class
from engine.runtime import Runtime, is_oom
from engine.sandbox import ParseCall, ParseError
from models.common.session import ParamError, StreamSession

STATS_EVERY_S = 0.5
WAITING_POLL_S = 0.01  # how often a parse or a load in flight is looked at
MAX_JOBS = 256  # jobs held at once (queued or running); more are refused with a plain message
log = logging.getLogger("weft.engine")


@dataclass
class Job:
    id: str
    task: str
    params: dict
    client: bytes = b""
    state: str = "queued"  # queued, parsing, loading, running, paused
    session: StreamSession | None = None
    parse: ParseCall | None = None  # the request's file being read in a child process
    parsed: bool = False
    t_wait: float = 0.0  # when it began waiting for its parse or its weights
    parse_s: float = 0.0  # seconds it waited for its file to be read
    load_s: float = 0.0  # seconds it waited for its model's weights
    seq: int = 0
    t_submit: float = field(default_factory=time.monotonic)
    t_start: float = 0.0
    steps: int = 0
    step_s: float = 0.0  # time spent inside step()
    last_stats: float = 0.0


class Scheduler:
    def __init__(self, runtime: Runtime, emit: Callable[[bytes, Event], None]):
        self.runtime, self._emit = runtime, emit
        self.jobs: dict[str, Job] = {}
        self._rr = 0
        self.to_warm: list[str] = []  # tasks to load while nothing runs (the user opened their panel)
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="weft-load")
        self.loading: dict[str, Future] = {}  # task -> its weights loading in the loader thread

    # ---- requests -------------------------------------------------------------------------
    def submit(self, job_id: str, task: str, params: dict, client: bytes = b"") -> None:
        if job_id in self.jobs:
            raise ParamError(f"job {job_id} already exists")
        self._check_task(task)
        if not isinstance(params, dict):
            raise ParamError(f"params must be a map of names to values, got {type(params).__name__}")
        if len(self.jobs) >= MAX_JOBS:
            raise ParamError(f"the engine holds {MAX_JOBS} jobs already; wait for some to finish")
        params = {k: v for k, v in params.items() if k != "parsed"}  # only the engine's reader sets it
        job = Job(job_id, task, params, client)
        self.jobs[job_id] = job
        self.emit(job, "queued", {"task": task, "position": sum(j.state == "queued" for j in self.jobs.values())})

    def steer(self, job_id: str, params: dict) -> None:
        if not isinstance(params, dict):
            raise ParamError(f"steer params must be a map of names to values, got {type(params).__name__}")
        job = self._get(job_id)
        if job.session is None:  # not started yet: fold the change into its start parameters
            job.params.update({k: v for k, v in params.items() if k != "parsed"})
            return
        try:
            job.session.steer(params)
        except ParamError:
            raise
        except Exception as e:  # a session that chokes on odd values refuses the steer, the job runs on
            log.warning("steer of %s refused: %s: %s", job_id, type(e).__name__, e)
            raise ParamError(f"cannot steer this {job.task} job with {_brief(params)}: {type(e).__name__}") from None

    def warm(self, task: str) -> bool:
        """Load `task`'s weights the next time the engine is idle, so that its first job starts at
        once. Returns False when they are loaded (or queued) already."""
        self._check_task(task)
        if task in self.runtime.bundles or task in self.to_warm or task in self.loading:
            return False
        self.to_warm.append(task)
        return True

    def cancel(self, job_id: str) -> None:
        job = self._get(job_id)
        if job.parse is not None:
            job.parse.cancel()
        self._close(job)
        self._finish(job, "cancelled", {})

    def pause(self, job_id: str, paused: bool) -> None:
        job = self._get(job_id)
        if job.state in ("running", "paused"):
            job.state = "paused" if paused else "running"
        self.emit(job, "progress", {"paused": paused})

    def cancel_client(self, client: bytes) -> None:
        for job in [j for j in self.jobs.values() if j.client == client]:
            self.cancel(job.id)

    def _check_task(self, task) -> None:
        if not isinstance(task, str) or task not in self.runtime.tasks:
            raise ParamError(f"unknown task '{task}'; this engine serves: {', '.join(sorted(self.runtime.tasks)) or 'nothing'}")

    def _get(self, job_id) -> Job:
        if not isinstance(job_id, str) or job_id not in self.jobs:
            raise ParamError(f"no running job {job_id}")
        return self.jobs[job_id]

    # ---- stepping -------------------------------------------------------------------------
    def busy(self) -> bool:
        return bool(self.jobs)

    def next_wake(self) -> float | None:
        """Seconds until some job wants a step (0 = now), None when idle."""
        now, best = time.monotonic(), None
        for j in self.jobs.values():
            if j.state == "paused":
                continue
            if j.state in ("parsing", "loading"):
                due = WAITING_POLL_S
            else:
                due = 0.0 if j.session is None else max(0.0, j.session.next_due() - now)
            best = due if best is None else min(best, due)
        if self.to_warm and not self.loading:
            return 0.0 if best is None else best
        if best is None and self.loading:
            return WAITING_POLL_S
        return best

    def pick(self) -> Job | None:
        now = time.monotonic()
        live = [j for j in self.jobs.values() if j.state not in ("paused", "parsing", "loading")]
        rt = [j for j in live if j.session is not None and j.session.realtime and j.session.next_due() <= now]
        if rt:
            return min(rt, key=lambda j: j.session.next_due())
        other = [j for j in live if j.session is None or not j.session.realtime]
        if not other:
            return None
        self._rr = (self._rr + 1) % len(other)
        return other[self._rr]

    def _load(self, task: str) -> Future:
        """Load `task`'s weights in the loader thread (once; later callers share the future)."""
        if task not in self.loading:
            self.loading[task] = self._loader.submit(self.runtime.preload, task)
        return self.loading[task]

    def _advance_waiting(self) -> None:
        """Move jobs whose file is read / whose weights are loaded on towards running."""
        for task, fut in list(self.loading.items()):
            if fut.done():
                del self.loading[task]
                if fut.exception() is not None:
                    e = fut.exception()
                    log.error("loading %s failed", task, exc_info=(type(e), e, e.__traceback__))
        for job in list(self.jobs.values()):
            if job.state == "parsing" and job.parse.done():
                job.parse_s = time.monotonic() - job.t_wait
                try:
                    job.params["parsed"] = job.parse.result()
                    job.parse, job.parsed, job.state = None, True, "queued"
                except ParseError as e:
                    job.parse = None
                    self._finish(job, "error", {"message": str(e), "kind": "params"})
            elif job.state == "loading":
                fut = self.loading.get(job.task)
                if job.task in self.runtime.bundles:
                    job.state, job.load_s = "queued", time.monotonic() - job.t_wait
                elif fut is None:  # the load ended without weights: it failed
                    self._finish(job, "error", {"message": f"the {job.task} model could not be loaded; "
                                                "see the engine log", "kind": "exception"})

    def _prepare(self, job: Job, cls) -> bool:
        """Start a queued job's parse or load off this thread; True when it can start now."""
        if not job.parsed:
            job.parsed = True
            spec = cls.parse_job(job.params)
            if spec is not None:
                fn, arg, what, *limit = spec
                job.parse = ParseCall(fn, arg, what=what, **({"time_limit_s": limit[0]} if limit else {}))
                job.state, job.t_wait = "parsing", time.monotonic()
                return False
        if job.task not in self.runtime.bundles and cls.needs_weights(job.params):
            self._load(job.task)
            job.state, job.t_wait = "loading", time.monotonic()
            return False
        return True

    def step(self) -> bool:
        """Run one step of one job. Returns False when there was nothing due."""
        self._advance_waiting()
        job = self.pick()
        if job is None:
            if not self.loading and self.to_warm:  # load what a panel will ask for, off this thread
                task = self.to_warm.pop(0)
                if task not in self.runtime.bundles:
                    self._load(task)
                return True
            return False
        try:
            t0 = time.perf_counter()
            if job.session is None:
                cls = session_class(self.runtime.tasks[job.task])
                if not self._prepare(job, cls):
                    return True
                job.session = self.runtime.session_for(job.task, weights=cls.needs_weights(job.params))
                job.t_start, job.state = time.monotonic(), "running"
                job.last_stats = job.t_start
                self.emit(job, "started", {"task": job.task, "device": self.runtime.device,
                                           "load_s": round(job.load_s, 3), "parse_s": round(job.parse_s, 3),
                                           "model_load_s": self.runtime.load_s.get(job.task, 0.0)})
                out = job.session.start(job.params)
            else:
                out = job.session.step()
            job.step_s += time.perf_counter() - t0
            job.steps += 1
            for kind, data in out:
                self.emit(job, kind, data)
            if job.session.done:
                self._close(job)
                self._finish(job, "finished", self._stats(job))
            elif time.monotonic() - job.last_stats > STATS_EVERY_S:
                job.last_stats = time.monotonic()
                self.emit(job, "stats", self._stats(job))
        except Exception as e:  # one job's failure never takes the engine down
            self._fail(job, e)
        return True

    def _stats(self, job: Job) -> dict:
        elapsed = max(time.monotonic() - job.t_start, 1e-9)
        s = {"task": job.task, "steps": job.steps, "elapsed_s": round(elapsed, 4),
             "step_ms": round(1000 * job.step_s / max(job.steps, 1), 3), **self.runtime.memory()}
        if job.session is not None:
            extra = job.session.stats()
            s.update(extra)
            for unit in ("tokens", "frames", "samples"):
                if unit in extra:
                    s[f"{unit}_per_s"] = round(extra[unit] / elapsed, 2)
        return s

    def _fail(self, job: Job, e: Exception) -> None:
        self._close(job)
        if isinstance(e, (ParamError, ParseError)):
            self._finish(job, "error", {"message": str(e), "kind": "params"})
        elif is_oom(e):
            busy = {j.task for j in self.jobs.values() if j is not job}
            gone = self.runtime.unload_idle(busy)
            msg = ("Out of memory while running this job. Unloaded idle models"
                   f" ({', '.join(gone) or 'none'}); try a smaller request or close other jobs.")
            self._finish(job, "error", {"message": msg, "kind": "oom"})
        else:
            self._finish(job, "error", {"message": f"{type(e).__name__}: {e}", "kind": "exception",
                                        "traceback": traceback.format_exc()})

    def _close(self, job: Job) -> None:
        if job.session is not None:
            try:
                job.session.close()
            except Exception:  # a failing close must not hide the job's real outcome
                pass

    def _finish(self, job: Job, kind: str, data: dict) -> None:
        self.jobs.pop(job.id, None)
        self.emit(job, kind, data)

    def emit(self, job: Job, kind: str, data: dict) -> None:
        ev = Event(job.id, kind, job.seq, data)
        job.seq += 1
        self._emit(job.client, ev)

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            if job.parse is not None:
                job.parse.cancel()
            self._close(job)
            self._finish(job, "cancelled", {"reason": "engine shutting down"})
        self._loader.shutdown(wait=False, cancel_futures=True)


def _brief(params: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in list(params.items())[:3])
    return text if len(text) <= 80 else text[:77] + "..."
