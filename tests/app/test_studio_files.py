"""The studio as a tool people work in: project files (save -> new -> open), recent files, drag-and-drop
routing, the autosaved session, undo / redo in every panel through the Edit menu. No engine: panels
get their results put in directly (the engine-driven paths are in each panel's own tests)."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402

from app.project import ProjectFileError, read_project  # noqa: E402
from app.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.gl, pytest.mark.timeout(240)]  # the 3D and Motion panels hold VisPy canvases

TRIANGLE = {"cmds": "MLLZ", "pts": np.array([[40, 40], [400, 60], [200, 420]], np.float32)}
SQUARE = {"cmds": "MLLLZ", "pts": np.array([[10, 10], [100, 10], [100, 100], [10, 100]], np.float32)}
BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  End Site
  {
    OFFSET 0 10 0
  }
}
MOTION
Frames: 2
Frame Time: 0.033333
0 90 0 0 0 0
0 91 0 0 0 0
"""


def make_window(qtbot, settings: Settings | None = None, **kw):
    from app.window import MainWindow

    win = MainWindow(settings or Settings(), start_engine=False, **kw)
    qtbot.addWidget(win)
    return win


def fill_panels(win) -> None:
    """Inputs and results in every panel, as a user's session would have them."""
    from app.speech_panel import SpeechTake

    icon = win.panel_for("icon")
    icon.prompt.setText("a rocket")
    icon.seed.setValue(1234)
    icon.temp.setValue(0.6)
    icon.canvas.set_paths([TRIANGLE, SQUARE])
    icon.grid.reset(2)
    icon.candidates = [{"paths": [TRIANGLE], "valid": True}, {"paths": [SQUARE], "valid": False}]
    for i, c in enumerate(icon.candidates):
        icon.grid.tile(i).finish(c["paths"], c["valid"])

    shape = win.panel_for("shape")
    shape.prompt.setText("a wooden chair")
    shape.seed.setValue(77)
    shape.pad.add_stroke([(20, 20), (150, 150)])
    shape.pad.add_stroke([(20, 150), (150, 20)])
    v = np.array([[0, 0, 0], [0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.3]], np.float32)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], np.uint32)
    shape.viewport.add_level(1, np.array([[0.25, 0.25, 0.25]]), np.array([1]), 0.5, 2)
    shape.viewport.set_final_mesh(v, f)
    shape.mesh = (v, f)

    speech = win.panel_for("speech")
    speech.text.setPlainText("Remember this sentence.")
    speech.sliders.set_values({"happy": 0.6, "calm": 0.3}, 0.8)
    speech.seed_spin.setValue(5)
    audio = np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.3
    speech.takes.append(SpeechTake(text="Remember this sentence.", voice="joe", emotion={"happy": 0.6}, alpha=0.8,
                                   audio=audio, sample_rate=16000, f0=np.full(50, 120, np.float32),
                                   spec=np.zeros((50, 64), np.float32), energy=np.zeros(50, np.float32)))
    speech._refill_takes(0)

    motion = win.panel_for("motion")
    motion.command.setText("walk in a circle")
    motion.take.put(0, np.random.default_rng(0).normal(size=(12, 5, 3)).astype(np.float32),
                    [f"{i} 0 0" for i in range(12)], None)
    motion.parents, motion.header = [-1, 0, 1, 0, 3], "HIERARCHY\n"
    motion.view.set_skeleton(motion.parents)
    motion._log_command(0, "walk in a circle")

    world = win.panel_for("world")
    world.fps_spin.setValue(24)
    world.temp_spin.setValue(0.5)
    world.recorded = [np.full((64, 64, 3), k, np.uint8) for k in range(3)]


