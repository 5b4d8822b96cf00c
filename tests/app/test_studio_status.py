"""Honest status: what the panels say matches what happens. An SVG import during an icon generation waits
for it (and says so) instead of cancelling it; a job's end always clears "drawing…" / "Importing…";
tile path counts match what is drawn; the World panel says "loading model…" until it can start, has
one Start button and keeps keys pressed while loading; library noise stays out of the Engine dock.
The engine is a FakeBridge: each event is delivered by the test."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from app.settings import Settings  # noqa: E402
from tests.app.fakes import FakeBridge  # noqa: E402

SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect x="2" y="2" width="8" height="8"/></svg>'
PATH = {"cmds": "MLLZ", "pts": np.array([[40, 40], [400, 60], [200, 420]], np.float32)}


@pytest.fixture
def icon(qtbot):
    from app.icon_panel import IconPanel

    bridge = FakeBridge()
    panel = IconPanel(bridge, Settings())
    qtbot.addWidget(panel)
    return panel, bridge


def _partial(bridge, job, cand, index, final, path=PATH):
    bridge.emit(job, "partial", {"candidate": cand, "index": index, "final": final, **path})


def test_import_during_a_generation_waits_for_it(icon, tmp_path):
    panel, bridge = icon
    panel.prompt.setText("a rocket")
    panel.n_spin.setValue(2)
    panel.generate()
    gen = panel.job
    assert gen and panel.status.text() == "Generating…"
    _partial(bridge, gen, 0, 0, True)
    f = tmp_path / "box.svg"
    f.write_text(SVG)
    panel.import_file(str(f))
    assert bridge.cancelled == [] and panel.job == gen  # the generation goes on
    assert "box.svg waits for the current generation" in panel.status.text()

    def panel_jobs():  # the library search the generation starts beside it is not one of the panel's jobs
        return [sub for sub in bridge.submitted if sub[2].get("mode") != "library"]

    assert len(panel_jobs()) == 1
    _partial(bridge, gen, 1, 0, True)
    bridge.emit(gen, "output", {"mode": "generate", "candidates": [{"paths": [PATH], "valid": True},
                                                                     {"paths": [PATH], "valid": True}]})
    bridge.emit(gen, "finished")
    # the generation's result stays, then the import starts by itself
    assert [t.state for t in panel.grid.tiles] == ["done", "done"]
    job, task, params = panel_jobs()[-1]
    assert len(panel_jobs()) == 2 and params == {"mode": "import", "svg": SVG} and panel.job == job
    assert panel.status.text() == "Importing box.svg…"
    bridge.emit(job, "output", {"mode": "import", "paths": [PATH]})
    bridge.emit(job, "finished")
    assert panel.status.text() == "Imported 1 path(s)." and len(panel.canvas.paths) == 1


def test_stop_with_a_waiting_import_imports_at_once(icon, tmp_path):
    panel, bridge = icon
    panel.prompt.setText("a rocket")
    panel.generate()
    gen = panel.job
    f = tmp_path / "box.svg"
    f.write_text(SVG)
    panel.import_file(str(f))
    panel.stop_btn.click()
    assert bridge.cancelled == [gen]
    bridge.emit(gen, "cancelled")
    assert [t.state for t in panel.grid.tiles] == ["stopped"] * 4  # no tile keeps saying "drawing…"
    assert all(not t.label().startswith("drawing") for t in panel.grid.tiles)
    assert bridge.submitted[-1][2]["mode"] == "import" and panel.status.text() == "Importing box.svg…"


@pytest.mark.parametrize("end", ["error", "cancelled", "finished"])
def test_every_job_end_clears_the_running_texts(icon, tmp_path, end):
    panel, bridge = icon
    f = tmp_path / "box.svg"
    f.write_text(SVG)
    panel.import_file(str(f))
    job = panel.job
    assert panel.status.text() == "Importing…"
    bridge.emit(job, end, {"message": "bad svg"} if end == "error" else {})
    assert panel.status.text() == {"error": "The job failed (see the message above).", "cancelled": "Stopped.",
                                   "finished": "Done."}[end]
    assert panel.gen_btn.isEnabled() and not panel.stop_btn.isEnabled()
    panel.prompt.setText("a cat")
    panel.generate()
    gen = panel.job
    _partial(bridge, gen, 0, 0, False)  # a path half drawn
    bridge.emit(gen, end, {"message": "out of memory"} if end == "error" else {})
    assert "Generating" not in panel.status.text()
    assert all(t.state != "drawing" for t in panel.grid.tiles)


def test_no_engine_means_nothing_says_it_runs(qtbot):
    from app.icon_panel import IconPanel

    panel = IconPanel(FakeBridge(connected=False), Settings())
    qtbot.addWidget(panel)
    panel.prompt.setText("a rocket")
    panel.generate()
    assert panel.job is None and panel.status.text() == "" and "engine is not running" in panel.error_box.text()
    assert all(t.state != "drawing" for t in panel.grid.tiles)


def test_tile_counts_match_what_is_drawn(icon):
    panel, bridge = icon
    panel.prompt.setText("a rocket")
    panel.n_spin.setValue(1)
    panel.generate()
    job = panel.job
    tile = panel.grid.tile(0)
    _partial(bridge, job, 0, 0, False)  # one path on screen while it is drawn (a single-path icon)
    assert tile.label() == "drawing… 1 path"
    _partial(bridge, job, 0, 0, True)
    _partial(bridge, job, 0, 1, False)
    assert tile.label() == "drawing… 2 paths"
    _partial(bridge, job, 0, 1, True)
    _partial(bridge, job, 0, 2, True, {"cmds": "", "pts": np.zeros((0, 2), np.float32)})  # an empty path: not drawn
    assert tile.drawn_paths() == 2
    bridge.emit(job, "output", {"mode": "generate", "candidates": [{"paths": [PATH, PATH], "valid": True}],
                                "scores": np.array([0.42], np.float32)})
    bridge.emit(job, "finished")
    assert tile.label() == "2 paths · match 0.42 #1"


@pytest.fixture
def world(qtbot):
    from app.world_panel import WorldPanel

    bridge = FakeBridge()
    panel = WorldPanel(bridge, Settings())
    qtbot.addWidget(panel)
    return panel, bridge


def _visible_buttons(panel, text):
    from PySide6.QtWidgets import QPushButton

    return [b for b in panel.findChildren(QPushButton) if b.text() == text and b.isVisibleTo(panel) and b.isEnabled()]


def test_world_says_loading_until_it_can_start_with_one_start_button(world):
    panel, bridge = world
    assert panel.view.status == "loading model…" and panel.info.text() == "loading model…"
    assert len(_visible_buttons(panel, "Start")) == 1 and not panel.reset_btn.isEnabled()
    bridge.statusReceived.emit({"loaded": ["shape"]})
    assert panel.view.status == "loading model…"
    bridge.statusReceived.emit({"loaded": ["shape", "world"]})
    assert panel.view.status.startswith("Ready: press Start")
    bridge.connected = False
    panel._show_idle()
    assert panel.view.status == "waiting for the engine…"


def test_world_keeps_keys_pressed_while_loading_and_plays_them_first(world):
    panel, bridge = world
    panel.toggle_start()
    job = panel.job
    assert job and panel.start_btn.text() == "Stop" and "loading model" in panel.view.status
    for action in ("move_left", "noop", "move_up", "noop"):
        panel.on_action(action)
    assert bridge.steered == []  # nothing sent to a session that has not started
    assert "2 key(s) kept" in panel.info.text()
    frame = np.zeros((64, 64, 3), np.uint8)
    bridge.emit(job, "partial", {"frame": frame, "index": 0, "action": "reset"})
    assert [p["action"] for _, p in bridge.steered] == ["move_left"]
    assert panel.reset_btn.isEnabled() and panel.pause_btn.isEnabled()
    bridge.emit(job, "partial", {"frame": frame, "index": 1, "action": "move_left"})
    assert [p["action"] for _, p in bridge.steered] == ["move_left", "move_up"]
    bridge.emit(job, "partial", {"frame": frame, "index": 2, "action": "move_up"})
    assert len(bridge.steered) == 2  # all played; nothing held
    panel.on_action("move_right")  # once running, keys go straight to the engine
    assert bridge.steered[-1][1]["action"] == "move_right"


def test_world_stopped_while_loading_says_its_keys_were_not_played(qtbot, world):
    panel, bridge = world
    panel.toggle_start()
    job = panel.job
    panel.on_action("do")
    panel.toggle_start()  # Stop before the first frame
    bridge.emit(job, "cancelled")
    assert "1 key(s) pressed meanwhile were not played" in panel.info.text()
    qtbot.waitUntil(lambda: panel.start_btn.text() == "Start", timeout=2000)


def test_engine_dock_shows_the_projects_messages_not_library_noise():
    from app.supervisor import EngineLogFilter

    f = EngineLogFilter()
    lines = {
        "WEFT-ENGINE READY ipc:///run/weft/engine.sock device=cpu": True,
        "2025-01-31 10:00:00,123 INFO weft.engine: loaded icon in 2.10 s": True,
        "/venv/lib/torch/nn/modules/module.py:1747: FutureWarning: `torch.nn.utils.weight_norm` is deprecated": False,
        "  WeightNorm.apply(module, name, dim)": False,  # the source line under the warning
        "Loading weights:  40%|####      | 2/5 [00:01<00:01,  1.9it/s]": False,
        "2025-01-31 10:00:01,000 WARNING py.warnings: something deprecated": False,
        "2025-01-31 10:00:02,000 ERROR weft.engine: job 3 failed": True,
        "Traceback (most recent call last):": True,
        '  File "models/icon/stream.py", line 10, in step': True,
        "ValueError: bad token": True,
    }
    assert {line: f.shows(line) for line in lines} == lines
