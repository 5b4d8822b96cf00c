"""Training data for the motion model: `python -m models.motion.data` builds it into the user cache dir.

Sources
- Real: 84 CMU mocap clips retargeted to the DeepMimic humanoid (../shared/data/motion, see its
  LICENSE_SOURCE.md), with CMU's own descriptions. Each clip is put on the floor (its 5th-percentile
  lowest point becomes y = 0). Every 9th clip (index % 9 == 4) is held out for evaluation.
- Honest widening of the real clips (training split only): mirroring (left <-> right, texts too),
  speed changes (x0.8, x1.25, resampled with quaternion nlerp), and heading changes: a slow yaw
  drift (+-0.45 rad/s) bent into locomotion clips, labelled "... and turn left/right".
- Procedural: `procedural.py` sequences of the basic vocabulary with transitions (labelled per frame).

Stored per frame in world space (the model canonicalises windows on the fly, see `canonical_windows`):
root position (3), root rotation matrix (9), 8 spherical joints in 6D (48), 4 hinge angles (4).
Text: every frame has a segment id; a segment has up to 6 alternative texts (MiniLM embeddings).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from models.common.paths import SHARED_DATA, cache_dir
from models.motion import procedural, rig

FPS = 30
HIST, PRIM = 2, 8  # history frames in, primitive frames out (DART)
GOAL_AHEAD = 30  # frames: a window's goal is where the root is one second after its last history frame
FRAME_DIM = 64  # stored world features per frame
FEAT_DIM = 61  # canonical model features per frame: root pos 3, root 6D 6, 8 x 6D, 4 hinges
MAX_TEXTS = 6
REAL = SHARED_DATA / "motion"


def out_dir() -> Path:
    return cache_dir("motion")


# ---- real clips ------------------------------------------------------------------------------
def load_real() -> list[dict]:
    """The shared clips: [{id, channels (T, 43), texts [..], split}] on the floor (y = 0)."""
    d = np.load(REAL / "cmu_humanoid3d_30fps.npz")
    rows = {r["clip_id"]: r for r in csv.DictReader(open(REAL / "index.csv", newline=""))}
    off = d["clip_offsets"]
    clips = []
    for i, cid in enumerate(d["clip_ids"]):
        ch = d["frames"][off[i]:off[i + 1]].astype(np.float32).copy()
        root, rots = rig.channels_to_pose(torch.from_numpy(ch).double())
        low = rig.forward_kinematics(root, rots)[..., 1].min(-1).values.numpy()
        ch[:, 1] -= np.percentile(low, 5)
        r = rows[str(cid)]
        desc = r["cmu_description"].strip().lower()
        texts = list(dict.fromkeys([r["text"].strip().lower(), desc, "a person " + desc.replace("/", " or ")]))
        clips.append({"id": str(cid), "channels": ch, "texts": texts, "split": "eval" if i % 9 == 4 else "train"})
    return clips


def swap_sides(text: str) -> str:
    return text.replace("left", "\0").replace("right", "left").replace("\0", "right")


def mirror(ch: np.ndarray) -> np.ndarray:
    root, rots = rig.channels_to_pose(torch.from_numpy(ch).double())
    return rig.pose_to_channels(*rig.mirror_pose(root, rots)).float().numpy()


def resample(ch: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster: linear root, normalised-lerp quaternions, linear hinges."""
    T = len(ch)
    src = np.arange(0, T - 1, factor)
    i0 = np.floor(src).astype(int)
    a = (src - i0)[:, None].astype(np.float32)
    i1 = np.minimum(i0 + 1, T - 1)
    out = (1 - a) * ch[i0] + a * ch[i1]
    for s in _quat_slices():
        q0, q1 = ch[i0, s], ch[i1, s]
        q1 = np.where((q0 * q1).sum(-1, keepdims=True) < 0, -q1, q1)
        q = (1 - a) * q0 + a * q1
        out[:, s] = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return out.astype(np.float32)


def _quat_slices() -> list[slice]:
    s, i = [slice(3, 7)], 7
    for k in range(1, 15):
        if k in rig.SPHERICAL:
            s.append(slice(i, i + 4))
            i += 4
        elif k in rig.HINGES:
            i += 1
    return s


