"""The Ray backend under load, and its overhead next to the local engine, in one run.

    python bench/ray_serve.py --quick          # about 2-3 minutes on 2 cores
    python bench/ray_serve.py                  # 3 clients x 20 jobs, a 20 s world session each
    python bench/ray_serve.py --tiny           # the test fixtures' tiny sessions instead of the models

Starts two engines as the studio would (`python -m engine serve`, and the same with `--backend ray`,
a local Ray sized to this machine, engine/ray_config.toml unless --ray-config), then:

1. overhead: each task's job (icon, shape, speech; a steered world session) on the local engine and
   on Ray, alternately, `--repeats` times after a warm-up: time to the first partial and to `finished`
   from the client's submit, median per task; the world session's frames per second;
2. load: `--clients` clients at once, each flooding `--jobs` mixed jobs (one of them a world session of
   `--world-s` seconds steered every 0.25 s; one cancelled while it runs) through the Ray backend:
   every job must end (finished / cancelled / error) with its events numbered 0, 1, 2, ... (none
   lost, none out of order) and exactly one terminal event last; per-task throughput under load.

Prints a table and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.client import EngineClient  # noqa: E402
from engine.protocol import READY_LINE  # noqa: E402

WORLD_KEYS = ["move_left", "move_right", "move_up", "move_down", "noop", "do"]


def job_params(task: str, i: int, tiny: bool, world_s: float, quick: bool) -> tuple[str, dict]:
    """(engine task, params) for a bench task name."""
    if tiny:
        return {"icon": ("tiny_lm", {"n": 40, "delay": 0.005, "seed": i}),
                "shape": ("tiny_lm", {"n": 20, "delay": 0.01, "seed": i}),
                "speech": ("tiny_speech", {"text": "hello there, weft", "pace": 0.02, "seed": i}),
                "world": ("tiny_live", {"n": int(15 * world_s), "pace": 1 / 15, "seed": i})}[task]
    return {"icon": ("icon", {"prompt": "a rocket", "n": 1 if quick else 2, "seed": i}),
            "shape": ("shape", {"prompt": "a wooden chair", "seed": i}),
            "speech": ("speech", {"text": "Hello from Weft Studio.", "seed": i}),
            "world": ("world", {"fps": 15, "max_frames": int(15 * world_s), "seed": i})}[task]


def world_steer(k: int, tiny: bool) -> dict:
    return {"offset": 100 * (k % 5)} if tiny else {"action": WORLD_KEYS[k % len(WORLD_KEYS)], "key_id": k}


class Engine:
    """One engine subprocess (local or Ray) and a way to wait for its readiness line."""

    def __init__(self, name: str, endpoint: str, extra: list[str], env: dict, log_dir: Path):
        self.name, self.endpoint = name, endpoint
        cmd = [sys.executable, "-m", "engine", "serve", "--listen", endpoint, "--device", "cpu",
               "--log-file", str(log_dir / f"{name}.log"), *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(READY_LINE):
                self.ready.set()

    def wait(self, timeout: float) -> None:
        if not self.ready.wait(timeout):
            raise RuntimeError(f"the {self.name} engine did not start within {timeout:.0f} s (see its log)")

    def stop(self) -> None:
        try:
            c = EngineClient(self.endpoint)
            c.shutdown(timeout=10)
            c.close()
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Recorder:
    def __init__(self):
        self.events: dict[str, list] = {}
        self.cv = threading.Condition()

    def __call__(self, ev):
        with self.cv:
            self.events.setdefault(ev.job, []).append((time.perf_counter(), ev))
            self.cv.notify_all()

    def ended(self, job) -> bool:
        return any(ev.terminal for _, ev in self.events.get(job, []))

    def wait(self, jobs, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.cv:
            while not all(self.ended(j) for j in jobs):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 1.0))
        return True


def warm(client: EngineClient, tasks: list[str], timeout: float = 180) -> list[str]:
    """Load every task's model (deploy its replicas / start a warm actor); returns those that did not
    load in time or failed (their jobs will end with an error, which the bench reports)."""
    for t in tasks:
        client.warm(t).result(30)
    end = time.monotonic() + timeout
    while True:
        st = client.status(timeout=30)
        failed = {t for t, v in st.get("ray", {}).get("tasks", {}).items() if v.get("deploy") == "failed"}
        missing = [t for t in tasks if t not in st["loaded"]]
        if not set(missing) - failed or time.monotonic() > end:
            return missing
        time.sleep(0.5)


def run_one(client: EngineClient, rec: Recorder, task: str, params: dict, steer=None, timeout=300) -> dict:
    """Submit, steer a world session every 0.25 s, wait for the end; first-partial / finished seconds."""
    t0 = time.perf_counter()
    job = client.submit(task, params)
    k = 0
    while not rec.wait([job], 0.25 if steer else timeout):
        if not steer or time.perf_counter() - t0 > timeout:
            break
        client.steer(job, steer(k))
        k += 1
    evs = rec.events.get(job, [])
    first = next((t for t, e in evs if e.kind == "partial"), None)
    last = evs[-1][1] if evs else None
    frames = [t for t, e in evs if e.kind == "partial"]
    out = {"outcome": last.kind if last else "lost", "first_partial_s": None if first is None else first - t0,
           "finished_s": evs[-1][0] - t0 if evs else None}
    if len(frames) > 10:
        out["fps"] = (len(frames) - 1) / (frames[-1] - frames[0])
    if last is not None and last.kind == "error":
        out["message"] = last.data.get("message", "")[:160]
    return out


def check_job(evs: list) -> str | None:
    """None when the job's events are whole and in order, else what is wrong."""
    if not evs:
        return "no events"
    seqs = [e.seq for _, e in evs]
    if seqs != list(range(len(seqs))):
        return f"seq {seqs[:12]}..."
    if evs[0][1].kind != "queued":
        return f"first event {evs[0][1].kind}"
    terms = [e.kind for _, e in evs if e.terminal]
    if len(terms) != 1 or not evs[-1][1].terminal:
        return f"terminal events {terms}"
    return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 clients x 4 jobs, 4 s world sessions, 2 repeats")
    p.add_argument("--tiny", action="store_true", help="the test fixtures' tiny sessions instead of the models")
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--jobs", type=int, default=None, help="jobs per client (default 20; --quick 4)")
    p.add_argument("--world-s", type=float, default=None, help="world session length (default 20; --quick 4)")
    p.add_argument("--repeats", type=int, default=None, help="overhead runs per task and backend (default 5; --quick 2)")
    p.add_argument("--ray-config", help="default: engine/ray_config.toml (plus tiny tasks with --tiny)")
    p.add_argument("--ray-address", help="use this Ray cluster instead of a local one")
    p.add_argument("--tasks", default="icon,shape,speech,world")
    a = p.parse_args(argv)
    jobs_per_client = a.jobs or (4 if a.quick else 20)
    world_s = a.world_s or (4.0 if a.quick else 20.0)
    repeats = a.repeats or (2 if a.quick else 5)
    bench_tasks = [t for t in a.tasks.split(",") if t]

    tmp = Path(tempfile.mkdtemp(prefix="weft-ray-bench-"))
    env = {**os.environ, "WEFT_LOG_DIR": str(tmp), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cfg = a.ray_config
    if a.tiny:
        env["WEFT_ENGINE_PLUGINS"] = "tests.fixtures.sessions"
        if not cfg:  # the shipped config, plus how the tiny stand-ins run
            cfg = str(tmp / "ray_config.toml")
            Path(cfg).write_text((ROOT / "engine" / "ray_config.toml").read_text()
                                 + '\n[tasks.tiny_lm]\nmode = "serve"\nnice = 5\nmax_replicas = 2\n'
                                 + '\n[tasks.tiny_live]\nmode = "actor"\n')
    ray_extra = ["--backend", "ray"] + (["--ray-config", cfg] if cfg else []) \
        + (["--ray-address", a.ray_address] if a.ray_address else [])
    engines = {"local": Engine("local", f"ipc://{tmp}/local.sock", [], env, tmp),
               "ray": Engine("ray", f"ipc://{tmp}/ray.sock", ray_extra, env, tmp)}
    result: dict = {"bench": "ray_serve", "quick": a.quick, "tiny": a.tiny, "clients": a.clients,
                    "jobs_per_client": jobs_per_client, "world_s": world_s, "repeats": repeats,
                    "cpus": os.cpu_count()}
    try:
        for e in engines.values():
            e.wait(180)
        clients = {n: EngineClient(e.endpoint) for n, e in engines.items()}
        recs = {}
        for n, c in clients.items():
            recs[n] = c.on_event = Recorder()
        engine_tasks = sorted({job_params(t, 0, a.tiny, world_s, a.quick)[0] for t in bench_tasks})
        t0 = time.perf_counter()
        not_loaded = {n: warm(c, engine_tasks) for n, c in clients.items()}
        result["warm_s"] = round(time.perf_counter() - t0, 1)
        result["not_loaded"] = {n: v for n, v in not_loaded.items() if v}
        st = clients["ray"].status(timeout=30)
        result["ray"] = {"nodes": len(st["ray"]["nodes"]), "cpus": st["ray"]["cpus"], "gpus": st["ray"]["gpus"],
                         "modes": {t: v["mode"] for t, v in st["ray"]["tasks"].items()}}

        # ---- 1. overhead: the same job on each backend, alternately ---------------------------------
        over: dict = {}
        for r in range(repeats + 1):  # round 0 warms the code paths and is not counted
            for t in bench_tasks:
                task, params = job_params(t, r, a.tiny, min(world_s, 6.0), a.quick)
                order = ("local", "ray") if r % 2 else ("ray", "local")
                for n in order:
                    res = run_one(clients[n], recs[n], task, params,
                                  steer=(lambda k: world_steer(k, a.tiny)) if t == "world" else None)
                    if r:
                        over.setdefault(t, {}).setdefault(n, []).append(res)
        rows = {}
        for t, per in over.items():
            row = {}
            for n, runs in per.items():
                row[n] = {"first_partial_s": med(x["first_partial_s"] for x in runs),
                          "finished_s": med(x["finished_s"] for x in runs),
                          "outcomes": sorted({x["outcome"] for x in runs})}
                if any("fps" in x for x in runs):
                    row[n]["fps"] = med(x.get("fps") for x in runs)
                msgs = [x["message"] for x in runs if "message" in x]
                if msgs:
                    row[n]["message"] = msgs[0]
            for key in ("first_partial_s", "finished_s", "fps"):
                lo, ra = row["local"].get(key), row["ray"].get(key)
                if lo and ra:
                    row[f"{key}_ratio"] = round(ra / lo, 2)
            rows[t] = row
        result["overhead"] = rows

        # ---- 2. load: clients x jobs, mixed, through Ray (the local engine's models leave memory) ---
        clients.pop("local").close()
        engines.pop("local").stop()
        mix = [t for t in bench_tasks if t != "world"] or ["world"]
        plan = []
        for ci in range(a.clients):
            js = (["world"] if "world" in bench_tasks else []) + \
                 [mix[(ci + k) % len(mix)] for k in range(jobs_per_client - ("world" in bench_tasks))]
            plan.append(js)
        load_recs = [Recorder() for _ in range(a.clients)]
        load_clients = [EngineClient(engines["ray"].endpoint, on_event=r) for r in load_recs]
        submitted: list[list[tuple[str, str]]] = [[] for _ in range(a.clients)]
        cancels = 0
        t_load = time.perf_counter()

        def drive(ci: int):
            nonlocal cancels
            c, rec = load_clients[ci], load_recs[ci]
            world_job, to_cancel = None, None
            for k, t in enumerate(plan[ci]):
                task, params = job_params(t, 1000 * ci + k, a.tiny, world_s, a.quick)
                job = c.submit(task, params)
                submitted[ci].append((t, job))
                if t == "world":
                    world_job = job
                elif to_cancel is None and k >= 2:
                    to_cancel = job
            if to_cancel is not None:  # cancel one job once it has begun (or while it waits)
                end = time.monotonic() + 30
                while time.monotonic() < end and not rec.ended(to_cancel):
                    if any(e.kind in ("started", "partial") for _, e in rec.events.get(to_cancel, [])):
                        break
                    time.sleep(0.01)
                if not rec.ended(to_cancel):
                    c.cancel(to_cancel)
                    cancels += 1
            k = 0
            while world_job is not None and not rec.ended(world_job):
                c.steer(world_job, world_steer(k, a.tiny))
                k += 1
                time.sleep(0.25)

        threads = [threading.Thread(target=drive, args=(ci,)) for ci in range(a.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        all_jobs = [j for ci in range(a.clients) for _, j in submitted[ci]]
        deadline = 600 if not a.quick else 300
        for ci in range(a.clients):
            load_recs[ci].wait([j for _, j in submitted[ci]], deadline)
        wall = time.perf_counter() - t_load
        outcomes: dict = {}
        problems, errors = [], []
        per_task: dict = {}
        for ci in range(a.clients):
            for t, j in submitted[ci]:
                evs = load_recs[ci].events.get(j, [])
                bad = check_job(evs)
                if bad:
                    problems.append(f"client {ci} {t} {j}: {bad}")
                kind = evs[-1][1].kind if evs and evs[-1][1].terminal else "unended"
                outcomes[kind] = outcomes.get(kind, 0) + 1
                if kind == "error":
                    errors.append(f"{t}: {evs[-1][1].data.get('message', '')[:200]}")
                pt = per_task.setdefault(t, {"jobs": 0, "finished": 0, "first": [], "end": [], "wait": [],
                                             "workers": set(), "fps": []})
                pt["jobs"] += 1
                if kind == "finished":
                    pt["finished"] += 1
                started = [e for _, e in evs if e.kind == "started"]
                if started:
                    w = started[0].data.get("worker", {})
                    pt["workers"].add(w.get("replica") or w.get("actor", "")[:8])
                    pt["wait"].append(started[0].data.get("queue_s"))
                ts = [tt for tt, _ in evs]
                if ts:
                    pt["first"].append(ts[0])
                    pt["end"].append(ts[-1])
                frames = [tt for tt, e in evs if e.kind == "partial"]
                if t == "world" and len(frames) > 10:
                    pt["fps"].append((len(frames) - 1) / (frames[-1] - frames[0]))
        load = {"jobs": len(all_jobs), "outcomes": outcomes, "cancel_requests": cancels, "problems": problems[:10],
                "errors": errors[:10],
                "wall_s": round(wall, 1), "tasks": {}}
        for t, pt in per_task.items():
            span = (max(pt["end"]) - min(pt["first"])) if pt["end"] else 0
            load["tasks"][t] = {"jobs": pt["jobs"], "finished": pt["finished"], "workers": len(pt["workers"]),
                                "queue_s_median": med(pt["wait"]),
                                "jobs_per_s": round(pt["finished"] / span, 2) if span and t != "world" else None}
            if pt["fps"]:
                load["tasks"][t]["fps_median"] = med(pt["fps"])
        result["load"] = load
        for c in load_clients + list(clients.values()):
            c.close()
    finally:
        for e in engines.values():
            e.stop()

    # ---- report ------------------------------------------------------------------------------
    print(f"\nRay backend vs local engine ({os.cpu_count()} cores; medians of {repeats} runs, seconds from submit)")
    print(f"{'task':8} {'first partial local':>20} {'ray':>8} {'x':>6}   {'finished local':>15} {'ray':>8} {'x':>6}"
          f"   {'fps local':>9} {'ray':>6}   outcomes")
    for t, row in result["overhead"].items():
        lo, ra = row["local"], row["ray"]

        def f(x):
            return "-" if x is None else f"{x:.3f}"

        print(f"{t:8} {f(lo['first_partial_s']):>20} {f(ra['first_partial_s']):>8} "
              f"{f(row.get('first_partial_s_ratio')):>6}   {f(lo['finished_s']):>15} {f(ra['finished_s']):>8} "
              f"{f(row.get('finished_s_ratio')):>6}   {f(lo.get('fps')):>9} {f(ra.get('fps')):>6}   "
              f"{'/'.join(lo['outcomes'])} | {'/'.join(ra['outcomes'])}")
        for n in ("local", "ray"):
            if "message" in row[n]:
                print(f"         {n}: {row[n]['message']}")
    ld = result["load"]
    print(f"\nLoad: {a.clients} clients x {jobs_per_client} jobs through Ray in {ld['wall_s']} s: "
          f"outcomes {ld['outcomes']} ({ld['cancel_requests']} cancel requests); "
          f"{'every job whole and in order' if not ld['problems'] else 'PROBLEMS: ' + '; '.join(ld['problems'])}")
    for e in ld["errors"]:
        print(f"  error: {e}")
    for t, v in ld["tasks"].items():
        extra = f", {v['fps_median']} fps" if "fps_median" in v else ""
        print(f"  {t:8} {v['finished']}/{v['jobs']} finished on {v['workers']} worker(s), "
              f"median wait at the gateway {v['queue_s_median']} s, {v['jobs_per_s'] or '-'} jobs/s{extra}")
    print(json.dumps(result))
    return 0 if not ld["problems"] and "unended" not in ld["outcomes"] else 1


if __name__ == "__main__":
    sys.exit(main())
