"""Cooperative scheduler: steps every running streaming session, one step at a time.

Order: real-time sessions (World, Motion, speech playback) whose deadline has come, earliest
first; then the other sessions round-robin. The server handles incoming requests between any two
steps, so cancel, pause and steer take effect within one step. A session that raises becomes an
`error` event for its job and nothing else is disturbed.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.protocol import Event
from engine.runtime import Runtime, is_oom
from models.common.session import ParamError, StreamSession

STATS_EVERY_S = 0.5
log = logging.getLogger("weft.engine")


@dataclass
class Job:
    id: str
    task: str
    params: dict
    client: bytes = b""
    state: str = "queued"  # queued, running, paused
    session: StreamSession | None = None
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

    # ---- requests -------------------------------------------------------------------------
    def submit(self, job_id: str, task: str, params: dict, client: bytes = b"") -> None:
        if job_id in self.jobs:
            raise ParamError(f"job {job_id} already exists")
        self._check_task(task)
        job = Job(job_id, task, dict(params or {}), client)
        self.jobs[job_id] = job
        self.emit(job, "queued", {"task": task, "position": sum(j.state == "queued" for j in self.jobs.values())})

    def steer(self, job_id: str, params: dict) -> None:
        job = self._get(job_id)
        if job.session is None:  # not started yet: fold the change into its start parameters
            job.params.update(params)
            return
        job.session.steer(params)

    def warm(self, task: str) -> bool:
        """Load `task`'s weights the next time the engine is idle, so that its first job starts at
        once. Returns False when they are loaded (or queued) already."""
        self._check_task(task)
        if task in self.runtime.bundles or task in self.to_warm:
            return False
        self.to_warm.append(task)
        return True

    def cancel(self, job_id: str) -> None:
        job = self._get(job_id)
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

    def _check_task(self, task: str) -> None:
        if task not in self.runtime.tasks:
            raise ParamError(f"unknown task '{task}'; this engine serves: {', '.join(sorted(self.runtime.tasks)) or 'nothing'}")

    def _get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
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
            due = 0.0 if j.session is None else max(0.0, j.session.next_due() - now)
            best = due if best is None else min(best, due)
        if best is None and self.to_warm:
            return 0.0
        return best

    def pick(self) -> Job | None:
        now = time.monotonic()
        live = [j for j in self.jobs.values() if j.state != "paused"]
        rt = [j for j in live if j.session is not None and j.session.realtime and j.session.next_due() <= now]
        if rt:
            return min(rt, key=lambda j: j.session.next_due())
        other = [j for j in live if j.session is None or not j.session.realtime]
        if not other:
            return None
        self._rr = (self._rr + 1) % len(other)
        return other[self._rr]

    def step(self) -> bool:
        """Run one step of one job. Returns False when there was nothing due."""
        job = self.pick()
        if job is None:
            if not self.jobs and self.to_warm:  # idle: load what a panel will ask for
                task = self.to_warm.pop(0)
                t0 = time.perf_counter()
                try:
                    if self.runtime.preload(task):
                        log.info("loaded %s ahead of its first job in %.2f s", task, time.perf_counter() - t0)
                except Exception:  # the job that needs it will report the failure itself
                    log.exception("warming %s failed", task)
                return True
            return False
        try:
            t0 = time.perf_counter()
            if job.session is None:
                job.session = self.runtime.session_for(job.task)
                job.t_start, job.state = time.monotonic(), "running"
                job.last_stats = job.t_start
                self.emit(job, "started", {"task": job.task, "device": self.runtime.device,
                                           "load_s": round(time.perf_counter() - t0, 3)})
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
        if isinstance(e, ParamError):
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
            self._close(job)
            self._finish(job, "cancelled", {"reason": "engine shutting down"})