def bend_heading(ch: np.ndarray, rate: float) -> np.ndarray:
    """Add a constant yaw rate (rad/s) to a clip: each frame's displacement and rotation turn with it."""
    root, rots = rig.channels_to_pose(torch.from_numpy(ch).double())
    T = len(ch)
    yaw = torch.arange(T, dtype=torch.float64) * rate / FPS
    R = rig.rot_y(yaw)
    step = torch.diff(root, dim=0, prepend=root[:1])
    step[:, 1] = 0
    new = torch.cumsum((R @ step.unsqueeze(-1)).squeeze(-1), 0) + root[:1]
    new[:, 1] = root[:, 1]
    rots = rots.clone()
    rots[:, 0] = R @ rots[:, 0]
    return rig.pose_to_channels(new, rots).float().numpy()


LOCOMOTION = ("walk", "run", "jog")


def widen(clip: dict) -> list[tuple[np.ndarray, list[str]]]:
    """A training clip -> the clip and its mirrored, speed-changed and heading-bent variants."""
    out = []
    for mirrored in (False, True):
        ch = mirror(clip["channels"]) if mirrored else clip["channels"]
        texts = [swap_sides(t) for t in clip["texts"]] if mirrored else clip["texts"]
        for factor in (1.0, 0.8, 1.25):
            c = resample(ch, factor) if factor != 1.0 else ch
            if len(c) < HIST + PRIM + 1:
                continue
            out.append((c, texts))
            base = clip["texts"][1]
            if any(w in base for w in LOCOMOTION) and "turn" not in base and factor == 1.0:
                for rate, side in ((0.45, "left"), (-0.45, "right")):
                    out.append((bend_heading(c, rate), [f"{base} and turn {side}", f"a person: {base} in a curve to the {side}"]))
    return out


# ---- world features --------------------------------------------------------------------------
def world_features(ch: np.ndarray) -> np.ndarray:
    """(T, 43) channels -> (T, 64): root pos, root rotmat (9), 8 x 6D, 4 hinges."""
    root, rots = rig.channels_to_pose(torch.from_numpy(ch).double())
    six = rig.mat_to_6d(rots[:, rig.SPHERICAL]).reshape(len(ch), -1)
    hinge = torch.stack([torch.atan2(rots[:, k, 1, 0], rots[:, k, 0, 0]) for k in rig.HINGES], -1)
    return torch.cat([root, rots[:, 0].reshape(-1, 9), six, hinge], -1).float().numpy()


def build(n_procedural: int = 240, seconds: float = 30.0, seed: int = 0) -> Path:
    from models.common.text import shared_encoder

    t0 = time.time()
    rng = np.random.default_rng(seed)
    seqs: list[tuple[np.ndarray, np.ndarray, list[list[str]], str, str]] = []  # feats, seg per frame, seg texts, source, split

    for clip in load_real():
        variants = widen(clip) if clip["split"] == "train" else [(clip["channels"], clip["texts"])]
        for ch, texts in variants:
            seqs.append((world_features(ch), np.zeros(len(ch), np.int64), [texts], "real", clip["split"]))
    print(f"real: {sum(s[0].shape[0] for s in seqs)} frames in {len(seqs)} sequences ({time.time() - t0:.0f} s)", flush=True)
    for i in range(n_procedural):
        ch, actions, _ = procedural.generate(rng, seconds)
        seg = np.zeros(len(actions), np.int64)
        seg_texts = [procedural.TEXTS[actions[0]]]
        for t in range(1, len(actions)):
            seg[t] = seg[t - 1] + (actions[t] != actions[t - 1])
            if seg[t] != seg[t - 1]:
                seg_texts.append(procedural.TEXTS[actions[t]])
        seqs.append((world_features(ch), seg, seg_texts, "procedural", "eval" if i % 20 == 0 else "train"))
        if i % 40 == 0:
            print(f"procedural {i}/{n_procedural} ({time.time() - t0:.0f} s)", flush=True)

    vocab: dict[str, int] = {}
    feats, seg_ids, seg_table, seq_offsets, sources, splits = [], [], [], [0], [], []
    for f, seg, seg_texts, source, split in seqs:
        base = len(seg_table)
        for texts in seg_texts:
            ids = [vocab.setdefault(t, len(vocab)) for t in texts[:MAX_TEXTS]]
            seg_table.append(ids + [-1] * (MAX_TEXTS - len(ids)))
        feats.append(f)
        seg_ids.append(seg + base)
        seq_offsets.append(seq_offsets[-1] + len(f))
        sources.append(source)
        splits.append(split)
    texts = sorted(vocab, key=vocab.get)
    emb = shared_encoder().encode(texts)
    d = out_dir()
    np.savez(d / "motion_data.npz", feats=np.concatenate(feats), frame_seg=np.concatenate(seg_ids),
             seg_texts=np.array(seg_table, np.int64), seq_offsets=np.array(seq_offsets, np.int64),
             sources=np.array(sources), splits=np.array(splits), text_emb=emb.astype(np.float32))
    (d / "texts.json").write_text(json.dumps(texts, indent=0))
    n = seq_offsets[-1]
    print(f"built {n} frames ({n / FPS / 60:.1f} min), {len(seqs)} sequences, {len(texts)} texts -> {d} "
          f"({time.time() - t0:.0f} s)", flush=True)
    return d / "motion_data.npz"


