"""The engine's motion session with a tiny random denoiser: events, steering, pacing, reset, errors."""
from __future__ import annotations

import time

import numpy as np
import pytest

from models.common.session import ParamError
from models.motion import bvh
from tests.models.motion_fixtures import session, tiny_bundle


@pytest.fixture(scope="module")
def bundle():
    return tiny_bundle()


def partials(events):
    return [d for k, d in events if k == "partial"]


def test_start_sends_skeleton_then_primitives(bundle):
    s, out = session({"text": "walk forward"}, bundle)
    head = out[0][1]
    assert out[0][0] == "progress" and len(head["skeleton"]["parents"]) == 20
    assert head["bvh_header"].startswith("HIERARCHY")
    p1, p2 = partials(s.step()), partials(s.step())
    assert p1[0]["t0"] == 2 and p2[0]["t0"] == 10  # after the 2 standing history frames, 8 at a time
    assert p1[0]["points"].shape == (8, 20, 3) and p1[0]["channels"].shape == (8, 43) and len(p1[0]["bvh"]) == 8
    assert s.stats()["frames"] == 18


def test_steer_changes_the_next_primitive_only(bundle):
    a, _ = session({"text": "walk forward", "seed": 4}, bundle)
    b, _ = session({"text": "walk forward", "seed": 4}, bundle)
    pa = [partials(a.step())[0]["points"] for _ in range(2)]
    pb = [partials(b.step())[0]["points"] for _ in range(2)]
    np.testing.assert_array_equal(pa[1], pb[1])  # same seed, same text: same motion
    b.steer({"text": "jump"})
    na, nb = partials(a.step())[0], partials(b.step())[0]
    assert nb["command"] == "jump" and na["command"] == "walk forward"
    assert np.abs(na["points"] - nb["points"]).max() > 1e-3


def test_steer_at_a_frame_rewinds_unplayed_frames(bundle):
    s, _ = session({"text": "walk forward"}, bundle)
    for _ in range(3):
        s.step()
    s.steer({"text": "turn left", "at": 12})
    p = partials(s.step())[0]
    assert p["t0"] == 12 and p["command"] == "turn left"


def test_reset_goes_back_to_the_start_pose(bundle):
    s, _ = session({"text": "run"}, bundle)
    for _ in range(4):
        s.step()
    s.steer({"reset": True})
    ev = partials(s.step())
    assert ev[0]["reset"] and ev[0]["t0"] == 0
    np.testing.assert_allclose(ev[0]["points"][0], bundle_start_points(), atol=1e-5)
    assert ev[1]["t0"] == 2


def bundle_start_points():
    from models.motion.stream import world_to_outputs, standing_pose
    import torch

    return world_to_outputs(torch.from_numpy(standing_pose()).double())[0][0]


def test_pacing_keeps_a_small_buffer_and_does_not_catch_up_after_pause(bundle):
    s, _ = session({"text": "walk forward", "buffer": 2}, bundle)
    assert s.next_due() == 0.0
    for _ in range(3):
        s.step()
    s.steer({"played": 0})
    assert s.next_due() > time.monotonic()  # 26 frames made, 16 ahead wanted: wait for playback
    s.steer({"played": 20})
    assert s.next_due() <= time.monotonic()
    # the engine paused the job for 30 s: the session's clock must move with the pause
    s.anchor = (s.anchor[0] - 30, s.anchor[1])
    s.last_step -= 30
    s.step()
    assert s._playback() < 30  # not 900 frames on: no burst of catch-up steps


def test_goal_and_bad_parameters(bundle):
    s, _ = session({"text": "stand still"}, bundle)
    s.steer({"goal": [3.0, -2.0]})
    p = partials(s.step())[0]
    assert p["goal"] == [3.0, -2.0] and p["command"] == "walk and turn left"  # the goal is ahead-left
    root = p["points"][-1, 0]
    s.steer({"goal": [float(root[0]) + 0.1, float(root[2])]})  # within reach: reached at once
    p = partials(s.step())[0]
    assert p["goal_reached"] and p["goal"] is None and p["command"] == "stand still"
    for bad in ({"text": "   "}, {"goal": "north"}, {"goal": [float("nan"), 0]}, {"speed": 99}, {"text": "x" * 500}):
        with pytest.raises(ParamError):
            s.steer(bad)
    with pytest.raises(ParamError, match="guidance"):
        session({"guidance": 50}, bundle)


