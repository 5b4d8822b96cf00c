"""The World panel: walk through a generated Crafter world with the keyboard, in real time.

Start picks a real start frame of a held-out world; the engine's World session then makes one frame
per tick for the key currently held (steered through the bridge), and every frame is drawn as soon
as it arrives. Pause / resume, reset to the chosen start, record to MP4 or GIF.

Until the engine has the World model loaded the panel says "loading model…"; Start can be pressed
meanwhile, and keys pressed before the first frame are kept and played first, one frame each.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from app.panel import Panel
from app.project import load_npz, npz_bytes
from app.world_video import write_video
from engine.protocol import Event
from widgets.world_view import KeyLegend, WorldView

STARTS = Path(__file__).resolve().parents[1] / "assets" / "world" / "starts.npz"
MAX_RECORD = 60 * 60 * 10  # frames kept while recording (10 minutes at 60 FPS)
MAX_PROJECT_FRAMES = 3600  # recordings up to this long (~44 MB raw, much less compressed) go into project files
MAX_PENDING_KEYS = 64


def start_labels() -> list[str]:
    """Labels of the shipped start frames (read without the model; the session confirms them)."""
    try:
        with np.load(STARTS) as z:
            return [f"world {int(s)} at step {int(t)}" for s, t in zip(z["seeds"], z["steps"])]
    except (OSError, KeyError, ValueError):
        return ["start 0"]


class WorldPanel(Panel):
    title = "World"
    task = "world"
    can_export = True  # the recording

    def __init__(self, bridge, settings, parent=None):
        super().__init__(bridge, settings, parent)
        body = QHBoxLayout()
        self.root.addLayout(body, 1)
        self.view = WorldView()
        body.addWidget(self.view, 1)
        side_w = QWidget()
        side = QVBoxLayout(side_w)
        side.setContentsMargins(0, 0, 4, 0)
        self.side_scroll = QScrollArea()  # the key legend is long: it scrolls when the window is short
        self.side_scroll.setWidgetResizable(True)
        self.side_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body.addWidget(self.side_scroll)

        form_box = QGroupBox("World")
        form = QFormLayout(form_box)
        self.start_box = QComboBox()
        labels = start_labels()
        self.start_box.addItems(labels)
        # open on a mid-play start (trees, water, creatures) rather than a bare meadow
        self.start_box.setCurrentIndex(next((i for i, t in enumerate(labels) if not t.endswith(" 0")), 0))
        self.start_box.setToolTip("A real start frame from a Crafter world the model never saw in training")
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(1, 60)
        self.fps_spin.setValue(15)
        self.fps_spin.setSuffix(" FPS")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 8)
        self.steps_spin.setValue(2)
        self.steps_spin.setToolTip("Token-parallel steps per frame: more is slower and a little sharper")
        self.temp_spin = QDoubleSpinBox()
        self.temp_spin.setRange(0.0, 2.0)
        self.temp_spin.setSingleStep(0.1)
        self.temp_spin.setValue(0.8)
        self.temp_spin.setToolTip("0 = always the most likely tile (steady, but the world empties into meadow);"
                                  " 0.8 (default) or more = sampled: new trees, water and animals appear as you walk")
        form.addRow("Start", self.start_box)
        form.addRow("Target rate", self.fps_spin)
        form.addRow("Steps / frame", self.steps_spin)
        form.addRow("Temperature", self.temp_spin)
        side.addWidget(form_box)

        row = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.pause_btn = QPushButton("Pause")
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.setToolTip("Back to the chosen start frame (while the world runs)")
        for b in (self.start_btn, self.pause_btn, self.reset_btn):
            row.addWidget(b)
        side.addLayout(row)
        row2 = QHBoxLayout()
        self.record_btn = QPushButton("Record")
        self.record_btn.setCheckable(True)
        self.save_btn = QPushButton("Save recording…")
        row2.addWidget(self.record_btn)
        row2.addWidget(self.save_btn)
        side.addLayout(row2)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        side.addWidget(self.info)

        legend_box = QGroupBox("Keys (click the world first)")
        lv = QVBoxLayout(legend_box)
        self.legend = KeyLegend()
        lv.addWidget(self.legend)
        side.addWidget(legend_box)
        side.addStretch(1)
        self.side_scroll.setWidget(side_w)
        self.side_scroll.setMinimumWidth(side_w.sizeHint().width() + self.side_scroll.verticalScrollBar().sizeHint().width())

        self.paused = False
        self.model_loaded = False  # the engine said it holds the World model (or sent a frame)
        self.frames_seen = 0  # frames of the current job
        self.pending_keys: list[str] = []  # keys pressed before the first frame: played first, one frame each
        self.resets = 0  # start frames shown (the first one, then one per Reset)
        self.recorded: list[np.ndarray] = []
        self._recording_npz: tuple = (None, b"")  # (what it was made from, npz bytes) for project files
        self._key_ids = itertools.count(1)
        self._key_times: dict[int, float] = {}
        self.start_btn.clicked.connect(self.toggle_start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.reset_btn.clicked.connect(self.reset_world)
        self.record_btn.toggled.connect(self.set_recording)
        self.save_btn.clicked.connect(self.ask_save)
        self.view.actionChanged.connect(self.on_action)
        self.fps_spin.valueChanged.connect(lambda v: self._steer({"fps": v}))
        self.steps_spin.valueChanged.connect(lambda v: self._steer({"steps": v}))
        self.temp_spin.valueChanged.connect(lambda v: self._steer({"temperature": v}))
        self.fields.add("start", self.start_box.currentIndex, self.start_box.setCurrentIndex,
                        self.start_box.currentIndexChanged)
        for w, label in ((self.fps_spin, "target rate"), (self.steps_spin, "steps"), (self.temp_spin, "temperature")):
            self.fields.watch(w, label)
        self.bridge.statusReceived.connect(self._engine_status)
        self._sync_buttons()
        self._show_idle()

    # ---- controls -------------------------------------------------------------------------
    def params(self) -> dict:
        return {"start": self.start_box.currentIndex(), "fps": self.fps_spin.value(),
                "steps": self.steps_spin.value(), "temperature": self.temp_spin.value(), "max_frames": 0,
                "action": self.view.keys.action, "seed": int(time.time()) % 100_000}

    def toggle_start(self) -> None:
        if self.job:
            self.stop_job()
            return
        self.paused = False
        self.view.paused = False
        self.view.clock.reset()
        self.frames_seen = 0
        self.pending_keys = []
        if self.run_job(self.params()):
            self.info.setText("Starting the world…" if self.model_loaded else
                              "loading model… the world starts by itself; keys pressed meanwhile are kept.")
            self.view.status = "starting…" if self.model_loaded else "loading model… (keys you press are kept)"
            self.view.update()
            self.view.setFocus(Qt.FocusReason.OtherFocusReason)
        self._sync_buttons()

    def toggle_pause(self) -> None:
        if not self.job:
            return
        self.paused = not self.paused
        self.bridge.pause(self.job, self.paused)
        self.view.paused = self.paused
        self.view.clock.reset()
        self._sync_buttons()
        self.view.update()

    def reset_world(self) -> None:
        if not self.job:
            self.toggle_start()
            return
        self._steer({"reset": True, "start": self.start_box.currentIndex()})
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def on_action(self, action: str) -> None:
        self.legend.set_active(action)
        if not self.job:
            return
        if not self.frames_seen:  # the session has not started: keep the key for its first frames
            if action != "noop" and len(self.pending_keys) < MAX_PENDING_KEYS:
                self.pending_keys.append(action)
                self.info.setText(f"loading model… {len(self.pending_keys)} key(s) kept; they play when the world "
                                  "starts.")
            return
        self._send_key(action)

    def _send_key(self, action: str) -> None:
        key_id = next(self._key_ids)
        self._key_times[key_id] = time.monotonic()
        if len(self._key_times) > 256:  # keys whose frames never came (job ended) must not pile up
            self._key_times.pop(next(iter(self._key_times)))
        self._steer({"action": action, "key_id": key_id})

    def _steer(self, params: dict) -> None:
        if self.job:
            self.bridge.steer(self.job, params)

    # ---- recording ------------------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        if on:
            self.recorded = []
        self.view.recording = on
        self.record_btn.setText("Stop recording" if on else "Record")
        self._sync_buttons()
        self.view.update()

    def save_recording(self, path: str | Path) -> Path:
        """Write the recorded frames to MP4 or GIF; errors show in the panel and are raised."""
        try:
            out = write_video(self.recorded, path, fps=float(self.fps_spin.value()))
        except (ValueError, OSError, RuntimeError) as e:
            self.error_box.show_error(f"Could not save the recording: {e}")
            raise
        self.info.setText(f"Saved {len(self.recorded)} frames to {out}")
        return out

    def ask_save(self) -> None:
        if not self.recorded:
            self.error_box.show_error("Nothing recorded yet: press Record while the world runs.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save recording", "world.mp4", "Video (*.mp4 *.gif)")
        if path:
            try:
                self.save_recording(path)
            except (ValueError, OSError, RuntimeError):
                pass

    # ---- events ---------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "partial" and "frame" in d:
            self.frames_seen += 1
            self.model_loaded = True
            if self.frames_seen == 1:
                self._sync_buttons()  # Pause and Reset work from the first frame on
            if self.pending_keys:  # keys pressed while loading: one per frame, in order
                self._send_key(self.pending_keys.pop(0))
                if not self.pending_keys and self.view.keys.action != "noop":
                    self.pending_keys.append(self.view.keys.action)  # then the key still held
            elif self.frames_seen == 1 and self.view.keys.action != "noop":
                self._send_key(self.view.keys.action)
            now = time.monotonic()
            self.view.show_frame(d["frame"], d.get("index"), now)
            key_id = d.get("key_id")
            if key_id in self._key_times:
                self.view.clock.add_latency(1000 * (now - self._key_times.pop(key_id)))
            if d.get("action") == "reset":
                self.resets += 1
                self.view.clock.reset()
            if self.record_btn.isChecked() and len(self.recorded) < MAX_RECORD:
                self.recorded.append(np.array(d["frame"], copy=True))
        elif ev.kind == "progress":
            if "starts" in d and len(d["starts"]) == self.start_box.count():
                for i, label in enumerate(d["starts"]):
                    self.start_box.setItemText(i, label)
            if "decoder" in d:
                self.info.setText(f"Playing: {d.get('steps')} steps per frame, decoder {d['decoder']}")
        elif ev.kind == "stats":
            parts = [f"{d.get('fps_recent', 0):.1f} FPS in the engine"]
            if "gen_ms_p50" in d:
                parts.append(f"model {d['gen_ms_p50']:.0f} ms + decoder {d['decode_ms_p50']:.1f} ms per frame")
            if "rss_mb" in d:
                parts.append(f"engine memory {d['rss_mb']:.0f} MB")
            self.info.setText("\n".join(parts))
        if ev.terminal:
            self.paused = False
            self.view.paused = False
            self._key_times.clear()
            if self.pending_keys and ev.kind != "finished":
                self.info.setText(f"Stopped before the world started; {len(self.pending_keys)} key(s) pressed "
                                  "meanwhile were not played.")
            elif ev.kind == "cancelled":
                self.info.setText("Stopped.")
            self.pending_keys = []
            if not self.frames_seen:
                QTimer.singleShot(0, self._show_idle)
            QTimer.singleShot(0, self._sync_buttons)  # after Panel has cleared `job`

    def _sync_buttons(self) -> None:
        running = self.job is not None
        self.start_btn.setText("Stop" if running else "Start")
        self.pause_btn.setEnabled(running and self.frames_seen > 0)
        self.pause_btn.setText("Resume" if self.paused else "Pause")
        self.reset_btn.setEnabled(running and self.frames_seen > 0)
        self.save_btn.setEnabled(bool(self.recorded) and not self.record_btn.isChecked())

    # ---- loading ----------------------------------------------------------------------------
    def _engine_status(self, st: dict) -> None:
        loaded = "world" in st.get("loaded", [])
        if loaded != self.model_loaded and not self.frames_seen:
            self.model_loaded = loaded
            if not self.job:
                self._show_idle()

    def _show_idle(self) -> None:
        """What the idle world says: loading, or ready to start."""
        if self.job or self.view.image is not None:
            return
        if not self.bridge.connected:
            text = "waiting for the engine…"
        elif not self.model_loaded:
            text = "loading model…"
        else:
            text = "Ready: press Start, then click here and play with the keys"
        self.view.status = text
        self.info.setText(text)
        self.view.update()

    # ---- File menu / project ----------------------------------------------------------------
    def file_export(self) -> None:
        self.ask_save()

    def save_results(self) -> dict[str, bytes]:
        if not self.recorded or len(self.recorded) > MAX_PROJECT_FRAMES:
            return {}  # a longer recording: save it as MP4 (Save recording…); projects stay small
        key = (len(self.recorded), id(self.recorded[-1]), self.fps_spin.value())
        if self._recording_npz[0] != key:  # compressing a long recording takes a while: once per change
            self._recording_npz = (key, npz_bytes(frames=np.stack(self.recorded), fps=np.array(self.fps_spin.value())))
        return {"recording.npz": self._recording_npz[1]}

    def restore_results(self, files: dict[str, bytes]) -> None:
        self.recorded = []
        if "recording.npz" in files:
            try:
                frames = np.asarray(load_npz(files["recording.npz"])["frames"], np.uint8)
                if frames.ndim != 4 or frames.shape[3] != 3:
                    raise ValueError(f"frames of shape {frames.shape}")
                self.recorded = list(frames[:MAX_RECORD])
            except (KeyError, ValueError, TypeError, OSError) as e:
                self.error_box.show_error(f"The project's recording could not be read ({e}); the inputs were restored.")
        if self.recorded:
            self.view.show_frame(self.recorded[-1], len(self.recorded))
            self.info.setText(f"{len(self.recorded)} recorded frames from the project (Save recording… writes them).")
        self._sync_buttons()

    # ---- state kept across restarts ---------------------------------------------------------
    def save_state(self) -> dict:
        return {"start": self.start_box.currentIndex(), "fps": self.fps_spin.value(), "steps": self.steps_spin.value(),
                "temperature": round(self.temp_spin.value(), 2)}

    def restore_state(self, state: dict) -> None:
        try:
            start = int(state.get("start", self.start_box.currentIndex()))
            fps, steps = int(state.get("fps", self.fps_spin.value())), int(state.get("steps", self.steps_spin.value()))
            temperature = float(state.get("temperature", self.temp_spin.value()))
        except (TypeError, ValueError):  # a hand-edited settings file must not break the panel
            return
        if 0 <= start < self.start_box.count():
            self.start_box.setCurrentIndex(start)
        self.fps_spin.setValue(fps)
        self.steps_spin.setValue(steps)
        self.temp_spin.setValue(temperature)

