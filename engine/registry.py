"""Which streaming session serves which task. Adding a panel = one line here plus its model package.

Entries are "module:Class" strings, imported only when a job for the task arrives, so the engine
starts fast and a task whose model package is missing fails alone with a clear message.
Extra tasks (test fixtures, plug-ins) come from modules named in WEFT_ENGINE_PLUGINS
(comma-separated), each exposing a TASKS dict of the same form.
"""
from __future__ import annotations

import importlib
import os

TASKS: dict[str, str] = {}


def all_tasks() -> dict[str, str]:
    tasks = dict(TASKS)
    for mod in filter(None, os.environ.get("WEFT_ENGINE_PLUGINS", "").split(",")):
        tasks.update(importlib.import_module(mod.strip()).TASKS)
    return tasks


def session_class(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
