"""Make docs/motion_strip.png (and .gif): a steered Motion run drawn by the panel's skeleton view.

The run: "walk forward", then "turn left", "run", "jump", then a click on the floor (goal), each
taking effect at the next primitive. Frames come from the engine's motion session in-process.

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/motion_strip.py
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = [(0.0, {"text": "walk forward"}), (2.5, {"text": "turn left"}), (5.0, {"text": "run"}),
          (7.0, {"text": "jump"}), (9.0, {"goal": [3.0, 4.0]})]


def steered_run(seconds: float, seed: int) -> tuple[np.ndarray, list[str], list]:
    import torch

    from models.motion.stream import WEIGHTS, MotionSession, load_bundle

    torch.set_num_threads(1)
    s = MotionSession(load_bundle(WEIGHTS), "cpu")
    s.start({"text": "stand still", "seed": seed})
    script = list(SCRIPT)
    pts, cmds, goals = list(np.stack(s.points)), ["stand still"] * 2, [None] * 2
    while len(pts) < seconds * 30:
        while script and script[0][0] * 30 <= len(pts):
            s.steer(script.pop(0)[1])
        for kind, d in s.step():
            if kind == "partial":
                pts += list(d["points"])
                cmds += [d["command"]] * len(d["points"])
                goals += [d.get("goal")] * len(d["points"])
    return np.stack(pts), cmds, goals


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", default="docs/motion_strip.png")
    ap.add_argument("--gif", default="docs/motion_steered.gif")
    ap.add_argument("--seconds", type=float, default=14.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--panels", type=int, default=8)
    a = ap.parse_args()
    pts, cmds, goals = steered_run(a.seconds, a.seed)

    from PIL import Image, ImageDraw
    from PySide6.QtWidgets import QApplication

    from models.motion import rig
    from widgets.skeleton_view import SkeletonView

    app = QApplication.instance() or QApplication(sys.argv)
    view = SkeletonView()
    view.resize(320, 360)
    view.show()
    view.set_skeleton(rig.POINT_PARENTS)
    frames = []
    keep = set(np.linspace(30, len(pts) - 1, a.panels).astype(int))
    tiles = []
    for t in range(len(pts)):
        view.set_goal(goals[t])
        view.set_pose(pts[t])
        app.processEvents()
        if t % 3 == 0 or t in keep:
            img = Image.fromarray(view.canvas.render()[..., :3])
            if t % 3 == 0:
                frames.append(img.resize((240, 270)))
            if t in keep:
                d = ImageDraw.Draw(img)
                d.rectangle([0, 0, img.width, 22], fill=(20, 24, 30))
                d.text((6, 5), f"{t / 30:4.1f} s  {cmds[t]}", fill=(240, 240, 240))
                tiles.append(img)
    strip = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height))
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width
    strip.save(a.out)
    if a.gif:
        frames[0].save(a.gif, save_all=True, append_images=frames[1:], duration=100, loop=0, optimize=True)
    print(f"wrote {a.out} ({strip.width}x{strip.height}) and {a.gif} ({len(frames)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
