"""Screenshots of the real studio for the README: each panel mid-generation and after, taken from the
running app (its own engine, the shipped models) at 1280x800 with the dark theme.

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshot.py              # all five panels
    xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshot.py --panel icon # one of them

Writes docs/<panel>_panel-mid.png and docs/<panel>_panel.png for panel in shape, icon, motion, speech,
world, and docs/screenshot.png (the 3D panel after its generation) for the README's top. Each panel runs
in a process of its own with a throwaway settings folder, so no saved session or setting leaks in.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PANELS = ("shape", "icon", "motion", "speech", "world")
SIZE = (1280, 800)


class Shot:
    """Drives one panel through a short script on the Qt event loop and grabs the window on the way."""

    def __init__(self, app, win, panel, out_dir: str):
        self.app, self.win, self.panel, self.out_dir = app, win, panel, out_dir
        self.saved: list[str] = []
        self.prompt, self.seed = "", 11  # --prompt / --seed: the Icon panel's (the model's best figures vary)

    def grab(self, name: str) -> None:
        path = os.path.join(self.out_dir, name)
        self.win.grab().save(path)
        self.saved.append(path)
        print("saved", path, flush=True)

    def when(self, cond, then, timeout_s: float = 240.0, every_ms: int = 100) -> None:
        """Call `then` once `cond()` holds (checked every `every_ms`); give up after `timeout_s`."""
        from PySide6.QtCore import QTimer

        t0 = time.monotonic()

        def check():
            if cond():
                then()
            elif time.monotonic() - t0 > timeout_s:
                print(f"timed out waiting in {self.panel.task}", file=sys.stderr, flush=True)
                self.finish()
            else:
                QTimer.singleShot(every_ms, check)

        QTimer.singleShot(every_ms, check)

    def on_event(self, cond, name: str) -> None:
        """Grab `name` right after the panel has drawn the first engine event that meets `cond`
        (polling could miss a fast stage: the 3D levels come within a second)."""
        panel, orig = self.panel, self.panel.on_event

        def hook(ev):
            orig(ev)
            if name not in [os.path.basename(s) for s in self.saved] and cond(ev):
                self.grab(name)

        panel.on_event = hook

    def later(self, ms: int, then) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(ms, then)

    def finish(self) -> None:
        self.win.close()
        self.app.quit()

    # ---- one script per panel ----------------------------------------------------------------
    def shape(self) -> None:
        p = self.panel
        p.prompt.setText("a wooden chair")
        p.seed.setValue(3)
        self.on_event(lambda ev: ev.kind == "partial" and ev.data.get("level") == 4, "shape_panel-mid.png")
        p.generate()
        self.when(lambda: p.job is None and p.mesh is not None and len(p.viewport.levels) >= 3,
                  lambda: self.later(800, self._shape_done))

    def _shape_done(self) -> None:
        self.grab("shape_panel.png")
        self.grab("screenshot.png")
        self.finish()

    def icon(self) -> None:
        p = self.panel
        p.prompt.setText(self.prompt or "a star")
        p.n_spin.setValue(4)
        p.seed.setValue(self.seed)
        finished = lambda: sum(1 for t in p.grid.tiles for q in t.paths if q["cmds"])  # noqa: E731
        self.on_event(lambda ev: ev.kind == "partial" and finished() >= 4, "icon_panel-mid.png")
        p.generate()
        self.when(lambda: p.job is None and bool(p.candidates), self._icon_done)

    def _icon_done(self) -> None:
        p = self.panel
        ranked = sorted(range(len(p.candidates)), key=lambda i: -(p.scores[i] if p.scores else 0.0))
        best = next((i for i in ranked if p.candidates[i]["valid"]), ranked[0])
        p.open_candidate(best)
        if len(p.canvas.paths) > 1:
            p.canvas.select(len(p.canvas.paths) - 1)  # one path selected: the editor's handles show
        self.later(500, lambda: (self.grab("icon_panel.png"), self.finish()))

    def motion(self) -> None:
        p = self.panel
        p.command.setText("walk forward")
        p.start_session()

        def steer():  # once the character walks (the model loads first)
            self.later(1500, lambda: self._say("turn left"))
            self.later(3000, lambda: self.grab("motion_panel-mid.png"))
            self.later(4500, lambda: self._say("walk forward"))
            self.later(7500, lambda: (self.grab("motion_panel.png"), p.stop_job(), self.later(500, self.finish)))

        self.when(lambda: p.play_head >= 15, steer)

    def _say(self, text: str) -> None:
        self.panel.command.setText(text)
        self.panel.send_command()

    def speech(self) -> None:
        p = self.panel
        p.text.setPlainText("Well, that went better than I expected! Shall we try it again tomorrow?")
        p.sliders.apply_preset("happy")
        p.speak()
        self.when(lambda: p.job is not None and p.plots.trace.chunks >= 4, lambda: self.grab("speech_panel-mid.png"),
                  every_ms=20)
        self.when(lambda: p.job is None and bool(p.takes), lambda: self.later(600, self._speech_done))

    def _speech_done(self) -> None:
        self.grab("speech_panel.png")
        self.finish()

    def world(self) -> None:
        p = self.panel
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        p.fps_spin.setValue(15)
        p.toggle_start()
        self.win.activateWindow()
        p.view.setFocus()
        # real key presses on the world view, as a player's: (key, held ms)
        keys = [(Qt.Key.Key_D, 1800), (Qt.Key.Key_S, 1200), (Qt.Key.Key_D, 1500), (Qt.Key.Key_Space, 600),
                (Qt.Key.Key_W, 1200)]

        def play(i=0):
            if i == len(keys):
                self.later(300, lambda: (self.grab("world_panel.png"), p.stop_job(), self.later(500, self.finish)))
                return
            key, ms = keys[i]
            QTest.keyPress(p.view, key)
            if i == 2:
                self.later(ms // 2, lambda: self.grab("world_panel-mid.png"))
            self.later(ms, lambda: (QTest.keyRelease(p.view, key), play(i + 1)))

        self.when(lambda: p.frames_seen >= 3, play)


def run_panel(task: str, out_dir: str, prompt: str = "", seed: int = 11) -> int:
    if not os.environ.get("WEFT_CONFIG_DIR"):  # never the user's own settings or session
        os.environ["WEFT_CONFIG_DIR"] = tempfile.mkdtemp(prefix="weft-shot-")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.settings import Settings
    from app.window import MainWindow, apply_theme

    app = QApplication(sys.argv[:1])
    settings = Settings(theme="dark", autosave_s=0)
    apply_theme(app, settings.theme)
    win = MainWindow(settings, restore_session=False)
    win.resize(*SIZE)
    win.show()
    panel = win.panel_for(task)
    win.tabs.setCurrentWidget(panel)
    shot = Shot(app, win, panel, out_dir)
    shot.prompt, shot.seed = prompt, seed
    started = []

    def on_ready(_endpoint):
        if not started:  # once, not again after an engine restart
            started.append(1)
            QTimer.singleShot(1500, getattr(shot, task))  # the engine warms the open panel's model meanwhile

    win.supervisor.ready.connect(on_ready)
    QTimer.singleShot(420_000, shot.finish)  # never hang a docs build
    app.exec()
    return 0 if shot.saved else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--panel", choices=PANELS, help="one panel (default: all, each in its own process)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "docs"))
    ap.add_argument("--prompt", default="", help="Icon panel: the prompt (default 'a star')")
    ap.add_argument("--seed", type=int, default=11, help="Icon panel: the seed")
    args = ap.parse_args()
    if args.panel:
        return run_panel(args.panel, args.out_dir, args.prompt, args.seed)
    failed = []
    for task in PANELS:
        with tempfile.TemporaryDirectory() as tmp:  # settings, session and window state of this run only
            env = {**os.environ, "WEFT_CONFIG_DIR": os.path.join(tmp, "config")}
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--panel", task, "--out-dir", args.out_dir],
                               env=env, cwd=ROOT)
            if r.returncode:
                failed.append(task)
    if failed:
        print("no screenshots for:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
