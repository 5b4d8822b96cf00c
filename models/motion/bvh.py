"""BVH (Biovision hierarchy) export of the studio's character and import of any BVH file.

Export: the 13 moving joints of rig.py (wrists, head top and toes become End Sites), offsets and
root position in centimetres, every joint with "Zrotation Yrotation Xrotation" channels (intrinsic
Z-Y-X Euler angles in degrees, the usual BVH reading M = Rz @ Ry @ Rx), 30 fps.
Import: any hierarchy and channel order; a file that does not parse raises BVHError with the line.
Written here (not a library) because it is ~200 lines and the import needs plain-sentence errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from models.motion import rig

FPS = 30
SCALE = 100.0  # metres -> centimetres in the file
BVH_JOINTS = [0, 1, 2, 6, 7, 12, 13, 3, 4, 5, 9, 10, 11]  # rig joints with a rotation, in the file's (depth-first) order
END_SITES = {2: (0.0, 0.28, 0.0), 5: (0.13, -0.05, 0.0), 11: (0.13, -0.05, 0.0), 7: tuple(rig.OFFSETS[8]),
             13: tuple(rig.OFFSETS[14])}
MAX_BYTES = 64 * 2**20


class BVHError(ValueError):
    """A BVH file that cannot be read; the message says where and why."""


# ---- export ------------------------------------------------------------------------------------
def header() -> str:
    """HIERARCHY section for the studio's character (ends before MOTION)."""
    lines = ["HIERARCHY"]
    children = {j: [k for k in BVH_JOINTS if rig.PARENTS[k] == j] for j in BVH_JOINTS}

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        off = rig.OFFSETS[j] * SCALE
        kind = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{kind} {rig.JOINTS[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {off[0]:.4f} {off[1]:.4f} {off[2]:.4f}")
        chans = "6 Xposition Yposition Zposition Zrotation Yrotation Xrotation" if j == 0 else "3 Zrotation Yrotation Xrotation"
        lines.append(f"{pad}  CHANNELS {chans}")
        for c in children[j]:
            emit(c, depth + 1)
        if j in END_SITES:
            e = np.array(END_SITES[j]) * SCALE
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {e[0]:.4f} {e[1]:.4f} {e[2]:.4f}", pad + "  }"])
        lines.append(pad + "}")

    emit(0, 0)
    return "\n".join(lines) + "\n"


def channel_values(ch: np.ndarray) -> np.ndarray:
    """(T, 43) data channels -> (T, 6 + 3 * 12) BVH motion values (cm, degrees)."""
    root, rots = rig.channels_to_pose(torch.from_numpy(np.asarray(ch, np.float64)))
    return pose_values(root.numpy(), rots.numpy())


def pose_values(root: np.ndarray, rots: np.ndarray) -> np.ndarray:
    """root (T, 3) metres, local rotations (T, 15, 3, 3) -> (T, 42) BVH motion values."""
    eul = Rotation.from_matrix(rots[:, BVH_JOINTS].reshape(-1, 3, 3)).as_euler("ZYX", degrees=True)
    return np.concatenate([root * SCALE, eul.reshape(len(root), len(BVH_JOINTS) * 3)], 1)


def _lines(values: np.ndarray) -> list[str]:
    fmt = " ".join(["%.5f"] * values.shape[1])
    return [fmt % tuple(row) for row in values]


def motion_lines(ch: np.ndarray) -> list[str]:
    """One BVH MOTION line per frame."""
    return _lines(channel_values(ch))


def lines_from_pose(root: np.ndarray, rots: np.ndarray) -> list[str]:
    return _lines(pose_values(root, rots))


def motion_block(ch: np.ndarray) -> str:
    lines = motion_lines(ch)
    return f"MOTION\nFrames: {len(lines)}\nFrame Time: {1 / FPS:.8f}\n" + "\n".join(lines) + "\n"


def write(path, ch: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write(header() + motion_block(ch))


# ---- import ------------------------------------------------------------------------------------
@dataclass
class BVHClip:
    names: list[str]  # joints then end sites ("<parent>_end")
    parents: list[int]
    offsets: np.ndarray  # (J, 3) file units
    channels: list[list[str]]  # per joint, e.g. ["Xposition", ..., "Zrotation", ...]; [] for end sites
    frame_time: float
    motion: np.ndarray = field(repr=False)  # (T, n_values)

    def local(self) -> tuple[np.ndarray, np.ndarray]:
        """Root translation (T, 3) and local rotations (T, J, 3, 3) in file units."""
        T, J = len(self.motion), len(self.names)
        rots = np.tile(np.eye(3), (T, J, 1, 1))
        trans = np.tile(self.offsets[0], (T, 1)).astype(np.float64)
        col = 0
        for j, chans in enumerate(self.channels):
            order, angles = "", []
            for c in chans:
                v = self.motion[:, col]
                col += 1
                if c.endswith("position"):
                    if j == 0:
                        trans[:, "XYZ".index(c[0].upper())] = v
                else:
                    order += c[0].upper()
                    angles.append(v)
            if order:
                rots[:, j] = Rotation.from_euler(order, np.stack(angles, 1), degrees=True).as_matrix()
        return trans, rots

    def points(self) -> np.ndarray:
        """World positions of every joint and end site (T, J, 3), metres (centimetres assumed when
        the skeleton is taller than 5 file units)."""
        trans, rots = self.local()
        T, J = rots.shape[:2]
        pos = np.zeros((T, J, 3))
        glob = np.zeros((T, J, 3, 3))
        for j, p in enumerate(self.parents):
            if p < 0:
                pos[:, j], glob[:, j] = trans, rots[:, j]
            else:
                pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", glob[:, p], self.offsets[j])
                glob[:, j] = glob[:, p] @ rots[:, j]
        height = np.ptp(pos[0, :, 1]) if T else 0.0
        return pos / (100.0 if height > 5 else 1.0)

    def matches_rig(self) -> bool:
        """True when this is the studio's own character as exported by `header()`."""
        joints = [n for n, c in zip(self.names, self.channels) if c]
        return joints == [rig.JOINTS[j] for j in BVH_JOINTS] and self.channels[0][:3] == ["Xposition", "Yposition", "Zposition"]

    def to_channels(self) -> np.ndarray:
        """(T, 43) data channels; only for files where `matches_rig()`."""
        trans, rots = self.local()
        idx = [i for i, c in enumerate(self.channels) if c]
        full = np.tile(np.eye(3), (len(trans), 15, 1, 1))
        full[:, BVH_JOINTS] = rots[:, idx]
        # hinges: keep only the rotation about Z (the exported file has nothing else there)
        return rig.pose_to_channels(torch.from_numpy(trans / SCALE), torch.from_numpy(full)).float().numpy()


def parse(text: str) -> BVHClip:
    """Read BVH text. Raises BVHError with a plain reason and line number."""
    if not isinstance(text, str):
        raise BVHError("the file is not text")
    if len(text) > MAX_BYTES:
        raise BVHError(f"the file is too large ({len(text) / 2**20:.0f} MB; at most {MAX_BYTES // 2**20} MB)")
    lines = text.splitlines()
    toks: list[tuple[str, int]] = []
    motion_at = None
    for i, line in enumerate(lines):
        if line.strip().upper().startswith("MOTION"):
            motion_at = i
            break
        toks += [(t, i + 1) for t in line.replace("{", " { ").replace("}", " } ").split()]
    if not toks or toks[0][0].upper() != "HIERARCHY":
        raise BVHError("it does not start with HIERARCHY (is this a BVH file?)")
    if motion_at is None:
        raise BVHError("there is no MOTION section")
    names, parents, offsets, channels = [], [], [], []
    pos = 1

    def take(expect: str | None = None) -> tuple[str, int]:
        nonlocal pos
        if pos >= len(toks):
            raise BVHError(f"the hierarchy ends early (line {toks[-1][1]})")
        t = toks[pos]
        pos += 1
        if expect is not None and t[0].upper() != expect.upper():
            raise BVHError(f"expected '{expect}' but found '{t[0]}' on line {t[1]}")
        return t

    def number(t: tuple[str, int]) -> float:
        try:
            v = float(t[0])
        except ValueError:
            raise BVHError(f"'{t[0]}' on line {t[1]} is not a number") from None
        if not np.isfinite(v):
            raise BVHError(f"non-finite number on line {t[1]}")
        return v

    def joint(parent: int, end: bool = False) -> None:
        name = "end" if end else take()[0]
        if end:
            take("Site")
            name = f"{names[parent]}_end"
        j = len(names)
        names.append(name)
        parents.append(parent)
        take("{")
        take("OFFSET")
        offsets.append([number(take()) for _ in range(3)])
        chans: list[str] = []
        if not end:
            t = take("CHANNELS")
            n = int(number(take()))
            if n < 0 or n > 6:
                raise BVHError(f"joint '{name}' has {n} channels on line {t[1]} (0 to 6 allowed)")
            for _ in range(n):
                c, ln = take()
                if c.lower() not in ("xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation"):
                    raise BVHError(f"unknown channel '{c}' on line {ln}")
                chans.append(c[0].upper() + c[1:].lower())
        channels.append(chans)
        while True:
            t, ln = take()
            if t == "}":
                return
            if t.upper() == "JOINT":
                joint(j)
            elif t.upper() == "END":
                joint(j, end=True)
            else:
                raise BVHError(f"unexpected '{t}' on line {ln}")

    take("ROOT")
    joint(-1)
    n_values = sum(len(c) for c in channels)
    body = [ln for ln in lines[motion_at + 1:]]
    meta: dict[str, float] = {}
    k = 0
    while k < len(body) and len(meta) < 2:
        s = body[k].strip()
        k += 1
        if not s:
            continue
        key, _, val = s.partition(":")
        key = key.strip().lower()
        if key not in ("frames", "frame time"):
            raise BVHError(f"expected 'Frames:' and 'Frame Time:' after MOTION, found '{s[:40]}' (line {motion_at + 1 + k})")
        try:
            meta[key] = float(val)
        except ValueError:
            raise BVHError(f"'{val.strip()}' after '{key}:' is not a number (line {motion_at + 1 + k})") from None
    if len(meta) < 2:
        raise BVHError("the MOTION section lacks 'Frames:' or 'Frame Time:'")
    n_frames, ft = int(meta["frames"]), meta["frame time"]
    if n_frames <= 0:
        raise BVHError("the file has no frames")
    if not (0 < ft <= 1):
        raise BVHError(f"frame time {ft} s is not plausible")
    rows = [r for r in body[k:] if r.strip()]
    if len(rows) < n_frames:
        raise BVHError(f"the file says {n_frames} frames but has {len(rows)} (truncated?)")
    try:
        motion = np.array([[float(v) for v in r.split()] for r in rows[:n_frames]], dtype=np.float64)
    except ValueError:
        bad = next(i for i, r in enumerate(rows) if not _floats(r))
        raise BVHError(f"frame {bad + 1} has a value that is not a number (line {motion_at + 1 + k + bad + 1})") from None
    except Exception:
        motion = None
    if motion is None or motion.ndim != 2 or motion.shape[1] != n_values:
        counts = {len(r.split()) for r in rows[:n_frames]}
        raise BVHError(f"each frame needs {n_values} values for this hierarchy, found {sorted(counts)[:3]}")
    if not np.isfinite(motion).all():
        raise BVHError("the motion contains non-finite values")
    return BVHClip(names, parents, np.array(offsets, np.float64), channels, ft, motion)


def _floats(row: str) -> bool:
    try:
        [float(v) for v in row.split()]
        return True
    except ValueError:
        return False
