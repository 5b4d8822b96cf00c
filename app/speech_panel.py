"""The Speech panel: type text, pick a voice, set eight emotion sliders and a duration, hear it stream.

Audio plays from the first chunk the engine sends while the rest is still being generated; the
waveform, spectrogram and pitch grow with it. Moving a slider mid-take steers the running job (at
most ~10 times a second) and applies from the engine's next chunk. Finished takes go into a list
to replay (double click) and export as WAV; they live in the panel, so an engine restart loses none.
"""
from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut, QUndoCommand
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPlainTextEdit,
                               QProgressBar, QPushButton, QRadioButton, QScrollArea, QSpinBox, QSplitter, QVBoxLayout,
                               QWidget)

from app.audio_out import AudioOut
from app.panel import Panel
from app.project import load_npz, npz_bytes
from engine.protocol import Event
from widgets.emotion_sliders import EmotionSliders
from widgets.emotions import emotion_summary
from widgets.speech_plots import SpeechPlots

MAX_CHARS = 2000
STEER_EVERY_MS = 100  # slider changes reach the engine at most ~10 times a second
VOICES = ["joe", "jo"]  # until the engine's first progress event lists them
DURATIONS = ("auto", "seconds", "speed")
CLARITY_AUTO = 0.9  # the clarity box's lowest value, shown as "Model's": the request leaves it to the model
EXAMPLE = "Type what to say, e.g. “Well, that went better than I expected!” — then press Ctrl+Enter."


@dataclass
class SpeechTake:
    """One finished take, kept in the panel (replay and export need no engine)."""
    text: str
    voice: str
    emotion: dict
    alpha: float
    audio: np.ndarray  # (N,) float32 mono
    sample_rate: int
    f0: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (frames,) Hz, 0 unvoiced
    spec: np.ndarray = field(default_factory=lambda: np.zeros((0, 64), np.float32))  # (frames, 64) dB
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (frames,) dB
    steered: bool = False  # sliders moved while it was generated

    @property
    def seconds(self) -> float:
        return self.audio.size / self.sample_rate

    def label(self, number: int) -> str:
        text = " ".join(self.text.split())
        excerpt = text if len(text) <= 48 else text[:46].rstrip() + "…"
        mood = emotion_summary(self.emotion, self.alpha) + (" → steered" if self.steered else "")
        return f"{number}. “{excerpt}”  ·  {mood}  ·  {self.voice}  ·  {self.seconds:.2f} s"

    def plot_data(self) -> dict:
        return {"audio": self.audio, "sample_rate": self.sample_rate, "f0": self.f0, "spec": self.spec}

    def file_stem(self) -> str:
        words = re.findall(r"[A-Za-z0-9]+", self.text.lower())[:5]
        return "-".join(words) or "speech"


class RemoveTakeCommand(QUndoCommand):
    """Remove a take from the list; undo puts it back where it was."""

    def __init__(self, panel: "SpeechPanel", row: int):
        super().__init__(f"Remove take {row + 1}")
        self.panel, self.row, self.take = panel, row, panel.takes[row]

    def redo(self) -> None:
        del self.panel.takes[self.row]
        self.panel._refill_takes(min(self.row, len(self.panel.takes) - 1))

    def undo(self) -> None:
        self.panel.takes.insert(self.row, self.take)
        self.panel._refill_takes(self.row)


