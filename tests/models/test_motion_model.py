"""The shipped motion model through its session: continuity at primitive joins, steering, a long
stable run, and a goal. Uses assets/motion (real weights) and the shared MiniLM text encoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.motion import metrics, rig
from models.motion.stream import WEIGHTS, MotionSession, load_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle():
    if not WEIGHTS.exists():
        pytest.fail(f"{WEIGHTS} missing: the motion weights are part of the repository")
    torch.set_num_threads(1)
    return load_bundle(WEIGHTS)


def take(bundle, script, frames, seed=0):
    s = MotionSession(bundle, "cpu")
    s.start({"text": script[0][1], "seed": seed})
    pts = list(np.stack(s.points))
    script = list(script[1:])
    while len(pts) < frames:
        while script and script[0][0] <= len(pts):
            s.steer({"text": script.pop(0)[1]})
        for kind, d in s.step():
            if kind == "partial":
                pts += list(d["points"])
    return np.stack(pts)


def test_primitives_join_smoothly(bundle):
    p = take(bundle, [(0, "walk forward")], 2 + 8 * 30)[2:]
    v = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(-1)  # (T-1,) mean joint speed per frame step
    joins = np.arange(7, len(v), 8)  # step from a primitive's last frame to the next one's first
    inside = np.setdiff1d(np.arange(len(v)), joins)
    assert v[joins].mean() < 1.6 * v[inside].mean()
    acc = np.linalg.norm(np.diff(p, n=2, axis=0), axis=-1).mean(-1)
    around = np.concatenate([joins - 1, joins])
    around = around[(around >= 0) & (around < len(acc))]
    assert acc[around].mean() < 2.5 * acc[np.setdiff1d(np.arange(len(acc)), around)].mean()


def test_command_changes_motion_from_the_next_primitive(bundle):
    walk = take(bundle, [(0, "walk forward")], 2 + 8 * 20, seed=1)
    stop = take(bundle, [(0, "walk forward"), (2 + 8 * 8, "stand still")], 2 + 8 * 20, seed=1)
    np.testing.assert_allclose(walk[:2 + 8 * 8], stop[:2 + 8 * 8], atol=1e-5)  # same until the command
    assert metrics.root_speed(walk)[-30:].mean() > 0.6
    assert metrics.root_speed(stop)[-30:].mean() < 0.5 * metrics.root_speed(walk)[-30:].mean()


def test_long_run_stays_sane(bundle):
    cmds = ["walk forward", "run", "turn left", "jump", "stand still", "walk backwards", "wave", "jog"]
    p = take(bundle, [(i * 75, c) for i, c in enumerate(cmds)], 30 * 20)
    b = metrics.bones(p)
    assert b["finite"]
    assert b["bone_length_max_rel_dev"] < 1e-3  # rotations + forward kinematics: lengths cannot drift
    assert 0.4 < b["root_height_min"] and b["root_height_max"] < 1.6
    assert b["max_joint_speed_m_s"] < 15
    low = p[..., 1].min(-1)
    assert np.percentile(low, 50) > -0.06  # feet stay near the floor, not sinking with time
    assert abs(np.median(low[-150:]) - np.median(low[:150])) < 0.05
