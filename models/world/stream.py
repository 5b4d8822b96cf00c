"""The World panel's engine session: a generated Crafter world that answers the keyboard in real time.

One `step()` makes one frame: the dynamics transformer predicts the next frame's 81 tile tokens for
the key currently held (a few token-parallel steps with the rolling KV cache), ONNX Runtime decodes
them to 64x64 RGB, and the frame goes out at once as a `partial` event with its timings. The
scheduler calls `step()` when `next_due()` comes, at the target frame rate; a slow frame is never
made up for with a burst.

Params (start):  start (index of a real start frame, see `starts`), fps (1-60; 0 = as fast as
possible), steps (token-parallel steps per frame, 1-8), temperature (0 = greedy), top_k, seed,
guidance (key guidance, 1-10: > 1 makes keys act more strongly, at twice the compute),
threads (torch threads for a frame, default 1),
max_frames (0 = endless), actions (optional scripted list of action names or ids, one per frame;
the job ends after the list), action (the key held at the start).
Steer:  action (name or id) with key_id (echoed on the first frame made with it, for key-to-frame
latency); reset (True) with start; fps, steps, temperature.
"""
from __future__ import annotations

import json
import time
from collections import deque

import numpy as np
import torch

from models.common.paths import asset
from models.common.threads import torch_threads
from models.common.sampling import SamplingParams
from models.common.session import ParamError, StreamSession, check_range
from models.world.data import ACTIONS, N_ACTIONS

DYNAMICS = asset("world", "dynamics.safetensors")
TOKENIZER = asset("world", "tokenizer.safetensors")
DECODER_ONNX = asset("world", "decoder.onnx")
STARTS = asset("world", "starts.npz")
DEFAULT_GUIDANCE = 1.0  # key guidance (Rollout): > 1 strengthens what a key does, at twice the batch


