"""World speed on this machine: the decoder under ONNX Runtime against torch, frames per second
sustained through a real engine process, key-to-frame latency, and memory over long play.

    python bench/world_speed.py                        # 60 s sustained, 60 s steered, 10 min memory
    python bench/world_speed.py --seconds 20 --memory-minutes 2

Phases:
1. components, in-process, one thread: dynamics ms per frame for 1/2/4 token-parallel steps;
   decoder ms per frame under ONNX Runtime and under torch.
2. sustained: an engine subprocess plays as fast as it can (fps=0) for --seconds; frames counted on
   the client side as they arrive.
3. steered: the engine plays at --fps while a "player" changes key every 0.25-0.75 s; latency is
   from the steer call to the arrival of the first frame made with that key (client clock, so it
   includes the wire and the wait for the next frame tick).
4. memory: the same steered play for --memory-minutes; engine RSS from its stats events at the
   first minute and at the end.
Prints the figures and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def components(frames: int = 60) -> dict:
    import torch

    from models.world.model import Rollout
    from models.world.stream import WorldBundle
    from models.world.tokenizer import FrameDecoder, OnnxFrameDecoder
    from models.world.stream import DECODER_ONNX

    torch.set_num_threads(1)
    b = WorldBundle("cpu")
    out = {}
    for steps in (1, 2, 4):
        roll = Rollout(b.model, 1)
        roll.reset(b.start_tokens[:1])
        for i in range(5):
            roll.predict(torch.tensor([i % 5]), steps=steps)
        t = time.perf_counter()
        for i in range(frames):
            roll.predict(torch.tensor([i % 5]), steps=steps)
        out[f"dynamics_ms_steps{steps}"] = round(1000 * (time.perf_counter() - t) / frames, 2)
    tok = b.start_tokens[:1]
    onnx = OnnxFrameDecoder(DECODER_ONNX, threads=1)
    tdec = FrameDecoder(b.ae).eval()
    for name, fn in (("onnxruntime", lambda: onnx(tok)), ("torch", lambda: tdec(tok))):
        with torch.inference_mode():
            for _ in range(10):
                fn()
            t = time.perf_counter()
            for _ in range(frames * 2):
                fn()
        out[f"decoder_ms_{name}"] = round(1000 * (time.perf_counter() - t) / (frames * 2), 3)
    with torch.inference_mode():
        a, c = onnx(tok), tdec(tok).numpy()
    out["decoder_max_abs_diff"] = int(np.abs(a.astype(int) - c.astype(int)).max())
    return out


class Player:
    """Drives a World job on an engine: counts frames, presses keys, measures latency, reads stats."""

    def __init__(self, client, fps: float, steer: bool, seed: int = 0):
        self.client, self.fps, self.steer = client, fps, steer
        self.rng = np.random.default_rng(seed)
        self.frames, self.stamps = 0, []
        self.sent: dict[int, float] = {}
        self.latency: list[float] = []
        self.rss: list[tuple[float, float]] = []
        self.job = None
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def on_event(self, ev):
        if ev.job != self.job:
            return
        now = time.monotonic()
        if ev.kind == "partial" and "frame" in ev.data:
            with self.lock:
                self.frames += 1
                self.stamps.append(now)
                k = ev.data.get("key_id")
                if k in self.sent:
                    self.latency.append(1000 * (now - self.sent.pop(k)))
        elif ev.kind == "stats" and "rss_mb" in ev.data:
            self.rss.append((now - self.t0, ev.data["rss_mb"]))

    def play(self, seconds: float) -> None:
        self.job = self.client.submit("world", {"fps": self.fps, "max_frames": 0, "steps": self.steps})
        self.t0 = time.monotonic()
        key_id = 0
        keys = ["move_left", "move_right", "move_up", "move_down", "do", "noop"]
        end = self.t0 + seconds
        while time.monotonic() < end:
            if self.steer:
                time.sleep(float(self.rng.uniform(0.25, 0.75)))
                key_id += 1
                with self.lock:
                    self.sent[key_id] = time.monotonic()
                self.client.steer(self.job, {"action": keys[key_id % len(keys)], "key_id": key_id})
            else:
                time.sleep(0.2)
        self.client.cancel(self.job)
        time.sleep(0.3)

    def fps_between(self, t_from: float) -> float:
        s = [t for t in self.stamps if t - self.t0 >= t_from]
        return (len(s) - 1) / max(s[-1] - s[0], 1e-9) if len(s) > 1 else 0.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the sustained and steered runs")
    p.add_argument("--fps", type=float, default=20.0, help="target frame rate of the steered run")
    p.add_argument("--steps", type=int, default=2, help="token-parallel steps per frame")
    p.add_argument("--memory-minutes", type=float, default=10.0)
    p.add_argument("--skip-components", action="store_true")
    args = p.parse_args(argv)

    from engine.client import EngineClient
    from engine.launch import EngineProcess

    res = {"cpu_count": os.cpu_count(), "steps": args.steps, "load_avg_start": round(os.getloadavg()[0], 2)}
    if not args.skip_components:
        res.update(components())
        print("components:", json.dumps(res), flush=True)
    with EngineProcess(device="cpu") as ep:
        client = EngineClient(ep.endpoint)
        try:
            pl = Player(client, fps=0, steer=False)
            pl.steps = args.steps
            client.on_event = pl.on_event
            pl.play(args.seconds)
            res["sustained_fps_max_rate"] = round(pl.fps_between(2.0), 2)
            print(f"sustained, as fast as it goes: {res['sustained_fps_max_rate']} FPS over {args.seconds:.0f} s", flush=True)

            total = max(args.seconds, 60 * args.memory_minutes)
            pl = Player(client, fps=args.fps, steer=True, seed=1)
            pl.steps = args.steps
            client.on_event = pl.on_event
            pl.play(total)
            lat = np.array(pl.latency)
            res.update({"target_fps": args.fps, "steered_fps": round(pl.fps_between(2.0), 2),
                        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                        "latency_ms_p90": round(float(np.percentile(lat, 90)), 1) if len(lat) else None,
                        "latency_samples": int(len(lat)), "steered_minutes": round(total / 60, 2)})
            if pl.rss:
                first = min(pl.rss, key=lambda r: abs(r[0] - 60.0))
                res.update({"rss_mb_at_1min": first[1], "rss_mb_at_end": pl.rss[-1][1],
                            "rss_end_s": round(pl.rss[-1][0], 1)})
            print(f"steered at {args.fps} FPS: {res['steered_fps']} FPS, key-to-frame p50 {res['latency_ms_p50']} ms"
                  f" p90 {res['latency_ms_p90']} ms ({len(lat)} key presses); RSS {res.get('rss_mb_at_1min')} MB"
                  f" at 1 min -> {res.get('rss_mb_at_end')} MB after {res.get('rss_end_s')} s", flush=True)
        finally:
            client.close()
    res["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
