"""Canonicalisation, widening and the procedural generator of the motion data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.motion import data as D
from models.motion import procedural, rig


@pytest.fixture(scope="module")
def walk():
    rng = np.random.default_rng(5)
    w = procedural.Walker(rng)
    frames = [w.step("walk") for _ in range(60)] + [w.step("walk_left") for _ in range(60)]
    ch = rig.pose_to_channels(torch.from_numpy(np.stack([f[0] for f in frames])),
                              torch.from_numpy(np.stack([f[1] for f in frames])))
    return ch.float().numpy()


def canon(world: np.ndarray) -> torch.Tensor:
    w = torch.from_numpy(world).double()[None]
    origin, yaw = D.reference(w[:, 1])
    return D.canonicalise(w, origin, yaw)[0]


def test_canonical_frame_is_root_relative_and_heading_aligned(walk):
    c = canon(D.world_features(walk[40:50]))
    assert c.shape == (10, D.FEAT_DIM)
    root, rots = rig.channels_to_pose(torch.from_numpy(walk[41]).double())
    assert torch.allclose(c[1, [0, 2]], torch.zeros(2, dtype=c.dtype), atol=1e-6)  # root over the origin
    assert c[1, 1] == pytest.approx(float(root[1]), abs=1e-6)  # height kept
    R = rig.sixd_to_mat(c[1, 3:9])
    assert float(rig.heading(R)) == pytest.approx(0.0, abs=1e-5)  # facing +X
    assert float(c[-1, 0]) > 0.15  # a forward walk moves along +X in 8 frames


def test_canonical_features_ignore_where_and_which_way(walk):
    world = D.world_features(walk[20:30])
    root, rots = rig.channels_to_pose(torch.from_numpy(walk[20:30]).double())
    R = rig.rot_y(torch.tensor(2.1, dtype=torch.float64))
    moved = rig.pose_to_channels(root @ R.T + torch.tensor([5.0, 0.0, -3.0], dtype=torch.float64),
                                 torch.cat([(R @ rots[:, 0])[:, None], rots[:, 1:]], 1))
    a, b = canon(world), canon(D.world_features(moved.float().numpy()))
    assert torch.allclose(a, b, atol=1e-4)


def test_mirror_twice_is_identity_and_reflects(walk):
    m = D.mirror(walk)
    assert np.allclose(D.mirror(m), walk, atol=1e-5) or np.allclose(
        rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(D.mirror(m)).double())),
        rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(walk).double())), atol=1e-5)
    p = rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(walk).double()))
    q = rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(m).double()))
    perm = rig.MIRROR + [15, 18, 19, 16, 17]
    assert torch.allclose(q, p[:, perm] * torch.tensor([1.0, 1.0, -1.0], dtype=p.dtype), atol=1e-5)
    assert D.swap_sides("walk left then right") == "walk right then left"


def test_speed_change_and_heading_bend(walk):
    fast = D.resample(walk, 1.25)
    assert len(fast) == len(np.arange(0, len(walk) - 1, 1.25))
    q = fast[:, 3:7]
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    bent = D.bend_heading(walk[:60], 0.45)  # the straight part, bent left
    yaw = rig.heading(rig.quat_to_mat(torch.from_numpy(bent[:, 3:7]).double()))
    yaw0 = rig.heading(rig.quat_to_mat(torch.from_numpy(walk[:60, 3:7]).double()))
    assert float(yaw[-1] - yaw[0] - (yaw0[-1] - yaw0[0])) == pytest.approx(0.45 * 59 / 30, abs=1e-3)


def test_procedural_walker_plants_feet_and_keeps_bones(walk):
    p = rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(walk).double())).numpy()
    ankles = p[:, [5, 11]]
    on_floor = ankles[:-1, :, 1] < procedural.ANKLE_H + 1e-3
    slide = np.linalg.norm(np.diff(ankles[:, :, [0, 2]], axis=0), axis=-1)
    assert on_floor.mean() > 0.3
    assert slide[on_floor].max() < 0.01  # metres per frame: planted feet stay put
    assert p[:, rig.FOOT_POINTS, 1].min() > -0.03  # nothing far below the floor
    bl = rig.bone_lengths(torch.from_numpy(p))
    assert float(bl.std(0).max()) < 1e-6


def test_real_clips_load_on_the_floor_with_held_out_split():
    if not (D.REAL / "cmu_humanoid3d_30fps.npz").exists():
        pytest.skip("shared motion data not present")
    clips = D.load_real()
    assert len(clips) == 84
    assert {c["split"] for c in clips} == {"train", "eval"}
    assert 5 <= sum(c["split"] == "eval" for c in clips) <= 12
    walk = next(c for c in clips if c["id"] == "02_01")
    p = rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(walk["channels"]).double()))
    low = p[..., 1].min(-1).values
    assert abs(float(np.percentile(low.numpy(), 5))) < 1e-4
    assert walk["texts"][0] == "a person: walk"
