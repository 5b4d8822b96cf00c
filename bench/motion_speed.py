"""Motion speed on CPU: generated frames per second (wall and CPU time), command-to-motion latency,
and memory over a long endless stream. Prints figures and one JSON line.

    python bench/motion_speed.py [--minutes 10] [--threads 1]

The machine may be shared: wall-clock figures depend on the load (printed); CPU-time figures
(time.process_time of this process) say what the model costs on a free core.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.runtime import rss_mb  # noqa: E402
from models.motion.stream import WEIGHTS, MotionSession, load_bundle  # noqa: E402

CYCLE = ["walk forward", "turn left", "run", "stand still", "jump", "walk backwards", "wave"]


def throughput(bundle, n: int, **params) -> dict:
    s = MotionSession(bundle, "cpu")
    s.start({"text": "walk forward", **params})
    for _ in range(3):
        s.step()
    w, c = [], []
    for i in range(n):
        if i % 20 == 0:
            s.steer({"text": CYCLE[(i // 20) % len(CYCLE)]})
        t0, c0 = time.perf_counter(), time.process_time()
        s.step()
        w.append(time.perf_counter() - t0)
        c.append(time.process_time() - c0)
    prim = bundle.model.cfg.prim
    return {"frames_per_s_wall": round(prim / float(np.median(w)), 1), "frames_per_s_cpu": round(prim / float(np.median(c)), 1),
            "primitive_ms_wall_p50": round(1000 * float(np.median(w)), 2), "primitive_ms_cpu_p50": round(1000 * float(np.median(c)), 2),
            "realtime_factor_wall": round(prim / float(np.median(w)) / 30, 1)}


def latency(bundle, n: int) -> dict:
    """steer(new text, at the next frame) -> the partial that carries it (what the panel then shows)."""
    s = MotionSession(bundle, "cpu")
    s.start({"text": "walk forward"})
    for _ in range(3):
        s.step()
    lat = []
    for i in range(n):
        s.steer({"played": s.n_frames - 4})  # playback 4 frames behind: the next primitive is due now
        t0 = time.perf_counter()
        s.steer({"text": CYCLE[i % len(CYCLE)], "at": s.n_frames - 3})
        while True:
            ev = [d for k, d in s.step() if k == "partial"]
            if ev and ev[-1]["command"] == CYCLE[i % len(CYCLE)]:
                break
        lat.append(1000 * (time.perf_counter() - t0))
    return {"command_latency_ms_p50": round(float(np.median(lat)), 1), "command_latency_ms_p90": round(float(np.percentile(lat, 90)), 1)}


def memory(bundle, minutes: float) -> dict:
    s = MotionSession(bundle, "cpu")
    s.start({"text": "walk forward"})
    n = int(minutes * 60 * 30)
    samples = []
    t0 = time.perf_counter()
    i = 0
    while s.n_frames < n:
        if i % 19 == 0:
            s.steer({"text": CYCLE[(i // 19) % len(CYCLE)]})
        s.step()
        i += 1
        if i % 150 == 0:
            samples.append((s.n_frames, rss_mb()))
    return {"stream_minutes": minutes, "rss_mb_start": samples[0][1] if samples else rss_mb(), "rss_mb_end": rss_mb(),
            "rss_mb_max": max(m for _, m in samples) if samples else rss_mb(),
            "stream_wall_s": round(time.perf_counter() - t0, 1), "stream_realtime_factor": round(n / 30 / (time.perf_counter() - t0), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=120, help="primitives timed per setting")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = {"load_avg_start": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "threads": a.threads}
    t = time.perf_counter()
    bundle = load_bundle(WEIGHTS)
    out["load_s"] = round(time.perf_counter() - t, 2)
    out["onnxruntime"] = bundle.denoise is not None
    out["default_10_steps"] = throughput(bundle, a.n)
    out["fast_5_steps"] = throughput(bundle, a.n, steps=5)
    out["without_foot_lock"] = throughput(bundle, a.n, foot_lock=False)
    eager = load_bundle(WEIGHTS, onnx=False)
    out["pytorch_eager_10_steps"] = throughput(eager, max(a.n // 3, 20))
    out.update(latency(bundle, 40))
    out["memory"] = memory(bundle, a.minutes)
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    for k, v in out.items():
        print(f"{k}: {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
