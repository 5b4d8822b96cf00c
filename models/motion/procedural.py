"""A procedural motion generator for the basic vocabulary, to widen the 5 minutes of real mocap.

It makes long sequences of commands (walk / run / turn / walk backwards / sidestep / jump / crouch /
wave / idle, at several speeds) with smooth transitions between them, each frame labelled with its
command's text. The legs are driven by a footstep planner (a planted foot never slides) and
solved with analytic two-bone IK; arms and torso follow the gait phase. It is a plausible but
stylised motion source: the real clips stay the reference for realism (see CARD.md).

Output per sequence: data channels (T, 43) in the shared data's layout (rig.py), texts per frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from models.motion import rig

FPS = 30
L_THIGH, L_SHIN = 0.421546, 0.409870
L_UPPER, L_FORE = 0.274788, 0.258947
ANKLE_H = 0.05  # ankle height when the sole is on the floor
HIP_W = 0.084887
STAND_H = 0.86  # pelvis (root) height standing, knees slightly bent

# command -> (forward m/s, sideways m/s (+ = right), turn rad/s (+ = left), style)
ACTIONS = {
    "idle": (0.0, 0.0, 0.0, "stand"), "walk": (1.2, 0.0, 0.0, "walk"), "walk_slow": (0.7, 0.0, 0.0, "walk"),
    "walk_fast": (1.6, 0.0, 0.0, "walk"), "run": (3.0, 0.0, 0.0, "run"), "jog": (2.2, 0.0, 0.0, "run"),
    "backwards": (-0.7, 0.0, 0.0, "walk"), "side_left": (0.0, -0.6, 0.0, "walk"), "side_right": (0.0, 0.6, 0.0, "walk"),
    "turn_left": (0.0, 0.0, 1.6, "walk"), "turn_right": (0.0, 0.0, -1.6, "walk"),
    "walk_left": (1.1, 0.0, 0.9, "walk"), "walk_right": (1.1, 0.0, -0.9, "walk"),
    "run_left": (2.6, 0.0, 0.9, "run"), "run_right": (2.6, 0.0, -0.9, "run"),
    "jump": (0.0, 0.0, 0.0, "jump"), "jump_forward": (1.2, 0.0, 0.0, "jump"), "crouch": (0.0, 0.0, 0.0, "crouch"),
    "wave": (0.0, 0.0, 0.0, "wave"), "walk_wave": (1.0, 0.0, 0.0, "wave"),
}
TEXTS = {
    "idle": ["stand still", "a person stands idle", "idle", "stand", "stop", "a person is standing"],
    "walk": ["walk forward", "a person walks forward", "walk", "walking", "go forward", "walk straight"],
    "walk_slow": ["walk slowly", "a person walks slowly forward", "slow walk", "stroll"],
    "walk_fast": ["walk fast", "a person walks quickly", "brisk walk", "hurry forward"],
    "run": ["run", "a person runs forward", "run forward", "sprint", "running"],
    "jog": ["jog", "a person jogs forward", "jog forward", "run slowly"],
    "backwards": ["walk backwards", "a person walks backward", "step back", "back up"],
    "side_left": ["sidestep left", "a person steps sideways to the left", "shuffle left", "step left"],
    "side_right": ["sidestep right", "a person steps sideways to the right", "shuffle right", "step right"],
    "turn_left": ["turn left", "a person turns to the left", "turn around to the left", "rotate left"],
    "turn_right": ["turn right", "a person turns to the right", "turn around to the right", "rotate right"],
    "walk_left": ["walk and turn left", "a person walks in a curve to the left", "walk left", "curve left"],
    "walk_right": ["walk and turn right", "a person walks in a curve to the right", "walk right", "curve right"],
    "run_left": ["run and turn left", "a person runs in a curve to the left", "run left"],
    "run_right": ["run and turn right", "a person runs in a curve to the right", "run right"],
    "jump": ["jump", "a person jumps up", "jump in place", "hop"],
    "jump_forward": ["jump forward", "a person jumps forward", "leap forward", "forward jump"],
    "crouch": ["crouch", "a person crouches down", "squat", "crouch down"],
    "wave": ["wave", "a person waves with the right hand", "wave hello", "wave your hand"],
    "walk_wave": ["walk and wave", "a person walks forward while waving"],
}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _frame(y_dir: np.ndarray, x_hint: np.ndarray) -> np.ndarray:
    """Rotation whose local +Y is `y_dir` and local +X is `x_hint` made orthogonal to it. (3, 3)"""
    y = _unit(y_dir)
    x = x_hint - np.dot(x_hint, y) * y
    x = _unit(x) if np.linalg.norm(x) > 1e-6 else _unit(np.cross(y, [0.0, 0.0, 1.0]))
    return np.stack([x, y, np.cross(x, y)], 1)


def _yaw(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def two_bone_ik(base: np.ndarray, target: np.ndarray, pole: np.ndarray, l1: float, l2: float, bend_back: bool):
    """Global rotation of the upper bone (rest direction -Y) and the hinge angle about local Z that
    put the end at `target`. The middle joint points towards `pole`; a knee (bend_back) bends the
    lower bone backwards (angle < 0), an elbow forwards (angle > 0)."""
    d = target - base
    dist = float(np.clip(np.linalg.norm(d), 0.05, l1 + l2 - 1e-4))
    dh = _unit(d)
    p = pole - np.dot(pole, dh) * dh
    p = _unit(p) if np.linalg.norm(p) > 1e-6 else _unit(np.cross(dh, [0.0, 0.0, 1.0]))
    cos_a = np.clip((l1 * l1 + dist * dist - l2 * l2) / (2 * l1 * dist), -1, 1)
    a = math.acos(cos_a)
    mid = base + l1 * (math.cos(a) * dh + math.sin(a) * p)
    upper = _frame(base - mid, p if bend_back else -p)
    end = base + dh * dist
    v = upper.T @ _unit(end - mid)
    return upper, math.atan2(v[0], -v[1])


@dataclass
class Foot:
    side: float  # +1 right (+Z), -1 left
    phase_offset: float
    plant: np.ndarray  # ankle position while planted (3,)
    yaw: float
    swing_from: np.ndarray | None = None
    swing_to: np.ndarray | None = None
    yaw_from: float = 0.0
    yaw_to: float = 0.0
    swing_len: float = 0.0  # seconds
    swing_t: float = 0.0


class Walker:
    """Integrates smoothed command targets into a root trajectory, footsteps and a full pose."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.pos = np.zeros(3)
        self.yaw = float(rng.uniform(-math.pi, math.pi))
        self.v = np.zeros(2)  # (forward, right) m/s in the body frame
        self.w = 0.0
        self.phase = 0.0
        self.style = {"run": 0.0, "crouch": 0.0, "wave": 0.0}
        self.feet = [Foot(s, o, self._nominal(s, 0.0, self.pos, self.yaw), self.yaw) for s, o in ((1.0, 0.0), (-1.0, 0.5))]
        self.jump_t = -1.0  # time into the current jump, -1 = none
        self.jump_v = np.zeros(3)
        self.height = STAND_H
        self.t = 0.0
        self.wave_phase = 0.0
        self.build = float(rng.uniform(0.9, 1.1))  # per-sequence speed scale

    def _nominal(self, side: float, ahead: float, pos: np.ndarray, yaw: float) -> np.ndarray:
        R = _yaw(yaw)
        p = pos + R @ np.array([ahead, 0.0, side * (HIP_W + 0.02)])
        return np.array([p[0], ANKLE_H, p[2]])

    def step(self, action: str) -> tuple[np.ndarray, np.ndarray]:
        """Advance one frame under `action`; returns root position (3,) and local rotations (15, 3, 3)."""
        dt = 1.0 / FPS
        fwd, side, turn, style = ACTIONS[action]
        k = 1 - math.exp(-dt / 0.25)  # command smoothing, ~0.25 s
        self.v += k * (np.array([fwd, side]) * self.build - self.v)
        self.w += k * (turn - self.w)
        for s in self.style:
            self.style[s] += k * (float(style == s) - self.style[s])
        if style == "jump" and self.jump_t < 0 and all(f.swing_to is None for f in self.feet):
            self.jump_t = 0.0
            self.jump_v = _yaw(self.yaw) @ np.array([fwd * 1.2, 0.0, 0.0])
            self.v[:] = 0.0
        run = self.style["run"]
        speed = float(np.linalg.norm(self.v))
        freq = (0.85 + 0.25 * speed) * (1 - run) + (1.35 + 0.06 * speed) * run  # stride cycles per second
        duty = 0.62 * (1 - run) + 0.36 * run  # share of a cycle each foot is planted

        # root: heading and position
        self.yaw += self.w * dt
        R = _yaw(self.yaw)
        vel = R @ np.array([self.v[0], 0.0, self.v[1]])
        jumping = self.jump_t >= 0
        if jumping:  # feet planted while crouching and landing; ballistic in the air
            vel = self.jump_v if 0.3 <= self.jump_t < 0.75 else np.zeros(3)
        self.pos += vel * dt
        self.t += dt

        # gait phase and footsteps (stepping only while moving or a foot is mid-swing)
        moving = speed > 0.05 or abs(self.w) > 0.1 or any(f.swing_to is not None for f in self.feet)
        if moving and not jumping:
            self.phase = (self.phase + freq * dt) % 1.0
        for f in self.feet:
            local = (self.phase + f.phase_offset) % 1.0
            in_swing = local >= duty
            if jumping:
                continue
            if in_swing and f.swing_to is None and moving:
                t_land = (1 - local) / freq
                yaw_land = self.yaw + self.w * (t_land + duty / (2 * freq))
                pos_land = self.pos + vel * t_land
                ahead = _yaw(yaw_land).T @ vel * duty / (2 * freq)
                target = self._nominal(f.side, 0.0, pos_land, yaw_land) + _yaw(yaw_land) @ np.array([ahead[0], 0, ahead[2]])
                if np.linalg.norm(target - f.plant) > 0.04 or abs(yaw_land - f.yaw) > 0.1:
                    f.swing_from, f.swing_to = f.plant.copy(), target
                    f.yaw_from, f.yaw_to = f.yaw, yaw_land
                    f.swing_len = (1 - local) / freq
                    f.swing_t = 0.0
            if f.swing_to is not None:
                f.swing_t += dt
                s = min(f.swing_t / max(f.swing_len, 1e-3), 1.0)
                e = s * s * (3 - 2 * s)
                f.plant = f.swing_from + e * (f.swing_to - f.swing_from)
                lift = (0.07 + 0.08 * run) * math.sin(math.pi * s)
                f.plant[1] = ANKLE_H + lift
                f.yaw = f.yaw_from + e * (f.yaw_to - f.yaw_from)
                if s >= 1.0:
                    f.plant, f.yaw, f.swing_to = f.swing_to.copy(), f.yaw_to, None

        # pelvis height: bob with the steps, lower for running and crouching, jump arc
        bob = math.cos(4 * math.pi * self.phase) if moving else 0.0
        h = STAND_H - 0.01 * min(speed, 1.5) - 0.04 * run - 0.38 * self.style["crouch"] - (0.012 + 0.03 * run) * bob
        if jumping:
            was_flying = 0.3 <= self.jump_t < 0.75
            h, done = self._jump_height(h)
            if was_flying and self.jump_t >= 0.75:  # touch-down: feet land under the hips
                for f in self.feet:
                    f.plant = self._nominal(f.side, 0.0, self.pos, self.yaw)
                    f.yaw = self.yaw
            if done:
                self.jump_t = -1.0
        self.height += 0.5 * (h - self.height)
        self.pos[1] = self.height
        return self._pose(R, run, speed, moving)

    def _jump_height(self, base: float) -> tuple[float, bool]:
        """Crouch 0.3 s, fly 0.45 s, land and recover 0.3 s."""
        self.jump_t += 1.0 / FPS
        t = self.jump_t
        if t < 0.3:
            return base - 0.2 * math.sin(math.pi * t / 0.6), False
        if t < 0.75:
            s = (t - 0.3) / 0.45
            return base - 0.2 * (1 - s) ** 8 + 0.35 * 4 * s * (1 - s), False
        if t < 1.05:
            return base - 0.15 * math.sin(math.pi * (t - 0.75) / 0.3), False
        return base, True

    def _pose(self, R: np.ndarray, run: float, speed: float, moving: bool) -> tuple[np.ndarray, np.ndarray]:
        rots = np.tile(np.eye(3), (15, 1, 1))
        crouch, wave = self.style["crouch"], self.style["wave"]
        ph = 2 * math.pi * self.phase
        amp = min(speed, 3.0) / 3.0 if moving else 0.0
        root_g = R @ _rz(-0.05 * run - 0.1 * crouch) @ _rx(0.03 * amp * math.sin(ph))
        rots[0] = root_g
        chest_l = _rz(-0.12 * run - 0.35 * crouch) @ _yaw(-0.15 * amp * math.sin(ph))
        rots[1] = chest_l
        rots[2] = _rz(0.08 * run + 0.2 * crouch)
        flying = self.jump_t >= 0.3 and self.jump_t < 0.75
        for f, hip, knee, ankle in ((self.feet[0], 3, 4, 5), (self.feet[1], 9, 10, 11)):
            hip_pos = self.pos + root_g @ rig.OFFSETS[hip].astype(float)
            target = f.plant
            if flying:  # legs tuck under the body in flight
                s = (self.jump_t - 0.3) / 0.45
                target = hip_pos + R @ np.array([0.05, -0.8 + 0.15 * math.sin(math.pi * s), f.side * 0.02])
                target[1] = max(target[1], ANKLE_H)
            upper, bend = two_bone_ik(hip_pos, target, R @ np.array([1.0, 0.0, 0.0]), L_THIGH, L_SHIN, True)
            rots[hip] = root_g.T @ upper
            rots[knee] = _rz(min(bend, 0.0))
            swing = f.swing_to is not None
            pitch = 0.0
            if swing:
                s = min(f.swing_t / max(f.swing_len, 1e-3), 1.0)
                pitch = -0.35 * math.sin(math.pi * s) * (1 if s < 0.5 else -0.6)
            foot_g = _yaw(f.yaw) @ _rz(pitch)
            rots[ankle] = (upper @ _rz(min(bend, 0.0))).T @ foot_g
        for side, sh, el in ((1.0, 6, 7), (-1.0, 12, 13)):
            leg_phase = ph if side > 0 else ph + math.pi
            swing = (0.25 + 0.35 * run) * amp * 1.5 * math.sin(leg_phase + math.pi)
            local = _rz(swing + 0.5 * crouch) @ _rx(-side * (0.12 + 0.1 * run))
            bend = 0.25 + 1.2 * run + 0.3 * crouch + 0.15 * amp
            if side > 0 and wave > 0.01:
                self.wave_phase += 2 * math.pi * 2.0 / FPS
                up = _unit(np.array([0.1, 0.25, 1.0]))  # upper arm out to the side, forearm up
                wave_l = _frame(-up, np.array([0.0, 1.0, 0.0]))
                # blend by interpolating the rotation vectors of the two local rotations
                rv = Rotation.from_matrix(np.stack([local, wave_l])).as_rotvec()
                local = Rotation.from_rotvec((1 - wave) * rv[0] + wave * rv[1]).as_matrix()
                bend = (1 - wave) * bend + wave * (1.5 + 0.35 * math.sin(self.wave_phase))
            rots[sh] = local
            rots[el] = _rz(bend)
        return self.pos.copy(), rots


