"""Test setup: settings and caches in tmp dirs, the Qt platform chosen once for the whole run.

Qt can use one platform per process. When Xvfb is available (pytest-xvfb starts it and sets
DISPLAY), every Qt test runs on xcb so VisPy/OpenGL tests get a real GL context (Mesa llvmpipe);
otherwise widgets run offscreen and tests marked `gl` are skipped.
WEFT_BLOCK_QT=1 makes PySide6, VisPy and pyqtgraph unimportable, to prove the engine and models
run without Qt (the README test command runs tests/engine and tests/models that way too).
"""
from __future__ import annotations

import importlib.abc
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BLOCKED = ("PySide6", "shiboken6", "vispy", "pyqtgraph", "pytestqt")


class _BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked (WEFT_BLOCK_QT=1)")
        return None


if os.environ.get("WEFT_BLOCK_QT") == "1":
    sys.meta_path.insert(0, _BlockQt())


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY"))


def pytest_collection_modifyitems(config, items):
    # pytest-xvfb has started Xvfb (and set DISPLAY) by now, if it could.
    if os.environ.get("WEFT_BLOCK_QT") != "1":
        os.environ["QT_QPA_PLATFORM"] = "xcb" if _has_display() else "offscreen"
    if not _has_display():
        skip = pytest.mark.skip(reason="no X display (install xvfb) for OpenGL tests")
        for item in items:
            if "gl" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Never touch the real user's settings, cache or logs."""
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WEFT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("WEFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    yield


@pytest.fixture
def fixture_engine(monkeypatch):
    """A real engine subprocess serving the test-only sessions of tests/fixtures/sessions.py."""
    monkeypatch.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
    from engine.launch import EngineProcess

    with EngineProcess(device="cpu") as ep:
        yield ep


@pytest.fixture
def studio_engine(monkeypatch):
    """A real engine subprocess with every registered task (the product's sessions and weights)
    plus the test-only sessions."""
    monkeypatch.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
    from engine.launch import EngineProcess

    with EngineProcess(device="cpu") as ep:
        yield ep


@pytest.fixture
def engine_bridge(qtbot, studio_engine):
    """An EngineBridge (Qt) connected to `studio_engine`; pass it to a panel under test."""
    from app.bridge import EngineBridge

    bridge = EngineBridge()
    bridge.connect_to(studio_engine.endpoint)
    yield bridge
    bridge.disconnect_engine()
