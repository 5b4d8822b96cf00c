"""The Motion panel: the take bookkeeping, the skeleton scene (numpy, no GL), and the panel playing
a live session from the real engine under pytest-qt; the VisPy view itself under Xvfb (gl)."""
from __future__ import annotations

import numpy as np
import pytest

from widgets.skeleton_view import SkeletonScene, from_view, to_view

PARENTS = [-1, 0, 1, 0, 3]


def test_view_axes_are_a_rotation_not_a_mirror():
    m = np.stack([to_view(e) for e in np.eye(3)], 1)
    assert np.linalg.det(m) == pytest.approx(1.0)
    p = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(from_view(to_view(p)), p)


def test_scene_draws_bones_shadow_grid_and_follows():
    s = SkeletonScene(PARENTS)
    pose = np.array([[0, 1, 0], [0, 1.3, 0], [0, 1.6, 0], [0, 0.9, 0.1], [0, 0.5, 0.1]], np.float32)
    s.set_pose(pose)
    segs = s.bone_segments()
    assert segs.shape == (8, 3)  # 4 bones, start and end each
    assert np.allclose(segs[1], to_view(pose[0]))  # bone 1 -> parent 0
    assert np.allclose(s.shadow_segments()[:, 2], 0.002)  # flat on the floor
    for _ in range(60):  # walk 3 m along +X: the camera follows and the grid moves with it
        pose = pose + [0.05, 0, 0]
        s.set_pose(pose)
    assert s.center[0] > 2.5
    assert s.grid_segments()[:, 0].min() >= np.round(s.center[0]) - 6
    assert len(s.trail_points()) == 61
    with pytest.raises(ValueError):
        s.set_pose(np.zeros((3, 3)))


def test_floor_click_ray_meets_the_ground():
    hit = SkeletonScene.ground_hit(to_view(np.array([0.0, 2.0, 0.0])), to_view(np.array([1.0, 1.0, -1.0])))
    np.testing.assert_allclose(hit, [2.0, -2.0], atol=1e-6)
    assert SkeletonScene.ground_hit(np.array([0, 0, 1.0]), np.array([0, 1, 2.0])) is None  # looking up


def test_take_replaces_from_t0():
    from app.motion_panel import MotionTake

    t = MotionTake()
    t.put(0, np.zeros((10, 5, 3)), [f"l{i}" for i in range(10)], None)
    t.put(6, np.ones((8, 5, 3)), [f"m{i}" for i in range(8)], None)
    assert len(t) == 14 and t.points[5].sum() == 0 and t.points[6].sum() == 15
    assert t.bvh_lines[6] == "m0"
    text = t.bvh_text("HIERARCHY\n")
    assert "Frames: 14" in text and text.endswith("m7\n")


@pytest.fixture
def panel(qtbot, engine_bridge):
    from app.motion_panel import MotionPanel
    from app.settings import Settings

    p = MotionPanel(engine_bridge, Settings())
    qtbot.addWidget(p)
    p.resize(1000, 700)
    p.show()
    yield p
    p.stop_job()


@pytest.mark.slow
def test_panel_plays_steers_and_exports(qtbot, panel, tmp_path):
    from models.motion import bvh as bvh_mod

    panel.command.setText("walk forward")
    assert panel.start_session()
    qtbot.waitUntil(lambda: len(panel.take) >= 40, timeout=60000)
    qtbot.waitUntil(lambda: panel.play_head >= 10, timeout=10000)  # playing, not just buffering
    panel.command.setText("turn left")
    at = int(panel.play_head) + 1
    panel.send_command()
    qtbot.waitUntil(lambda: len(panel.take) > at + 8, timeout=20000)
    assert [t for _, t in panel.take.commands] == ["walk forward", "turn left"]
    head = panel.play_head
    panel.toggle_play()  # pause
    qtbot.wait(300)
    assert panel.play_head == head
    panel.toggle_play()
    path = tmp_path / "take.bvh"
    assert panel.export_bvh(str(path))
    clip = bvh_mod.parse(path.read_text())
    assert clip.matches_rig() and len(clip.motion) == min(len(panel.take.bvh_lines), len(panel.take))
    assert panel.export_npz(str(tmp_path / "take.npz"))
    z = np.load(tmp_path / "take.npz")
    assert z["points"].shape[1:] == (20, 3)
    # a broken BVH import ends that job with a plain message in the panel
    bad = tmp_path / "broken.bvh"
    bad.write_text("HIERARCHY\nROOT hips\n{\n OFFSET 0 0\n")
    panel.import_bvh(str(bad))
    qtbot.waitUntil(lambda: panel.job is None, timeout=30000)
    assert "cannot be played" in panel.error_box.text() and "MOTION" in panel.error_box.text()


@pytest.mark.gl
def test_skeleton_view_renders(qtbot):
    from widgets.skeleton_view import SkeletonView

    v = SkeletonView()
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    v.set_skeleton(PARENTS)
    v.set_goal((2.0, 1.0))
    bare = v.canvas.render()  # floor grid and goal, no character yet
    v.set_pose(np.array([[0, 1, 0], [0, 1.3, 0], [0, 1.6, 0], [0, 0.9, 0.1], [0, 0.5, 0.1]], np.float32))
    img = v.canvas.render()
    assert img.shape[2] == 4 and img[..., :3].std() > 5  # something was drawn over the background
    # the pose itself is drawn: the picture changes where the character stands
    changed = np.abs(img[..., :3].astype(int) - bare[..., :3].astype(int)).max(-1) > 30
    assert changed.sum() > 50, f"only {changed.sum()} pixels changed when the pose was set"
    hit = v.floor_at((200, 280))  # the lower middle of the view looks at the floor
    assert hit is not None and np.isfinite(hit).all()


def test_cli_spreads_commands_over_the_take():
    from app.cli.motion import parse_commands

    assert parse_commands("walk forward; turn left; jump", 9) == [[0.0, "walk forward"], [3.0, "turn left"], [6.0, "jump"]]
    assert parse_commands("walk; 4.5: jump", 10) == [[0.0, "walk"], [4.5, "jump"]]
    with pytest.raises(ValueError):
        parse_commands(" ; ", 10)
