"""The Motion panel: type commands and steer a character live; click the floor to send it somewhere.

The engine's motion session streams 8-frame primitives a little ahead of playback; this panel owns
the playback clock (30 fps x speed), reports how far it has played, and keeps the whole take (points,
BVH lines, commands) so it can export BVH / npz even after the engine restarts.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from app.panel import Panel
from app.project import load_npz, npz_bytes
from engine.protocol import Event
from widgets.skeleton_view import SkeletonView

FPS = 30
SPEEDS = ["0.25", "0.5", "1", "1.5", "2"]
REPORT_EVERY_S = 0.25


class MotionTake:
    """What the panel has received: frames by index (a primitive from t0 on replaces what was there)."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.points: list[np.ndarray] = []  # (J, 3) per frame
        self.bvh_lines: list[str] = []
        self.channels: list[np.ndarray] = []
        self.commands: list[tuple[int, str]] = []  # (frame, text) as given

    def put(self, t0: int, points: np.ndarray, bvh_lines: list[str] | None, channels: np.ndarray | None) -> None:
        if t0 > len(self.points):  # a gap would mean lost events: keep what we have contiguous
            t0 = len(self.points)
        del self.points[t0:], self.bvh_lines[t0:], self.channels[t0:]
        self.points += list(np.asarray(points, np.float32))
        if bvh_lines is not None:
            self.bvh_lines += list(bvh_lines)
        if channels is not None:
            self.channels += list(np.asarray(channels, np.float32))

    def __len__(self) -> int:
        return len(self.points)

    def bvh_text(self, header: str) -> str:
        n = min(len(self.bvh_lines), len(self.points))
        return header + f"MOTION\nFrames: {n}\nFrame Time: {1 / FPS:.8f}\n" + "\n".join(self.bvh_lines[:n]) + "\n"


