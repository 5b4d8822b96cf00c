"""The studio's panels, in tab order. Adding a panel = one line here (plus its engine task in
engine/registry.py and its model package under models/). Missing modules are skipped."""
from __future__ import annotations

import importlib
import importlib.util
import logging

log = logging.getLogger("weft.panels")

PANELS: list[str] = [
    "app.shape_panel:ShapePanel",
    "app.icon_panel:IconPanel",
    "app.motion_panel:MotionPanel",
    "app.speech_panel:SpeechPanel",
    "app.world_panel:WorldPanel",
]


def panel_classes() -> list[type]:
    out = []
    for spec in PANELS:
        module, _, name = spec.partition(":")
        if importlib.util.find_spec(module) is None:
            continue
        try:
            out.append(getattr(importlib.import_module(module), name))
        except Exception:
            log.exception("panel %s could not be loaded", spec)
    return out
