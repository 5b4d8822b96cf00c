"""World engine session with the shipped weights: frames stream at once with timings, steer changes
the next frame's key, reset goes back to a real start frame, bad params get plain errors."""
from __future__ import annotations

import numpy as np
import pytest

from models.common.session import ParamError
from models.world.stream import DYNAMICS, WorldSession, parse_action

pytestmark = pytest.mark.skipif(not DYNAMICS.exists(), reason="no shipped world model (python -m models.world.train)")


@pytest.fixture(scope="module")
def bundle():
    return WorldSession.load("cpu")


def frames_of(events):
    return [d for k, d in events if k == "partial" and "frame" in d]


def test_session_streams_frames_and_follows_the_keys(bundle):
    s = WorldSession(bundle, "cpu")
    first = s.start({"fps": 0, "max_frames": 0, "start": 1})
    f0 = frames_of(first)[0]
    assert f0["frame"].shape == (64, 64, 3) and f0["frame"].dtype == np.uint8 and f0["action"] == "reset"
    out = frames_of(s.step())[0]
    assert out["action"] == "noop" and out["gen_ms"] > 0 and out["decode_ms"] > 0
    s.steer({"action": "move_left", "key_id": 7})
    nxt = frames_of(s.step())[0]
    assert nxt["action"] == "move_left" and nxt["key_id"] == 7 and nxt["latency_ms"] >= 0
    later = frames_of(s.step())[0]
    assert later["action"] == "move_left" and "key_id" not in later  # held key, no new latency sample
    slots = s.roll.cache_slots()
    for _ in range(12):
        s.step()
    assert s.roll.cache_slots() == slots and not s.done  # endless play, fixed cache
    s.steer({"reset": True, "start": 1})
    again = frames_of(s.step())[0]
    assert again["action"] == "reset" and again["index"] == 0 and np.array_equal(again["frame"], f0["frame"])
    assert frames_of(s.step())[0]["index"] == 1
    st = s.stats()
    assert st["frames"] == 16 and st["cache_slots"] == slots


def test_scripted_run_ends_with_output(bundle):
    s = WorldSession(bundle, "cpu")
    s.start({"fps": 0, "actions": ["move_right", "move_right", "do", 0]})
    events = []
    while not s.done:
        events += s.step()
    fr = frames_of(events)
    assert [f["action"] for f in fr] == ["move_right", "move_right", "do", "noop"]
    out = [d for k, d in events if k == "output"][0]
    assert out["frames"] == 4 and out["actions"].tolist() == [2, 2, 5, 0]


def test_bad_params_are_plain_errors(bundle):
    s = WorldSession(bundle, "cpu")
    with pytest.raises(ParamError, match="fps"):
        s.start({"fps": 500})
    with pytest.raises(ParamError, match="start"):
        s.start({"start": 10_000})
    with pytest.raises(ParamError, match="unknown action"):
        s.start({"actions": ["jump"]})
    with pytest.raises(ParamError, match="non-empty"):
        s.start({"actions": []})
    s.start({"fps": 0})
    with pytest.raises(ParamError):
        s.steer({"action": 99})
    assert parse_action("3") == 3 and parse_action("do") == 5


def _tile_shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Which one-tile shift (dx, dy in px) best carries frame a's map area onto frame b's."""
    a, b = a[:49, :63].astype(float), b[:49, :63].astype(float)  # 7 x 9 map tiles; the rest is the status bar
    err = {}
    for dx in (-7, 0, 7):
        for dy in (-7, 0, 7):
            A = a[:, dx:] if dx >= 0 else a[:, :63 + dx]
            B = b[:, :63 - dx] if dx >= 0 else b[:, -dx:]
            A, B = (A[dy:], B[:49 - dy]) if dy >= 0 else (A[:49 + dy], B[-dy:])
            err[(dx, dy)] = np.abs(A - B).mean()
    return min(err, key=err.get)


@pytest.mark.timeout(120)
def test_a_held_key_scrolls_the_view_its_way(bundle):
    """Walking moves the map one tile per step in the key's direction (start 3 is open ground), never
    the other way; standing still keeps it."""
    want = {"move_left": (-7, 0), "move_right": (7, 0), "move_up": (0, -7), "move_down": (0, 7), "noop": (0, 0)}
    for action, need in (("move_up", 4), ("move_down", 4), ("move_left", 2), ("move_right", 1), ("noop", 5)):
        s = WorldSession(bundle, "cpu")
        events = s.start({"fps": 0, "actions": [action] * 6, "start": 3, "seed": 0})
        while not s.done:
            events += s.step()
        fr = [f["frame"] for f in frames_of(events)]
        shifts = [_tile_shift(fr[i], fr[i + 1]) for i in range(len(fr) - 1)]
        opposite = tuple(-v for v in want[action])
        assert shifts.count(want[action]) >= need, (action, shifts)
        assert action == "noop" or opposite not in shifts, (action, shifts)
