"""The 3D panel: sketch pad editing, voxel meshes, import / export through trimesh, and (under
Xvfb, with the real engine and shipped weights) levels streaming into the viewport."""
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("vispy")

from app.settings import Settings  # noqa: E402


def test_sketch_pad_strokes_undo_clear_and_image(qtbot):
    from widgets.sketch_pad import SketchPad

    pad = SketchPad(128)
    qtbot.addWidget(pad)
    assert pad.is_empty() and pad.image().min() == 255
    pad.add_stroke([(20, 20), (100, 100)])
    pad.add_stroke([(20, 100), (100, 20)])
    img = pad.image()
    assert img.shape == (128, 128) and img[60, 60] < 100  # ink where the strokes cross
    pad.undo()
    assert len(pad.strokes) == 1
    pad.add_stroke([(10, 64), (118, 64)], pen="erase")
    assert pad.image()[64, 64] == 255  # erased
    pad.clear()
    assert pad.is_empty()
    pad.undo()
    assert len(pad.strokes) == 2
    state = pad.to_state()
    other = SketchPad(128)
    qtbot.addWidget(other)
    other.from_state(state)
    assert np.array_equal(other.image(), pad.image())
    photo = np.full((50, 100, 3), 255, np.uint8)
    photo[20:30, :] = 0
    pad.load_image(photo)
    assert pad.image()[64, 64] < 128 and not pad.is_empty()


def test_voxel_mesh_hides_shared_faces():
    from widgets.shape_view import voxel_mesh

    one = voxel_mesh(np.zeros((1, 3)), 0.5)
    assert one[1].shape == (12, 3) and one[0].shape == (24, 3)
    two = voxel_mesh(np.array([[-0.25, 0.25, 0.25], [0.25, 0.25, 0.25]]), 0.5, np.array([1, 2]))
    assert two[1].shape == (20, 3)  # 2 cubes x 6 faces - the 2 shared ones, 2 triangles each
    assert two[2].shape == (20, 4)
    assert len(np.unique(two[2].round(3), axis=0)) > 3  # 3 shades of one colour would be all of a single state


def _panel(qtbot, bridge=None):
    from app.bridge import EngineBridge
    from app.shape_panel import ShapePanel

    p = ShapePanel(bridge or EngineBridge(), Settings())
    qtbot.addWidget(p)
    p.resize(1100, 700)
    return p


@pytest.mark.gl
def test_import_export_round_trip_and_broken_files(qtbot, tmp_path):
    import trimesh

    p = _panel(qtbot)
    p.show()
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    assert not p.import_file(bad)
    assert "broken.glb" in p.error_box.text() and p.mesh is None
    assert not p.import_file(tmp_path / "missing.obj")
    src = tmp_path / "box.ply"
    trimesh.creation.box(extents=(2, 1, 1)).export(src)
    assert p.import_file(src)
    assert p.viewport.shown == "mesh" and np.abs(p.viewport.mesh_data[0]).max() <= 0.5 + 1e-6
    for ext in (".obj", ".ply", ".glb"):
        out = p.export_file(tmp_path / f"out{ext}")
        back = trimesh.load(out, force="mesh")
        assert len(back.faces) == 12
    assert p.export_file(tmp_path / "out.txt") is None and ".glb" in p.error_box.text()


@pytest.mark.gl
def test_state_survives_and_empty_inputs_are_refused(qtbot):
    p = _panel(qtbot)
    p.prompt.setText("a lamp")
    p.seed.setValue(42)
    p.pad.add_stroke([(10, 10), (50, 90)])
    state = p.save_state()
    q = _panel(qtbot)
    q.restore_state(state)
    assert q.prompt.text() == "a lamp" and q.seed.value() == 42 and len(q.pad.strokes) == 1
    p.prompt.setText("")
    p.mode_box.setCurrentText("text")
    p.generate()
    assert "prompt" in p.error_box.text().lower() and p.job is None


@pytest.mark.gl
@pytest.mark.slow
def test_levels_stream_into_the_viewport(qtbot, engine_bridge):
    p = _panel(qtbot, engine_bridge)
    p.show()
    qtbot.waitUntil(lambda: engine_bridge.connected, timeout=5000)
    seen = []
    p.viewport.add_level = (lambda orig: lambda *a, **k: (seen.append((a[0], p.viewport.shown)), orig(*a, **k)))(p.viewport.add_level)
    p.prompt.setText("a wooden chair")
    p.mode_box.setCurrentText("text")
    with qtbot.waitSignal(p.jobEnded, timeout=120000) as sig:
        p.generate()
    assert sig.args[1] == "finished", p.error_box.text()
    grids = sorted(lv["grid"] for lv in p.viewport.levels.values())
    assert grids[0] == 2 and grids[-1] == 64 and len(grids) >= 4
    assert [lvl for lvl, _ in seen] == sorted(lvl for lvl, _ in seen)  # coarse to fine
    assert p.viewport.shown == "mesh" and p.mesh is not None and len(p.mesh[1]) > 100
    img = p.viewport.render_image()
    assert (img[..., :3].astype(int).sum(-1) > 300).mean() > 0.01  # the light-grey shape is on screen
    p.level_slider.setValue(0)
    assert p.viewport.shown == "level 1"
    vox = p.viewport.render_image()
    assert not np.array_equal(vox, img)
    p.display_box.setCurrentText("wireframe")
    p.level_slider.setValue(p.level_slider.maximum())
    assert p.viewport.shown == "mesh" and p.viewport.wireframe.enabled
