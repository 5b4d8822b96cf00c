"""BVH export/import of the motion panel's character: round trip, an independent parser, bad files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.motion import bvh, rig
from tests.models.motion_fixtures import session


@pytest.fixture(scope="module")
def take():
    s, _ = session({"text": "walk forward", "seconds": 1, "seed": 3})
    out = []
    while not s.done:
        out += s.step()
    return out[-1][1]


def points_of(ch):
    return rig.forward_kinematics(*rig.channels_to_pose(torch.from_numpy(np.asarray(ch, np.float64)))).numpy()


def test_round_trip_equals_pose_sequence(take):
    clip = bvh.parse(take["bvh"])
    assert clip.matches_rig()
    assert clip.motion.shape == (30, 6 + 3 * 12)
    assert abs(clip.frame_time - 1 / 30) < 1e-6
    back = points_of(clip.to_channels())
    assert np.abs(back - take["points"]).max() < 1e-4  # metres
    # the file's own hierarchy (any parser's view) gives the same joint positions
    pts = clip.points()
    joint_idx = [clip.names.index(rig.JOINTS[j]) for j in bvh.BVH_JOINTS]
    assert np.abs(pts[:, joint_idx] - take["points"][:, bvh.BVH_JOINTS]).max() < 1e-4


def test_independent_parser_reads_export(take):
    bvh_pkg = pytest.importorskip("bvh")
    mocap = bvh_pkg.Bvh(take["bvh"])
    assert mocap.nframes == 30
    assert mocap.get_joints_names() == [rig.JOINTS[j] for j in bvh.BVH_JOINTS]
    ours = bvh.parse(take["bvh"])
    assert float(mocap.frame_joint_channel(5, "right_knee", "Zrotation")) == pytest.approx(
        ours.motion[5, 3 + 3 * bvh.BVH_JOINTS.index(4)], abs=1e-4)


FOREIGN_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 90 0 0 0 0 90 0 0
0 90 0 0 0 0 0 0 0
"""


def test_foreign_skeleton_plays_as_points():
    text = FOREIGN_BVH
    clip = bvh.parse(text)
    assert not clip.matches_rig()
    assert clip.names == ["Hips", "Spine", "Spine_end"] and clip.parents == [-1, 0, 1]
    p = clip.points()  # 90 units tall -> read as centimetres
    assert p.shape == (2, 3, 3)
    np.testing.assert_allclose(p[0, 2], [-0.1, 1.0, 0.0], atol=1e-6)  # spine bent 90 degrees about Z
    np.testing.assert_allclose(p[1, 2], [0.0, 1.1, 0.0], atol=1e-6)


GOOD_HEAD = "HIERARCHY\nROOT a\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n}\n"


@pytest.mark.parametrize("text, words", [
    ("", "HIERARCHY"),
    ("hello world", "HIERARCHY"),
    (GOOD_HEAD, "MOTION"),
    (GOOD_HEAD + "MOTION\nFrames: 3\nFrame Time: 0.03\n1 2 3\n4 5 6\n", "truncated"),
    (GOOD_HEAD + "MOTION\nFrames: 1\nFrame Time: 0.03\n1 2 x\n", "not a number"),
    (GOOD_HEAD + "MOTION\nFrames: 1\nFrame Time: 0.03\n1 2 3 4\n", "3 values"),
    (GOOD_HEAD + "MOTION\nFrames: 0\nFrame Time: 0.03\n", "no frames"),
    ("HIERARCHY\nROOT a\n{\n OFFSET 0 0\nMOTION\n", "ends early"),
    ("HIERARCHY\nROOT a\n{\n OFFSET 0 0 0\n CHANNELS 1 Wrotation\n}\nMOTION\n", "unknown channel"),
])
def test_malformed_files_give_a_clear_reason(text, words):
    with pytest.raises(bvh.BVHError, match=words):
        bvh.parse(text)


def test_malformed_import_is_a_param_error():
    from models.common.session import ParamError

    with pytest.raises(ParamError, match="cannot be played.*HIERARCHY"):
        session({"bvh": "this is not motion"})


def test_import_of_own_export_continues_from_it(take):
    s, out = session({"bvh": take["bvh"], "text": "walk forward"})
    played = out[-1][1]
    assert played["imported"] and played["points"].shape == (30, 20, 3)
    nxt = s.step()[-1][1]
    assert nxt["t0"] == 30  # the model continues right after the imported clip
