"""The engine's motion session: an endless, steerable character motion, one 8-frame primitive per step.

Real time: the session keeps `buffer` primitives ahead of playback. Playback is the panel's clock
(it reports `played` frames through steer) or, without reports, the wall clock at `speed`; a gap
in stepping (the engine paused the job) shifts the clock instead of making the session catch up.

    start({"text": "walk forward", "guidance": 2.0, "seed": 0, "buffer": 2, "speed": 1.0,
           "seconds": 0 (endless) | N (finite, generated as fast as possible, then an "output"),
           "commands": [[t_s, text], ...] (a timed script), "goal": [x, z] | None,
           "bvh": text (play an imported BVH; continue from it when it is this character),
           "foot_lock": True (pin planted feet by leg IK in what is shown; see FootLock)})
    steer({"text": ..., "at": frame})   new command from frame `at` (default: the next primitive)
    steer({"goal": [x, z]} | {"goal": None}); steer({"reset": True}); steer({"played": frame});
    steer({"speed": s}); steer({"guidance": g})

An empty request plays DEMO (10 s, finite). Events: one "progress" with the skeleton and BVH header first; then a "partial" per primitive with
`t0` (its first frame index; frames from t0 on replace what the client had), `points` (8, 20, 3)
world positions, `channels` (8, 43), `bvh` (8 BVH motion lines), the command and the goal.
Goal reaching, re-aimed every primitive: (1) the model's goal-direction condition (trained by
hindsight relabelling: a training window's goal is where its root really is one second later),
clamped to the turning range seen in training, and (2) the command that matches the goal's bearing
("walk forward" / "walk and turn left" / "turn right" on the spot), because in the training data the
text and the trajectory always agree. The goal counts as reached within 0.4 m.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.common.paths import asset, cache_dir
from models.common.session import ParamError, StreamSession, check_range
from models.common.weights import load_config, load_weights
from models.motion import bvh, rig
from models.motion import data as D
from models.motion.model import MotionConfig, MotionDenoiser, features_to_pose

WEIGHTS = asset("motion", "motion.safetensors")
FPS = 30
IDLE_TEXT = "stand still"
GOAL_RADIUS = 0.4  # metres: a goal this close counts as reached
GOAL_MAX_ANGLE = 0.6  # radians: the widest goal direction fed to the model (see _goal_direction)
GOAL_AHEAD = 0.3  # radians: a goal within this bearing is walked to straight
GOAL_BEHIND = 2.0  # radians: a goal further round than this is turned to on the spot first
GOAL_CURVE_MIN = 2.0  # metres per radian of bearing: closer than this, turn on the spot (no circling)
MAX_TEXT = 200
DEMO = {"commands": [[0, "walk forward"], [3, "turn left"], [6, "run"], [8, "jump"]], "seconds": 10}
KEEP_FRAMES = 600  # frames an endless session keeps (the client keeps the whole take)


@dataclass
class MotionBundle:
    model: MotionDenoiser
    encoder: object  # anything with encode(list[str]) -> (N, 384)
    start_pose: np.ndarray  # (2, 64) world features of a standing character
    denoise: object = None  # a faster stand-in for model.forward (ONNX Runtime on CPU), or None


INPUTS = ["x", "step", "hist", "text", "has_text", "goal", "has_goal"]


def _register_rms_norm() -> None:
    """The TorchScript ONNX exporter has no symbolic for aten::rms_norm (the shared transformer's
    fused RMSNorm): spell it out as x * rsqrt(mean(x^2) + eps) * weight."""
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx.symbolic_helper import parse_args

    @parse_args("v", "v", "v", "f")  # the normalised shape is always the last dim here
    def rms_norm(g, x, shape, weight, eps):
        eps_v = 1e-5 if eps is None else eps
        sq = g.op("Mul", x, x)
        mean = g.op("ReduceMean", sq, g.op("Constant", value_t=torch.tensor([-1], dtype=torch.long)), keepdims_i=1)
        inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", mean, g.op("Constant", value_t=torch.tensor(eps_v, dtype=torch.float32)))))
        return g.op("Mul", g.op("Mul", x, inv), weight)

    register_custom_op_symbolic("aten::rms_norm", rms_norm, 18)


class OrtDenoiser:
    """The denoiser's forward through ONNX Runtime: about 3x less CPU than eager PyTorch for this
    small network (per-op overhead dominates). The graph is exported from the shipped safetensors
    weights into the cache dir at load time; the shipped weights stay safetensors."""

    def __init__(self, model: MotionDenoiser, path):
        import onnxruntime as ort

        if not path.exists():
            _register_rms_norm()
            B = 2
            args = (torch.randn(B, model.cfg.prim, model.cfg.feat_dim), torch.full((B,), 3), torch.randn(B, model.cfg.hist, model.cfg.feat_dim),
                    torch.randn(B, model.cfg.text_dim), torch.ones(B, dtype=torch.bool), torch.randn(B, 2), torch.ones(B, dtype=torch.bool))
            import warnings

            tmp = path.with_suffix(".tmp")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer notes about the shared transformer's cache branch
                torch.onnx.export(model, args, str(tmp), input_names=INPUTS, output_names=["x0"], dynamo=False,
                                  dynamic_axes={k: {0: "batch"} for k in INPUTS + ["x0"]})
            tmp.replace(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        feed = {k: v.numpy() for k, v in zip(INPUTS, args)}
        return torch.from_numpy(self.session.run(None, feed)[0])


def standing_pose() -> np.ndarray:
    """Two frames of a character standing at the origin, facing +X, as world features (2, 64)."""
    from models.motion import procedural

    w = procedural.Walker(np.random.default_rng(0))
    w.yaw = 0.0
    w.feet = [procedural.Foot(s, o, w._nominal(s, 0.0, w.pos, 0.0), 0.0) for s, o in ((1.0, 0.0), (-1.0, 0.5))]
    frames = [w.step("idle") for _ in range(20)][-2:]
    ch = rig.pose_to_channels(torch.from_numpy(np.stack([f[0] for f in frames])),
                              torch.from_numpy(np.stack([f[1] for f in frames])))
    return D.world_features(ch.float().numpy())


def load_bundle(path=WEIGHTS, device: str = "cpu", encoder=None, onnx: bool = True) -> MotionBundle:
    cfg = MotionConfig(**load_config(path)["config"])
    model = load_weights(MotionDenoiser(cfg), path, device)
    if encoder is None:
        from models.common.text import shared_encoder

        encoder = shared_encoder()
    denoise = None
    if onnx and device == "cpu":
        import hashlib
        import logging

        digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]
        try:
            denoise = OrtDenoiser(model, cache_dir("motion") / f"denoiser-{digest}.onnx")
        except Exception:  # no exporter or runtime here: eager PyTorch is slower but the same model
            logging.getLogger("weft.motion").warning("ONNX Runtime path unavailable; using PyTorch", exc_info=True)
    return MotionBundle(model, encoder, standing_pose(), denoise)


UNDERSTOOD_MIN = 0.55  # MiniLM cosine to the nearest trained phrase; below it the command is not one it knows
_known_cache: dict[int, tuple[list[str], np.ndarray]] = {}


def not_understood(encoder, text: str, emb: np.ndarray) -> str | None:
    """A plain warning when `text` is far from every command the model was trained on (e.g. "dance the
    tango"): it still moves, like the nearest command, and the user is told which and what is known."""
    from models.motion.procedural import TEXTS

    if id(encoder) not in _known_cache:
        phrases = [p for v in TEXTS.values() for p in v]
        _known_cache[id(encoder)] = (phrases, encoder.encode(phrases))
    phrases, known = _known_cache[id(encoder)]
    sims = known @ np.asarray(emb, np.float32)
    best = int(np.argmax(sims))
    if sims[best] >= UNDERSTOOD_MIN:
        return None
    examples = ", ".join(v[0] for v in TEXTS.values())
    return (f"'{text}' is not a command this model knows; it moves like the nearest one, '{phrases[best]}'. "
            f"It understands: {examples}.")


def world_to_outputs(world: torch.Tensor, with_bvh: bool = False):
    """(T, 64) world features -> points (T, 20, 3) and channels (T, 43), float32 (and BVH lines)."""
    root = world[:, :3]
    rots = torch.eye(3, dtype=world.dtype).expand(len(world), 15, 3, 3).clone()
    rots[:, 0] = world[:, 3:12].reshape(-1, 3, 3)
    rots[:, rig.SPHERICAL] = rig.sixd_to_mat(world[:, 12:60].reshape(-1, 8, 6))
    rots[:, rig.HINGES] = rig.rot_z(world[:, 60:64])
    pts = rig.forward_kinematics(root, rots)
    out = pts.float().numpy(), rig.pose_to_channels(root, rots).float().numpy()
    return out + (bvh.lines_from_pose(root.numpy(), rots.numpy()),) if with_bvh else out


def canonical_to_world(x: torch.Tensor, origin: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """(T, 61) canonical features of one primitive -> (T, 64) world features."""
    root, rots = features_to_pose(x)
    R = rig.rot_y(yaw)
    p = (R @ root.unsqueeze(-1)).squeeze(-1) + origin * torch.tensor([1.0, 0.0, 1.0])
    p[:, 1] = root[:, 1]
    six = rig.mat_to_6d(rots[:, rig.SPHERICAL]).reshape(len(x), -1)
    return torch.cat([p, (R @ rots[:, 0]).reshape(-1, 9), six, x[:, 57:61]], -1)


class FootLock:
    """Removes foot sliding from generated frames: a foot that is down (ankle below 7.5 cm) and
    slow (under 0.6 m/s) is pinned where it touched down, the leg re-solved by two-bone IK (hip and
    knee, knee kept on its side), the foot's own orientation kept; a released foot blends back over
    6 frames. Only what is shown and exported is changed: the model keeps its own frames as history
    (feeding pinned frames back made it answer with occasional one-frame leg pops)."""

    DOWN_H, SLOW, BLEND, REACH = 0.075, 0.6, 6, 0.1  # metres, m/s, frames, metres
    LEGS = ((3, 4, 5), (9, 10, 11))  # hip, knee, ankle

    def __init__(self):
        self.lock: list[np.ndarray | None] = [None, None]  # pinned ankle xz per leg
        self.release: list[tuple[np.ndarray, int]] = [None, None]  # (offset, frames left) after lift-off
        self.prev: np.ndarray | None = None  # ankle positions of the previous frame (2, 3)

    def reset(self) -> None:
        self.__init__()

    def __call__(self, world: torch.Tensor) -> torch.Tensor:
        """world (T, 64) features of new frames -> the same with the legs re-solved."""
        from models.motion.procedural import L_SHIN, L_THIGH, _rz, two_bone_ik

        out = world.clone()
        root = world[:, :3]
        rots = torch.eye(3, dtype=world.dtype).expand(len(world), 15, 3, 3).clone()
        rots[:, 0] = world[:, 3:12].reshape(-1, 3, 3)
        rots[:, rig.SPHERICAL] = rig.sixd_to_mat(world[:, 12:60].reshape(-1, 8, 6))
        rots[:, rig.HINGES] = rig.rot_z(world[:, 60:64])
        pts = rig.forward_kinematics(root, rots, with_sites=False).numpy()
        glob = rig.global_rotations(rots).numpy()
        rots = rots.numpy()
        for t in range(len(world)):
            ank = pts[t, [5, 11]]
            speed = np.zeros(2) if self.prev is None else np.linalg.norm((ank - self.prev)[:, [0, 2]], axis=1) * FPS
            self.prev = ank.copy()
            changed = False
            for leg, (hip, knee, ankle) in enumerate(self.LEGS):
                target = ank[leg].copy()
                down = ank[leg, 1] < self.DOWN_H and speed[leg] < self.SLOW
                if down and self.lock[leg] is not None and np.linalg.norm(self.lock[leg] - ank[leg, [0, 2]]) > self.REACH:
                    down = False  # the motion has moved on: let go rather than stretch the leg
                if down:
                    if self.lock[leg] is None:
                        self.lock[leg] = ank[leg, [0, 2]].copy()
                    target[[0, 2]] = self.lock[leg]
                    self.release[leg] = None
                else:
                    if self.lock[leg] is not None:  # lift-off: ease from the pin to the raw motion
                        self.release[leg] = (self.lock[leg] - ank[leg, [0, 2]], self.BLEND)
                        self.lock[leg] = None
                    if self.release[leg] is not None:
                        off, left = self.release[leg]
                        target[[0, 2]] += off * left / (self.BLEND + 1)
                        self.release[leg] = (off, left - 1) if left > 1 else None
                if np.linalg.norm(target - ank[leg]) < 1e-4:
                    continue
                bent = pts[t, knee] - (pts[t, hip] + pts[t, ankle]) / 2  # where the knee points now
                pole = bent / max(float(np.linalg.norm(bent)), 0.02) + glob[t, 0][:, 0]  # + facing: stable when straight
                upper, bend = two_bone_ik(pts[t, hip].astype(np.float64), target.astype(np.float64),
                                          pole.astype(np.float64), L_THIGH, L_SHIN, True)
                kr = _rz(min(bend, 0.0))
                reach = pts[t, hip] + upper @ (rig.OFFSETS[knee] + kr @ rig.OFFSETS[ankle])
                if np.linalg.norm(reach - target) > 0.03:  # no clean solution: keep the raw leg
                    continue
                foot_g = glob[t, ankle]
                rots[t, hip] = glob[t, 0].T @ upper
                rots[t, knee] = kr
                rots[t, ankle] = (upper @ kr).T @ foot_g
                changed = True
            if changed:
                r = rots[t]
                six = np.concatenate([r[rig.SPHERICAL, :, 0], r[rig.SPHERICAL, :, 1]], -1)  # 6D = first two columns
                out[t, 12:60] = torch.from_numpy(six.reshape(-1))
                out[t, 60:64] = torch.from_numpy(np.arctan2(r[rig.HINGES, 1, 0], r[rig.HINGES, 0, 0]))
        return out


class MotionSession(StreamSession):
    task = "motion"
    realtime = True

    @classmethod
    def load(cls, device: str) -> MotionBundle:
        if not WEIGHTS.exists():
            raise FileNotFoundError(f"motion weights missing at {WEIGHTS}; train them: python -m models.motion.train")
        b = load_bundle(WEIGHTS, device)
        b.encoder.encode([IDLE_TEXT, "walk forward"])
        hist = torch.zeros(1, 2, b.model.cfg.feat_dim)
        for _ in range(2):  # warm up the denoiser so the first key press never stalls
            b.model.sample(hist, torch.zeros(1, 384), guidance=2.0, denoise=b.denoise)
        return b

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, params: dict):
        self.warnings: list[str] = []
        if not any(k in params for k in ("text", "commands", "bvh", "goal")):
            params = {**DEMO, **params}  # an empty request (e.g. `python -m engine bench`): a finite demo take
        self.guidance = check_range(params, "guidance", 1.0, 6.0, 2.0)
        self.seed = check_range(params, "seed", 0, 2**31 - 1, 0, int)
        self.buffer = check_range(params, "buffer", 1, 16, 2, int)
        self.speed = check_range(params, "speed", 0.1, 4.0, 1.0)
        self.seconds = check_range(params, "seconds", 0, 3600, 0)
        self.steps = check_range(params, "steps", 1, self.bundle.model.cfg.steps, self.bundle.model.cfg.steps, int)
        self.commands = self._parse_commands(params.get("commands"))
        self.foot_lock = FootLock() if params.get("foot_lock", True) else None
        text = params.get("text", IDLE_TEXT if not self.commands else self.commands[0][1])
        self.gen = torch.Generator().manual_seed(self.seed)
        self.world: list[torch.Tensor] = []  # every frame's world features (T, 64)
        self.points: list[np.ndarray] = []
        self.channels: list[np.ndarray] = []
        self.texts: list[str] = []
        self.gen_ms: list[float] = []
        self.latency_ms: list[float] = []
        self.goal_log: list[dict] = []
        self.goal = None
        self.clip: np.ndarray | None = None  # imported BVH points still to play
        self.clip_pos = 0
        self._set_text(text)
        self._pending_change: float | None = None
        self.anchor = (time.monotonic(), 0)  # (wall time, playback frame) of the playback clock
        self.last_step = time.monotonic()
        out = [("progress", {"skeleton": {"names": rig.POINTS, "parents": rig.POINT_PARENTS, "fps": FPS},
                             "bvh_header": bvh.header(), "command": self.text})]
        self._begin(self.bundle.start_pose)
        if params.get("bvh"):
            out += self._import(params["bvh"], params.get("parsed"))
        if params.get("goal") is not None:
            self._set_goal(params["goal"])
        return out

    def _begin(self, world: np.ndarray) -> None:
        self.base = 0  # frames dropped from the front of the lists (endless sessions)
        self.world = [torch.from_numpy(np.asarray(w, np.float64)) for w in world]
        pts, ch = world_to_outputs(torch.stack(self.world))
        self.points, self.channels = list(pts), list(ch)
        self.texts = [self.text] * len(world)

    def _import(self, text: str, parsed=None):
        if isinstance(parsed, bvh.BVHClip):  # read by the engine in a limited child process
            clip = parsed
        else:
            try:
                clip = bvh.parse(text)
            except bvh.BVHError as e:
                raise ParamError(f"This BVH file cannot be played: {e}") from None
        if clip.matches_rig():  # our character: play it, then the model continues from its last frames
            ch = clip.to_channels()
            world = D.world_features(ch)
            self._begin(world)
            pts, _ = world_to_outputs(torch.from_numpy(world).double())
            return [("partial", {"t0": 0, "points": pts, "channels": ch, "bvh": bvh.motion_lines(ch),
                                 "command": "imported BVH", "imported": True})]
        self.clip = clip.points().astype(np.float32)  # another skeleton: play it as is, then finish
        self.clip_parents = clip.parents
        self.clip_names = clip.names
        return [("progress", {"skeleton": {"names": clip.names, "parents": clip.parents, "fps": round(1 / clip.frame_time)},
                              "bvh_header": None, "command": "imported BVH"})]

    # ---- parameters ----------------------------------------------------------------------
    @staticmethod
    def _clean_text(text) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ParamError("the motion command is empty: type what the character should do, e.g. 'walk forward'")
        text = " ".join(text.split())
        if len(text) > MAX_TEXT:
            raise ParamError(f"the motion command is too long ({len(text)} characters, at most {MAX_TEXT})")
        return text

    def _parse_commands(self, cmds) -> list[tuple[float, str]]:
        if not cmds:
            return []
        try:
            out = sorted((float(t), self._clean_text(s)) for t, s in cmds)
        except (TypeError, ValueError):
            raise ParamError("commands must be a list of [seconds, text] pairs") from None
        return out

    def _set_text(self, text) -> None:
        self.text = self._clean_text(text)
        emb = self.bundle.encoder.encode([self.text])
        self.text_emb = torch.from_numpy(emb).float()
        warning = not_understood(self.bundle.encoder, self.text, emb[0])
        if warning:
            self.warnings.append(warning)

    def _set_goal(self, goal) -> None:
        if goal is None:
            self.goal = None
            return
        try:
            x, z = (float(v) for v in goal)
        except (TypeError, ValueError):
            raise ParamError(f"goal must be [x, z] in metres on the floor, got {goal!r}") from None
        if not (math.isfinite(x) and math.isfinite(z)) or max(abs(x), abs(z)) > 1000:
            raise ParamError(f"goal must be finite and within 1000 m, got {goal!r}")
        self.goal = np.array([x, z])
        self.goal_log.append({"goal": [x, z], "frame": self.n_frames, "reached_frame": None})
        if not any(w in self.text.lower() for w in ("walk", "run", "jog", "go ", "sprint")) or "turn" in self.text:
            self._set_text("walk forward")  # a goal needs locomotion; keep "run" or "jog" if asked for
        self.goal_gait = self.text

    def steer(self, params: dict) -> None:
        if params.get("reset"):
            self.clip = None
            self.goal = None
            self._set_text(params.get("text", IDLE_TEXT))
            self._begin(self.bundle.start_pose)
            if self.foot_lock is not None:
                self.foot_lock.reset()
            self._reset_sent = False
            self.anchor = (time.monotonic(), 0)
            return
        if "played" in params:
            self.anchor = (time.monotonic(), check_range(params, "played", 0, 10**9, 0, int))
        if "speed" in params:
            self.anchor = (time.monotonic(), self._playback())
            self.speed = check_range(params, "speed", 0.1, 4.0, 1.0)
        if "guidance" in params:
            self.guidance = check_range(params, "guidance", 1.0, 6.0, 2.0)
        if "text" in params:
            self._set_text(params["text"])
            if self.goal is not None:  # the gait to the goal ("run" there); "stand still" drops the goal
                if any(w in self.text.lower() for w in ("walk", "run", "jog")):
                    self.goal_gait = self.text
                else:
                    self.goal = None
            self._pending_change = time.perf_counter()
            if params.get("at") is not None:
                self._rewind(check_range(params, "at", 0, 10**9, 0, int))
        if "goal" in params:
            self._set_goal(params["goal"])
            if params.get("at") is not None:
                self._rewind(check_range(params, "at", 0, 10**9, 0, int))

    @property
    def n_frames(self) -> int:
        """Frames made so far (the next primitive's first frame index)."""
        return self.base + len(self.world)

    def _rewind(self, frame: int) -> None:
        """Drop generated frames from `frame` on (not yet played) so the change shows sooner."""
        keep = max(2, min(frame - self.base, len(self.world)))
        if keep < len(self.world) and self.foot_lock is not None:
            self.foot_lock.reset()  # its pins belong to the dropped frames
        del self.world[keep:], self.points[keep:], self.channels[keep:], self.texts[keep:]

    def _trim(self) -> None:
        extra = len(self.world) - KEEP_FRAMES
        if self.seconds == 0 and extra > 0:
            del self.world[:extra], self.points[:extra], self.channels[:extra], self.texts[:extra]
            self.base += extra

    # ---- stepping ------------------------------------------------------------------------
    def _playback(self) -> float:
        t, f = self.anchor
        return f + (time.monotonic() - t) * FPS * self.speed

    def next_due(self) -> float:
        if self.seconds:
            return 0.0
        made = self.clip_pos if self.clip is not None else self.n_frames
        ahead = made - self._playback()  # frames made but not yet played
        lead = self.buffer * self.bundle.model.cfg.prim
        if ahead < lead:
            return 0.0
        return time.monotonic() + (ahead - lead) / (FPS * self.speed)

    def step(self):
        out = self._step()
        if self.warnings:  # a command the model does not know: said once, as it starts
            out = [("progress", {"warning": w}) for w in self.warnings] + out
            self.warnings = []
        return out

    def _step(self):
        now = time.monotonic()
        if self.seconds == 0 and now - self.last_step > 1.0 + 2 * self.buffer * 8 / FPS:
            self.anchor = (self.anchor[0] + (now - self.last_step), self.anchor[1])  # paused: don't catch up
        self.last_step = now
        if self.clip is not None:
            return self._play_clip()
        out = []
        if getattr(self, "_reset_sent", True) is False:
            self._reset_sent = True
            pts = np.stack(self.points)
            out.append(("partial", {"t0": 0, "reset": True, "points": pts, "channels": np.stack(self.channels),
                                    "bvh": bvh.motion_lines(np.stack(self.channels)), "command": self.text}))
        if self.commands:
            t_now = self.n_frames / FPS
            while self.commands and self.commands[0][0] <= t_now:
                self._set_text(self.commands.pop(0)[1])
                self._pending_change = time.perf_counter()
        out.append(self._primitive())
        if self.seconds and len(self.world) >= self.seconds * FPS:
            n = int(self.seconds * FPS)
            ch = np.stack(self.channels[:n])
            out.append(("output", {"points": np.stack(self.points[:n]), "channels": ch, "texts": self.texts[:n],
                                   "bvh": bvh.header() + bvh.motion_block(ch), "goals": self.goal_log}))
            self.done = True
        return out

    def _goal_direction(self, origin: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor | None:
        if self.goal is None:
            return None
        d = torch.tensor([self.goal[0], 0.0, self.goal[1]], dtype=torch.float64) - origin * torch.tensor([1.0, 0, 1.0])
        dist = float(d.norm())
        if dist < GOAL_RADIUS:
            self.goal_log[-1]["reached_frame"] = self.n_frames
            self.goal = None
            self._set_text(IDLE_TEXT)
            return None
        d = (rig.rot_y(-yaw) @ d)[[0, 2]]  # (forward, right) in the character's frame
        bearing = float(torch.atan2(d[1], d[0]))  # + = the goal is to the right
        self._steer_to(bearing, dist)
        # Training goals (where the root is 1 s later) lie within ~35 degrees of the heading while
        # walking forward; a goal further round is fed at that angle, so the character turns towards it.
        ang = max(-GOAL_MAX_ANGLE, min(GOAL_MAX_ANGLE, bearing))
        return torch.tensor([[math.cos(ang), math.sin(ang)]], dtype=torch.float32)

    def _steer_to(self, bearing: float, dist: float) -> None:
        """Pick the command the model knows for this bearing: ahead -> the chosen gait, off to a
        side -> "<gait> and turn left/right", behind (or off to a side but too close to curve
        into, which would circle it) -> turn on the spot. In training the text and the trajectory
        always agree, so a "walk forward" text alone would fight a goal to the side."""
        gait = "run" if "run" in self.goal_gait or "jog" in self.goal_gait else "walk"
        side = "right" if bearing > 0 else "left"
        if abs(bearing) < GOAL_AHEAD:
            text = self.goal_gait
        elif abs(bearing) < GOAL_BEHIND and dist > GOAL_CURVE_MIN * abs(bearing):
            text = f"{gait} and turn {side}"
        else:
            text = f"turn {side}"
        if text != self.text:
            self._set_text(text)

    def _primitive(self):
        t0 = time.perf_counter()
        m = self.bundle.model
        hist_w = torch.stack(self.world[-m.cfg.hist:])[None]  # (1, 2, 64)
        origin, yaw = D.reference(hist_w[:, -1])
        hist = D.canonicalise(hist_w, origin, yaw).float()
        goal = self._goal_direction(origin[0], yaw[0])
        x = m.sample(hist, self.text_emb, goal, guidance=self.guidance, steps=self.steps, generator=self.gen,
                     denoise=self.bundle.denoise)[0]
        world = canonical_to_world(x.double(), origin[0], yaw[0])
        shown = self.foot_lock(world) if self.foot_lock is not None else world
        pts, ch, lines = world_to_outputs(shown, with_bvh=True)
        start = self.n_frames
        self.world += list(world)  # the model's own frames stay its history (the lock is for display)
        self.points += list(pts)
        self.channels += list(ch)
        self.texts += [self.text] * len(world)
        self.gen_ms.append(1000 * (time.perf_counter() - t0))
        if self._pending_change is not None:
            self.latency_ms.append(1000 * (time.perf_counter() - self._pending_change))
            self._pending_change = None
        data = {"t0": start, "points": pts, "channels": ch, "bvh": lines, "command": self.text,
                "goal": None if self.goal is None else [float(v) for v in self.goal]}
        if self.goal_log and self.goal_log[-1]["reached_frame"] == start:
            data["goal_reached"] = True
        self._trim()
        return ("partial", data)

    def _play_clip(self):
        n = 8
        chunk = self.clip[self.clip_pos:self.clip_pos + n]
        start = self.clip_pos
        self.clip_pos += len(chunk)
        out = [("partial", {"t0": start, "points": chunk, "command": "imported BVH", "imported": True})]
        if self.clip_pos >= len(self.clip):
            self.done = True
        return out

    def stats(self) -> dict:
        g = np.array(self.gen_ms[-200:]) if getattr(self, "gen_ms", None) else np.zeros(1)
        s = {"frames": self.n_frames if hasattr(self, "world") else 0, "primitive_ms": round(float(np.median(g)), 2),
             "gen_fps": round(float(8000 / max(np.median(g), 1e-3)), 1)}
        if getattr(self, "latency_ms", None):
            s["command_latency_ms"] = round(float(np.median(self.latency_ms)), 1)
        return s