def test_save_new_open_restores_every_panel(qtbot, tmp_path):
    win = make_window(qtbot)
    fill_panels(win)
    win.tabs.setCurrentWidget(win.panel_for("speech"))
    path = tmp_path / "work.weft"
    assert win.save_project(str(path))
    assert win.windowTitle().startswith("work.weft") and not win.is_modified()
    names = set(zipfile.ZipFile(path).namelist())
    assert {"manifest.json", "icon/editor.svg", "icon/candidates.json", "shape/shape.npz", "speech/take-001.wav",
            "speech/takes.json", "motion/take.npz", "motion/take.bvh", "world/recording.npz"} <= names

    assert win.new_project(ask=False)
    icon, shape, speech = win.panel_for("icon"), win.panel_for("shape"), win.panel_for("speech")
    motion, world = win.panel_for("motion"), win.panel_for("world")
    assert icon.prompt.text() == "" and icon.seed.value() == 0 and icon.canvas.paths == []
    assert shape.prompt.text() == "" and shape.pad.strokes == [] and shape.mesh is None
    assert speech.text.toPlainText() == "" and speech.takes == [] and speech.sliders.values()[1] == 1.0
    assert len(motion.take) == 0 and world.fps_spin.value() == 15 and world.recorded == []
    assert all(p.undo_stack.count() == 0 for p in win.panels)

    assert win.open_project(str(path), ask=False)
    assert win.current_panel() is speech  # the tab that was open
    assert icon.prompt.text() == "a rocket" and icon.seed.value() == 1234 and icon.temp.value() == pytest.approx(0.6)
    assert [p["cmds"] for p in icon.canvas.paths] == ["MLLZ", "MLLLZ"]
    np.testing.assert_allclose(icon.canvas.paths[0]["pts"], TRIANGLE["pts"])
    assert [t.state for t in icon.grid.tiles] == ["done", "invalid"] and icon.grid.tile(0).drawn_paths() == 1
    assert shape.prompt.text() == "a wooden chair" and shape.seed.value() == 77 and len(shape.pad.strokes) == 2
    assert shape.pad.image()[85, 85] < 100  # the strokes cross there
    assert shape.mesh is not None and len(shape.mesh[1]) == 4 and 1 in shape.viewport.levels
    assert speech.text.toPlainText() == "Remember this sentence." and speech.seed_spin.value() == 5
    emotion, alpha = speech.sliders.values()
    assert emotion["happy"] == pytest.approx(0.6) and emotion["calm"] == pytest.approx(0.3) and alpha == pytest.approx(0.8)
    assert len(speech.takes) == 1 and speech.take_list.count() == 1
    np.testing.assert_allclose(speech.takes[0].audio, np.sin(np.linspace(0, 200, 8000)) * 0.3, atol=1e-6)
    assert len(motion.take) == 12 and motion.parents == [-1, 0, 1, 0, 3] and motion.timeline.count() == 1
    assert motion.command.text() == "walk in a circle"
    assert world.fps_spin.value() == 24 and world.temp_spin.value() == pytest.approx(0.5) and len(world.recorded) == 3
    assert not win.is_modified() and all(p.undo_stack.count() == 0 for p in win.panels)
    icon.prompt.setText("a rocket ship")
    assert win.is_modified()


def test_recent_files_menu_lists_saved_and_opened_files(qtbot, tmp_path):
    s = Settings()
    win = make_window(qtbot, s)
    first, second = tmp_path / "a.weft", tmp_path / "b.weft"
    assert win.save_project(str(first)) and win.save_project(str(second))
    win._fill_recent()
    paths = [a.data() for a in win.recent_menu.actions() if a.data()]
    assert paths == [str(second), str(first)]  # newest first
    assert all(a.isEnabled() for a in win.recent_menu.actions() if a.data())
    for k in range(12):
        s.add_recent(str(tmp_path / f"extra{k}.svg"))
    win._fill_recent()
    assert len([a for a in win.recent_menu.actions() if a.data()]) == 10  # the last 10
    assert s.recent_files[0].endswith("extra11.svg")
    second.unlink()  # gone from disk: listed but greyed out
    s.set("recent_files", [str(second), str(first)])
    win._fill_recent()
    acts = [a for a in win.recent_menu.actions() if a.data()]
    assert [a.isEnabled() for a in acts] == [False, True]
    acts[1].trigger()
    assert win.project_path == str(first)


