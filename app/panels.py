"""The studio's panels, in tab order. Adding a panel = one line here (plus its engine task in
engine/registry.py and its model package under models/)."""
from __future__ import annotations

import importlib
import logging

log = logging.getLogger("weft.panels")

PANELS: list[str] = []


def panel_classes() -> list[type]:
    out = []
    for spec in PANELS:
        module, _, name = spec.partition(":")
        try:
            out.append(getattr(importlib.import_module(module), name))
        except Exception:
            log.exception("panel %s could not be loaded", spec)
    return out
