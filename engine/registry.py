"""Which streaming session serves which task. Adding a panel = one line here plus its model package.

Entries are "module:Class" strings, imported only when a job for the task arrives, so the engine
starts fast; a task whose model package is absent is simply not offered.
Extra tasks (test fixtures, plug-ins) come from modules named in WEFT_ENGINE_PLUGINS
(comma-separated), each exposing a TASKS dict of the same form.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

TASKS: dict[str, str] = {
    "icon": "models.icon.stream:IconSession",
    "motion": "models.motion.stream:MotionSession",
    "shape": "models.shape.stream:ShapeSession",
    "speech": "models.speech.stream:SpeechSession",
    "world": "models.world.stream:WorldSession",
}


def _present(spec: str) -> bool:
    try:
        return importlib.util.find_spec(spec.partition(":")[0]) is not None
    except ModuleNotFoundError:
        return False


def all_tasks() -> dict[str, str]:
    tasks = {name: spec for name, spec in TASKS.items() if _present(spec)}
    for mod in filter(None, os.environ.get("WEFT_ENGINE_PLUGINS", "").split(",")):
        tasks.update(importlib.import_module(mod.strip()).TASKS)
    return tasks


def session_class(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
