"""The Icon panel against a real engine (trained weights): candidates draw into the grid while they
stream, a candidate opens in the editor, edits undo and redo, the icon exports as valid SVG and PNG,
a redraw keeps the other paths, and a malformed import shows an error and changes nothing."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QByteArray  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

from app.icon_panel import IconPanel  # noqa: E402
from app.settings import Settings  # noqa: E402

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect x="2" y="2" width="8" height="8"/>'
       '<circle cx="17" cy="17" r="4"/><path d="M14 3h7v5h-7z"/></svg>')


def wait_job(qtbot, panel, timeout=180_000):
    with qtbot.waitSignal(panel.jobEnded, timeout=timeout) as blocker:
        pass
    return blocker.args


@pytest.fixture
def panel(qtbot, engine_bridge):
    p = IconPanel(engine_bridge, Settings())
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    return p


@pytest.mark.slow
def test_generate_into_grid_open_edit_export(qtbot, panel, tmp_path):
    seen = []
    orig = panel.on_event
    panel.on_event = lambda ev: (seen.append((ev.kind, [len(t.paths) for t in panel.grid.tiles])), orig(ev))
    panel.prompt.setText("star")
    panel.n_spin.setValue(2)
    panel.seed.setValue(7)
    with qtbot.waitSignal(panel.jobEnded, timeout=180_000) as blocker:
        panel.gen_btn.click()
    assert blocker.args[1] == "finished", panel.error_box.text()
    kinds = [k for k, _ in seen]
    assert "partial" in kinds and kinds.index("partial") < kinds.index("output")
    assert len(panel.grid.tiles) == 2 and len(panel.candidates) == 2
    assert any(c["valid"] and c["paths"] for c in panel.candidates)
    best = next(i for i, c in enumerate(panel.candidates) if c["valid"] and c["paths"])
    assert panel.grid.tiles[best].paths  # the grid shows what streamed in
    # tiles were filled while the job ran (before the output), path by path
    assert any(sum(counts) > 0 for k, counts in seen if k == "partial")

    panel.open_candidate(best)
    assert len(panel.canvas.paths) == len(panel.candidates[best]["paths"])
    before = [p["pts"].copy() for p in panel.canvas.paths]
    panel.canvas.move_point(0, 0, (10.0, 20.0))
    assert tuple(panel.canvas.paths[0]["pts"][0]) == (10.0, 20.0)
    panel.undo_stack.undo()
    assert np.array_equal(panel.canvas.paths[0]["pts"], before[0])
    panel.undo_stack.redo()
    assert tuple(panel.canvas.paths[0]["pts"][0]) == (10.0, 20.0)

    svg_file, png_file = tmp_path / "icon.svg", tmp_path / "icon.png"
    panel.export_svg(str(svg_file))
    root = ET.fromstring(svg_file.read_text())
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}path")) == len(panel.canvas.paths)
    assert QSvgRenderer(QByteArray(svg_file.read_bytes())).isValid()
    assert panel.export_png(str(png_file), 96)
    img = QImage(str(png_file))
    assert img.width() == 96 and img.height() == 96
    panel.grab().save(str(tmp_path / "panel.png"))


@pytest.mark.slow
def test_import_redraw_and_malformed_import(qtbot, panel, tmp_path):
    good = tmp_path / "good.svg"
    good.write_text(SVG)
    panel.import_file(str(good))
    args = wait_job(qtbot, panel)
    assert args[1] == "finished", panel.error_box.text()
    assert len(panel.canvas.paths) == 3
    kept = [(p["cmds"], p["pts"].tobytes()) for p in panel.canvas.paths]

    for name, content in [("bad.svg", "<svg><path d='M0 0 L"), ("light.svg", '<svg xmlns="http://www.w3.org/2000/svg" '
                          'viewBox="0 0 9 9"><path d="M1 1H8V8z" fill="#fff"/></svg>')]:
        f = tmp_path / name
        f.write_text(content)
        panel.import_file(str(f))
        assert wait_job(qtbot, panel)[1] == "error"
        assert panel.error_box.isVisible() and "import" in panel.error_box.text().lower()
        assert [(p["cmds"], p["pts"].tobytes()) for p in panel.canvas.paths] == kept
    binary = tmp_path / "image.svg"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    panel.import_file(str(binary))
    assert "not a text" in panel.error_box.text()
    assert [(p["cmds"], p["pts"].tobytes()) for p in panel.canvas.paths] == kept

    panel.canvas.select(1)
    panel.prompt.setText("badge")
    panel.act_redraw.trigger()
    assert wait_job(qtbot, panel)[1] == "finished", panel.error_box.text()
    now = [(p["cmds"], p["pts"].tobytes()) for p in panel.canvas.paths]
    assert len(now) == 3 and now[0] == kept[0] and now[2] == kept[2]
    panel.undo_stack.undo()
    assert [(p["cmds"], p["pts"].tobytes()) for p in panel.canvas.paths] == kept

    panel.canvas.select(0)
    panel.delete_selected()
    assert len(panel.canvas.paths) == 2
    panel.undo_stack.undo()
    assert len(panel.canvas.paths) == 3


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_library_search_open_and_pick_an_exemplar(qtbot, panel):
    panel.library.query.setText("umbrella")
    panel.library.search_btn.click()
    qtbot.waitUntil(lambda: len(panel.library.items) > 0, timeout=120_000)
    items = panel.library.items
    assert all("umbrella" in it["name"] and it["license"] for it in items[:6])
    assert panel.library.list.count() == len(items)
    panel.library.list.setCurrentRow(1)
    assert items[1]["license"] in panel.library.info.text()
    panel.library.open_btn.click()
    assert len(panel.canvas.paths) == len(items[1]["paths"]) > 0
    panel.library.use_btn.click()
    assert [it["id"] for it in panel.picked] == [items[1]["id"]] and items[1]["name"] in panel.picked_label.text()
    sent = []
    real_submit = panel.bridge.submit
    panel.bridge.submit = lambda task, params, listener: sent.append(params) or real_submit(task, params, listener)
    panel.prompt.setText("umbrella")
    panel.n_spin.setValue(1)
    seed_before = panel.seed.value()
    with qtbot.waitSignal(panel.jobEnded, timeout=180_000) as blocker:
        panel.gen_btn.click()
    assert blocker.args[1] == "finished", panel.error_box.text()
    assert sent[-1]["exemplars"] == [items[1]["id"]] and sent[-1]["seed"] == panel.seed.value() != seed_before
    assert panel.library.query.text() == "umbrella"  # same prompt as the search: no second search
    assert items[1]["set"] in panel.inspired.text()  # "Drawn after: ... from <set> ..., <licence>"
    panel._clear_picks()
    panel.use_library.setChecked(False)
    panel.generate()
    assert sent[-1]["exemplars"] == "off"
    wait_job(qtbot, panel)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generating_also_shows_the_librarys_drawings_of_the_prompt(qtbot, panel):
    panel.prompt.setText("bicycle")
    panel.n_spin.setValue(1)
    with qtbot.waitSignal(panel.jobEnded, timeout=180_000):
        panel.gen_btn.click()
    qtbot.waitUntil(lambda: len(panel.library.items) > 0, timeout=60_000)
    assert panel.library.query.text() == "bicycle"
    assert sum("bicycle" in it["name"] for it in panel.library.items[:8]) >= 6
    assert panel.middle.tabText(1) == f"Library ({len(panel.library.items)})"
    assert panel.middle.currentWidget() is panel.grid  # the candidates stay in front
