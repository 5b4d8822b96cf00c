"""The engine's jobs on Ray: `weft-engine serve --backend ray [--ray-address ADDR] [--ray-config FILE]`.

The front stays the engine's own: `RayEngine` is `engine.server.Engine` (one ZeroMQ ROUTER socket,
the token, every op's field checks, status, the wire format) with its scheduler swapped for
`RayScheduler`, which runs each job on a Ray cluster instead of the engine's thread:

- one-shot tasks (icon, shape: `mode = "serve"` in engine/ray_config.toml) go to a Ray Serve
  deployment per task (`TaskReplica`: replicas, autoscaling); the replica steps the task's
  StreamSession and streams its events back as a generator response;
- live sessions (world, motion, speech: `mode = "actor"`) get a Ray actor each (`SessionActor`,
  taken from a small per-task pool that keeps `warm_actors` loaded), which steps the session and
  streams its events back as an ObjectRefGenerator; steer / pause / cancel are actor calls,
  applied between two steps as in the local engine.

Both run the same session loop (`SessionHost._run_session`, on a thread of its own in the worker):
start, step (paced by `next_due()` for real-time sessions), steers applied between two steps, stats
every 0.5 s, `finished` with the stats, or `error` from the session's exception. The worker's asyncio
loop streams what the thread made (`SessionHost.drive`). The gateway owns every job's `seq`: events
reach the client in the order the worker made them, numbered from 0. A worker that dies (its process,
its node) ends its job with an `error` event of kind "worker" ("oom" when Ray's memory monitor
stopped it); the other jobs go on.

Back-pressure and fairness: each task has a capacity (serve: max_replicas x max_ongoing_requests;
actor: max_sessions). Beyond it jobs wait at the gateway, round-robin across clients per task, and
hear `queued` again with their new position as it changes. Live-session tasks have their own
capacity and their events are forwarded before one-shot events, so one client's flood of icons
never delays another client's world. `started` carries the worker (node, host, replica or actor).

Threads on the gateway: the engine's loop (socket, dispatch, every event and reply sent), one
asyncio loop talking to Ray (one coroutine per job in flight), one thread deploying Serve apps.
They meet in two deques (`_live_in`, `_in`): nothing but the engine's loop touches the socket.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import socket
import sys
import threading
import time
import tomllib
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import ray
from ray import serve

from engine.protocol import Event
from engine.registry import session_class
from engine.runtime import is_oom, pick_device, rss_mb
from engine.server import Engine
from models.common.session import ParamError, StreamSession

log = logging.getLogger("weft.engine.ray")

DEFAULT_CONFIG = Path(__file__).with_name("ray_config.toml")
STATS_EVERY_S = 0.5  # as the local scheduler
POLL_S = 0.002  # how often the engine's loop looks at the inbox while jobs run
DRAIN_MAX = 512  # one-shot events forwarded per turn of the engine's loop (live ones: all)
ACTOR_WAIT_NOTE_S = 5.0  # tell the client when a worker takes longer than this to be placed
PLACE_POLL_S = 0.2  # how often a session waiting for a new actor looks for one given back
RECLAIM_AFTER_S = 1.0  # a session waiting this long for a new actor ends other tasks' idle spares
MODES = ("auto", "serve", "actor")
BATCH_S = 0.02  # a one-shot job's events leave its worker at most this often (sends cost CPU)
SWITCH_INTERVAL_S = 0.001  # GIL hand-over in the workers (Python's default: 0.005)


# ---- configuration -------------------------------------------------------------------------------
@dataclass
class TaskConfig:
    mode: str = "auto"
    num_cpus: float = 0.25
    num_gpus: float | str = "auto"
    memory_mb: int = 0
    threads: int = 0
    nice: int = 0
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = 1.0
    max_ongoing_requests: int = 2
    upscale_delay_s: float = 2.0
    downscale_delay_s: float = 60.0
    max_sessions: int = 4
    warm_actors: int = 1
    resources: dict = field(default_factory=dict)  # custom Ray resources, e.g. {"big_gpu": 1}

    def check(self, where: str) -> None:
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (isinstance(self.num_gpus, (int, float)) or self.num_gpus == "auto"):
            raise ValueError(f"{where}: num_gpus must be a number or \"auto\", got {self.num_gpus!r}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"{where}: need 1 <= min_replicas <= max_replicas")
        if self.max_ongoing_requests < 1 or self.max_sessions < 1 or self.warm_actors < 0:
            raise ValueError(f"{where}: max_ongoing_requests and max_sessions must be >= 1, warm_actors >= 0")
        if self.num_cpus < 0:
            raise ValueError(f"{where}: num_cpus must be >= 0")


@dataclass
class RayConfig:
    num_cpus: float = 0
    num_gpus: float = -1
    object_store_mb: int = 512
    namespace: str = "weft"
    max_jobs: int = 256
    queue_updates: int = 64
    defaults: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)
    source: str = "built-in defaults"

    @classmethod
    def load(cls, path: str | Path | None = None) -> RayConfig:
        """Read a TOML config ([ray], [gateway], [defaults], [tasks.NAME]); unknown keys are errors."""
        p = Path(path) if path else DEFAULT_CONFIG
        if not p.exists():
            if path:
                raise ValueError(f"Ray config {p} does not exist")
            return cls()
        try:
            raw = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"Ray config {p}: {e}") from None
        cfg = cls(source=str(p))
        for section, names in (("ray", ("num_cpus", "num_gpus", "object_store_mb", "namespace")),
                               ("gateway", ("max_jobs", "queue_updates"))):
            part = raw.pop(section, {})
            for k, v in part.items():
                if k not in names:
                    raise ValueError(f"Ray config {p}: [{section}] has no setting '{k}'")
                setattr(cfg, k, v)
        cfg.defaults = raw.pop("defaults", {})
        cfg.tasks = raw.pop("tasks", {})
        if raw:
            raise ValueError(f"Ray config {p}: unknown section(s) {', '.join(raw)}")
        for name in ["defaults", *cfg.tasks]:
            cfg.task(name if name != "defaults" else "")  # check every section now, not at the first job
        return cfg

    def task(self, name: str) -> TaskConfig:
        known = {f.name for f in fields(TaskConfig)}
        merged = {**self.defaults, **(self.tasks.get(name, {}) if name else {})}
        bad = [k for k in merged if k not in known]
        where = f"Ray config {self.source} [{'tasks.' + name if name else 'defaults'}]"
        if bad:
            raise ValueError(f"{where}: unknown setting(s) {', '.join(bad)}")
        tc = TaskConfig(**merged)
        tc.check(where)
        return tc


def choose_mode(tc: TaskConfig, cls: type) -> str:
    """serve or actor for a task: its config, or for "auto" whether its session is live."""
    if tc.mode != "auto":
        return tc.mode
    steerable = getattr(cls, "steer", None) is not StreamSession.steer
    return "actor" if (getattr(cls, "realtime", False) or steerable) else "serve"


# ---- the worker side (runs in Ray replicas and actors) --------------------------------------------
def error_data(e: BaseException) -> dict:
    """A session's exception as the local scheduler reports it."""
    from engine.sandbox import ParseError

    if isinstance(e, (ParamError, ParseError)):
        return {"message": str(e), "kind": "params"}
    if is_oom(e):
        return {"message": "Out of memory on the Ray worker while running this job; try a smaller request "
                           "or fewer jobs per worker (ray_config.toml).", "kind": "oom"}
    return {"message": f"{type(e).__name__}: {e}", "kind": "exception",
            "traceback": "".join(traceback.format_exception(e))}