def test_finite_take_ends_with_a_bvh_that_parses(bundle):
    s, _ = session({"commands": [[0, "walk forward"], [0.5, "jump"]], "seconds": 1}, bundle)
    out = []
    while not s.done:
        out += s.step()
    kind, data = out[-1]
    assert kind == "output" and data["points"].shape == (30, 20, 3)
    assert data["texts"][0] == "walk forward" and data["texts"][-1] == "jump"
    clip = bvh.parse(data["bvh"])
    assert clip.matches_rig() and len(clip.motion) == 30


def test_endless_session_keeps_bounded_history(bundle):
    from models.motion.stream import KEEP_FRAMES

    s, _ = session({"text": "walk forward"}, bundle)
    for _ in range(KEEP_FRAMES // 8 + 20):
        p = partials(s.step())[0]
    assert len(s.world) <= KEEP_FRAMES + 8
    assert p["t0"] == s.n_frames - 8


def test_onnx_runtime_path_matches_the_model(bundle, tmp_path):
    import torch

    from models.motion.stream import OrtDenoiser

    ort = OrtDenoiser(bundle.model, tmp_path / "d.onnx")
    for B in (1, 2):
        args = (torch.randn(B, 8, 61), torch.full((B,), 2), torch.randn(B, 2, 61), torch.randn(B, 384),
                torch.ones(B, dtype=torch.bool), torch.randn(B, 2), torch.zeros(B, dtype=torch.bool))
        with torch.inference_mode():
            ref = bundle.model(*args)
        assert torch.allclose(ort(*args), ref, atol=1e-4)


def test_goal_steering_picks_commands_by_bearing(bundle):
    s, _ = session({"text": "stand still"}, bundle)
    s.steer({"goal": [0.0, -5.0]})  # 90 degrees to the left of a character facing +X
    assert partials(s.step())[0]["command"] == "walk and turn left"
    s.steer({"goal": [-5.0, 0.5]})  # behind: turn on the spot first
    assert partials(s.step())[0]["command"].startswith("turn")
    s.steer({"text": "stand still"})  # a non-moving command drops the goal
    assert partials(s.step())[0]["goal"] is None
    r, _ = session({"text": "run", "goal": [6.0, 0.0]}, bundle)  # straight ahead, at a run
    assert partials(r.step())[0]["command"] == "run"


def test_foot_lock_pins_sliding_feet():
    import torch

    from models.motion import data as D
    from models.motion import procedural, rig
    from models.motion.stream import FootLock, world_to_outputs

    w = procedural.Walker(np.random.default_rng(2))
    frames = [w.step("walk") for _ in range(90)]
    ch = rig.pose_to_channels(torch.from_numpy(np.stack([f[0] for f in frames])),
                              torch.from_numpy(np.stack([f[1] for f in frames]))).float().numpy()
    world = torch.from_numpy(D.world_features(ch)).double()
    world[:, 0] += torch.arange(90, dtype=torch.float64) * 0.004  # everything slides 0.12 m/s along x
    raw = world_to_outputs(world)[0]
    lock = FootLock()
    fixed = np.concatenate([world_to_outputs(lock(world[i:i + 8]))[0] for i in range(0, 88, 8)])

    def stance_slide(p):
        a = p[30:, [5, 11]]
        down = a[:-1, :, 1] < 0.06
        return np.linalg.norm(np.diff(a[:, :, [0, 2]], axis=0), axis=-1)[down].mean() * 30

    assert stance_slide(raw[:88]) > 0.1
    assert stance_slide(fixed) < 0.03  # pinned
    bl = rig.bone_lengths(torch.from_numpy(fixed.astype(np.float64)))
    assert float(bl.std(0).max()) < 1e-5  # still the same skeleton


@pytest.mark.timeout(120)
def test_an_unknown_command_is_said_with_the_nearest_known_one():
    from models.common.text import shared_encoder
    from models.motion.stream import not_understood

    enc = shared_encoder()
    for text in ("dance the tango", "xyzzy", "swim"):
        msg = not_understood(enc, text, enc.encode([text])[0])
        assert msg and f"'{text}' is not a command" in msg and "walk forward" in msg and "\n" not in msg
    for text in ("walk forward", "turn left", "jump", "run fast", "hop on one foot"):
        assert not_understood(enc, text, enc.encode([text])[0]) is None, text
