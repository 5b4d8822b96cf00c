"""BVH (Biovision hierarchy) export of the studio's character and import of any BVH file.

Export: the 13 moving joints of rig.py (wrists, head top and toes become End Sites), offsets and
root position in centimetres, every joint with "Zrotation Yrotation Xrotation" channels (intrinsic
Z-Y-X Euler angles in degrees, the usual BVH reading M = Rz @ Ry @ Rx), 30 fps.
Import: any hierarchy and channel order; a file that does not parse raises BVHError with the line.
Written here (not a library) because it is ~200 lines and the import needs plain-sentence errors.
"""
from __future__ import annotations

import io
import re
import warnings
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
# Limits on an imported file, checked before the work they bound (a mocap take of several minutes
# at 120 fps fits; a file past them is refused with a sentence that names the limit).
MAX_BYTES = 64 * 2**20  # characters of text
MAX_HIERARCHY_CHARS = 1 * 2**20
MAX_JOINTS = 256  # joints and end sites
MAX_DEPTH = 64  # joint nesting
MAX_FRAMES = 100_000
MAX_VALUES = 6_000_000  # frames x channels
MAX_POSES = 2_000_000  # frames x (joints + end sites): what clip.points() computes


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


def _quote(tok: str, n: int = 24) -> str:
    """A bit of the file for a message: printable, short, quoted."""
    t = "".join(c if c.isprintable() else "?" for c in tok[:n + 1])
    return f"'{t[:n - 1]}…'" if len(t) > n else f"'{t}'"


_LINE = re.compile(r"\S[^\n]*")  # from the first non-blank character of a line to its end


def _content_lines(text: str, pos: int, line: int):
    """(line number, end position, stripped text) of each non-blank line from `pos` on (`line` is pos's
    line number); blank lines are skipped by the regex engine, so a million empty lines cost milliseconds."""
    for mm in _LINE.finditer(text, pos):
        line += text.count("\n", pos, mm.start())
        pos = mm.start()
        yield line, mm.end(), mm.group().strip()


def parse(text: str) -> BVHClip:
    """Read BVH text. Raises BVHError with a plain one-line reason (and the line number) for anything it
    cannot read, and refuses files past the limits (MAX_BYTES, MAX_JOINTS, MAX_DEPTH, MAX_FRAMES,
    MAX_VALUES, MAX_POSES) before doing the work. The MOTION block is read by numpy in one pass."""
    if not isinstance(text, str):
        raise BVHError("the file is not text")
    if len(text) > MAX_BYTES:
        raise BVHError(f"the file is too large ({len(text) / 2**20:.0f} MB; at most {MAX_BYTES // 2**20} MB)")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = re.search(r"^[ \t\f\v]*MOTION", text, re.M | re.I)
    hierarchy = text if m is None else text[:m.start()]
    first = hierarchy[:4096].split(None, 1)
    if not first or first[0].upper() != "HIERARCHY":
        raise BVHError("it does not start with HIERARCHY (is this a BVH file?)")
    if m is None:
        raise BVHError("there is no MOTION section")
    if len(hierarchy) > MAX_HIERARCHY_CHARS:
        raise BVHError(f"the HIERARCHY section is {len(hierarchy) // 1024:,} KB long; at most "
                       f"{MAX_HIERARCHY_CHARS // 1024:,} KB are read")
    names, parents, offsets, channels = _parse_hierarchy(hierarchy)
    n_values = sum(len(c) for c in channels)
    if n_values == 0:
        raise BVHError("the hierarchy has no channels, so there is no motion to play")
    motion_line = hierarchy.count("\n") + 1  # line number of the MOTION line

    nl = text.find("\n", m.end())  # the rest of the MOTION line is ignored
    meta: dict[str, float] = {}
    body_at, body_line = len(text), motion_line
    if nl >= 0:
        for ln, end, s in _content_lines(text, nl + 1, motion_line + 1):
            key, _, val = s.partition(":")
            key = key.strip().lower()
            if key not in ("frames", "frame time"):
                raise BVHError(f"expected 'Frames:' and 'Frame Time:' after MOTION, found {_quote(s, 40)} (line {ln})")
            try:
                meta[key] = float(val)
            except ValueError:
                raise BVHError(f"{_quote(val.strip())} after '{key}:' is not a number (line {ln})") from None
            if len(meta) == 2:
                body_at, body_line = end + 1, ln + 1
                break
    if len(meta) < 2:
        raise BVHError("the MOTION section lacks 'Frames:' or 'Frame Time:'")
    frames, ft = meta["frames"], meta["frame time"]
    if not np.isfinite(frames) or frames != int(frames):
        raise BVHError(f"'Frames:' must be a whole number of frames, found {frames:g}")
    n_frames = int(frames)
    if n_frames <= 0:
        raise BVHError("the file has no frames")
    if not (0 < ft <= 1):
        raise BVHError(f"frame time {ft:g} s is not plausible (it must be above 0 and at most 1 second)")
    if n_frames > MAX_FRAMES:
        raise BVHError(f"the file has {n_frames:,} frames; at most {MAX_FRAMES:,} are read")
    if n_frames * n_values > MAX_VALUES:
        raise BVHError(f"the file has {n_frames:,} frames of {n_values} values; at most {MAX_VALUES:,} values are "
                       f"read (about {MAX_VALUES // n_values:,} frames of this skeleton)")
    if n_frames * len(names) > MAX_POSES:
        raise BVHError(f"the file has {n_frames:,} frames of {len(names)} joints; at most {MAX_POSES:,} joint poses "
                       f"are read (about {MAX_POSES // len(names):,} frames of this skeleton)")
    motion = _read_motion(text, body_at, body_line, n_frames, n_values)
    return BVHClip(names, parents, np.array(offsets, np.float64), channels, ft, motion)