def random_program(rng: np.random.Generator, seconds: float) -> list[tuple[str, float]]:
    """A random sequence of (action, duration s) adding up to about `seconds`."""
    names = list(ACTIONS)
    weights = np.array([3 if n in ("idle", "walk", "run", "turn_left", "turn_right", "walk_left", "walk_right") else 2
                        for n in names], dtype=float)
    prog, total = [], 0.0
    while total < seconds:
        a = names[rng.choice(len(names), p=weights / weights.sum())]
        d = float(rng.uniform(1.2, 1.3) if a.startswith("jump") else rng.uniform(1.5, 4.0))
        prog.append((a, d))
        total += d
    return prog


def generate(rng: np.random.Generator, seconds: float = 20.0) -> tuple[np.ndarray, list[str], list[str]]:
    """One procedural sequence: channels (T, 43) float32, action per frame, text per frame."""
    w = Walker(rng)
    roots, rots, actions, texts = [], [], [], []
    for action, dur in random_program(rng, seconds):
        text = TEXTS[action][rng.integers(len(TEXTS[action]))]
        for _ in range(int(dur * FPS)):
            p, r = w.step(action)
            roots.append(p)
            rots.append(r)
            actions.append(action)
            texts.append(text)
    ch = rig.pose_to_channels(torch.from_numpy(np.stack(roots)), torch.from_numpy(np.stack(rots)))
    return ch.float().numpy(), actions, texts