def load(path: Path | None = None) -> dict:
    path = path or out_dir() / "motion_data.npz"
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: build it with `python -m models.motion.data`")
    z = np.load(path)
    return {k: z[k] for k in z.files}


def window_starts(data: dict, split: str, source: str | None = None) -> np.ndarray:
    """Frame indices t such that frames t .. t + HIST + PRIM - 1 lie in one sequence of `split`."""
    out = []
    off = data["seq_offsets"]
    for i in range(len(off) - 1):
        if data["splits"][i] != split or (source and data["sources"][i] != source):
            continue
        n = off[i + 1] - off[i] - (HIST + PRIM) + 1
        if n > 0:
            out.append(np.arange(off[i], off[i] + n))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def seq_end(data: dict) -> np.ndarray:
    """(N,) for every frame, the index one past the end of its sequence."""
    off = data["seq_offsets"]
    return np.repeat(off[1:], np.diff(off))


# ---- canonical windows (torch, batched) -------------------------------------------------------
def canonicalise(world: torch.Tensor, origin: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """world (B, T, 64) -> canonical features (B, T, 61): root xz relative to `origin` (B, 3) and
    everything turned by -yaw (B,) so the reference frame faces +X."""
    Rinv = rig.rot_y(-yaw)[:, None]  # (B, 1, 3, 3)
    p = world[..., :3] - origin[:, None] * torch.tensor([1.0, 0.0, 1.0], dtype=world.dtype, device=world.device)
    p = (Rinv @ p.unsqueeze(-1)).squeeze(-1)
    rr = Rinv @ world[..., 3:12].reshape(*world.shape[:2], 3, 3)
    return torch.cat([p, rig.mat_to_6d(rr), world[..., 12:]], -1)


def reference(world_frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 64) the last history frame -> canonical origin (B, 3) and heading yaw (B,)."""
    return world_frame[:, :3], rig.heading(world_frame[:, 3:12].reshape(-1, 3, 3))


def batch(data: dict, starts: np.ndarray, rng: np.random.Generator, ends: np.ndarray, feats: torch.Tensor) -> dict:
    """Canonical training windows: history (B, 2, 61), future (B, 8, 61), text id (B,), goal (B, 2), goal mask (B,)."""
    t = torch.from_numpy(starts)
    idx = t[:, None] + torch.arange(HIST + PRIM)
    w = feats[idx]  # (B, 10, 64)
    origin, yaw = reference(w[:, HIST - 1])
    x = canonicalise(w, origin, yaw)
    # text: the segment at the middle of the primitive; one of its alternatives at random
    seg = data["frame_seg"][starts + HIST + PRIM // 2]
    alts = data["seg_texts"][seg]  # (B, 6)
    n_alt = (alts >= 0).sum(1)
    text = alts[np.arange(len(starts)), (rng.random(len(starts)) * n_alt).astype(int)]
    # goal: where the root will be GOAL_AHEAD frames after the last history frame, as a direction
    g_idx = starts + HIST - 1 + GOAL_AHEAD
    ok = g_idx < ends[starts]
    g_idx = np.where(ok, g_idx, starts)
    gp = feats[torch.from_numpy(g_idx), :3] - origin
    R = rig.rot_y(-yaw)
    gp = (R @ gp.unsqueeze(-1)).squeeze(-1)[:, [0, 2]]
    dist = gp.norm(dim=-1)
    has_goal = torch.from_numpy(ok) & (dist > 0.25)
    goal = gp / dist.clamp(min=1e-6)[:, None]
    return {"hist": x[:, :HIST], "future": x[:, HIST:], "text": torch.from_numpy(text), "goal": goal,
            "has_goal": has_goal}


def main() -> None:
    ap = argparse.ArgumentParser(description="Build the motion training data into the cache dir")
    ap.add_argument("--procedural", type=int, default=240, help="procedural sequences to generate")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each procedural sequence")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    build(a.procedural, a.seconds, a.seed)


if __name__ == "__main__":
    main()