class MotionPanel(Panel):
    title = "Motion"
    task = "motion"
    import_formats = (".bvh",)
    can_export = True

    def __init__(self, bridge, settings, parent=None):
        super().__init__(bridge, settings, parent)
        self.take = MotionTake()
        self.header: str | None = None
        self.parents: list[int] | None = None
        self.play_head = 0.0  # frames, fractional
        self.playing = True
        self.speed = 1.0
        self.goal = None
        self._last_tick = time.monotonic()
        self._last_report = 0.0
        self.stats_text = ""

        self.view = SkeletonView()
        self.view.floorClicked.connect(self.set_goal)

        self.command = QLineEdit()
        self.command.setPlaceholderText("Type a command and press Enter: walk forward, turn left, jump, run, wave ...")
        self.command.returnPressed.connect(self.send_command)
        self.send_btn = QPushButton("Send")
        self.send_btn.clicked.connect(self.send_command)
        self.start_btn = QPushButton("Start")
        self.start_btn.clicked.connect(self.toggle_session)
        self.play_btn = QPushButton("Pause")
        self.play_btn.clicked.connect(self.toggle_play)
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.clicked.connect(self.reset)
        self.speed_box = QComboBox()
        self.speed_box.addItems([f"{s}x" for s in SPEEDS])
        self.speed_box.setCurrentIndex(2)
        self.speed_box.currentIndexChanged.connect(self._speed_changed)
        self.goal_box = QCheckBox("Click floor to set goal")
        self.goal_box.toggled.connect(lambda on: setattr(self.view, "click_to_goal", on))
        self.import_btn = QPushButton("Import BVH…")
        self.import_btn.clicked.connect(self.import_bvh_dialog)
        self.export_btn = QPushButton("Export BVH…")
        self.export_btn.clicked.connect(self.export_bvh_dialog)
        self.npz_btn = QPushButton("Export npz…")
        self.npz_btn.clicked.connect(self.export_npz_dialog)
        self.timeline = QListWidget()
        self.timeline.setMaximumWidth(260)
        self.status = QLabel("Press Start, then type commands.")
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        row1 = QHBoxLayout()
        row1.addWidget(self.command, 1)
        row1.addWidget(self.send_btn)
        row2 = QHBoxLayout()
        for w in (self.start_btn, self.play_btn, self.reset_btn, QLabel("Speed"), self.speed_box, self.goal_box):
            row2.addWidget(w)
        row2.addStretch(1)
        for w in (self.import_btn, self.export_btn, self.npz_btn):
            row2.addWidget(w)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QLabel("Commands"))
        sl.addWidget(self.timeline)
        split = QSplitter()
        split.addWidget(self.view)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        self.root.addLayout(row1)
        self.root.addLayout(row2)
        self.root.addWidget(split, 1)
        self.root.addWidget(self.status)

        self.fields.watch(self.command, "command")
        self.fields.watch(self.speed_box, "speed")
        self.jobEnded.connect(lambda *_: self._update_buttons())
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / FPS))
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self._update_buttons()

    # ---- session -----------------------------------------------------------------------------
    def toggle_session(self) -> None:
        if self.job:
            self.stop_job()
        else:
            self.start_session()

    def start_session(self, params: dict | None = None) -> str | None:
        text = self.command.text().strip() or "stand still"
        p = {"text": text, "speed": self.speed, **(params or {})}
        self.take.clear()
        self.timeline.clear()
        self.view.clear()
        self.play_head = 0.0
        self.header, self.parents = None, None
        job = self.run_job(p)
        if job and "bvh" not in p:
            self._log_command(0, text)
        self.playing = True
        self._update_buttons()
        return job

    def send_command(self) -> None:
        text = self.command.text().strip()
        if not text:
            self.error_box.show_error("Type a command first, e.g. 'walk forward'.")
            return
        if not self.job:
            self.start_session()
            return
        at = int(self.play_head) + 1
        self.bridge.steer(self.job, {"text": text, "at": at})
        self._log_command(at, text)

    def set_goal(self, x: float, z: float) -> None:
        self.goal = (x, z)
        self.view.set_goal(self.goal)
        if not self.job:
            self.start_session({"goal": [x, z]})
        else:
            self.bridge.steer(self.job, {"goal": [x, z], "at": int(self.play_head) + 1})
        self._log_command(int(self.play_head) + 1, f"go to ({x:.1f}, {z:.1f})")

    def reset(self) -> None:
        self.goal = None
        self.view.set_goal(None)
        if self.job:
            self.bridge.steer(self.job, {"reset": True, "text": "stand still"})
        self.view.clear()
        self.take.clear()
        self.play_head = 0.0
        self._log_command(0, "reset")

    def toggle_play(self) -> None:
        self.playing = not self.playing
        if self.job:
            self.bridge.pause(self.job, not self.playing)
            if self.playing:
                self._report(force=True)
        self._update_buttons()

    def _speed_changed(self, i: int) -> None:
        self.speed = float(SPEEDS[i])
        if self.job:
            self.bridge.steer(self.job, {"speed": self.speed, "played": int(self.play_head)})

    # ---- events ------------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "progress" and d.get("warning"):
            self.status.setText(str(d["warning"]))
        if ev.kind == "progress" and "skeleton" in d:
            self.parents = list(d["skeleton"]["parents"])
            self.view.set_skeleton(self.parents)
            self.header = d.get("bvh_header")
        elif ev.kind == "partial" and "points" in d:
            if d.get("reset"):
                self.take.clear()
                self.play_head = 0.0
                self.view.clear()
            self.take.put(int(d["t0"]), d["points"], d.get("bvh"), d.get("channels"))
            if d.get("goal_reached"):
                self.goal = None
                self.view.set_goal(None)
                self._log_command(int(d["t0"]), "goal reached")
        elif ev.kind == "stats":
            fps, lat = d.get("gen_fps"), d.get("command_latency_ms")
            self.stats_text = f"generating {fps} frames/s" + (f", command latency {lat} ms" if lat else "")

    # ---- playback ----------------------------------------------------------------------------
    def tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        if not len(self.take):
            return
        if self.playing:
            self.play_head = min(self.play_head + dt * FPS * self.speed, len(self.take) - 1)
        self.view.set_pose(self.take.points[int(self.play_head)])
        self._report()
        self.status.setText(f"frame {int(self.play_head)} / {len(self.take)} buffered"
                            + (f" · {self.stats_text}" if self.stats_text else "")
                            + ("" if self.playing else " · paused"))

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.job and (force or now - self._last_report > REPORT_EVERY_S):
            self._last_report = now
            self.bridge.steer(self.job, {"played": int(self.play_head)})

    # ---- import / export ---------------------------------------------------------------------
    def import_bvh_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import BVH", "", "BVH motion (*.bvh)")
        if path:
            self.import_bvh(path)

    def import_bvh(self, path: str) -> str | None:
        """Play a BVH file through the engine (a broken file comes back as a plain error)."""
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as e:
            self.error_box.show_error(f"Could not read {path}: {e.strerror or e}")
            return None
        if self.job:
            self.stop_job()
        job = self.start_session({"bvh": text})
        self._log_command(0, f"import {Path(path).name}")
        return job

    def export_bvh_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export BVH", "motion.bvh", "BVH motion (*.bvh)")
        if path:
            self.export_bvh(path)

    def export_bvh(self, path: str) -> bool:
        if not self.header or not self.take.bvh_lines:
            self.error_box.show_error("Nothing to export yet: start a session (imported clips of another skeleton "
                                      "can be exported as npz only).")
            return False
        Path(path).write_text(self.take.bvh_text(self.header))
        return True

    def export_npz_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export npz", "motion.npz", "NumPy archive (*.npz)")
        if path:
            self.export_npz(path)

    def export_npz(self, path: str) -> bool:
        if not len(self.take):
            self.error_box.show_error("Nothing to export yet: start a session first.")
            return False
        arrays = {"points": np.stack(self.take.points), "fps": np.array(FPS),
                  "parents": np.array(self.parents or [], np.int64),
                  "command_frames": np.array([f for f, _ in self.take.commands], np.int64),
                  "command_texts": np.array([t for _, t in self.take.commands])}
        if self.take.channels:
            arrays["channels"] = np.stack(self.take.channels)
        np.savez(path, **arrays)
        return True

    # ---- File menu ---------------------------------------------------------------------------
    def open_file(self, path: str) -> bool:
        return self.import_bvh(path) is not None

    def file_import(self) -> None:
        self.import_bvh_dialog()

    def file_export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export the motion", "motion.bvh",
                                                   "BVH motion (*.bvh);;NumPy archive (*.npz)")
        if not path:
            return
        if Path(path).suffix.lower() not in (".bvh", ".npz"):
            path += ".npz" if "npz" in chosen else ".bvh"
        (self.export_npz if path.lower().endswith(".npz") else self.export_bvh)(path)

    # ---- results in project files -------------------------------------------------------------
    def save_results(self) -> dict[str, bytes]:
        if not len(self.take):
            return {}
        arrays = {"points": np.stack(self.take.points), "parents": np.array(self.parents or [], np.int64),
                  "command_frames": np.array([f for f, _ in self.take.commands], np.int64),
                  "command_texts": np.array([t for _, t in self.take.commands], dtype=str),
                  "bvh_header": np.array(self.header or ""), "bvh_lines": np.array(self.take.bvh_lines, dtype=str)}
        if self.take.channels:
            arrays["channels"] = np.stack(self.take.channels)
        out = {"take.npz": npz_bytes(**arrays)}
        if self.header and self.take.bvh_lines:
            out["take.bvh"] = self.take.bvh_text(self.header).encode()
        return out

    def restore_results(self, files: dict[str, bytes]) -> None:
        self.take.clear()
        self.timeline.clear()
        self.view.clear()
        self.play_head = 0.0
        self.header, self.parents = None, None
        if "take.npz" not in files:
            return
        try:
            z = load_npz(files["take.npz"])
            points = np.asarray(z["points"], np.float32)
            if points.ndim != 3 or points.shape[2] != 3:
                raise ValueError(f"joint positions of shape {points.shape}")
            parents = [int(p) for p in z["parents"]]
            if parents and len(parents) != points.shape[1]:
                raise ValueError(f"{len(parents)} parents for {points.shape[1]} joints")
            lines = [str(x) for x in z.get("bvh_lines", [])]
            channels = np.asarray(z["channels"], np.float32) if "channels" in z else None
            self.take.put(0, points, lines or None, channels)
            self.header = str(z.get("bvh_header", "")) or None
            if parents:
                self.parents = parents
                self.view.set_skeleton(parents)
            for frame, text in zip(z.get("command_frames", []), z.get("command_texts", [])):
                self._log_command(int(frame), str(text))
        except (KeyError, ValueError, TypeError, OSError) as e:
            self.take.clear()
            self.error_box.show_error(f"The project's motion could not be read ({e}); the inputs were restored.")
            return
        self.view.set_pose(self.take.points[0])
        self.status.setText(f"{len(self.take)} frames from the project; press Start for a new take.")

    # ---- helpers -----------------------------------------------------------------------------
    def _log_command(self, frame: int, text: str) -> None:
        self.take.commands.append((frame, text))
        self.timeline.addItem(f"{frame / FPS:6.1f} s  {text}")
        self.timeline.scrollToBottom()

    def _update_buttons(self) -> None:
        self.start_btn.setText("Stop" if self.job else "Start")
        self.play_btn.setText("Pause" if self.playing else "Play")

    def save_state(self) -> dict:
        return {"command": self.command.text(), "speed": self.speed_box.currentIndex()}

    def restore_state(self, state: dict) -> None:
        try:  # a hand-edited file must not break the panel
            command, speed = str(state.get("command", "")), int(state.get("speed", 2))
        except (TypeError, ValueError):
            return
        self.command.setText(command)
        if 0 <= speed < self.speed_box.count():
            self.speed_box.setCurrentIndex(speed)
