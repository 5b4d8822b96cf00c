"""Render docs/shape_gallery.png (8 text prompts + 4 mouse-drawn sketches, each turned into a 3D
shape by the shipped model) and docs/shape_levels.png (one prompt growing coarse-to-fine).

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/shape_gallery.py

Shapes are generated in-process with the engine's ShapeSession code and drawn with the panel's
own VisPy viewport; sketches are drawn on the panel's SketchPad with strokes, as a user would.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

PROMPTS = ["a wooden chair", "a table lamp", "a bookshelf", "a sofa", "a mug", "a pine tree", "a sword", "a house"]
SKETCHES = {  # name: (view, strokes in a 256 px pad)
    "chair (side)": ("side", [[(80, 40), (80, 230)], [(80, 140), (180, 140)], [(180, 140), (180, 230)],
                              [(80, 150), (180, 150)]]),
    "table (front)": ("front", [[(30, 90), (226, 90)], [(30, 100), (226, 100)], [(45, 100), (45, 220)],
                                [(211, 100), (211, 220)]]),
    "lamp (front)": ("front", [[(90, 40), (166, 40), (196, 110), (60, 110), (90, 40)], [(128, 110), (128, 215)],
                               [(80, 220), (176, 220)]]),
    "tower (front)": ("front", [[(95, 230), (95, 70), (128, 25), (161, 70), (161, 230), (95, 230)],
                                [(115, 230), (115, 190), (141, 190), (141, 230)]]),
}


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    torch.set_num_threads(1)
    from PySide6.QtWidgets import QApplication

    from models.common.text import shared_encoder
    from models.shape.stream import generate_shape, load_model
    from widgets.shape_view import ShapeViewport
    from widgets.sketch_pad import SketchPad

    app = QApplication.instance() or QApplication(sys.argv)
    bundle = {"model": load_model(), "encoder": shared_encoder()}
    vp = ShapeViewport(bgcolor="#26282c")
    vp.resize(300, 300)
    vp.show()
    vp.grid.visible = True
    app.processEvents()

    def render(levels=None, mesh=None, level=None) -> Image.Image:
        vp.clear_shape()
        for d in levels or []:
            vp.add_level(d["level"], d["centres"], d["states"], d["size"], d["grid"])
        if mesh is not None:
            vp.set_final_mesh(*mesh)
        vp.show_level(level)
        app.processEvents()
        return Image.fromarray(vp.render_image()[..., :3])

    def label(img: Image.Image, text: str) -> Image.Image:
        out = Image.new("RGB", (img.width, img.height + 26), (26, 27, 30))
        out.paste(img, (0, 0))
        ImageDraw.Draw(out).text((8, img.height + 6), text, fill=(230, 230, 230))
        return out

    tiles = []
    for i, prompt in enumerate(PROMPTS):
        out = generate_shape(bundle, prompt, seed=i, guidance=2.5)
        tiles.append(label(render(mesh=(out["vertices"], out["faces"])), f'"{prompt}"'))
    pad = SketchPad(256)
    for i, (name, (view, strokes)) in enumerate(SKETCHES.items()):
        pad.clear()
        for s in strokes:
            pad.add_stroke(s)
        drawing = pad.image()
        out = generate_shape(bundle, sketch=drawing, view=view, seed=i, guidance=2.5)
        img = render(mesh=(out["vertices"], out["faces"]))
        inset = Image.fromarray(drawing).convert("RGB").resize((96, 96))
        img.paste(inset, (img.width - 100, 4))
        tiles.append(label(img, f"sketch: {name}"))
    w, h = tiles[0].size
    sheet = Image.new("RGB", (4 * w, 3 * h), (26, 27, 30))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % 4) * w, (k // 4) * h))
    sheet.save(ROOT / "docs" / "shape_gallery.png")

    out = generate_shape(bundle, "a sofa", seed=0, guidance=2.5)
    levels = out["levels"]
    strip = [label(render(levels=levels, level=d["level"]), f"level {d['level']}: {d['grid']}^3") for d in levels]
    strip.append(label(render(levels=levels, mesh=(out["vertices"], out["faces"])), "mesh"))
    sheet = Image.new("RGB", (len(strip) * w, h), (26, 27, 30))
    for k, t in enumerate(strip):
        sheet.paste(t, (k * w, 0))
    sheet.save(ROOT / "docs" / "shape_levels.png")
    print("wrote docs/shape_gallery.png and docs/shape_levels.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
