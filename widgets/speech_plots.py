"""Live views of a speech take (pyqtgraph): waveform, spectrogram and pitch on one time axis, with a
playhead. `append(partial)` adds a streamed chunk, `set_take(output)` shows a whole take.

The numbers drawn live in `SpeechTrace` (plain numpy) so tests can check them without a screen."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from widgets.theme import canvas_colours, style_plot_item

ENVELOPE_BLOCK = 80  # samples per min/max pair in the drawn waveform (5 ms at 16 kHz)
BANDS = 64
DB_RANGE = 70.0  # the spectrogram shows the loudest DB_RANGE dB


def envelope(audio: np.ndarray, block: int = ENVELOPE_BLOCK) -> np.ndarray:
    """(n,) samples -> (2 * ceil(n / block),) alternating min and max of each block: a waveform that
    keeps its peaks when drawn with a few points per pixel."""
    a = np.asarray(audio, np.float32).reshape(-1)
    if not a.size:
        return np.zeros(0, np.float32)
    pad = (-a.size) % block
    if pad:
        a = np.concatenate([a, np.full(pad, a[-1], np.float32)])
    b = a.reshape(-1, block)
    return np.stack([b.min(1), b.max(1)], 1).reshape(-1)


class SpeechTrace:
    """The growing arrays of one take: waveform envelope, spectrogram frames, pitch (NaN unvoiced)."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.sample_rate = 16000
        self.frame_period = 0.01
        self.samples = 0  # audio samples so far
        self._env: list[np.ndarray] = []
        self._spec: list[np.ndarray] = []
        self._f0: list[np.ndarray] = []
        self.chunks = 0

    def add(self, audio, f0, spec, sample_rate: int = 16000, frame_period: float = 0.01) -> None:
        self.sample_rate, self.frame_period = int(sample_rate), float(frame_period)
        audio = np.asarray(audio, np.float32).reshape(-1)
        self.samples += audio.size
        self._env.append(envelope(audio))
        f0 = np.asarray(f0, np.float32).reshape(-1)
        self._f0.append(np.where(f0 > 0, f0, np.nan).astype(np.float32))
        spec = np.asarray(spec, np.float32).reshape(-1, BANDS) if np.size(spec) else np.zeros((0, BANDS), np.float32)
        self._spec.append(spec)
        self.chunks += 1

    # arrays as drawn -------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def waveform(self) -> tuple[np.ndarray, np.ndarray]:
        """(t seconds, envelope value) of the drawn waveform."""
        y = np.concatenate(self._env) if self._env else np.zeros(0, np.float32)
        self._env = [y]
        t = (np.arange(y.size) // 2 + 0.5) * ENVELOPE_BLOCK / self.sample_rate
        return t, y

    def pitch(self) -> tuple[np.ndarray, np.ndarray]:
        """(t seconds, Hz with NaN where unvoiced)."""
        y = np.concatenate(self._f0) if self._f0 else np.zeros(0, np.float32)
        self._f0 = [y]
        return np.arange(y.size) * self.frame_period, y

    def spectrogram(self) -> np.ndarray:
        """(frames, 64) dB, low band first."""
        s = np.concatenate(self._spec) if self._spec else np.zeros((0, BANDS), np.float32)
        self._spec = [s]
        return s


class SpeechPlots(QWidget):
    """Waveform over spectrogram over pitch, x linked in seconds; a playhead line across all three.
    (A QWidget holding the pyqtgraph layout: GraphicsLayoutWidget's own `clear` would remove the plots.)"""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.trace = SpeechTrace()
        self.wave_plot = self.view.addPlot(row=0, col=0)
        self.spec_plot = self.view.addPlot(row=1, col=0)
        self.pitch_plot = self.view.addPlot(row=2, col=0)
        self.view.ci.layout.setRowStretchFactor(0, 2)
        self.view.ci.layout.setRowStretchFactor(1, 3)
        self.view.ci.layout.setRowStretchFactor(2, 2)
        for p, label in ((self.wave_plot, "waveform"), (self.spec_plot, "band"), (self.pitch_plot, "pitch (Hz)")):
            p.setLabel("left", label)
            p.showGrid(x=True, y=p is not self.spec_plot, alpha=0.2)
            p.setMouseEnabled(x=True, y=False)
            p.getAxis("left").setWidth(52)
            for side in ("left", "bottom"):
                p.getAxis(side).enableAutoSIPrefix(False)  # seconds stay seconds, not "(x0.001)"
            p.setMenuEnabled(False)
            if p is not self.pitch_plot:
                p.setXLink(self.pitch_plot)
                p.getAxis("bottom").setStyle(showValues=False)
        self.pitch_plot.setLabel("bottom", "time (s)")
        self.wave_plot.setYRange(-1, 1, padding=0.02)
        self.spec_plot.setYRange(0, BANDS, padding=0)
        self.pitch_plot.setYRange(50, 400, padding=0.05)

        self.wave_curve = self.wave_plot.plot([], [], pen=pg.mkPen("#4fc3f7", width=1))
        self.pitch_curve = self.pitch_plot.plot([], [], pen=pg.mkPen("#ffb74d", width=2), connect="finite")
        self.image = pg.ImageItem(axisOrder="col-major")  # data[frame, band]: frames along x
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.spec_plot.addItem(self.image)
        self.playheads = []
        for p in (self.wave_plot, self.spec_plot, self.pitch_plot):
            line = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#e0e0e0", width=1.5))
            line.setZValue(10)
            line.hide()
            p.addItem(line)
            self.playheads.append(line)
        self.planned_seconds = 0.0
        self.apply_theme()
        self.clear()

    def apply_theme(self) -> None:
        c = canvas_colours(self)
        self.view.setBackground(c.plot_background)
        for p in (self.wave_plot, self.spec_plot, self.pitch_plot):
            style_plot_item(p, c)
        for line in self.playheads:
            line.setPen(pg.mkPen("#e0e0e0" if c.dark else "#303030", width=1.5))

    def changeEvent(self, ev):
        if ev.type() == QEvent.Type.PaletteChange and hasattr(self, "playheads"):
            self.apply_theme()
        super().changeEvent(ev)

    # ---- data -----------------------------------------------------------------------------
    def clear(self, planned_seconds: float = 0.0) -> None:
        self.trace.clear()
        self.planned_seconds = float(planned_seconds)
        self.wave_curve.setData([], [])
        self.pitch_curve.setData([], [])
        self.image.clear()
        self.set_playhead(None)
        self._fit_x()

    def set_planned(self, seconds: float) -> None:
        """Length the engine expects the take to have: the x axis makes room for it."""
        self.planned_seconds = float(seconds)
        self._fit_x()

    def append(self, partial: dict) -> None:
        """Add one streamed chunk (the engine's `partial` data)."""
        self.trace.add(partial["audio"], partial.get("f0", ()), partial.get("spec", ()),
                       partial.get("sample_rate", 16000), partial.get("frame_period", 0.01))
        self._redraw()

    def set_take(self, take: dict) -> None:
        """Show a whole take (the engine's `output` data, or a stored take)."""
        planned = self.planned_seconds
        self.trace.clear()
        self.trace.add(take["audio"], take.get("f0", ()), take.get("spec", ()),
                       take.get("sample_rate", 16000), take.get("frame_period", 0.01))
        self.planned_seconds = min(planned, self.trace.seconds) if planned else 0.0
        self._redraw()

    def set_playhead(self, seconds: float | None) -> None:
        for line in self.playheads:
            line.setVisible(seconds is not None)
            if seconds is not None:
                line.setValue(seconds)

    def playhead(self) -> float | None:
        line = self.playheads[0]
        return float(line.value()) if line.isVisible() else None

    # ---- drawing --------------------------------------------------------------------------
    def _redraw(self) -> None:
        self.wave_curve.setData(*self.trace.waveform())
        t, f0 = self.trace.pitch()
        self.pitch_curve.setData(t, f0)
        voiced = f0[np.isfinite(f0)]
        if voiced.size:
            self.pitch_plot.setYRange(max(0.0, min(60.0, float(voiced.min()) - 20)),
                                      max(300.0, float(voiced.max()) + 30), padding=0)
        spec = self.trace.spectrogram()
        if spec.size:
            hi = float(np.max(spec))
            self.image.setImage(spec, levels=(hi - DB_RANGE, hi), autoLevels=False)
            # frames along x (seconds), bands along y (low at the bottom)
            self.image.setRect(0.0, 0.0, spec.shape[0] * self.trace.frame_period, BANDS)
        self._fit_x()

    def _fit_x(self) -> None:
        span = max(self.planned_seconds, self.trace.seconds, 1.0)
        self.pitch_plot.setXRange(0, span, padding=0.01)
