"""Eight labelled emotion sliders (0-100 %), a strength slider, a presets menu and a reset button.
Emits valuesChanged(emotion dict in [0, 1], alpha in [0, 1]) once per user change."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from widgets.emotions import EMOTIONS, PRESETS, full_vector

CUSTOM = "Custom"


class EmotionSliders(QWidget):
    valuesChanged = Signal(dict, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset_box = QComboBox()
        self.preset_box.addItems(list(PRESETS) + [CUSTOM])
        self.preset_box.setToolTip("Start from a preset, then fine-tune the sliders")
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.setToolTip("Back to neutral at full strength")
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset"))
        top.addWidget(self.preset_box, 1)
        top.addWidget(self.reset_btn)

        grid = QGridLayout()
        grid.setVerticalSpacing(2)
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        for row, name in enumerate((*EMOTIONS, "strength")):
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(0, 100)
            s.setPageStep(10)
            s.setObjectName(f"emotion_{name}")
            value = QLabel("0")
            value.setMinimumWidth(28)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            label = QLabel(name.capitalize())
            grid.addWidget(label, row, 0)
            grid.addWidget(s, row, 1)
            grid.addWidget(value, row, 2)
            self.sliders[name] = s
            self.value_labels[name] = value
            s.valueChanged.connect(lambda v, n=name: self._slider_moved(n, v))
        self.strength = self.sliders.pop("strength")
        self.strength_label = self.value_labels.pop("strength")
        self.strength.setToolTip("Emotion strength (alpha): 0 speaks neutrally whatever the sliders say")
        self.strength.setValue(100)
        self.strength_label.setText("100")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addLayout(grid)
        self.preset_box.activated.connect(lambda i: self.apply_preset(self.preset_box.itemText(i)))
        self.reset_btn.clicked.connect(self.reset)

    # ---- values ---------------------------------------------------------------------------
    def values(self) -> tuple[dict[str, float], float]:
        return {n: s.value() / 100 for n, s in self.sliders.items()}, self.strength.value() / 100

    def set_values(self, emotion: dict[str, float], alpha: float | None = None, emit: bool = True) -> None:
        """Move the sliders (one valuesChanged at the end, when `emit`)."""
        vec = full_vector(emotion)
        for name, s in self.sliders.items():
            s.blockSignals(True)
            s.setValue(round(100 * vec[name]))
            s.blockSignals(False)
            self.value_labels[name].setText(str(s.value()))
        if alpha is not None:
            self.strength.blockSignals(True)
            self.strength.setValue(round(100 * min(1.0, max(0.0, float(alpha)))))
            self.strength.blockSignals(False)
            self.strength_label.setText(str(self.strength.value()))
        self._show_preset()
        if emit:
            self.valuesChanged.emit(*self.values())

    def apply_preset(self, name: str) -> None:
        """Set the sliders to a preset by name (any case: 'happy' finds 'Happy')."""
        match = {k.lower(): k for k in PRESETS}.get(name.strip().lower())
        if match is not None:
            self.set_values(PRESETS[match])

    def reset(self) -> None:
        self.set_values({}, 1.0)

    # ---- internals ------------------------------------------------------------------------
    def _slider_moved(self, name: str, value: int) -> None:
        (self.strength_label if name == "strength" else self.value_labels[name]).setText(str(value))
        self._show_preset()
        self.valuesChanged.emit(*self.values())

    def _show_preset(self) -> None:
        """Show the preset the sliders match, or 'Custom'."""
        now = {n: s.value() for n, s in self.sliders.items()}
        match = next((p for p, vec in PRESETS.items()
                      if now == {n: round(100 * v) for n, v in full_vector(vec).items()}), CUSTOM)
        self.preset_box.setCurrentText(match)