def parse_action(value) -> int:
    """An action name ('move_left') or id (0-16) -> id; ParamError otherwise."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        if value not in ACTIONS:
            raise ParamError(f"unknown action '{value}'; actions are: {', '.join(ACTIONS)}")
        return ACTIONS.index(value)
    try:
        a = int(value)
    except (TypeError, ValueError):
        raise ParamError(f"action must be a name or a number 0-{N_ACTIONS - 1}, got {value!r}") from None
    if not 0 <= a < N_ACTIONS:
        raise ParamError(f"action must be between 0 and {N_ACTIONS - 1}, got {a}")
    return a


def load_starts():
    """Real Crafter start frames shipped with the model (held-out world seeds).
    -> frames (S, 64, 64, 3) uint8, labels [str]."""
    with np.load(STARTS) as z:
        frames, seeds, steps = z["frames"], z["seeds"], z["steps"]
    labels = [f"world {int(s)} at step {int(t)}" for s, t in zip(seeds, steps)]
    return frames, labels


class WorldBundle:
    """Weights shared by every World session of an engine: dynamics, tokenizer, decoder, start frames."""

    def __init__(self, device: str = "cpu", decoder: str = "auto"):
        from models.world.model import load_world_model
        from models.world.tokenizer import FrameDecoder, OnnxFrameDecoder, load_tokenizer

        for p in (DYNAMICS, TOKENIZER, STARTS):
            if not p.exists():
                raise FileNotFoundError(f"{p} is missing; train the world model: python -m models.world.train")
        self.device = device
        self.model = load_world_model(DYNAMICS, device)
        self.ae = load_tokenizer(TOKENIZER, device)
        self.start_frames, self.start_labels = load_starts()
        self.start_tokens = self.ae.encode(self.start_frames)  # (S, 81)
        use_onnx = decoder == "onnx" or (decoder == "auto" and device == "cpu" and DECODER_ONNX.exists())
        if use_onnx:
            self.decode = OnnxFrameDecoder(DECODER_ONNX)
            self.decoder_name = "onnxruntime"
        else:
            torch_dec = FrameDecoder(self.ae).eval()

            def decode(tokens):
                with torch.inference_mode():
                    return torch_dec(torch.as_tensor(tokens, device=device)).cpu().numpy()
            self.decode = decode
            self.decoder_name = "torch"


class WorldSession(StreamSession):
    task = "world"
    realtime = True

    @classmethod
    def load(cls, device: str) -> WorldBundle:
        bundle = WorldBundle(device)
        warm = cls(bundle, device)  # warm up so the first key press never stalls
        warm.start({"fps": 0, "max_frames": 3})
        while not warm.done:
            warm.step()
        warm.close()
        return bundle

    def start(self, params: dict):
        b: WorldBundle = self.bundle
        self.fps = check_range(params, "fps", 0, 60, 15.0)
        self.steps = check_range(params, "steps", 1, 8, 2, int)
        self.temperature = check_range(params, "temperature", 0, 2, 0.0)
        self.top_k = check_range(params, "top_k", 0, 1000, 0, int)
        self.max_frames = check_range(params, "max_frames", 0, 10_000_000, 300, int)
        self.threads = check_range(params, "threads", 1, 64, 1, int)
        self.guidance = check_range(params, "guidance", 1, 10, DEFAULT_GUIDANCE)
        seed = check_range(params, "seed", 0, 2**31 - 1, 0, int)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        script = params.get("actions")
        if script is not None:
            if not isinstance(script, (list, tuple)) or not script:
                raise ParamError("actions must be a non-empty list of action names or ids")
            self.script = [parse_action(a) for a in script]
            self.max_frames = len(self.script)
        else:
            self.script = None
        self.action = parse_action(params.get("action", 0))
        self.key_id, self.key_time, self.key_pending = None, 0.0, False
        from models.world.model import Rollout

        self.roll = Rollout(b.model, 1, guidance=self.guidance)
        self.cache_slots = self.roll.cache_slots()  # fixed for the whole job: the rolling cache never grows
        self.frames = 0
        self.actions: list[int] = []
        self.gen_ms: deque = deque(maxlen=120)
        self.decode_ms: deque = deque(maxlen=120)
        self.latency_ms: deque = deque(maxlen=120)
        self.stamps: deque = deque(maxlen=60)
        self._queued_reset: int | None = None
        first = self._reset(check_range(params, "start", 0, len(b.start_labels) - 1, 0, int))
        self.due = time.monotonic()
        return [("progress", {"state": "playing", "starts": b.start_labels, "decoder": b.decoder_name,
                              "fps": self.fps, "steps": self.steps}), first]

    def _reset(self, start: int):
        b: WorldBundle = self.bundle
        self.start_index = start
        with torch_threads(self.threads):
            self.roll.reset(b.start_tokens[start:start + 1])
        self.index = 0  # frames since the last reset (self.frames counts them all)
        frame = b.decode(b.start_tokens[start:start + 1])[0]
        return ("partial", {"frame": frame, "index": 0, "action": "reset", "start": start,
                            "label": b.start_labels[start]})

    def next_due(self) -> float:
        return self.due

    def steer(self, params: dict) -> None:
        if "action" in params:
            a = parse_action(params["action"])
            self.action = a
            self.key_id = params.get("key_id")
            self.key_time, self.key_pending = time.monotonic(), True
        if "fps" in params:
            self.fps = check_range(params, "fps", 0, 60, self.fps)
        if "steps" in params:
            self.steps = check_range(params, "steps", 1, 8, self.steps, int)
        if "temperature" in params:
            self.temperature = check_range(params, "temperature", 0, 2, self.temperature)
        if params.get("reset"):
            start = check_range(params, "start", 0, len(self.bundle.start_labels) - 1, self.start_index, int)
            self._queued_reset = start

    def step(self):
        b: WorldBundle = self.bundle
        now = time.monotonic()
        # pace at the target rate; when behind, start from now rather than catching up in a burst
        self.due = max(self.due + 1.0 / self.fps, now) if self.fps else now
        start = self._queued_reset
        if start is not None:
            self._queued_reset = None
            return [self._reset(start)]
        a = self.script[self.frames] if self.script is not None else self.action
        key_id, key_time, fresh = self.key_id, self.key_time, self.key_pending
        self.key_pending = False
        t0 = time.perf_counter()
        sp = SamplingParams(temperature=self.temperature, top_k=self.top_k)
        with torch_threads(self.threads):
            tokens = self.roll.predict(torch.tensor([a]), steps=self.steps, params=sp, gen=self.gen)
        t1 = time.perf_counter()
        frame = b.decode(tokens.cpu().numpy())[0]
        t2 = time.perf_counter()
        self.frames += 1
        self.index += 1
        self.actions.append(a)
        self.gen_ms.append(1000 * (t1 - t0))
        self.decode_ms.append(1000 * (t2 - t1))
        self.stamps.append(time.monotonic())
        data = {"frame": frame, "index": self.index, "action": ACTIONS[a], "gen_ms": round(1000 * (t1 - t0), 2),
                "decode_ms": round(1000 * (t2 - t1), 2), "fps": round(self.measured_fps(), 2),
                "made_at": round(self.stamps[-1], 4)}  # engine's monotonic clock: pacing, free of transport
        if fresh:
            lat = 1000 * (time.monotonic() - key_time)
            self.latency_ms.append(lat)
            data.update(key_id=key_id, latency_ms=round(lat, 2))
        out = [("partial", data)]
        if self.max_frames and self.frames >= self.max_frames:
            self.done = True
            out.append(("output", {"frames": self.frames, "actions": np.array(self.actions, dtype=np.int8),
                                   "start": self.start_index}))
        return out

    def measured_fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(self.stamps[-1] - self.stamps[0], 1e-9)

    def stats(self) -> dict:
        s = {"frames": getattr(self, "frames", 0), "fps_recent": round(self.measured_fps(), 2)}
        if getattr(self, "gen_ms", None):
            s["gen_ms_p50"] = round(float(np.median(self.gen_ms)), 2)
            s["decode_ms_p50"] = round(float(np.median(self.decode_ms)), 2)
            s["cache_slots"] = self.cache_slots
        if getattr(self, "latency_ms", None):
            s["latency_ms_p50"] = round(float(np.median(self.latency_ms)), 2)
        return s

    def close(self) -> None:
        self.roll = None


def describe() -> str:
    """One line about the shipped model, for logs and the CLI."""
    from models.common.weights import load_config

    meta = load_config(DYNAMICS).get("meta", {})
    return json.dumps({"dynamics": str(DYNAMICS), **meta})
