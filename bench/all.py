"""Every bench in its short form, one after another, and one JSON line keyed by bench name.

    python bench/all.py [--only icon_quality,decode] [--limit 300]

Each bench runs in its own process with a time limit; its value in the final line is its own last
JSON line, or {"error": ...} with the end of what it printed (a bench that needs data the fresh
clone lacks says so here: that is a gap to close, not a figure). Figures move 30-50 % with the
machine's load: compare runs made side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> arguments of its short form
PLAN = {
    "icon_quality": ["--quick"],
    "icon_speed": ["--prompts", "4"],
    "shape_quality": ["--n", "12"],
    "shape_speed": ["--runs", "4"],
    "motion_quality": ["--minutes", "0.5", "--seeds", "1", "--goals", "2"],
    "motion_speed": ["--minutes", "0.5", "--n", "20"],
    "speech_quality": [],
    "speech_speed": ["--n", "4", "--skip-teacher"],
    "world_quality": ["--episodes", "2", "--rollouts", "8", "--drift-minutes", "0.5"],
    "world_speed": ["--seconds", "10", "--memory-minutes", "0.5"],
    "decode": ["--quick"],
    "cli": ["--quick"],
    "import_isolation": ["--quick"],
}


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated bench names (default: all)")
    ap.add_argument("--limit", type=float, default=300, help="seconds per bench")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(PLAN)
    env = dict(os.environ, PYTHONPATH=ROOT, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    report = {}
    for name in names:
        t0 = time.time()
        cmd = [sys.executable, os.path.join(ROOT, "bench", f"{name}.py")] + PLAN.get(name, [])
        try:
            p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=args.limit)
            out = last_json(p.stdout)
            if p.returncode == 0 and out is not None:
                report[name] = out
            else:
                tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
                report[name] = {"error": f"exit {p.returncode}", "tail": tail}
        except subprocess.TimeoutExpired:
            report[name] = {"error": f"over the {args.limit:.0f} s limit"}
        status = "ok" if "error" not in report[name] else report[name]["error"]
        print(f"{name:18} {time.time() - t0:6.1f} s  {status}", flush=True)
    print(json.dumps({"bench": "all", "results": report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
