"""The character: DeepMimic's "humanoid3d" (15 joints, 13 with degrees of freedom), its forward
kinematics, and the rotation helpers every other motion file uses.

Conventions (those of the shared CMU data): metres, Y up, the character faces +X in its rest pose
and its right side is +Z. Rotations are local (parent-relative); spherical joints are quaternions
(w, x, y, z), knees and elbows are 1-DoF hinges about their local Z axis (knee < 0 bends the shin
backwards, elbow > 0 bends the forearm forwards). The joint tree and offsets come from
`skeleton_humanoid3d.json` (github.com/arpspoof/Jump, MIT; originally DeepMimic).
"""
from __future__ import annotations

import numpy as np
import torch

JOINTS = ["root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
          "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist"]
PARENTS = [-1, 0, 1, 0, 3, 4, 1, 6, 7, 0, 9, 10, 1, 12, 13]
OFFSETS = np.array([  # (15, 3) metres, in the parent's frame
    [0, 0, 0], [0, 0.236151, 0], [0, 0.223894, 0],
    [0, 0, 0.084887], [0, -0.421546, 0], [0, -0.409870, 0],
    [-0.02405, 0.24350, 0.18311], [0, -0.274788, 0], [0, -0.258947, 0],
    [0, 0, -0.084887], [0, -0.421546, 0], [0, -0.409870, 0],
    [-0.02405, 0.24350, -0.18311], [0, -0.274788, 0], [0, -0.258947, 0]], dtype=np.float32)
SPHERICAL = [1, 2, 3, 5, 6, 9, 11, 12]  # joints with a quaternion channel, in channel order
HINGES = [4, 7, 10, 13]  # knees and elbows, one angle each
# Points drawn and measured beyond the joints: head top, toes and heels (parent joint, offset).
SITES = [("head", 2, (0.0, 0.28, 0.0)), ("right_toe", 5, (0.13, -0.05, 0.0)), ("right_heel", 5, (-0.045, -0.05, 0.0)),
         ("left_toe", 11, (0.13, -0.05, 0.0)), ("left_heel", 11, (-0.045, -0.05, 0.0))]
POINTS = JOINTS + [s[0] for s in SITES]  # 20 points: what the viewer draws and the metrics use
POINT_PARENTS = PARENTS + [s[1] for s in SITES]
FOOT_POINTS = [16, 17, 18, 19]  # toes and heels
MIRROR = [0, 1, 2, 9, 10, 11, 12, 13, 14, 3, 4, 5, 6, 7, 8]  # left <-> right joint swap
N_CHANNELS = 43  # the shared data's per-frame layout: root pos 3, root quat 4, 8 quats, 4 hinges


# ---- rotations (torch, batched over leading dims) ----------------------------------------------
def quat_to_mat(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z), any norm -> (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(*q.shape[:-1], 3, 3)


def mat_to_quat(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z) with w >= 0."""
    from scipy.spatial.transform import Rotation

    shape = m.shape[:-2]
    xyzw = Rotation.from_matrix(m.reshape(-1, 3, 3).detach().cpu().double().numpy()).as_quat()
    q = torch.from_numpy(xyzw[:, [3, 0, 1, 2]]).to(m.dtype).reshape(*shape, 4)
    return q * torch.where(q[..., :1] < 0, -1.0, 1.0)


def mat_to_6d(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns (Zhou et al. 2019 continuous representation)."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], -1)


def sixd_to_mat(d: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt."""
    a, b = d[..., :3], d[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    b = b - (x * b).sum(-1, keepdim=True) * x
    y = b / b.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], -1)


def rot_y(angle: torch.Tensor) -> torch.Tensor:
    """(...,) yaw angles (rad) -> (..., 3, 3) rotations about +Y."""
    c, s, o, z = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*angle.shape, 3, 3)


def rot_z(angle: torch.Tensor) -> torch.Tensor:
    """(...,) angles (rad) -> (..., 3, 3) rotations about +Z (the hinge axis)."""
    c, s, o, z = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*angle.shape, 3, 3)


