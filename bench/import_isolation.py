"""Does reading a hostile file disturb a live session? A World session at its frame rate in a real
engine process, alone and then while the slowest malformed imports are sent one after another
(a nested-<use> SVG, a 10 MB SVG path, a 24 MB BVH, a huge sketch): frame interval p50 / p99 and
`status` latency, side by side in one run.

    python bench/import_isolation.py [--seconds 8] [--quick]

Target (issue 21): the frame interval p99 changes by < 20 %; status answers within 100 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.client import EngineClient  # noqa: E402
from engine.launch import EngineProcess  # noqa: E402


def hostile_files() -> list[tuple[str, dict]]:
    """(label, job params) for the slowest malformed inputs of the importers' fuzz sets."""
    # nested <use>: each level references the previous one ten times (10^8 copies if expanded)
    uses = ['<path id="p0" d="M0 0h1v1z"/>'] + [
        f'<g id="p{i}">' + "".join(f'<use href="#p{i - 1}"/>' for _ in range(10)) + "</g>" for i in range(1, 9)]
    bomb = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><defs>{"".join(uses)}</defs><use href="#p8"/></svg>'
    rng = np.random.default_rng(0)
    pts = " ".join(f"L{x:.2f} {y:.2f}" for x, y in rng.uniform(0, 24, (700_000, 2)))[:10 * 2**20]
    long_path = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M0 0 {pts}z"/></svg>'
    joints = "".join(f"JOINT j{i}\n{{\nOFFSET 0 1 0\nCHANNELS 3 Zrotation Yrotation Xrotation\n" for i in range(20))
    hier = ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation\n"
            + joints + "End Site\n{\nOFFSET 0 1 0\n}\n" + "}\n" * 20 + "}\n")
    row = " ".join(["1.5"] * 66) + "\n"
    frames = 24 * 2**20 // len(row)
    big_bvh = hier + f"MOTION\nFrames: {frames}\nFrame Time: 0.033333\n" + row * frames
    blank = np.full((4096, 4096), 255, np.uint8)  # nothing drawn, 16 MB
    return [("svg-use-bomb", {"task": "icon", "mode": "import", "svg": bomb}),
            ("svg-10MB-path", {"task": "icon", "mode": "import", "svg": long_path}),
            ("bvh-24MB", {"task": "motion", "bvh": big_bvh, "text": "walk forward"}),
            ("blank-sketch-4096", {"task": "shape", "mode": "sketch", "sketch": blank})]


def world_run(client: EngineClient, seconds: float, fps: float, hostile: list | None) -> dict:
    arrivals: list[float] = []
    made: list[float] = []  # when the engine made each frame (its clock)
    done = threading.Event()
    job_holder: dict = {}
    outcomes: dict[str, str] = {}

    def on_event(ev):
        if ev.job == job_holder.get("world"):
            if ev.kind == "partial":
                arrivals.append(time.perf_counter())
                if "made_at" in ev.data:
                    made.append(ev.data["made_at"])
            elif ev.terminal:
                done.set()
        elif ev.terminal:
            outcomes[ev.job] = ev.kind if ev.kind != "error" else "error: " + ev.data.get("message", "")[:90]

    client.on_event = on_event
    job_holder["world"] = client.submit("world", {"fps": fps, "max_frames": int(seconds * fps)})
    status_ms: list[float] = []
    sent = 0
    t_end = time.perf_counter() + seconds + 30
    while not done.is_set() and time.perf_counter() < t_end:
        if hostile is not None and len(arrivals) > 5 and len(outcomes) == sent:  # one hostile file at a time
            label, params = hostile[sent % len(hostile)]
            p = dict(params)
            task = p.pop("task")
            client.submit(task, p, job=f"{label}-{sent}")
            sent += 1
        t0 = time.perf_counter()
        client.status(timeout=10)
        status_ms.append(1000 * (time.perf_counter() - t0))
        time.sleep(0.05)
    gaps = np.diff(made[5:]) * 1000  # skip the start-up frames
    seen = np.diff(arrivals[5:]) * 1000
    return {"frames": len(arrivals), "interval_p50_ms": round(float(np.percentile(gaps, 50)), 1),
            "interval_p99_ms": round(float(np.percentile(gaps, 99)), 1),
            "arrival_p99_ms": round(float(np.percentile(seen, 99)), 1),
            "status_p99_ms": round(float(np.percentile(status_ms, 99)), 1), "imports_sent": sent,
            "import_outcomes": sorted({v for v in outcomes.values()})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--fps", type=float, default=15.0, help="the World panel's default frame rate")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seconds = 6.0 if args.quick else args.seconds
    hostile = hostile_files()
    with EngineProcess(device="cpu") as ep:
        client = EngineClient(ep.endpoint)
        try:
            for task in ("world", "motion", "shape"):  # weights loaded before timing
                client.call("warm", task=task)
            while set(client.status(timeout=30)["loaded"]) < {"world", "motion", "shape"}:
                time.sleep(0.2)
            alone = world_run(client, seconds, args.fps, None)
            busy = world_run(client, seconds, args.fps, hostile)
        finally:
            client.close()
    change = busy["interval_p99_ms"] / alone["interval_p99_ms"] - 1
    print(f"world at {args.fps:g} fps for {seconds:g} s     frames  interval p50  interval p99  "
          "arrival p99  status p99   (intervals: engine clock; arrival: at this client)")
    for name, r in (("alone", alone), ("with hostile imports", busy)):
        print(f"{name:28} {r['frames']:6d} {r['interval_p50_ms']:10.1f} ms {r['interval_p99_ms']:10.1f} ms "
              f"{r['arrival_p99_ms']:9.1f} ms {r['status_p99_ms']:8.1f} ms")
    print(f"imports sent: {busy['imports_sent']}; outcomes: {busy['import_outcomes']}")
    print(f"p99 change {100 * change:+.1f} % (target < 20 %)")
    print(json.dumps({"bench": "import_isolation", "split": "n/a", "fps": args.fps, "alone": alone, "busy": busy,
                      "p99_change": round(change, 3), "met": change < 0.2 and busy["status_p99_ms"] < 100}))


if __name__ == "__main__":
    main()
