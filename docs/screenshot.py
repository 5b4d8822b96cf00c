"""Take the README screenshot: start the studio (under Xvfb on a headless machine), wait for the
engine, optionally switch to a panel and run its default job, grab the window.

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshot.py -o docs/screenshot.png [--tab Icon]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", default="docs/screenshot.png")
    ap.add_argument("--tab", default="")
    ap.add_argument("--wait-ms", type=int, default=4000, help="after the engine is ready")
    ap.add_argument("--theme", default="dark")
    ap.add_argument("--speak", default="", help="Speech tab: text to speak once the engine is ready")
    ap.add_argument("--preset", default="", help="Speech tab: emotion preset for --speak")
    ap.add_argument("--mid-ms", type=int, default=0, help="also grab <out>-mid.png this long after --speak")
    ap.add_argument("--prompt", default="", help="3D tab: prompt to generate once the engine is ready")
    ap.add_argument("--after-ms", type=int, default=0, help="3D / Speech tab: wait this long before --prompt / --speak")
    ap.add_argument("--start", type=int, default=-1, help="World tab: start frame index to play from")
    ap.add_argument("--play", default="", help="World tab: start, then hold keys 'ACTION:MS,ACTION:MS,...'")
    args = ap.parse_args()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.settings import Settings
    from app.window import MainWindow, apply_theme

    app = QApplication(sys.argv)
    settings = Settings(theme=args.theme)
    apply_theme(app, settings.theme)
    win = MainWindow(settings)
    win.resize(1360, 860)
    win.show()
    for i in range(win.tabs.count()):
        if win.tabs.tabText(i) == args.tab:
            win.tabs.setCurrentIndex(i)

    def grab():
        win.grab().save(args.out)
        print("saved", args.out)
        win.close()
        app.quit()

    def grab_mid():
        mid = args.out.replace(".png", "-mid.png")
        win.grab().save(mid)
        print("saved", mid)

    def on_ready(_):
        win.bridge.request_status()
        if args.speak:  # after --after-ms (the engine loads the open tab's model meanwhile)
            panel = win.tabs.currentWidget()

            def say():
                panel.text.setPlainText(args.speak)
                if args.preset:
                    panel.sliders.apply_preset(args.preset)
                panel.speak()
                if args.mid_ms:
                    QTimer.singleShot(args.mid_ms, grab_mid)
            QTimer.singleShot(args.after_ms, say)
        if args.prompt:  # typed after --after-ms (the engine loads the open tab's model meanwhile)
            panel = win.tabs.currentWidget()

            def go():
                panel.prompt.setText(args.prompt)
                panel.generate()
                if args.mid_ms:
                    QTimer.singleShot(args.mid_ms, grab_mid)
            QTimer.singleShot(args.after_ms, go)
        if args.play:
            panel = win.tabs.currentWidget()
            if args.start >= 0:
                panel.start_box.setCurrentIndex(args.start)
            panel.toggle_start()
            t = 1500  # let the session load and show the start frame
            for item in args.play.split(","):
                action, ms = item.split(":")
                QTimer.singleShot(t, lambda a=action: panel.on_action(a))
                t += int(ms)
            QTimer.singleShot(t, lambda: panel.on_action("noop"))
        QTimer.singleShot(args.wait_ms, grab)

    win.supervisor.ready.connect(on_ready)
    QTimer.singleShot(120_000, grab)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