def _quiet_close(session) -> None:
    try:
        session.close()
    except Exception:  # a failing close must not hide the job's real outcome
        pass


class _Control:
    """What the gateway can change while a session runs, handed to the session's thread: steers (applied
    between two steps, each answered through its future), pause and cancel."""

    def __init__(self):
        self.cancelled = False
        self.running = threading.Event()  # cleared while paused
        self.running.set()
        self.poke = threading.Event()  # wakes the session's thread out of its pacing wait
        self.steers: collections.deque = collections.deque()  # (params, concurrent Future)
        self.ended = False

    def stop(self) -> None:
        self.cancelled = True
        self.running.set()
        self.poke.set()


class SessionHost:
    """Loads one task's weights once per worker process and runs its sessions. Each session lives on
    a thread of its own (start, step, steer and close happen there, in order, as on the local engine's
    loop) and hands its events to the worker's asyncio loop, which streams them to the gateway:
    whatever piled up while one batch was being sent goes out as the next batch."""

    kind = "replica"

    def __init__(self, task: str, spec: str, device: str = "auto", threads: int = 0, nice: int = 0):
        import torch

        if nice > 0:
            try:
                os.nice(nice)
            except OSError:
                pass
        torch.set_num_threads(max(1, threads or os.cpu_count() or 1))  # Ray sets OMP_NUM_THREADS=1
        # the session's thread and the thread streaming its events share the GIL: hand it over within
        # 1 ms rather than Python's 5 (a step waiting 5 ms for the GIL after every send nearly doubled
        # a 7 ms step)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.task, self.cls = task, session_class(spec)
        self.device = pick_device(device)
        t0 = time.perf_counter()
        self.bundle = self.cls.load(self.device)
        self.load_s = round(time.perf_counter() - t0, 3)

    def worker_info(self) -> dict:
        ctx = ray.get_runtime_context()
        info = {"kind": self.kind, "node": ctx.get_node_id(), "host": socket.gethostname(),
                "ip": ray.util.get_node_ip_address(), "pid": os.getpid(), "device": self.device}
        if self.kind == "replica":
            rid = serve.get_replica_context().replica_id
            info["replica"] = getattr(rid, "unique_id", None) or str(rid)
        else:
            info["actor"] = ctx.get_actor_id()
        return info

    def _stats(self, session, t_start, steps, step_s) -> dict:
        elapsed = max(time.monotonic() - t_start, 1e-9)
        s = {"task": self.task, "steps": steps, "elapsed_s": round(elapsed, 4),
             "step_ms": round(1000 * step_s / max(steps, 1), 3), "rss_mb": round(rss_mb(), 1)}
        extra = session.stats()
        s.update(extra)
        for unit in ("tokens", "frames", "samples"):
            if unit in extra:
                s[f"{unit}_per_s"] = round(extra[unit] / elapsed, 2)
        return s

    async def drive(self, job: str, params: dict, ctl: _Control):
        """Run one session; yields lists of (kind, data). The first is ("started", worker info); the
        last ends with ("finished", stats) or ("error", ...); a cancelled one just stops."""
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        last_words = asyncio.Event()  # the job's end is queued: send it without waiting for BATCH_S

        def put(batch):
            loop.call_soon_threadsafe(q.put_nowait, batch)
            if batch is None or any(kind in ("finished", "error") for kind, _ in batch):
                loop.call_soon_threadsafe(last_words.set)

        info = {**self.worker_info(), "model_load_s": self.load_s}
        threading.Thread(target=self._run_session, args=(dict(params), ctl, put), daemon=True,
                         name=f"weft-{self.task}-{job}").start()
        live = bool(getattr(self.cls, "realtime", False))
        last, shown = 0.0, False
        try:
            yield [("started", info)]
            while True:
                batch = await q.get()
                if not live and shown and batch is not None:  # one-shot, after its first partial: one
                    wait = last + BATCH_S - loop.time()  # message per BATCH_S at most
                    if wait > 0 and not last_words.is_set():
                        try:
                            await asyncio.wait_for(last_words.wait(), wait)
                        except TimeoutError:
                            pass
                while batch is not None and not q.empty():  # send what piled up as one batch
                    more = q.get_nowait()
                    if more is None:
                        if batch:
                            yield batch
                        return
                    batch = batch + more
                if batch is None:
                    return
                yield batch
                last = loop.time()
                shown = shown or any(kind == "partial" for kind, _ in batch)
        finally:
            ctl.stop()  # a cancelled request (Serve) or a finished one: the thread ends within one step

    def _run_session(self, params: dict, ctl: _Control, put) -> None:
        """The session's thread: the local scheduler's loop for one job, paced and steered."""
        session, batch = None, []
        try:
            spec = self.cls.parse_job(params)
            if spec is not None:  # the request's file, read in a limited child process of this worker
                from engine.sandbox import run_limited

                fn, arg, what, *limit = spec
                params["parsed"] = run_limited(fn, arg, what=what, **({"time_limit_s": limit[0]} if limit else {}))
            while ctl.steers:  # steers that came before the start: folded into its parameters
                p, fut = ctl.steers.popleft()
                params.update({k: v for k, v in p.items() if k != "parsed"})
                fut.set_result(None)
            if ctl.cancelled:
                return
            session = self.cls(self.bundle, self.device)
            t_start = last_stats = time.monotonic()
            t0 = time.perf_counter()
            out = session.start(params)
            steps, step_s = 1, time.perf_counter() - t0
            while True:
                batch.extend(out)
                if session.done:
                    batch.append(("finished", self._stats(session, t_start, steps, step_s)))
                    put(batch)
                    return
                now = time.monotonic()
                if now - last_stats > STATS_EVERY_S:
                    last_stats = now
                    batch.append(("stats", self._stats(session, t_start, steps, step_s)))
                put(batch)
                batch = []
                while True:  # wait for the next step's deadline, a resume, or a cancel; steer meanwhile
                    self._apply_steers(session, ctl)
                    if ctl.cancelled:
                        return
                    if not ctl.running.is_set():
                        ctl.poke.wait(0.5)
                        ctl.poke.clear()
                        continue
                    wait = session.next_due() - time.monotonic() if session.realtime else 0.0
                    if wait <= 0:
                        break
                    ctl.poke.wait(wait)
                    ctl.poke.clear()
                t0 = time.perf_counter()
                out = session.step()
                step_s += time.perf_counter() - t0
                steps += 1
        except Exception as e:  # noqa: BLE001 - the session's failure ends this job only
            put(batch + [("error", error_data(e))])
        finally:
            ctl.ended = True
            if session is not None:
                _quiet_close(session)
            while ctl.steers:
                ctl.steers.popleft()[1].set_result("this session has ended")
            put(None)

    def _apply_steers(self, session, ctl: _Control) -> None:
        while ctl.steers:
            params, fut = ctl.steers.popleft()
            try:
                session.steer(params)
                fut.set_result(None)
            except ParamError as e:
                fut.set_result(str(e) or "steer refused")
            except Exception as e:  # noqa: BLE001 - a session that chokes on odd values refuses the steer
                fut.set_result(f"cannot steer this {self.task} job with {_brief(params)}: {type(e).__name__}")


