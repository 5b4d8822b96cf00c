"""App shell: the bridge, the supervisor's crash recovery, the main window, settings."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("PySide6")

from app.bridge import EngineBridge  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.supervisor import EngineSupervisor  # noqa: E402


def test_bridge_delivers_events_on_gui_thread(qtbot, engine_bridge):
    from PySide6.QtCore import QThread

    got, threads = [], []

    def listener(ev):
        got.append(ev)
        threads.append(QThread.currentThread())

    with qtbot.waitSignal(engine_bridge.busyChanged, timeout=5000):
        job = engine_bridge.submit("tiny_lm", {"n": 12}, listener)
    qtbot.waitUntil(lambda: bool(got) and got[-1].terminal, timeout=20000)
    assert got[-1].kind == "finished" and all(e.job == job for e in got)
    assert sum(e.kind == "partial" for e in got) == 12
    assert all(t is qtbot_main_thread() for t in threads)
    qtbot.waitUntil(lambda: not engine_bridge._busy, timeout=2000)


def qtbot_main_thread():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance().thread()


def test_supervisor_restarts_a_killed_engine_and_bridge_fails_inflight_jobs(qtbot, monkeypatch):
    monkeypatch.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
    sup = EngineSupervisor(device="cpu")
    bridge = EngineBridge()
    sup.ready.connect(bridge.connect_to)
    sup.crashed.connect(bridge.disconnect_engine)
    states = []
    sup.stateChanged.connect(states.append)
    try:
        with qtbot.waitSignal(sup.ready, timeout=60000):
            sup.start()
        first_pid = sup.pid()
        got = []
        bridge.submit("tiny_lm", {"n": 400, "delay": 0.05}, got.append)
        qtbot.waitUntil(lambda: any(e.kind == "partial" for e in got), timeout=20000)
        with qtbot.waitSignal(sup.crashed, timeout=10000) as crash:
            sup.kill_for_test()
        assert "restarting" in crash.args[0]
        assert got[-1].kind == "error" and "restarting" in got[-1].data["message"]  # nobody waits forever
        with qtbot.waitSignal(sup.ready, timeout=60000):
            pass
        assert sup.pid() != first_pid and sup.state == "ready"
        assert states[:2] == ["starting", "ready"] and "crashed" in states and states[-1] == "ready"
        got2 = []
        bridge.submit("tiny_lm", {"n": 5}, got2.append)  # the new engine serves
        qtbot.waitUntil(lambda: bool(got2) and got2[-1].terminal, timeout=20000)
        assert got2[-1].kind == "finished"
    finally:
        bridge.disconnect_engine()
        sup.stop()


def test_main_window_builds_and_saves_settings(qtbot, tmp_path):
    from app.window import MainWindow

    s = Settings()
    win = MainWindow(s, start_engine=False)
    qtbot.addWidget(win)
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == ["3D", "Icon", "Motion", "Speech", "World"]
    assert win.state_label.text() == "engine: stopped"
    win._on_state("crashed")
    assert "crashed" in win.state_label.text()
    win._on_status({"device_name": "cpu (2 cores)", "rss_mb": 321.0})
    assert "cpu" in win.device_label.text() and "321" in win.mem_label.text()
    from engine.protocol import Event

    win._on_stats(Event("j", "stats", 3, {"task": "tiny_lm", "tokens_per_s": 512.0}))
    assert win.dock.plot.data("tiny_lm tokens/s")[-1, 1] == 512.0
    win.close()
    assert Settings.path().exists()


def test_settings_round_trip_and_bad_file(tmp_path):
    s = Settings()
    seen = []
    s.on_changed(seen.append)
    s.set("theme", "light")
    s.add_recent("/a.svg")
    s.add_recent("/b.svg")
    s.add_recent("/a.svg")
    assert seen[0] == "theme" and s.recent_files == ["/a.svg", "/b.svg"]
    s.save()
    assert Settings.load().theme == "light"
    Settings.path().write_text("{not json")
    assert Settings.load().theme == "dark"  # unreadable file: defaults (dark), no crash
    with pytest.raises(AttributeError):
        s.set("nope", 1)


def test_error_box_shows_and_copies(qtbot):
    from PySide6.QtWidgets import QApplication

    from widgets.error_box import ErrorBox

    box = ErrorBox()
    qtbot.addWidget(box)
    box.show_error("It broke.", "Traceback: details")
    assert not box.isHidden()
    box.copy()
    assert QApplication.clipboard().text() == "It broke.\n\nTraceback: details"
    box.clear()
    assert box.isHidden()


def test_no_display_prints_cli_alternative():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "app"], env=env, capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert r.returncode == 2
    assert "needs a display" in r.stderr and "weft-cli" in r.stderr
