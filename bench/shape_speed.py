"""3D panel speed on CPU: time to the first octree level on screen, to the coarse 16^3 shape, to
the full 64^3 occupancy, mesh extraction and the finished mesh, p50 (and p90) over prompts.

    python bench/shape_speed.py [--runs 12] [--threads 1] [--steps 4 1] [--guidance 2.5]

Runs the engine's ShapeSession in this process (the same code path as the engine, minus the
socket), after its load-time warm-up. Prints a table and one JSON line.
Aims (issue 4): coarse shape under 300 ms, finished mesh under 3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PROMPTS = ["a wooden chair", "a table lamp", "a tree", "a mug", "a sofa", "a bookshelf", "a car", "a sword",
           "a barrel", "a house", "a round table", "a fish", "a rock", "a bed", "a vase", "a spaceship"]


def run_once(bundle, prompt: str, seed: int, steps: int, guidance: float) -> dict:
    from models.shape.stream import ShapeSession

    s = ShapeSession(bundle, "cpu")
    t0 = time.perf_counter()
    s.start({"prompt": prompt, "mode": "text", "seed": seed, "steps": steps, "guidance": guidance, "temperature": 0.7})
    marks = {}
    while not s.done:
        for kind, d in s.step():
            now = 1000 * (time.perf_counter() - t0)
            if kind == "partial":
                marks.setdefault("first_level_ms", now)
                if d["grid"] == 16:
                    marks["coarse_16_ms"] = now
                if d["grid"] == 64:
                    marks["full_64_ms"] = now
            elif kind == "output":
                marks["mesh_ms"] = d["mesh_ms"]
                marks["finished_ms"] = now
                marks["tokens"] = d["tokens"]
    s.close()
    return marks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, nargs="+", default=[4, 1])
    p.add_argument("--guidance", type=float, default=2.5)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from models.shape.stream import ShapeSession

    t = time.perf_counter()
    bundle = ShapeSession.load("cpu")
    load_s = time.perf_counter() - t
    keys = ["first_level_ms", "coarse_16_ms", "full_64_ms", "mesh_ms", "finished_ms", "tokens"]
    result = {"bench": "shape_speed", "device": f"cpu ({os.cpu_count()} cores, {a.threads} threads)",
              "guidance": a.guidance, "load_s": round(load_s, 2), "runs": a.runs}
    print(f"load + warm-up {load_s:.2f} s; {a.runs} prompts, guidance {a.guidance} (CFG batch of 2), "
          f"{a.threads} threads")
    print(f"{'steps':>5} " + " ".join(f"{k:>15}" for k in keys))
    for steps in a.steps:
        rows = [run_once(bundle, PROMPTS[i % len(PROMPTS)], i, steps, a.guidance) for i in range(a.runs)]
        p50 = {k: float(np.median([r[k] for r in rows])) for k in keys}
        p90 = {k: float(np.percentile([r[k] for r in rows], 90)) for k in keys}
        print(f"{steps:>5} " + " ".join(f"{p50[k]:>10.0f} p50" for k in keys))
        print(f"{'':>5} " + " ".join(f"{p90[k]:>10.0f} p90" for k in keys))
        result[f"steps{steps}"] = {"p50": {k: round(v, 1) for k, v in p50.items()},
                                   "p90": {k: round(v, 1) for k, v in p90.items()}}
    first = result[f"steps{a.steps[0]}"]["p50"]
    result["coarse_under_300ms"] = first["coarse_16_ms"] < 300
    result["mesh_under_3s"] = first["finished_ms"] < 3000
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