_CHANNELS = {c.lower(): c for c in ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")}


def _parse_hierarchy(hierarchy: str):
    """HIERARCHY text -> names, parents, offsets, channels; iterative, so any depth is a message, not a crash."""
    toks: list[tuple[str, int]] = []
    for i, line in enumerate(hierarchy.split("\n")):
        toks += [(t, i + 1) for t in line.replace("{", " { ").replace("}", " } ").split()]
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    pos = 1

    def take(expect: str | None = None) -> tuple[str, int]:
        nonlocal pos
        if pos >= len(toks):
            raise BVHError(f"the hierarchy ends early (line {toks[-1][1]})")
        t = toks[pos]
        pos += 1
        if expect is not None and t[0].upper() != expect.upper():
            raise BVHError(f"expected '{expect}' but found {_quote(t[0])} on line {t[1]}")
        return t

    def number(t: tuple[str, int]) -> float:
        try:
            v = float(t[0])
        except ValueError:
            raise BVHError(f"{_quote(t[0])} on line {t[1]} is not a number") from None
        if not np.isfinite(v):
            raise BVHError(f"a number on line {t[1]} is not finite (NaN or infinity)")
        return v

    stack: list[int] = []  # open joints, innermost last

    def open_joint(parent: int, end: bool) -> None:
        if end:
            take("Site")
            name = f"{names[parent]}_end"
        else:
            name = take()[0]
        if len(names) >= MAX_JOINTS:
            raise BVHError(f"the hierarchy has more than {MAX_JOINTS} joints and end sites")
        if len(stack) >= MAX_DEPTH:
            raise BVHError(f"the hierarchy nests joints more than {MAX_DEPTH} levels deep")
        j = len(names)
        names.append(name)
        parents.append(parent)
        take("{")
        take("OFFSET")
        offsets.append([number(take()) for _ in range(3)])
        chans: list[str] = []
        if not end:
            t = take("CHANNELS")
            c, ln = take()
            if not (c.isdecimal() and len(c) <= 2 and int(c) <= 6):
                raise BVHError(f"joint {_quote(name)} has {_quote(c)} channels on line {t[1]} (0 to 6 allowed)")
            for _ in range(int(c)):
                c, ln = take()
                if c.lower() not in _CHANNELS:
                    raise BVHError(f"unknown channel {_quote(c)} on line {ln}")
                chans.append(_CHANNELS[c.lower()])
        channels.append(chans)
        stack.append(j)

    take("ROOT")
    open_joint(-1, False)
    while stack:
        t, ln = take()
        if t == "}":
            stack.pop()
        elif t.upper() == "JOINT":
            open_joint(stack[-1], False)
        elif t.upper() == "END":
            open_joint(stack[-1], True)
        else:
            raise BVHError(f"unexpected {_quote(t)} on line {ln}")
    return names, parents, offsets, channels


def _read_motion(text: str, at: int, line0: int, n_frames: int, n_values: int) -> np.ndarray:
    """The frame rows from text[at:] -> (n_frames, n_values) float64; numpy's C reader on the fast path,
    a row-by-row look only to say where a broken file breaks."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data" is reported below as truncated
            motion = np.loadtxt(io.StringIO(text[at:]), dtype=np.float64, ndmin=2, comments=None, max_rows=n_frames)
    except ValueError:
        motion = None
    if motion is None or motion.shape[0] < n_frames or motion.shape[1] != n_values:
        _diagnose(text, at, line0, n_frames, n_values)  # raises with the row at fault
        raise BVHError(f"the frames could not be read as {n_values} numbers each")  # rows numpy alone refuses
    if not np.isfinite(motion).all():
        bad = int(np.nonzero(~np.isfinite(motion).all(1))[0][0])
        raise BVHError(f"frame {bad + 1} has a value that is not finite (NaN or infinity)")
    return motion


def _diagnose(text: str, at: int, line0: int, n_frames: int, n_values: int) -> None:
    row = 0
    for ln, _, s in _content_lines(text, at, line0):
        vals = s.split()
        row += 1
        for v in vals:
            try:
                float(v)
            except ValueError:
                raise BVHError(f"frame {row} has a value that is not a number: {_quote(v)} (line {ln})") from None
        if len(vals) != n_values:
            raise BVHError(f"each frame needs {n_values} values for this hierarchy; frame {row} has {len(vals)} "
                           f"(line {ln})")
        if row == n_frames:
            return
    raise BVHError(f"the file says {n_frames:,} frame{'s' * (n_frames != 1)} but has {row:,} (truncated?)")
