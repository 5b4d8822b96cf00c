"""Motion quality: foot skating, ground penetration, jitter, bone lengths over a long stream,
text match (R-precision, contrastive evaluator), command response time, goal reaching.
Real clips are measured the same way as the reference. Prints figures and one JSON line.

    python bench/motion_quality.py [--minutes 10] [--seeds 2]
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

from models.motion import data as D  # noqa: E402
from models.motion import evaluator as E  # noqa: E402
from models.motion import metrics as M  # noqa: E402
from models.motion import procedural, rig  # noqa: E402
from models.motion.stream import WEIGHTS, MotionSession, load_bundle  # noqa: E402

PROMPTS = [procedural.TEXTS[a][0] for a in procedural.ACTIONS]
# (from, to, test on the motion (trailing averages, so a test never sees frames after its own), in words)
SUSTAIN = 10  # frames a change must hold to count as "visibly changed" (gait wobble does not)
TRAIL = 9  # frames of the trailing average (so nothing after a frame leaks into it)


def trailing(x: np.ndarray, k: int = TRAIL) -> np.ndarray:
    c = np.cumsum(np.concatenate([[0.0], x]))
    out = np.empty(len(x))
    for i in range(len(x)):
        lo = max(0, i + 1 - k)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def speed(p):
    return trailing(np.linalg.norm(np.diff(p[:, 0, [0, 2]], axis=0), axis=-1) * 30)


def turn(p):
    return trailing(M.yaw_rate(p, 1))


RESPONSES = [
    ("stand still", "walk forward", lambda p: speed(p) > 0.5, "root speed > 0.5 m/s"),
    ("walk forward", "stand still", lambda p: speed(p) < 0.3, "root speed < 0.3 m/s"),
    ("walk forward", "run", lambda p: speed(p) > 2.0, "root speed > 2 m/s"),
    ("walk forward", "turn left", lambda p: turn(p) > 0.6, "yaw rate > 0.6 rad/s to the left"),
    ("walk forward", "turn right", lambda p: turn(p) < -0.6, "yaw rate > 0.6 rad/s to the right"),
    ("stand still", "jump", lambda p: p[1:, 0, 1] > 0.96, "root 10 cm above standing"),
]


def first_sustained(mask: np.ndarray, k: int = SUSTAIN) -> int | None:
    """Index of the first frame from which `mask` holds for k frames in a row."""
    run = 0
    for i, m in enumerate(mask):
        run = run + 1 if m else 0
        if run >= k:
            return i - k + 1
    return None


STEPS = {"steps": 10}


class Take:
    """Drives a session by hand (no pacing) and keeps its frames by index."""

    def __init__(self, bundle, params):
        self.s = MotionSession(bundle, "cpu")
        self.s.start({**STEPS, **params})
        self.points = list(np.stack(self.s.points))
        self.channels = list(np.stack(self.s.channels))

    def run(self, n_frames: int) -> "Take":
        while len(self.points) < n_frames:
            for kind, d in self.s.step():
                if kind == "partial" and "points" in d:
                    del self.points[d["t0"]:], self.channels[d["t0"]:]
                    self.points += list(d["points"])
                    self.channels += list(d["channels"])
        return self

    def array(self) -> np.ndarray:
        return np.stack(self.points)


def mean_dicts(ds: list[dict]) -> dict:
    return {k: round(float(np.mean([d[k] for d in ds])), 4) for k in ds[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the long stability stream")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--goals", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="DDIM steps per primitive")
    ap.add_argument("--no-foot-lock", action="store_true", help="measure the raw model output (no foot lock)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    STEPS["steps"] = a.steps
    STEPS["foot_lock"] = not a.no_foot_lock
    t_start = time.time()
    bundle = load_bundle(WEIGHTS)
    out: dict = {"weights": str(WEIGHTS.name), "ddim_steps": a.steps, "foot_lock": not a.no_foot_lock,
                 "load_avg": os.getloadavg()[0]}

    # ---- reference: real clips ------------------------------------------------------------
    clips = D.load_real()
    real_pts = [rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(c["channels"]).double())).numpy()
                for c in clips]
    locomotion = [p for p, c in zip(real_pts, clips) if any(w in c["texts"][1] for w in ("walk", "run", "jog"))]
    out["real_all"] = mean_dicts([M.all_metrics(p) for p in real_pts])
    out["real_locomotion"] = mean_dicts([M.all_metrics(p) for p in locomotion])

    # ---- generated: every prompt from standing, 4 s each ----------------------------------
    gen, gen_ch = {}, {}
    for seed in range(a.seeds):
        for text in PROMPTS:
            t = Take(bundle, {"text": text, "seed": seed}).run(122)
            gen[(text, seed)], gen_ch[(text, seed)] = t.array(), np.stack(t.channels)
    gen_m = [M.all_metrics(p[2:]) for p in gen.values()]
    loco_m = [M.all_metrics(p[2:]) for (t, _), p in gen.items() if any(w in t for w in ("walk", "run", "jog"))]
    out["generated_all"] = mean_dicts(gen_m)
    out["generated_locomotion"] = mean_dicts(loco_m)
    print(f"physical metrics done ({time.time() - t_start:.0f} s)", flush=True)

    # ---- text match: R-precision with a contrastive evaluator -----------------------------
    ev = E.load_or_train(log=lambda m: print(m, flush=True))
    enc = bundle.encoder
    eval_clips = [c for c in clips if c["split"] == "eval" and len(c["channels"]) >= E.WINDOW]
    texts = list(dict.fromkeys(PROMPTS + [c["texts"][0] for c in eval_clips]))
    temb = torch.from_numpy(enc.encode(texts)).float()
    win = lambda w: E.window_features(torch.from_numpy(D.world_features(w)).double()[None])  # noqa: E731
    gm, gi = [], []
    for (text, seed), ch in gen_ch.items():  # the window from 1 s to 3 s after the command
        gm.append(win(ch[32:92]))
        gi.append(texts.index(text))
    rp_gen = E.r_precision(ev, torch.cat(gm), temb, np.array(gi))
    rm, ri = [], []
    for c in eval_clips:
        for s0 in range(0, len(c["channels"]) - E.WINDOW + 1, 30):
            rm.append(win(c["channels"][s0:s0 + E.WINDOW]))
            ri.append(texts.index(c["texts"][0]))
    rp_real = E.r_precision(ev, torch.cat(rm), temb, np.array(ri))
    out["r_precision_generated"] = rp_gen
    out["r_precision_real_eval_clips"] = rp_real
    print(f"R-precision done ({time.time() - t_start:.0f} s)", flush=True)

    # ---- response time: frames from a command to visibly changed motion -------------------
    resp = {}
    for a_text, b_text, test, words in RESPONSES:
        times, held = [], []
        for seed in range(max(a.seeds, 3)):
            t = Take(bundle, {"text": a_text, "seed": seed}).run(122)
            switch = len(t.points)
            t.s.steer({"text": b_text, "at": switch})
            p = t.run(switch + 90).array()
            mask = test(p)  # (T - 1,): entry i is about the step from frame i to i + 1
            before = mask[switch - 31:switch - 1]  # the last second before the command
            hit = first_sustained(mask[switch - 1:])
            times.append(hit / 30 if hit is not None else np.nan)
            held.append(float(before.mean()))
        resp[f"{a_text} -> {b_text}"] = {"median_s": None if np.isnan(times).all() else round(float(np.nanmedian(times)), 3),
                                         "reached": f"{int(np.isfinite(times).sum())}/{len(times)}", "test": words,
                                         "test_true_before_command": round(float(np.mean(held)), 2)}
    out["response"] = resp
    print(f"response done ({time.time() - t_start:.0f} s)", flush=True)

    # ---- goal reaching ---------------------------------------------------------------------
    rng = np.random.default_rng(0)
    results = []
    for i in range(a.goals):
        ang, dist = rng.uniform(-np.pi, np.pi), rng.uniform(3, 6)
        goal = [float(dist * np.cos(ang)), float(-dist * np.sin(ang))]
        t = Take(bundle, {"text": "walk forward", "goal": goal, "seed": i})
        reached = None
        while len(t.points) < 20 * 30 and reached is None:
            for kind, d in t.s.step():
                if kind == "partial":
                    del t.points[d["t0"]:]
                    t.points += list(d["points"])
                    if d.get("goal_reached"):
                        reached = d["t0"]
        results.append({"angle_deg": round(float(np.degrees(ang))), "dist_m": round(float(dist), 2),
                        "time_s": None if reached is None else round(reached / 30, 2),
                        "straight_walk_s": round(float(dist / 1.2), 2)})
    ok = [r for r in results if r["time_s"] is not None]
    out["goal"] = {"success": f"{len(ok)}/{len(results)}", "success_rate": len(ok) / len(results),
                   "median_time_s": float(np.median([r["time_s"] for r in ok])) if ok else None,
                   "median_time_over_straight_walk": float(np.median([r["time_s"] / r["straight_walk_s"] for r in ok])) if ok else None,
                   "runs": results}
    print(f"goals done ({time.time() - t_start:.0f} s)", flush=True)

    # ---- long stream: bone lengths, drift, blow-ups ----------------------------------------
    n = int(a.minutes * 60 * 30)
    s = MotionSession(bundle, "cpu")
    s.start({"text": "walk forward", "seed": 7, **STEPS})
    pts, i = [], 0
    cycle = ["walk forward", "turn left", "run", "stand still", "walk backwards", "jump", "wave", "sidestep right",
             "walk and turn right", "crouch", "jog"]
    while len(pts) < n:
        if len(pts) % 150 < 8:  # a new command every 5 s
            s.steer({"text": cycle[(len(pts) // 150) % len(cycle)]})
        for kind, d in s.step():
            if kind == "partial":
                pts += list(d["points"])
    long = np.stack(pts[:n])
    out["long_stream"] = {"minutes": a.minutes, **M.bones(long), **M.all_metrics(long),
                          "max_distance_from_start_m": float(np.linalg.norm(long[:, 0, [0, 2]], axis=-1).max())}
    out["seconds"] = round(time.time() - t_start)

    print(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