def heading(root_mat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) root rotations -> (...,) yaw (rad) of the facing direction (local +X) about +Y."""
    fwd = root_mat[..., :, 0]
    return torch.atan2(-fwd[..., 2], fwd[..., 0])


# ---- channels <-> rotation matrices ------------------------------------------------------------
QUAT_JOINTS = [0] + SPHERICAL  # joints stored as quaternions, in channel order
_QUAT_COLS = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27,
              29, 30, 31, 32, 34, 35, 36, 37, 38, 39, 40, 41]  # the 9 quaternions' columns
_HINGE_COLS = [19, 28, 33, 42]  # right knee, right elbow, left knee, left elbow


def channels_to_pose(ch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 43) data channels -> root position (..., 3) and local rotations (..., 15, 3, 3)."""
    lead = ch.shape[:-1]
    rots = torch.eye(3, dtype=ch.dtype, device=ch.device).expand(*lead, 15, 3, 3).clone()
    rots[..., QUAT_JOINTS, :, :] = quat_to_mat(ch[..., _QUAT_COLS].reshape(*lead, 9, 4))
    rots[..., HINGES, :, :] = rot_z(ch[..., _HINGE_COLS])
    return ch[..., :3], rots


def pose_to_channels(root: torch.Tensor, rots: torch.Tensor) -> torch.Tensor:
    """Inverse of `channels_to_pose`; hinge angles read as the rotation about local Z."""
    lead = root.shape[:-1]
    out = torch.zeros(*lead, N_CHANNELS, dtype=root.dtype, device=root.device)
    out[..., :3] = root
    out[..., _QUAT_COLS] = mat_to_quat(rots[..., QUAT_JOINTS, :, :]).reshape(*lead, 36)
    m = rots[..., HINGES, :, :]
    out[..., _HINGE_COLS] = torch.atan2(m[..., 1, 0], m[..., 0, 0])
    return out


# ---- forward kinematics ------------------------------------------------------------------------
def forward_kinematics(root: torch.Tensor, rots: torch.Tensor, with_sites: bool = True) -> torch.Tensor:
    """root (..., 3) world position, rots (..., 15, 3, 3) local rotations -> world points
    (..., 20, 3) (joints then SITES) or (..., 15, 3)."""
    off = torch.as_tensor(OFFSETS, dtype=rots.dtype, device=rots.device)
    glob: list[torch.Tensor] = []
    pos: list[torch.Tensor] = []
    for k, p in enumerate(PARENTS):
        if p < 0:
            glob.append(rots[..., 0, :, :])
            pos.append(root)
        else:
            pos.append(pos[p] + (glob[p] @ off[k].unsqueeze(-1)).squeeze(-1))
            glob.append(glob[p] @ rots[..., k, :, :])
    if with_sites:
        for _, p, o in SITES:
            pos.append(pos[p] + (glob[p] @ torch.tensor(o, dtype=rots.dtype, device=rots.device).unsqueeze(-1)).squeeze(-1))
    return torch.stack(pos, -2)


def global_rotations(rots: torch.Tensor) -> torch.Tensor:
    """(..., 15, 3, 3) local -> global rotations."""
    glob: list[torch.Tensor] = []
    for k, p in enumerate(PARENTS):
        glob.append(rots[..., k, :, :] if p < 0 else glob[p] @ rots[..., k, :, :])
    return torch.stack(glob, -3)


def bone_lengths(points: torch.Tensor) -> torch.Tensor:
    """(..., 20, 3) -> (..., 19) distances between each point and its parent."""
    idx = [i for i, p in enumerate(POINT_PARENTS) if p >= 0]
    par = [POINT_PARENTS[i] for i in idx]
    return (points[..., idx, :] - points[..., par, :]).norm(dim=-1)


def mirror_pose(root: torch.Tensor, rots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflect a pose across the XY plane (Z -> -Z) and swap left and right.

    A reflection S = diag(1, 1, -1) turns a local rotation R into S R S; the skeleton is
    symmetric (left offsets are right offsets with Z negated), so swapping sides completes it.
    """
    S = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=rots.dtype, device=rots.device))
    r = S @ rots[..., MIRROR, :, :] @ S
    root = root * torch.tensor([1.0, 1.0, -1.0], dtype=root.dtype, device=root.device)
    return root, r