class TaskReplica(SessionHost):
    """A Ray Serve replica of a one-shot task (deployed by the gateway, one deployment per task)."""

    kind = "replica"

    async def run(self, job: str, params: dict):
        async for batch in self.drive(job, params, _Control()):
            yield batch


class SessionActor(SessionHost):
    """A Ray actor hosting one live session at a time (the gateway pools them per task)."""

    kind = "actor"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.ctl: _Control | None = None

    async def info(self) -> dict:
        return {**self.worker_info(), "model_load_s": self.load_s}

    async def run(self, job: str, params: dict):
        self.ctl = ctl = _Control()
        try:
            async for batch in self.drive(job, params, ctl):
                yield batch
        finally:
            if self.ctl is ctl:
                self.ctl = None

    async def steer(self, params: dict) -> str | None:
        """Apply a steer between two steps; returns None, or why it was refused."""
        ctl = self.ctl
        if ctl is None or ctl.ended:
            return "this session has ended"
        fut: Future = Future()
        ctl.steers.append((params, fut))
        ctl.poke.set()
        if ctl.ended and not fut.done():  # it ended while we queued: nobody will apply it
            return "this session has ended"
        return await asyncio.wrap_future(fut)

    async def pause(self, paused: bool) -> None:
        if self.ctl is not None:
            (self.ctl.running.clear if paused else self.ctl.running.set)()
            self.ctl.poke.set()

    async def cancel(self) -> None:
        if self.ctl is not None:
            self.ctl.stop()


def _brief(params: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in list(params.items())[:3])
    return text if len(text) <= 80 else text[:77] + "..."


# ---- the gateway ---------------------------------------------------------------------------------
class Deferred:
    """A reply that comes later (a steer, once the worker has applied it between two steps)."""

    __slots__ = ("client", "rid")

    def __init__(self):
        self.client, self.rid = None, None


@dataclass
class RayJob:
    id: str
    task: str
    params: dict
    client: bytes
    mode: str  # serve | actor
    realtime: bool
    state: str = "queued"  # queued, starting, running, paused
    seq: int = 0
    t_submit: float = field(default_factory=time.monotonic)
    t_dispatch: float = 0.0
    position: int = 0
    worker: dict = field(default_factory=dict)
    ended: bool = False  # its terminal event is out (its worker may still be winding down)
    # set on the asyncio loop only
    gen: Any = None
    actor: Any = None
    cancel_sent: bool = False