def _drop(win, path) -> bool:
    """Drag a file over the window and drop it (the handlers Qt calls; a synthetic drop without a real
    drag is not delivered by Qt itself). -> whether the window accepted the drag."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    win.dragEnterEvent(enter)
    if enter.isAccepted():
        win.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                 Qt.KeyboardModifier.NoModifier))
    return enter.isAccepted()


def test_dropped_files_open_in_their_panel(qtbot, tmp_path):
    from PySide6.QtGui import QImage

    from app.shape_files import export_mesh

    win = make_window(qtbot)
    win.show()
    calls = []
    for p in win.panels:  # record where each file goes, then let the panel open it for real
        p.open_file = (lambda orig, task: lambda path: calls.append((task, path)) or orig(path))(p.open_file, p.task)
    v = np.array([[0, 0, 0], [0.4, 0, 0], [0, 0.4, 0], [0, 0, 0.4]], np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.uint32)
    files = {}
    for ext in (".obj", ".ply", ".glb"):
        files[ext] = export_mesh(v, f, tmp_path / f"tetra{ext}")
    files[".svg"] = tmp_path / "box.svg"
    files[".svg"].write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect width="9" height="9"/></svg>')
    files[".bvh"] = tmp_path / "walk.bvh"
    files[".bvh"].write_text(BVH)
    files[".png"] = tmp_path / "sketch.png"
    img = QImage(64, 64, QImage.Format.Format_Grayscale8)
    img.fill(255)
    for x in range(10, 54):
        img.setPixel(x, 32, 0)
    assert img.save(str(files[".png"]))
    expected = {".obj": "shape", ".ply": "shape", ".glb": "shape", ".svg": "icon", ".bvh": "motion", ".png": "shape"}
    for ext, task in expected.items():
        win.tabs.setCurrentIndex(4)  # World: every drop must switch away from it
        assert _drop(win, files[ext]), ext
        assert calls[-1] == (task, str(files[ext])), ext
        assert win.current_panel().task == task, ext
    shape = win.panel_for("shape")
    assert shape.mesh is not None and len(shape.mesh[1]) == 4  # the last mesh dropped is shown
    assert shape.pad.background is not None and shape.pad.image()[110, 110] < 128  # the picture became the sketch
    # a project dropped on the window opens as the project
    win.panel_for("icon").prompt.setText("from the project")
    proj = tmp_path / "dropped.weft"
    assert win.save_project(str(proj))
    win.new_project(ask=False)
    n = len(calls)
    assert _drop(win, proj)
    assert win.panel_for("icon").prompt.text() == "from the project" and len(calls) == n
    # a file nobody opens changes nothing and says so
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    assert not _drop(win, other)  # not even accepted as a drag
    assert not win.open_path(str(other))
    assert "cannot open notes.txt" in win.statusBar().currentMessage()


def test_session_is_autosaved_and_restored_at_the_next_start(qtbot, tmp_path):
    from app.window import session_path

    win = make_window(qtbot)
    fill_panels(win)
    assert win.autosave() and session_path().exists()
    assert not win.autosave()  # nothing changed since: no rewrite
    win.panel_for("icon").prompt.setText("changed after the autosave")
    win.close()  # quitting saves the session too
    again = make_window(qtbot)
    assert again.panel_for("icon").prompt.text() == "changed after the autosave"
    assert len(again.panel_for("speech").takes) == 1 and again.panel_for("shape").mesh is not None
    assert "Restored your last session" in again.statusBar().currentMessage()
    assert again.isWindowModified()  # never saved as a project: still unsaved work
    again.close()
    session_path().write_bytes(b"not a zip")  # a damaged session: set aside, the studio starts empty
    third = make_window(qtbot)
    assert third.panel_for("icon").prompt.text() == ""
    assert "could not be restored" in third.statusBar().currentMessage()
    assert session_path().with_name("session.weft.bad").exists()


def test_broken_project_files_are_refused_with_a_sentence(qtbot, tmp_path):
    bad = tmp_path / "bad.weft"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ProjectFileError, match="not a Weft project"):
        read_project(bad)
    other = tmp_path / "other.weft"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("manifest.json", '{"format": "weft-project", "version": 99}')
    with pytest.raises(ProjectFileError, match="newer Weft Studio"):
        read_project(other)
    broken = tmp_path / "broken.weft"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("manifest.json", '{"format": "weft-project", "version": 1, "panels": {"icon": '
                   '{"state": {"prompt": "kept"}, "files": ["editor.json", "../../etc/passwd"]}}}')
        z.writestr("icon/editor.json", '{"paths": [{"cmds": "MLZ", "pts": [[1, 2]]}]}')  # too few points
    win = make_window(qtbot)
    win.panel_for("icon").canvas.set_paths([SQUARE])
    assert win.open_project(str(broken), ask=False)
    icon = win.panel_for("icon")
    assert icon.prompt.text() == "kept" and "could not be read" in icon.error_box.text()
    assert not win.open_project(str(bad), ask=False) and "not a Weft project" in win.statusBar().currentMessage()
    assert icon.prompt.text() == "kept"  # a refused file changes nothing


def test_undo_redo_in_every_panel_through_the_edit_menu(qtbot):
    win = make_window(qtbot)
    undo, redo = win.act_undo, win.act_redo

    def on(task):
        win.tabs.setCurrentWidget(win.panel_for(task))
        return win.panel_for(task)

    icon = on("icon")
    icon.prompt.setText("a cat")
    icon.canvas.set_paths([TRIANGLE, SQUARE])
    icon.canvas.select(0)
    icon.delete_selected()
    assert len(icon.canvas.paths) == 1 and undo.isEnabled()
    undo.trigger()
    assert len(icon.canvas.paths) == 2
    undo.trigger()
    assert icon.prompt.text() == ""
    redo.trigger()
    redo.trigger()
    assert icon.prompt.text() == "a cat" and len(icon.canvas.paths) == 1

    shape = on("shape")
    assert not undo.isEnabled()  # the 3D panel's stack is empty: Edit > Undo follows the open panel
    shape.pad.add_stroke([(10, 10), (90, 90)])
    shape.pad.clear()
    shape.seed.setValue(9)
    undo.trigger()
    assert shape.seed.value() == 0
    undo.trigger()
    assert len(shape.pad.strokes) == 1  # the clear undone
    shape.undo_btn.click()  # the sketch's Undo button is the same stack
    assert shape.pad.strokes == []
    redo.trigger()
    assert len(shape.pad.strokes) == 1

    motion = on("motion")
    motion.command.setText("jump")
    motion.speed_box.setCurrentIndex(4)
    undo.trigger()
    assert motion.speed_box.currentIndex() == 2 and motion.command.text() == "jump"
    undo.trigger()
    assert motion.command.text() == ""

    speech = on("speech")
    from app.speech_panel import SpeechTake

    for k in range(2):
        speech.takes.append(SpeechTake(f"take {k}", "joe", {}, 1.0, np.zeros(160, np.float32), 16000))
    speech._refill_takes(0)
    speech.sliders.sliders["sad"].setValue(70)
    speech.text.setPlainText("Hello")
    speech.remove_take()
    assert [t.text for t in speech.takes] == ["take 1"]
    undo.trigger()
    assert [t.text for t in speech.takes] == ["take 0", "take 1"] and speech.take_list.count() == 2
    undo.trigger()
    assert speech.text.toPlainText() == ""
    undo.trigger()
    assert speech.sliders.values()[0]["sad"] == 0.0
    redo.trigger()
    assert speech.sliders.values()[0]["sad"] == pytest.approx(0.7)

    world = on("world")
    world.fps_spin.setValue(30)
    world.start_box.setCurrentIndex(0)
    undo.trigger()
    undo.trigger()
    assert world.fps_spin.value() == 15
    assert icon.prompt.text() == "a cat"  # other panels' history untouched
