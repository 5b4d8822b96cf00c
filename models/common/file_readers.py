"""The parsing work of each panel's file imports, as module-level functions of one argument.

The engine runs them in a limited child process (engine/sandbox.py) before a job starts, so a
malformed or huge file can neither stall the scheduler nor exhaust the engine's memory; the
sessions accept the result as `params["parsed"]` (and still parse themselves when called
in-process without it). Each raises a ValueError subclass with a plain sentence on bad input.
"""
from __future__ import annotations

import numpy as np


def icon_svg(svg: str) -> list[dict]:
    """SVG document text -> the icon's wire paths (IconPath.to_wire())."""
    from models.icon.svg import IconError, parse_svg

    if not isinstance(svg, str) or not svg.strip():
        raise ValueError("the file is empty or not text; choose an SVG file")
    try:
        return [p.to_wire() for p in parse_svg(svg)]
    except IconError as e:
        raise ValueError(str(e)) from None


def motion_bvh(text: str):
    """BVH file text -> a parsed BVHClip (models.motion.bvh)."""
    from models.motion import bvh

    return bvh.parse(text)


def shape_sketch(image) -> np.ndarray:
    """A sketch image ((H, W) or (H, W, 3|4)) -> the model's (64, 64) framing."""
    from models.shape.data import prepare_user_sketch

    return prepare_user_sketch(np.asarray(image))