class SpeechPanel(Panel):
    title = "Speech"
    task = "speech"
    can_export = True

    def __init__(self, bridge, settings, parent=None, task: str | None = None):
        super().__init__(bridge, settings, parent)
        if task:
            self.task = task  # e.g. the tests' synthetic "tiny_speech"
        self.audio = AudioOut()
        self.takes: list[SpeechTake] = []
        self.steers_sent = 0
        self._heard_all = True  # playhead hidden, nothing left to hear
        self._stopped_job: str | None = None  # Stop was pressed: its late events are dropped
        self._pending_steer: dict | None = None
        self._reset_take_state()

        # ---- left: what to say and how --------------------------------------------------------
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText(EXAMPLE)
        self.text.setTabChangesFocus(True)
        self.text.setMinimumHeight(90)
        self.text.setToolTip("Text to speak. Numbers, dates and money are read out. To fix how a word is said, "
                             "type its sounds in braces (ARPAbet): {T AH0 M EY1 T OW2}")
        self.chars = QLabel()
        self.chars.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.chars.setMinimumWidth(80)
        self.chars.setToolTip("Characters used; the engine speaks up to 2000 at a time")
        self.text.textChanged.connect(self._count_chars)

        self.voice_box = QComboBox()
        self.voice_box.addItems(VOICES)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("With variation above 0: the same seed gives the same take")
        self.variation_spin = QDoubleSpinBox()
        self.variation_spin.setRange(0.0, 1.0)
        self.variation_spin.setSingleStep(0.1)
        self.variation_spin.setToolTip("0: the clearest take, the same every time. Higher: each seed gives a "
                                       "different take (a little less clear)")
        self.clarity_spin = QDoubleSpinBox()
        self.clarity_spin.setRange(CLARITY_AUTO, 2.0)
        self.clarity_spin.setSingleStep(0.1)
        self.clarity_spin.setSpecialValueText("Model's")
        self.clarity_spin.setValue(CLARITY_AUTO)
        self.clarity_spin.setToolTip("Sharpens the voice's formants (a spectral postfilter): higher sounds crisper, "
                                     "too high sounds harsh. 1.0 plays the model's envelopes as predicted; "
                                     "Model's: the value tuned for this model")
        form = QFormLayout()
        form.addRow("Voice", self.voice_box)
        form.addRow("Variation", self.variation_spin)
        form.addRow("Clarity", self.clarity_spin)
        form.addRow("Seed", self.seed_spin)

        dur_box = QGroupBox("Duration")
        grid = QGridLayout(dur_box)
        self.dur_auto = QRadioButton("Automatic")
        self.dur_seconds = QRadioButton("Target length")
        self.dur_speed = QRadioButton("Speed factor")
        self.dur_group = QButtonGroup(self)
        for i, b in enumerate((self.dur_auto, self.dur_seconds, self.dur_speed)):
            self.dur_group.addButton(b, i)
        self.dur_auto.setChecked(True)
        self.seconds_spin = QDoubleSpinBox()
        self.seconds_spin.setRange(0.3, 60.0)
        self.seconds_spin.setSingleStep(0.1)
        self.seconds_spin.setDecimals(1)
        self.seconds_spin.setValue(3.0)
        self.seconds_spin.setSuffix(" s")
        self.speed_spin = QDoubleSpinBox()
        self.speed_spin.setRange(0.5, 2.0)
        self.speed_spin.setSingleStep(0.05)
        self.speed_spin.setValue(1.0)
        self.speed_spin.setSuffix(" ×")
        self.speed_spin.setToolTip("Above 1 speaks faster, below 1 slower")
        grid.addWidget(self.dur_auto, 0, 0, 1, 2)
        grid.addWidget(self.dur_seconds, 1, 0)
        grid.addWidget(self.seconds_spin, 1, 1)
        grid.addWidget(self.dur_speed, 2, 0)
        grid.addWidget(self.speed_spin, 2, 1)
        self.dur_group.idToggled.connect(lambda *_: self._sync_duration())

        emo_box = QGroupBox("Emotion")
        ev = QVBoxLayout(emo_box)
        self.sliders = EmotionSliders()
        self.sliders.valuesChanged.connect(self._emotion_changed)
        ev.addWidget(self.sliders)

        self.speak_btn = QPushButton("Speak")
        self.speak_btn.setDefault(True)
        self.speak_btn.setToolTip("Speak the text (Ctrl+Enter)")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop generating and playing (Esc)")
        self.speak_btn.clicked.connect(self.speak)
        self.stop_btn.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.speak_btn, 1)
        buttons.addWidget(self.stop_btn)
        buttons.addWidget(self.chars)

        left_w = QWidget()
        lv = QVBoxLayout(left_w)
        lv.setContentsMargins(0, 0, 4, 0)
        lv.addWidget(QLabel("Text"))
        lv.addWidget(self.text, 1)
        lv.addLayout(buttons)
        lv.addLayout(form)
        lv.addWidget(dur_box)
        lv.addWidget(emo_box)
        left = QScrollArea()  # scrolls when the window is short (1280x800 with the Engine dock open)
        left.setWidgetResizable(True)
        left.setFrameShape(QFrame.Shape.NoFrame)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left.setWidget(left_w)
        left.setMinimumWidth(left_w.sizeHint().width() + left.verticalScrollBar().sizeHint().width())
        self.left_scroll = left

        # ---- right: what it sounds like ------------------------------------------------------
        self.plots = SpeechPlots()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("Type something and press Speak.")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("QLabel { background: rgba(240, 190, 60, 45); border: 1px solid rgba(240, 190, 60, 150);"
                                  " border-radius: 4px; padding: 3px 6px; }")
        self.notice.hide()

        self.take_list = QListWidget()
        self.take_list.setToolTip("Double click a take to play it again")
        self.take_list.itemDoubleClicked.connect(lambda item: self.replay(self.take_list.row(item)))
        self.take_list.currentRowChanged.connect(lambda *_: self._sync_buttons())
        self.play_btn = QPushButton("Play")
        self.play_btn.clicked.connect(lambda: self.replay(self.take_list.currentRow()))
        self.export_btn = QPushButton("Export WAV…")
        self.export_btn.clicked.connect(self.export_dialog)
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.clicked.connect(self.remove_take)
        takes_box = QGroupBox("Takes")
        tv = QVBoxLayout(takes_box)
        tv.addWidget(self.take_list, 1)
        row = QHBoxLayout()
        for b in (self.play_btn, self.export_btn, self.remove_btn):
            row.addWidget(b)
        row.addStretch(1)
        tv.addLayout(row)

        right_split = QSplitter(Qt.Orientation.Vertical)
        plots_w = QWidget()
        pv = QVBoxLayout(plots_w)
        pv.setContentsMargins(0, 0, 0, 0)
        pv.addWidget(self.notice)
        pv.addWidget(self.plots, 1)
        pv.addWidget(self.progress)
        pv.addWidget(self.status)
        right_split.addWidget(plots_w)
        right_split.addWidget(takes_box)
        right_split.setStretchFactor(0, 3)
        right_split.setStretchFactor(1, 1)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right_split)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([340, 760])
        self.root.addWidget(split, 1)

        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            sc = QShortcut(QKeySequence(keys), self, activated=self.speak)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        esc = QShortcut(QKeySequence("Escape"), self, activated=self.stop)
        esc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self._steer_timer = QTimer(self)
        self._steer_timer.setSingleShot(True)
        self._steer_timer.setInterval(STEER_EVERY_MS)
        self._steer_timer.timeout.connect(self._flush_steer)
        self._playhead_timer = QTimer(self)
        self._playhead_timer.setInterval(33)
        self._playhead_timer.timeout.connect(self._tick)
        self._playhead_timer.start()
        self.jobEnded.connect(lambda *_: self._sync_buttons())
        for w, label in ((self.text, "text"), (self.voice_box, "voice"), (self.variation_spin, "variation"),
                         (self.clarity_spin, "clarity"), (self.seed_spin, "seed"), (self.dur_group, "duration"),
                         (self.seconds_spin, "target length"), (self.speed_spin, "speed factor")):
            self.fields.watch(w, label)
        self.fields.add("emotion", self.sliders.values, lambda v: self.sliders.set_values(v[0], v[1]),
                        self.sliders.valuesChanged)
        self._count_chars()
        self._sync_duration()
        self._sync_buttons()

    # ---- requests ---------------------------------------------------------------------------
    def params(self) -> dict:
        emotion, alpha = self.sliders.values()
        return {"text": self.text.toPlainText(), "voice": self.voice_box.currentText(), "emotion": emotion,
                "alpha": alpha, "duration": DURATIONS[self.dur_group.checkedId()],
                "seconds": self.seconds_spin.value(), "speed": self.speed_spin.value(), "seed": self.seed_spin.value(),
                "variation": round(self.variation_spin.value(), 2),
                **({} if self.clarity_spin.value() <= CLARITY_AUTO else {"sharpen": round(self.clarity_spin.value(), 2)})}

    def speak(self) -> str | None:
        """Start a take (a take still generating is cancelled: the newest request wins)."""
        p = self.params()
        if not p["text"].strip():
            self.error_box.show_error("Type some text to speak first.")
            self.text.setFocus()
            return None
        self.audio.stop()
        self.plots.clear()
        self._reset_take_state()
        self._started = time.monotonic()
        self._take_params = p
        job = self.run_job(p)
        if job:
            self.progress.setRange(0, 0)  # busy until the engine says how long the take will be
            self.progress.setFormat("")
            self.status.setText("Loading the voice…" if not self.takes else "Generating…")
        self._sync_buttons()
        return job

    def stop(self) -> None:
        """Stop generating and playing."""
        self._pending_steer = None
        self.audio.stop()
        self.plots.set_playhead(None)
        self._replaying = False
        if self.job:
            self._stopped_job = self.job  # chunks already on their way must not start playback again
            self.stop_job()
        self._sync_buttons()

    def _emotion_changed(self, emotion: dict, alpha: float) -> None:
        if not self.job:
            return
        self._pending_steer = {"emotion": emotion, "alpha": alpha}
        self._steered = True
        if not self._steer_timer.isActive():  # leading edge now, the latest value at most every 100 ms
            self._flush_steer()

    def _flush_steer(self) -> None:
        if self._pending_steer is not None and self.job:
            self.bridge.steer(self.job, self._pending_steer)
            self.steers_sent += 1
            self._steer_timer.start()
        self._pending_steer = None

    # ---- events -----------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        d = ev.data
        if ev.job == self._stopped_job and not ev.terminal:
            return
        if ev.kind == "progress" and d.get("warning"):
            self.status.setText(str(d["warning"]))
        if ev.kind == "progress" and "total" in d:
            self._on_progress(d)
        elif ev.kind == "partial" and "audio" in d:
            self._on_chunk(d)
        elif ev.kind == "output" and "audio" in d:
            self._on_output(d)
        if ev.terminal:
            self._pending_steer = None
            self._steer_timer.stop()
            if ev.kind == "cancelled":
                self.status.setText("Stopped.")
            elif ev.kind == "error":
                self.status.setText("The take failed (see above).")
            if ev.kind != "finished":
                self.progress.setRange(0, 1)
                self.progress.setValue(0)
                self.progress.setFormat("")
            QTimer.singleShot(0, self._sync_buttons)  # after Panel has cleared `job`

    def _on_progress(self, d: dict) -> None:
        voices = [str(v) for v in d.get("voices", [])]
        if voices and voices != [self.voice_box.itemText(i) for i in range(self.voice_box.count())]:
            with self.fields.paused():  # the engine's list of voices, not a user's edit
                current = self.voice_box.currentText()
                self.voice_box.clear()
                self.voice_box.addItems(voices)
                self.voice_box.setCurrentText(current if current in voices else voices[0])
        self._spelt = [str(w) for w in d.get("spelt", [])]
        total, done = max(int(d.get("total", 0)), 1), int(d.get("done", 0))
        # one step more than the work: the bar reaches the end only when the output arrives
        self.progress.setRange(0, total + 1)
        self.progress.setValue(min(done, total))
        planned = float(d.get("seconds_planned", 0.0))
        self.progress.setFormat(f"{planned * min(done, total) / total:.1f} / {planned:.1f} s" if planned else "%p%")
        if planned:
            self._planned = planned
            self.plots.set_planned(planned)

    def _on_chunk(self, d: dict) -> None:
        sr = int(d.get("sample_rate", 16000))
        if self._chunks == 0:  # playback starts with the first chunk
            self._first_audio_ms = 1000 * (time.monotonic() - self._started)
            self._start_audio(sr)
        self._chunks += 1
        self.audio.write(d["audio"])
        self.plots.append(d)
        self.status.setText(f"Playing while generating: {self.audio.written:.2f} s made"
                            + (f" of ~{self._planned:.1f} s" if self._planned else "")
                            + f" · first audio after {self._first_audio_ms:.0f} ms")

    def _on_output(self, d: dict) -> None:
        p = self._take_params or self.params()
        audio = np.asarray(d["audio"], np.float32).reshape(-1)
        sr = int(d.get("sample_rate", 16000))
        if self._chunks == 0:  # an engine that streams nothing still gets heard
            self._start_audio(sr)
        missing = audio.size - self.audio.samples_written
        if missing > 0:  # the tail the chunks did not carry
            self.audio.write(audio[-missing:])
        emotion, alpha = self.sliders.values() if self._steered else (p["emotion"], p["alpha"])
        take = SpeechTake(text=str(d.get("text", p["text"])), voice=p["voice"], emotion=dict(emotion),
                          alpha=float(alpha), audio=audio, sample_rate=sr,
                          f0=np.asarray(d.get("f0", np.zeros(0)), np.float32),
                          spec=np.asarray(d.get("spec", np.zeros((0, 64))), np.float32).reshape(-1, 64),
                          energy=np.asarray(d.get("energy", np.zeros(0)), np.float32), steered=self._steered)
        self.takes.append(take)
        item = QListWidgetItem(take.label(len(self.takes)))
        item.setToolTip(take.text)
        self.take_list.addItem(item)
        self.take_list.setCurrentRow(len(self.takes) - 1)
        self.plots.set_take(take.plot_data())
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"{take.seconds:.2f} s")
        made_s = time.monotonic() - self._started
        self.status.setText(f"Take {len(self.takes)}: {take.seconds:.2f} s of audio, made in {made_s:.2f} s"
                            f" · first audio after {self._first_audio_ms or 0:.0f} ms" + self._spelt_note())

    def _spelt_note(self) -> str:
        """Words the voice had to read from their letters: the ones worth fixing with {sounds}."""
        words = self._spelt
        if not words:
            return ""
        shown = ", ".join(words[:4]) + (f" and {len(words) - 4} more" if len(words) > 4 else "")
        return f" · read from letters: {shown} (type its sounds in braces to fix one)"

    # ---- takes ------------------------------------------------------------------------------
    def replay(self, index: int) -> bool:
        """Play a finished take again (not while one is being generated: Stop first)."""
        if not 0 <= index < len(self.takes):
            return False
        if self.job:
            self.status.setText("A take is being generated: press Stop first to replay an earlier one.")
            return False
        take = self.takes[index]
        self._start_audio(take.sample_rate)
        self.audio.write(take.audio)
        self.plots.set_take(take.plot_data())
        self._replaying = True
        self.status.setText(f"Playing take {index + 1} ({take.seconds:.2f} s)")
        self._sync_buttons()
        return True

    def remove_take(self) -> None:
        """Remove the selected take (Edit > Undo brings it back)."""
        row = self.take_list.currentRow()
        if 0 <= row < len(self.takes):
            self.undo_stack.push(RemoveTakeCommand(self, row))
        self._sync_buttons()

    def _refill_takes(self, select: int = -1) -> None:
        self.take_list.clear()
        for i, take in enumerate(self.takes):
            item = QListWidgetItem(take.label(i + 1))
            item.setToolTip(take.text)
            self.take_list.addItem(item)
        if 0 <= select < len(self.takes):
            self.take_list.setCurrentRow(select)
        self._sync_buttons()

    def export_wav(self, path: str | Path, index: int | None = None) -> Path:
        """Write a take (the selected one by default) as 16-bit WAV; errors show inline and are raised."""
        import soundfile as sf

        row = self.take_list.currentRow() if index is None else index
        if not 0 <= row < len(self.takes):
            self.error_box.show_error("Nothing to export yet: speak a take first, then select it in the list.")
            raise ValueError("no take to export")
        take = self.takes[row]
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".wav")
        try:
            sf.write(str(path), np.clip(take.audio, -1.0, 1.0), take.sample_rate, subtype="PCM_16")
        except (OSError, RuntimeError, ValueError, TypeError) as e:  # soundfile raises RuntimeError subclasses
            self.error_box.show_error(f"Could not write {path}: {e}")
            raise
        self.settings.add_recent(str(path))
        self.status.setText(f"Exported take {row + 1} to {path}")
        return path

    def export_dialog(self) -> None:
        row = self.take_list.currentRow()
        if not 0 <= row < len(self.takes):
            self.error_box.show_error("Nothing to export yet: speak a take first, then select it in the list.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export WAV", f"{self.takes[row].file_stem()}.wav",
                                              "WAV audio (*.wav)")
        if path:
            try:
                self.export_wav(path, row)
            except (OSError, RuntimeError, ValueError, TypeError):
                pass

    def file_export(self) -> None:
        self.export_dialog()

    # ---- results in project files -----------------------------------------------------------
    def save_results(self) -> dict[str, bytes]:
        """Each take as take-NNN.wav (float32, exact) with its pitch / spectrogram in take-NNN.npz; takes.json
        says what each one is."""
        import soundfile as sf

        out: dict[str, bytes] = {}
        meta = []
        for i, t in enumerate(self.takes):
            stem = f"take-{i + 1:03d}"
            buf = io.BytesIO()
            sf.write(buf, t.audio, t.sample_rate, format="WAV", subtype="FLOAT")
            out[f"{stem}.wav"] = buf.getvalue()
            out[f"{stem}.npz"] = npz_bytes(f0=t.f0, spec=t.spec, energy=t.energy)
            meta.append({"wav": f"{stem}.wav", "plots": f"{stem}.npz", "text": t.text, "voice": t.voice,
                         "emotion": t.emotion, "alpha": t.alpha, "steered": t.steered})
        if meta:
            out["takes.json"] = json.dumps({"takes": meta, "selected": self.take_list.currentRow()}).encode()
        return out

    def restore_results(self, files: dict[str, bytes]) -> None:
        import soundfile as sf

        self.stop()
        takes = []
        selected = -1
        if "takes.json" in files:
            try:
                raw = json.loads(files["takes.json"])
                for m in raw["takes"]:
                    audio, sr = sf.read(io.BytesIO(files[m["wav"]]), dtype="float32", always_2d=False)
                    plots = load_npz(files[m["plots"]]) if m.get("plots") in files else {}
                    takes.append(SpeechTake(text=str(m["text"]), voice=str(m["voice"]),
                                            emotion={str(k): float(v) for k, v in dict(m["emotion"]).items()},
                                            alpha=float(m["alpha"]), audio=np.asarray(audio, np.float32).reshape(-1),
                                            sample_rate=int(sr),
                                            f0=np.asarray(plots.get("f0", np.zeros(0)), np.float32),
                                            spec=np.asarray(plots.get("spec", np.zeros((0, 64))), np.float32).reshape(-1, 64),
                                            energy=np.asarray(plots.get("energy", np.zeros(0)), np.float32),
                                            steered=bool(m.get("steered", False))))
                selected = int(raw.get("selected", len(takes) - 1))
            except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:  # soundfile: RuntimeError
                self.error_box.show_error(f"The project's takes could not be read ({e}); the inputs were restored.")
                takes = []
        self.takes = takes
        self._refill_takes(selected if 0 <= selected < len(takes) else len(takes) - 1)
        self.plots.clear()
        if takes:
            row = max(self.take_list.currentRow(), 0)
            self.plots.set_take(takes[row].plot_data())
            self.status.setText(f"{len(takes)} take(s) from the project; double click one to hear it.")
        else:
            self.status.setText("Type something and press Speak.")

    # ---- helpers ----------------------------------------------------------------------------
    def _reset_take_state(self) -> None:
        self._chunks = 0
        self._planned = 0.0
        self._started = time.monotonic()
        self._first_audio_ms: float | None = None
        self._take_params: dict | None = None
        self._steered = False
        self._replaying = False
        self._spelt: list[str] = []

    def _start_audio(self, sample_rate: int) -> None:
        self.audio.start(sample_rate)
        self._heard_all = False
        self.notice.setText(self.audio.reason)
        self.notice.setVisible(self.audio.silent)

    def _tick(self) -> None:
        """Move the playhead with what has been heard; hide it once the whole take has been."""
        if self._heard_all or self.audio.samples_written <= 0:
            return
        pos = self.audio.position()
        if pos >= self.audio.written - 1e-6 and not self.job:
            # the stream stays open (playing silence) so the card's last buffer is not cut off
            self._heard_all = True
            self._replaying = False
            self.plots.set_playhead(None)
            self._sync_buttons()
            return
        self.plots.set_playhead(pos)

    def _count_chars(self) -> None:
        n = len(self.text.toPlainText())
        self.chars.setText(f"{n} / {MAX_CHARS}")
        self.chars.setStyleSheet("color: #e57373;" if n > MAX_CHARS else "color: gray;")

    def _sync_duration(self) -> None:
        self.seconds_spin.setEnabled(self.dur_seconds.isChecked())
        self.speed_spin.setEnabled(self.dur_speed.isChecked())

    def _sync_buttons(self) -> None:
        busy = self.job is not None
        self.speak_btn.setText("Speak again" if busy else "Speak")
        self.stop_btn.setEnabled(busy or self._replaying or self.audio.playing)
        has = 0 <= self.take_list.currentRow() < len(self.takes)
        self.play_btn.setEnabled(has and not busy)
        self.export_btn.setEnabled(has)
        self.remove_btn.setEnabled(has)

    # ---- state kept across restarts ---------------------------------------------------------
    def save_state(self) -> dict:
        return self.params()  # text, voice, sliders, duration, seed

    def restore_state(self, state: dict) -> None:
        try:  # a hand-edited settings file must not break the panel
            text = str(state.get("text", ""))
            voice = str(state.get("voice", self.voice_box.currentText()))
            emotion = {str(k): float(v) for k, v in dict(state.get("emotion", {})).items()}
            alpha = float(state.get("alpha", 1.0))
            duration = str(state.get("duration", "auto"))
            seconds = float(state.get("seconds", self.seconds_spin.value()))
            speed = float(state.get("speed", self.speed_spin.value()))
            seed = int(state.get("seed", self.seed_spin.value()))
            variation = float(state.get("variation", 0.0))
            clarity = float(state.get("sharpen", CLARITY_AUTO))
        except (TypeError, ValueError, AttributeError):
            return
        self.text.setPlainText(text)
        if voice and self.voice_box.findText(voice) < 0:
            self.voice_box.addItem(voice)
        self.voice_box.setCurrentText(voice)
        self.sliders.set_values(emotion, alpha, emit=False)
        if duration in DURATIONS:
            self.dur_group.button(DURATIONS.index(duration)).setChecked(True)
        self.seconds_spin.setValue(seconds)
        self.speed_spin.setValue(speed)
        self.seed_spin.setValue(seed)
        self.variation_spin.setValue(min(max(variation, 0.0), 1.0))
        self.clarity_spin.setValue(min(max(clarity, CLARITY_AUTO), 2.0))
        self._sync_duration()

    def closeEvent(self, event) -> None:
        self.audio.close()
        super().closeEvent(event)
