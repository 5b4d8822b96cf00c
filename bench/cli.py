"""CLI latency: `weft-cli` with a private engine (cold: starts and loads its models) against the
shared warm engine (the second and later calls), side by side in one run.

    python bench/cli.py [--repeats 3] [--quick]

Prints a table and one JSON line. Targets (issue 21): icon warm < 3 s, shape warm < 1.5 s.
Uses its own runtime dir, so it never touches the user's shared engine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALLS = {
    "status": ["status"],
    "icon": ["icon", "a rocket", "-n", "4", "--seed", "1", "-o", "{out}/icons"],
    "shape": ["shape", "a wooden chair", "--seed", "1", "-o", "{out}/chair.glb"],
}
TARGET_WARM_S = {"icon": 3.0, "shape": 1.5}


def timed(env, args, out) -> float:
    cmd = [sys.executable, "-m", "app.cli", "--device", "cpu"] + [a.format(out=out) for a in args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-1500:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one cold and two warm calls per task")
    args = ap.parse_args()
    reps = 1 if args.quick else args.repeats
    run = tempfile.mkdtemp(prefix="wb", dir="/tmp")
    out = tempfile.mkdtemp(prefix="weft-cli-bench-")
    env = dict(os.environ, XDG_RUNTIME_DIR=run, PYTHONPATH=ROOT, HF_HUB_OFFLINE="1")
    rows = {}
    try:
        timed(env, ["engine", "start"], out)  # start the shared engine (not timed)
        for task, call in CALLS.items():
            cold = [timed(env, ["--private"] + call, out) for _ in range(reps)]
            warm = [timed(env, call, out) for _ in range(reps + 1)]  # the first loads the task's model
            rows[task] = {"cold_s": round(statistics.median(cold), 2), "first_shared_s": round(warm[0], 2),
                          "warm_s": round(statistics.median(warm[1:]), 2)}
            if task in TARGET_WARM_S:
                rows[task]["target_warm_s"] = TARGET_WARM_S[task]
                rows[task]["met"] = rows[task]["warm_s"] < TARGET_WARM_S[task]
    finally:
        subprocess.run([sys.executable, "-m", "app.cli", "engine", "stop"], env=env, cwd=ROOT, capture_output=True)
    print(f"{'call':8} {'private (cold)':>15} {'shared, 1st':>12} {'shared, warm':>13}")
    for task, r in rows.items():
        print(f"{task:8} {r['cold_s']:>14.2f}s {r['first_shared_s']:>11.2f}s {r['warm_s']:>12.2f}s"
              + (f"   target < {r['target_warm_s']} s: {'met' if r['met'] else 'NOT met'}" if "met" in r else ""))
    print(json.dumps({"bench": "cli", "split": "n/a", "repeats": reps, "calls": rows}))


if __name__ == "__main__":
    main()
