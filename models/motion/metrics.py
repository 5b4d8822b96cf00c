"""Motion quality measures (numpy), applied the same way to generated and real motion.

All take world points (T, 20, 3) in metres at 30 fps (rig.POINTS order, Y up, floor at y = 0).
"""
from __future__ import annotations

import numpy as np

from models.motion import rig

FPS = 30
CONTACT_H = 0.03  # a foot point below 3 cm counts as touching the floor
SKATE_SPEED = 0.25  # m/s: a touching foot point moving faster than this is skating


def foot_skating(p: np.ndarray) -> dict:
    """Horizontal speed of foot points (toes, heels) that touch the floor in two consecutive frames."""
    f = p[:, rig.FOOT_POINTS]  # (T, 4, 3)
    touch = (f[:-1, :, 1] < CONTACT_H) & (f[1:, :, 1] < CONTACT_H)
    speed = np.linalg.norm(np.diff(f[:, :, [0, 2]], axis=0), axis=-1) * FPS  # (T-1, 4) m/s
    if not touch.any():
        return {"contact_speed_cm_s": 0.0, "skate_ratio": 0.0, "contact_share": 0.0}
    return {"contact_speed_cm_s": float(100 * speed[touch].mean()),
            "skate_ratio": float((speed[touch] > SKATE_SPEED).mean()),
            "contact_share": float(touch.any(1).mean())}


def penetration(p: np.ndarray) -> dict:
    """How far the lowest point goes below the floor."""
    low = p[..., 1].min(-1)
    depth = np.maximum(0.0, -low)
    return {"penetration_cm": float(100 * depth.mean()), "penetrating_frames_2cm": float((depth > 0.02).mean())}


def jitter(p: np.ndarray) -> dict:
    """Mean joint jerk (third time derivative of position), m/s^3."""
    if len(p) < 4:
        return {"jerk_m_s3": 0.0}
    j = np.diff(p, n=3, axis=0) * FPS ** 3
    return {"jerk_m_s3": float(np.linalg.norm(j, axis=-1).mean())}


def bones(p: np.ndarray) -> dict:
    """Bone-length constancy against the character's nominal skeleton, and blow-up checks."""
    import torch

    bl = rig.bone_lengths(torch.from_numpy(np.asarray(p, np.float64))).numpy()  # (T, 19)
    ref = np.median(bl, 0)
    dev = np.abs(bl - ref) / np.maximum(ref, 1e-6)
    vel = np.linalg.norm(np.diff(p, axis=0), axis=-1) * FPS
    return {"bone_length_max_rel_dev": float(dev.max()), "root_height_min": float(p[:, 0, 1].min()),
            "root_height_max": float(p[:, 0, 1].max()), "max_joint_speed_m_s": float(vel.max()) if len(vel) else 0.0,
            "finite": bool(np.isfinite(p).all())}


def all_metrics(p: np.ndarray) -> dict:
    return {**foot_skating(p), **penetration(p), **jitter(p)}


def root_speed(p: np.ndarray, smooth: int = 5) -> np.ndarray:
    """(T-1,) horizontal root speed, m/s, moving average over `smooth` frames."""
    v = np.linalg.norm(np.diff(p[:, 0, [0, 2]], axis=0), axis=-1) * FPS
    k = np.ones(smooth) / smooth
    return np.convolve(v, k, mode="same")  # (edges average in zeros)


def yaw_rate(p: np.ndarray, smooth: int = 9) -> np.ndarray:
    """(T-1,) facing yaw rate (rad/s, + = left) from the hip line, moving average."""
    hips = p[:, 3] - p[:, 9]  # right hip - left hip: the body's right direction
    yaw = np.unwrap(np.arctan2(hips[:, 0], hips[:, 2]))
    r = np.diff(yaw) * FPS
    return np.convolve(r, np.ones(smooth) / smooth, mode="same")
