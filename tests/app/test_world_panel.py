"""World panel under pytest-qt with a real engine: frames stream into the view, a key press steers
the job and its latency is measured, pause and reset work, a recording writes a playable file; the
view's key handling and the CLI's actions parser work on their own."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtCore import QEvent

from app.settings import Settings
from app.world_video import read_video, write_video
from widgets.world_view import KEYMAP, FrameClock, KeyState, WorldView

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "world"


def key(widget, qt_key, press=True):
    ev = QKeyEvent(QEvent.Type.KeyPress if press else QEvent.Type.KeyRelease, qt_key, Qt.KeyboardModifier.NoModifier)
    (widget.keyPressEvent if press else widget.keyReleaseEvent)(ev)


def test_key_state_most_recent_held_key_wins():
    ks = KeyState()
    assert ks.action == "noop"
    assert ks.press(Qt.Key.Key_W) and ks.action == "move_up"
    ks.press(Qt.Key.Key_Right)
    assert ks.action == "move_right"
    ks.release(Qt.Key.Key_Right)
    assert ks.action == "move_up"
    assert not ks.press(Qt.Key.Key_Z)  # not a game key
    ks.release(Qt.Key.Key_W)
    assert ks.action == "noop"
    assert len(set(KEYMAP.values())) == 16  # every action but noop has a key


def test_view_emits_actions_and_draws_frames(qtbot):
    view = WorldView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    got = []
    view.actionChanged.connect(got.append)
    key(view, Qt.Key.Key_A)
    key(view, Qt.Key.Key_Space)
    key(view, Qt.Key.Key_Space, press=False)
    key(view, Qt.Key.Key_A, press=False)
    assert got == ["move_left", "do", "move_left", "noop"]
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, :32] = (255, 0, 0)
    view.show_frame(frame, 1)
    img = view.grab().toImage()
    r = view.target_rect()
    assert r.width() == 300 and img.pixelColor(int(r.left() + 10), 150).red() == 255
    with pytest.raises(ValueError):
        view.show_frame(np.zeros((64, 64), np.uint8))


def test_frame_clock_fps_and_latency():
    c = FrameClock()
    for i in range(11):
        c.tick(i * 0.05)
    assert abs(c.fps - 20.0) < 1e-6
    for ms in (10, 20, 30, 40, 100):
        c.add_latency(ms)
    assert c.latency(50) == 30


def test_recording_writes_playable_files(tmp_path):
    frames = [np.full((64, 64, 3), i * 20, np.uint8) for i in range(12)]
    for name in ("run.mp4", "run.gif"):
        p = write_video(frames, tmp_path / name, fps=15)
        back = read_video(p)
        assert back.shape[0] == 12 and back.shape[1:] == (256, 256, 3)
        assert abs(int(back[-1].mean()) - 220) <= 6  # the content survived encoding
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="mp4"):
        write_video(frames, tmp_path / "x.avi")


def test_cli_actions_file(tmp_path):
    from app.cli.world import read_actions

    f = tmp_path / "a.txt"
    f.write_text("# walk\nmove_right 3\ndo x2\nmake_iron_pickaxe\nnoop\n")
    assert read_actions(f) == ["move_right"] * 3 + ["do"] * 2 + ["make_iron_pickaxe", "noop"]
    f.write_text('["move_up", 5, "W"]')
    assert read_actions(f) == ["move_up", "do", "move_up"]
    f.write_text("jump 3\n")
    with pytest.raises(ValueError, match="a.txt:1: unknown key or action 'jump'"):
        read_actions(f)
    f.write_text("do three\n")
    with pytest.raises(ValueError, match="whole number"):
        read_actions(f)


@pytest.mark.parametrize("script, expect", [
    ("W*2, D*1, SPACE*2", ["move_up"] * 2 + ["move_right"] + ["do"] * 2),
    ("w 2\nNOOP\nleft", ["move_up"] * 2 + ["noop", "move_left"]),
    ("↑*1,→ 2, Tab", ["move_up", "move_right", "move_right", "sleep"]),
    ("1, 6*2, MOVE_DOWN x2", ["make_wood_pickaxe"] + ["make_iron_sword"] * 2 + ["move_down"] * 2),
])
def test_cli_takes_keys_as_the_studio_does(script, expect):
    from app.cli.world import parse_script

    assert parse_script(script) == expect


def test_cli_world_refuses_a_bad_script_before_an_engine_starts(capsys):
    from app.cli import main

    assert main(["world", "--keys", "W*3, Q*2", "-o", "x.mp4"]) == 2
    assert "unknown key or action 'Q'" in capsys.readouterr().err


@pytest.mark.skipif(not (ASSETS / "dynamics.safetensors").exists(), reason="no shipped world model")
def test_panel_streams_frames_and_reacts_to_keys(qtbot, engine_bridge, tmp_path):
    from app.world_panel import WorldPanel

    panel = WorldPanel(engine_bridge, Settings())
    qtbot.addWidget(panel)
    panel.resize(1000, 640)
    panel.show()
    panel.fps_spin.setValue(20)
    seen = []
    panel.view.actionChanged.connect(seen.append)
    panel.record_btn.setChecked(True)
    panel.toggle_start()
    assert panel.job is not None and panel.start_btn.text() == "Stop"
    qtbot.waitUntil(lambda: panel.view.index >= 3, timeout=60_000)  # frames stream in (model load included)
    assert panel.view.frame.shape == (64, 64, 3)
    key(panel.view, Qt.Key.Key_D)
    assert seen == ["move_right"] and panel.legend.active == "move_right"
    qtbot.waitUntil(lambda: panel.view.clock.latency(50) is not None, timeout=20_000)
    assert panel.view.clock.latency(50) < 5000
    key(panel.view, Qt.Key.Key_D, press=False)
    n = panel.view.index
    qtbot.waitUntil(lambda: panel.view.index >= n + 3, timeout=20_000)
    panel.toggle_pause()
    assert panel.view.paused and panel.pause_btn.text() == "Resume"
    qtbot.wait(400)
    n = panel.view.index
    qtbot.wait(600)
    assert panel.view.index <= n + 1  # paused: at most a frame already in flight
    panel.toggle_pause()
    panel.reset_world()
    assert panel.resets == 1
    qtbot.waitUntil(lambda: panel.resets == 2, timeout=20_000)  # back at the real start frame
    assert panel.view.index < n
    panel.record_btn.setChecked(False)
    out = panel.save_recording(tmp_path / "world.mp4")
    assert read_video(out).shape[0] == len(panel.recorded) >= 5
    panel.toggle_start()  # Stop
    qtbot.waitUntil(lambda: panel.job is None, timeout=10_000)
    qtbot.waitUntil(lambda: panel.start_btn.text() == "Start", timeout=5_000)
    state = panel.save_state()
    assert state["fps"] == 20
    fresh = WorldPanel(engine_bridge, Settings())
    qtbot.addWidget(fresh)
    fresh.restore_state(state)
    assert fresh.save_state() == state
    fresh.restore_state({"fps": "fast"})  # garbage in a settings file changes nothing
    assert fresh.save_state() == state