@dataclass
class TaskState:
    name: str
    cfg: TaskConfig
    cls: type
    mode: str
    queue: list = field(default_factory=list)  # waiting RayJobs, in submit order
    inflight: int = 0  # dispatched jobs whose worker has not let go yet
    served: dict = field(default_factory=dict)  # client -> turn it was last served (fair order)
    turn: int = 0
    # serve
    deploy: str = ""  # "", deploying, ready, failed
    deploy_error: str = ""
    handle: Any = None
    # actor pool (asyncio loop only, except the counters read by status)
    idle: list = field(default_factory=list)
    actors: int = 0  # alive (idle + busy + starting)

    @property
    def capacity(self) -> int:
        if self.mode == "serve":
            return self.cfg.max_replicas * self.cfg.max_ongoing_requests
        return self.cfg.max_sessions


class RayScheduler:
    """The engine scheduler's interface (submit, steer, cancel, pause, warm, step, next_wake, busy,
    shutdown, jobs) over Ray. Every method but the coroutines runs on the engine's loop thread."""

    def __init__(self, runtime, emit, reply, cfg: RayConfig, device: str, runtime_env: dict, owns_ray: bool):
        self.runtime, self._emit, self._reply = runtime, emit, reply
        self.cfg, self.device, self.runtime_env, self.owns_ray = cfg, device, runtime_env, owns_ray
        self.jobs: dict[str, RayJob] = {}
        self.tasks: dict[str, TaskState] = {}
        self._live_in: collections.deque = collections.deque()  # from real-time jobs, and replies
        self._in: collections.deque = collections.deque()  # from one-shot jobs, deploys, releases
        self.gpus = float(ray.cluster_resources().get("GPU", 0))
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="weft-ray-loop", daemon=True)
        self._loop_thread.start()
        self._deployer = ThreadPoolExecutor(1, thread_name_prefix="weft-ray-deploy")
        self._closing = False
        self._placing = 0  # sessions waiting for a new actor to be placed (asyncio loop only)

    # ---- tasks -----------------------------------------------------------------------------
    def _task(self, name) -> TaskState:
        if not isinstance(name, str) or name not in self.runtime.tasks:
            raise ParamError(f"unknown task '{name}'; this engine serves: "
                             f"{', '.join(sorted(self.runtime.tasks)) or 'nothing'}")
        ts = self.tasks.get(name)
        if ts is None:
            try:
                cls = session_class(self.runtime.tasks[name])
            except Exception as e:  # noqa: BLE001 - a task whose package does not import
                log.exception("task %s does not import", name)
                raise ParamError(f"the {name} task cannot be loaded here ({type(e).__name__}: {e})") from None
            tc = self.cfg.task(name)
            ts = self.tasks[name] = TaskState(name, tc, cls, choose_mode(tc, cls))
        return ts

    def _gpus(self, tc: TaskConfig, actor: bool) -> float:
        if tc.num_gpus == "auto":
            return (1.0 if actor else 0.5) if self.gpus > 0 else 0.0
        return float(tc.num_gpus)

    def _ray_options(self, tc: TaskConfig, actor: bool) -> dict:
        opts = {"num_cpus": tc.num_cpus, "num_gpus": self._gpus(tc, actor), "runtime_env": self.runtime_env}
        if tc.memory_mb:
            opts["memory"] = tc.memory_mb * 2**20
        if tc.resources:
            opts["resources"] = dict(tc.resources)
        return opts

    def _worker_args(self, ts: TaskState) -> tuple:
        return ts.name, self.runtime.tasks[ts.name], self.device, ts.cfg.threads, ts.cfg.nice

    # ---- requests --------------------------------------------------------------------------
    def submit(self, job_id: str, task: str, params: dict, client: bytes = b"") -> None:
        if job_id in self.jobs:
            raise ParamError(f"job {job_id} already exists")
        ts = self._task(task)
        if not isinstance(params, dict):
            raise ParamError(f"params must be a map of names to values, got {type(params).__name__}")
        if len(self.jobs) >= self.cfg.max_jobs:
            raise ParamError(f"the engine holds {self.cfg.max_jobs} jobs already; wait for some to finish")
        params = {k: v for k, v in params.items() if k != "parsed"}  # only the engine's reader sets it
        job = RayJob(job_id, task, params, client, ts.mode, bool(getattr(ts.cls, "realtime", False)))
        self.jobs[job_id] = job
        ts.queue.append(job)
        self._prepare(ts)
        order = self._order(ts)
        job.position = order.index(job) + 1
        self.emit(job, "queued", {"task": task, "position": job.position, "backend": "ray", "mode": ts.mode})

    def steer(self, job_id: str, params: dict):
        if not isinstance(params, dict):
            raise ParamError(f"steer params must be a map of names to values, got {type(params).__name__}")
        job = self._get(job_id)
        clean = {k: v for k, v in params.items() if k != "parsed"}
        if job.state == "queued":  # not handed to a worker yet: fold the change into its start parameters
            job.params.update(clean)
            return {}
        if job.mode == "serve":
            raise ParamError(f"this {job.task} job runs as a one-shot job on Ray Serve and cannot be steered "
                             f"once it has started (set mode = \"actor\" for [tasks.{job.task}] in the Ray config)")
        d = Deferred()
        self._soon(self._steer_actor(job, clean, d))
        return d

    def cancel(self, job_id: str) -> None:
        job = self._get(job_id)
        ts = self.tasks[job.task]
        self._finish(job, "cancelled", {})  # first: its worker's coroutine checks `ended`
        if job.state == "queued":
            ts.queue.remove(job)
            self._requeue_positions(ts)
        else:
            self.loop.call_soon_threadsafe(self._cancel_in_loop, job)

    def pause(self, job_id: str, paused: bool) -> None:
        job = self._get(job_id)
        if job.mode == "serve" and job.state != "queued":
            raise ParamError(f"this {job.task} job runs as a one-shot job on Ray Serve and cannot pause; "
                             "cancel it instead")
        if job.state in ("running", "paused"):
            job.state = "paused" if paused else "running"
            self.loop.call_soon_threadsafe(self._pause_in_loop, job, paused)
        self.emit(job, "progress", {"paused": paused})

    def warm(self, task: str) -> bool:
        """Deploy the task's replicas / start a warm actor now. False when they are there already."""
        ts = self._task(task)
        if ts.mode == "serve":
            if ts.deploy in ("deploying", "ready"):
                return False
            self._prepare(ts)
            return True
        if ts.actors > 0:
            return False
        self._soon(self._refill(ts, at_least=1))
        return True

    def cancel_client(self, client: bytes) -> None:
        for job in [j for j in self.jobs.values() if j.client == client]:
            self.cancel(job.id)

    def _get(self, job_id) -> RayJob:
        if not isinstance(job_id, str) or job_id not in self.jobs:
            raise ParamError(f"no running job {job_id}")
        return self.jobs[job_id]

    # ---- the engine's loop -------------------------------------------------------------------
    def busy(self) -> bool:
        return bool(self.jobs)

    def next_wake(self) -> float | None:
        if self._live_in or self._in or any(ts.queue and self._can_dispatch(ts) for ts in self.tasks.values()):
            return 0.0
        if self.jobs or any(ts.inflight or ts.deploy == "deploying" for ts in self.tasks.values()):
            return POLL_S
        return None

    def step(self) -> bool:
        did = False
        while self._live_in:  # live sessions' frames and steer replies first
            self._handle(self._live_in.popleft())
            did = True
        for _ in range(DRAIN_MAX):
            if not self._in:
                break
            self._handle(self._in.popleft())
            did = True
        # live-session tasks dispatch first
        for ts in sorted(self.tasks.values(), key=lambda t: t.mode != "actor"):
            moved = False
            while ts.queue and self._can_dispatch(ts):
                self._dispatch(ts)
                moved = did = True
            if moved:
                self._requeue_positions(ts)
        return did

    def _can_dispatch(self, ts: TaskState) -> bool:
        if ts.inflight >= ts.capacity:
            return False
        return ts.mode == "actor" or ts.deploy == "ready" or ts.deploy == "failed"

    def _order(self, ts: TaskState) -> list:
        """The task's waiting jobs in the order they will start: one job per client in turn, the client
        served least recently first (a client never served yet before all others)."""
        per: dict[bytes, list] = {}
        for j in ts.queue:
            per.setdefault(j.client, []).append(j)
        lists = sorted(per.values(), key=lambda v: ts.served.get(v[0].client, -1))  # stable: submit order
        out = []
        for i in range(max((len(v) for v in lists), default=0)):
            out.extend(v[i] for v in lists if i < len(v))
        return out

    def _requeue_positions(self, ts: TaskState) -> None:
        for i, job in enumerate(self._order(ts)[: self.cfg.queue_updates]):
            if job.position != i + 1:
                job.position = i + 1
                self.emit(job, "queued", {"task": ts.name, "position": job.position, "backend": "ray",
                                          "mode": ts.mode})

    def _dispatch(self, ts: TaskState) -> None:
        job = self._order(ts)[0]
        ts.queue.remove(job)
        ts.turn += 1
        ts.served[job.client] = ts.turn  # this client goes to the back of the turn
        if len(ts.served) > 1024:  # forget clients long gone
            ts.served = dict(sorted(ts.served.items(), key=lambda kv: kv[1])[-256:])
        if ts.mode == "serve" and ts.deploy == "failed":
            self._finish(job, "error", {"message": ts.deploy_error, "kind": "worker"})
            return
        ts.inflight += 1
        job.state, job.t_dispatch = "starting", time.monotonic()
        self._soon(self._pump_serve(job, ts) if ts.mode == "serve" else self._pump_actor(job, ts))

    def _prepare(self, ts: TaskState) -> None:
        """Deploy a serve task's replicas the first time it is needed (off this thread)."""
        if ts.mode == "serve" and ts.deploy in ("", "failed"):
            ts.deploy = "deploying"
            self._deployer.submit(self._deploy, ts)

    def _handle(self, item: tuple) -> None:
        what = item[0]
        if what == "events":
            _, job, batch = item
            if self.jobs.get(job.id) is not job:  # it ended (cancelled): the worker's last words are dropped
                return
            for kind, data in batch:
                if kind == "started":
                    job.worker = {k: v for k, v in data.items() if k != "model_load_s"}
                    if job.state == "starting":
                        job.state = "running"
                    self.emit(job, "started", {"task": job.task, "device": data.get("device"), "backend": "ray",
                                               "worker": job.worker, "queue_s": round(job.t_dispatch - job.t_submit, 3),
                                               "model_load_s": data.get("model_load_s", 0.0)})
                elif kind in ("finished", "error"):
                    self._finish(job, kind, data)
                    return
                else:
                    self.emit(job, kind, data)
        elif what == "release":
            item[1].inflight -= 1
        elif what == "reply":
            _, d, error = item
            if d.client is not None:
                self._reply(d.client, d.rid, error is None, {} if error is None else None, error)
        elif what == "deployed":
            _, ts, error = item
            ts.deploy, ts.deploy_error = ("failed", error) if error else ("ready", "")

    def emit(self, job: RayJob, kind: str, data: dict) -> None:
        ev = Event(job.id, kind, job.seq, data)
        job.seq += 1
        self._emit(job.client, ev)

    def _finish(self, job: RayJob, kind: str, data: dict) -> None:
        if kind == "error" and data.get("kind") in ("worker", "oom"):
            log.warning("job %s (%s) on %s: %s", job.id, job.task, job.worker.get("host", "Ray"), data.get("message"))
        job.ended = True
        self.jobs.pop(job.id, None)
        self.emit(job, kind, data)

    # ---- Ray side (the asyncio loop) ------------------------------------------------------------
    def _soon(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def _post(self, job: RayJob, item: tuple) -> None:
        (self._live_in if job.realtime else self._in).append(item)

    def _deploy(self, ts: TaskState) -> None:
        tc = ts.cfg
        opts: dict = {"name": ts.name, "max_ongoing_requests": tc.max_ongoing_requests,
                      "ray_actor_options": self._ray_options(tc, actor=False), "max_constructor_retry_count": 2,
                      "graceful_shutdown_timeout_s": 5.0}
        if tc.min_replicas == tc.max_replicas:
            opts["num_replicas"] = tc.max_replicas
        else:
            opts["autoscaling_config"] = {"min_replicas": tc.min_replicas, "max_replicas": tc.max_replicas,
                                          "target_ongoing_requests": tc.target_ongoing_requests,
                                          "upscale_delay_s": tc.upscale_delay_s,
                                          "downscale_delay_s": tc.downscale_delay_s}
        t0 = time.perf_counter()
        try:
            app = serve.deployment(TaskReplica, **opts).bind(*self._worker_args(ts))
            ts.handle = serve.run(app, name=app_name(ts.name), route_prefix=None)
            log.info("deployed %s on Ray Serve in %.1f s", ts.name, time.perf_counter() - t0)
            self._in.append(("deployed", ts, ""))
        except Exception as e:  # noqa: BLE001 - the task's jobs get the reason
            log.exception("deploying %s failed", ts.name)
            first = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
            self._in.append(("deployed", ts, f"the {ts.name} workers could not start on Ray: {first}"))

    async def _pump_serve(self, job: RayJob, ts: TaskState) -> None:
        from ray.serve.exceptions import RequestCancelledError

        ended = False
        try:
            if job.ended:
                return
            job.gen = ts.handle.options(stream=True).run.remote(job.id, job.params)
            if job.cancel_sent:
                job.gen.cancel()
            async for batch in job.gen:
                self._post(job, ("events", job, batch))
                ended = ended or any(k in ("finished", "error") for k, _ in batch)
        except (RequestCancelledError, asyncio.CancelledError):
            pass
        except Exception as e:  # noqa: BLE001 - the replica died or Serve failed: this job only
            if not job.ended:
                self._post(job, ("events", job, [("error", worker_lost(e, job))]))
            ended = True
        finally:
            if not ended and not job.ended:
                self._post(job, ("events", job, [("error", {"message": "the worker ended this job without a result",
                                                            "kind": "worker"})]))
            self._post(job, ("release", ts))

    async def _pump_actor(self, job: RayJob, ts: TaskState) -> None:
        actor, healthy, ended = None, True, False
        try:
            actor = await self._acquire(ts, job)
            if actor is None or job.ended:
                return
            job.actor = actor
            gen = actor.run.remote(job.id, job.params)
            job.params = {}
            if job.cancel_sent or job.ended:
                actor.cancel.remote()
            async for ref in gen:
                batch = await ref
                self._post(job, ("events", job, batch))
                for kind, data in batch:
                    if kind in ("finished", "error"):
                        ended = True
                        healthy = kind == "finished" or data.get("kind") == "params"
        except Exception as e:  # noqa: BLE001 - the actor died (or its node): this job only
            healthy = False
            if not job.ended and not ended:
                self._post(job, ("events", job, [("error", worker_lost(e, job))]))
            ended = True
        finally:
            if actor is not None and not ended and not job.ended:
                self._post(job, ("events", job, [("error", {"message": "the worker ended this job without a result",
                                                            "kind": "worker"})]))
            job.actor = None
            if actor is not None:
                self._give_back(ts, actor, healthy)
            self._post(job, ("release", ts))

    async def _take_idle(self, ts: TaskState):
        """A healthy idle actor of the task, or None."""
        while ts.idle:
            actor = ts.idle.pop()
            try:
                await asyncio.wait_for(actor.info.remote(), 10)
                return actor
            except Exception:  # noqa: BLE001 - it died while idle: drop it, try the next
                ts.actors -= 1
                _kill(actor)
        return None

    def _new_actor(self, ts: TaskState):
        ts.actors += 1
        try:
            return ray.remote(SessionActor).options(**self._ray_options(ts.cfg, actor=True), max_restarts=0,
                                                    max_concurrency=64).remote(*self._worker_args(ts))
        except BaseException:
            ts.actors -= 1
            raise

    async def _acquire(self, ts: TaskState, job: RayJob):
        """An actor with the task's model loaded: a warm idle one, or a new one. While a new one waits
        for resources, an actor that another session of the task gives back is taken instead, and the
        idle spares of other tasks are let go (spares never keep a session waiting)."""
        actor = await self._take_idle(ts)
        if actor is not None:
            self._soon(self._refill(ts))
            return actor
        try:
            actor = self._new_actor(ts)
        except Exception as e:  # noqa: BLE001 - bad options for this cluster
            self._post(job, ("events", job, [("error", worker_lost(e, job, starting=True))]))
            return None
        ready = asyncio.ensure_future(_await_ref(actor.info.remote()))
        t0, noted, reclaimed = time.monotonic(), False, False
        self._placing += 1
        try:
            while True:
                done, _ = await asyncio.wait({ready}, timeout=PLACE_POLL_S)
                if done:
                    break
                if job.ended or ts.idle:  # cancelled, or a session gave its actor back: the new one joins the pool
                    ready.add_done_callback(functools.partial(self._adopt, ts, actor))
                    if job.ended:
                        return None
                    other = await self._take_idle(ts)
                    if other is not None:
                        return other
                    actor = self._new_actor(ts)  # the idle one had died: start over with a fresh one
                    ready = asyncio.ensure_future(_await_ref(actor.info.remote()))
                    continue
                waited = time.monotonic() - t0
                if not reclaimed and waited > RECLAIM_AFTER_S:
                    reclaimed = True
                    for other_ts in self.tasks.values():
                        if other_ts is not ts and other_ts.idle:
                            log.info("releasing %d idle %s actor(s) for a waiting %s session",
                                     len(other_ts.idle), other_ts.name, ts.name)
                            for a in other_ts.idle:
                                other_ts.actors -= 1
                                _kill(a)
                            other_ts.idle.clear()
                if not noted and waited > ACTOR_WAIT_NOTE_S:
                    noted = True
                    self._post(job, ("events", job, [("progress", {
                        "message": f"waiting for a Ray worker for {ts.name} "
                                   f"(needs {ts.cfg.num_cpus:g} CPU, {self._gpus(ts.cfg, True):g} GPU)"})]))
        finally:
            self._placing -= 1
        try:
            ready.result()
        except Exception as e:  # noqa: BLE001 - its constructor failed (weights, imports)
            ts.actors -= 1
            _kill(actor)
            if not job.ended:
                self._post(job, ("events", job, [("error", worker_lost(e, job, starting=True))]))
            return None
        self._soon(self._refill(ts))
        return actor

    def _adopt(self, ts: TaskState, actor, fut) -> None:
        if fut.cancelled() or fut.exception() is not None:
            ts.actors -= 1
            _kill(actor)
        else:
            self._give_back(ts, actor, True)

    def _give_back(self, ts: TaskState, actor, healthy: bool) -> None:
        """Back to the idle pool (up to warm_actors + 1, so one user's next session reuses it rather than
        a fresh spare replacing it each time), or ended."""
        if healthy and not self._closing and ts.cfg.warm_actors and len(ts.idle) <= ts.cfg.warm_actors:
            ts.idle.append(actor)
        else:
            ts.actors -= 1
            _kill(actor)

    async def _refill(self, ts: TaskState, at_least: int = 0) -> None:
        """Keep `warm_actors` idle actors loaded (never more actors than max_sessions + warm_actors), but
        start no spare while some session waits for resources."""
        want = max(at_least, ts.cfg.warm_actors)
        while (not self._closing and not self._placing and len(ts.idle) < want
               and ts.actors < ts.cfg.max_sessions + want):
            try:
                actor = self._new_actor(ts)
                await actor.info.remote()
            except Exception:  # noqa: BLE001 - a spare that cannot start is not needed now
                ts.actors -= 1
                log.exception("a warm %s actor could not start", ts.name)
                return
            if len(ts.idle) < want:
                ts.idle.append(actor)
            else:
                self._give_back(ts, actor, True)

    async def _steer_actor(self, job: RayJob, params: dict, d: Deferred) -> None:
        try:
            if job.actor is None:  # placed but not running yet
                job.params.update(params)
                error = None
            else:
                error = await job.actor.steer.remote(params)
        except Exception as e:  # noqa: BLE001 - the actor went away: the job's error event says so
            error = f"the worker running this job is gone ({type(e).__name__})"
        self._live_in.append(("reply", d, error))

    def _cancel_in_loop(self, job: RayJob) -> None:
        job.cancel_sent = True
        if job.gen is not None and job.mode == "serve":
            job.gen.cancel()
        elif job.actor is not None:
            job.actor.cancel.remote()

    def _pause_in_loop(self, job: RayJob, paused: bool) -> None:
        if job.actor is not None:
            job.actor.pause.remote(paused)

    # ---- status, shutdown ------------------------------------------------------------------
    def ray_status(self) -> dict:
        res = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        tasks = {}
        for name, ts in sorted(self.tasks.items()):
            t = {"mode": ts.mode, "waiting": len(ts.queue), "running": ts.inflight, "capacity": ts.capacity}
            if ts.mode == "serve":
                t.update(deploy=ts.deploy or "not deployed", replicas=f"{ts.cfg.min_replicas}..{ts.cfg.max_replicas}")
                if ts.deploy_error:
                    t["error"] = ts.deploy_error
            else:
                t.update(actors=ts.actors, idle=len(ts.idle))
            tasks[name] = t
        return {"backend": "ray", "ray": {
            "address": ray.get_runtime_context().gcs_address, "config": self.cfg.source,
            "nodes": [{"node": n["NodeID"], "host": n.get("NodeManagerHostname"),
                       "cpus": n.get("Resources", {}).get("CPU", 0), "gpus": n.get("Resources", {}).get("GPU", 0)}
                      for n in nodes],
            "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0), "tasks": tasks}}

    def loaded(self) -> list[str]:
        return sorted(n for n, ts in self.tasks.items() if ts.deploy == "ready" or ts.idle or ts.inflight)

    def job_rows(self) -> list[dict]:
        return [{"job": j.id, "task": j.task, "state": j.state, "client_position": j.position
                 if j.state == "queued" else 0, "worker": j.worker.get("host", "")} for j in self.jobs.values()]

    def shutdown(self) -> None:
        self._closing = True
        for job in list(self.jobs.values()):
            if job.state != "queued":
                self.loop.call_soon_threadsafe(self._cancel_in_loop, job)
            self._finish(job, "cancelled", {"reason": "engine shutting down"})

        async def wind_down():
            for ts in self.tasks.values():
                for actor in ts.idle:
                    _kill(actor)
                ts.idle.clear()

        try:
            asyncio.run_coroutine_threadsafe(wind_down(), self.loop).result(5)
        except Exception:  # noqa: BLE001
            pass
        self._deployer.shutdown(wait=True, cancel_futures=True)
        try:
            if self.owns_ray:
                serve.shutdown()
            else:  # a shared cluster: remove only this gateway's applications
                for ts in self.tasks.values():
                    if ts.deploy == "ready":
                        serve.delete(app_name(ts.name))
        except Exception:  # noqa: BLE001 - the cluster may be gone already
            log.exception("could not remove the Serve applications")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(5)
        if self.owns_ray:
            ray.shutdown()


async def _await_ref(ref):
    return await ref


def _kill(actor) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - gone already
        pass


def app_name(task: str) -> str:
    return f"weft-{task}"


def worker_lost(e: BaseException, job: RayJob, starting: bool = False) -> dict:
    """A worker's death (or a failure to start one) as the job's error, in one or two sentences."""
    cause = getattr(e, "cause", None) or e
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    if starting:  # a constructor's exception: its last line is "SomeError: what went wrong"
        detail = lines[-1] if lines else type(cause).__name__
        return {"message": f"Ray could not start a worker for this {job.task} job: {detail[:300]}", "kind": "worker"}
    text = " ".join(lines)
    if isinstance(e, ray.exceptions.OutOfMemoryError) or isinstance(cause, ray.exceptions.OutOfMemoryError) \
            or any(m in text for m in ("memory pressure", "low on memory", "OUT_OF_MEMORY")):
        # Ray's memory monitor stopped it (a plain crash's message names "the OOM killer" as a possible cause)
        return {"message": f"Ray stopped the worker running this {job.task} job because its machine ran out "
                           "of memory; try again, or give the cluster more memory or fewer workers per node.",
                "kind": "oom"}
    detail = lines[0].split(". ")[0].rstrip(".") if lines else ""
    return {"message": f"The Ray worker running this {job.task} job stopped ({type(e).__name__}"
                       f"{': ' + detail[:200] if detail else ''}).", "kind": "worker"}


class RayEngine(Engine):
    """The engine's front (socket, token, ops, status) with its jobs on Ray."""

    def __init__(self, endpoint: str, token: str | None = None, device: str = "auto", ctx=None,
                 idle_exit_s: float | None = None, ray_address: str | None = None,
                 ray_config: str | Path | RayConfig | None = None):
        if endpoint.startswith("tcp://") and not token:
            raise ValueError("listening on TCP needs a token (--token-file); refusing to serve without one")
        cfg = ray_config if isinstance(ray_config, RayConfig) else RayConfig.load(ray_config)
        runtime_env, owns = start_ray(cfg, ray_address)
        try:
            super().__init__(endpoint, token=token, device="cpu", ctx=ctx, idle_exit_s=idle_exit_s)
            self.runtime.device = "ray"  # the gateway runs no model: the ready line says where jobs go
            self.scheduler = RayScheduler(self.runtime, self._send_event, super()._reply, cfg, device,
                                          runtime_env, owns)
        except BaseException:
            if owns:
                ray.shutdown()
            raise

    def _reply(self, client, rid, ok, result=None, error=None) -> None:
        if ok and isinstance(result, Deferred):  # sent by the scheduler once the worker has answered
            result.client, result.rid = client, rid
            return
        super()._reply(client, rid, ok, result, error)

    def status(self) -> dict:
        st = super().status()
        st["loaded"] = self.scheduler.loaded()
        st["jobs"] = self.scheduler.job_rows()
        st["device"] = "ray"
        st["device_name"] = "Ray cluster"
        try:
            st.update(self.scheduler.ray_status())
        except Exception as e:  # noqa: BLE001 - status must answer even when the cluster is unwell
            st["backend"] = "ray"
            st["ray"] = {"error": f"{type(e).__name__}: {e}"}
        return st


def start_ray(cfg: RayConfig, address: str | None) -> tuple[dict, bool]:
    """Connect to `address`, or start a local Ray sized to this machine; start Serve (no HTTP proxy).
    Returns the workers' runtime_env and whether this process owns the Ray instance."""
    env = {k: v for k, v in os.environ.items()
           if k.startswith("WEFT_") or k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    owns = not address
    if owns:  # a local Ray: the workers run from this checkout (fixtures and plug-ins included)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    runtime_env = {"env_vars": env}
    kw: dict = {"namespace": cfg.namespace, "include_dashboard": False, "log_to_driver": False,
                "runtime_env": runtime_env, "configure_logging": False}
    if owns:
        kw.update(address="local", num_cpus=int(cfg.num_cpus) if cfg.num_cpus else os.cpu_count(),
                  object_store_memory=int(cfg.object_store_mb) * 2**20)
        if cfg.num_gpus >= 0:
            kw["num_gpus"] = int(cfg.num_gpus)
    else:
        kw["address"] = address
    if ray.is_initialized():
        raise RuntimeError("Ray is already initialised in this process; one Ray gateway per process")
    t0 = time.perf_counter()
    ray.init(**kw)
    try:
        serve.start(proxy_location="Disabled")
    except BaseException:
        if owns:
            ray.shutdown()
        raise
    log.info("Ray %s (%s) ready in %.1f s: %s", ray.__version__, "local" if owns else address,
             time.perf_counter() - t0, ray.cluster_resources())
    return runtime_env, owns
