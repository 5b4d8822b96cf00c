"""Weft Studio's main window: the panels as tabs, the Engine dock (live log and throughput), a status
bar with engine state, device and memory; the engine supervised in the background.

`weft` / `python -m app` starts it. With no display it says so and points to `weft-cli`.
"""
from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler

from app.settings import Settings, log_dir

log = logging.getLogger("weft.app")

NO_DISPLAY = """Weft Studio needs a display, and this session has none (no DISPLAY or WAYLAND_DISPLAY).
Everything the studio does also works from the command line, through the same engine:

    weft-cli status
    weft-cli icon "a rocket" -n 4 -o rockets/
    weft-cli --help

To see the studio on a headless machine, run it under a virtual display:  xvfb-run -a weft
"""


def has_display() -> bool:
    if sys.platform != "linux":
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def setup_logging() -> str:
    d = log_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / "studio.log"
    handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    log_path = setup_logging()
    from PySide6.QtWidgets import QApplication

    from app.window import MainWindow, apply_theme, excepthook

    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Weft Studio")
    app.setOrganizationName("Weft")
    settings = Settings.load()
    apply_theme(app, settings.theme)  # dark unless the settings say light
    sys.excepthook = excepthook
    win = MainWindow(settings)
    win.show()
    log.info("studio started; log at %s", log_path)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
