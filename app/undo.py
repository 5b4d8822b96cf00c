"""Undo for a panel's settings: every watched field (prompt, seed, sliders, choices) puts its user's
changes on the panel's QUndoStack, next to the panel's own edit commands (strokes, paths, takes).

Consecutive changes of one field within MERGE_S merge into one step (typing a word, dragging a
slider), as text editors do. Changes the program makes itself (restoring a project, filling a list)
run inside `paused()` and are not recorded.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand, QUndoStack
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QButtonGroup, QComboBox, QDoubleSpinBox, QLineEdit,
                               QPlainTextEdit, QSpinBox)

MERGE_S = 2.0
_FIELD_ID = 7000  # QUndoCommand ids: 7000 + field number (merging needs an id per field)


@dataclass
class _Field:
    number: int
    label: str
    get: Callable[[], object]
    set: Callable[[object], None]
    value: object = None  # what the field held after the last recorded change


class FieldChange(QUndoCommand):
    def __init__(self, fields: "FieldUndo", f: _Field, old, new):
        super().__init__(f"Change {f.label}")
        self.fields, self.f, self.old, self.new = fields, f, old, new
        self.at = time.monotonic()
        self._done = True  # the widget already shows `new`: setting it again would move the text cursor

    def id(self) -> int:
        return _FIELD_ID + self.f.number

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, FieldChange) or other.f is not self.f or other.at - self.at > MERGE_S:
            return False
        self.new, self.at = other.new, other.at
        if self.new == self.old:
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.fields.apply(self.f, self.new)

    def undo(self) -> None:
        self.fields.apply(self.f, self.old)


class FieldUndo:
    """Watches a panel's input widgets and records their changes on `stack`."""

    def __init__(self, stack: QUndoStack):
        self.stack = stack
        self.fields: list[_Field] = []
        self._quiet = 0

    # ---- watching --------------------------------------------------------------------------
    def watch(self, widget, label: str) -> None:
        """A QLineEdit, QPlainTextEdit, spin box, QComboBox (by text), checkable button or QButtonGroup."""
        if isinstance(widget, QLineEdit):
            self.add(label, widget.text, widget.setText, widget.textChanged)
        elif isinstance(widget, QPlainTextEdit):
            self.add(label, widget.toPlainText, widget.setPlainText, widget.textChanged)
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            self.add(label, widget.value, widget.setValue, widget.valueChanged)
        elif isinstance(widget, QComboBox):
            self.add(label, widget.currentText, widget.setCurrentText, widget.currentIndexChanged)
        elif isinstance(widget, QButtonGroup):
            self.add(label, widget.checkedId, lambda i, g=widget: g.button(i) and g.button(i).setChecked(True),
                     widget.idToggled)
        elif isinstance(widget, QAbstractButton) and widget.isCheckable():
            self.add(label, widget.isChecked, widget.setChecked, widget.toggled)
        elif isinstance(widget, QAbstractSpinBox):
            raise TypeError(f"unsupported spin box {type(widget).__name__}")
        else:
            raise TypeError(f"cannot watch a {type(widget).__name__}")

    def add(self, label: str, get: Callable, set_: Callable, signal) -> None:
        """Any value with a getter, a setter and a change signal (e.g. the emotion sliders)."""
        f = _Field(len(self.fields), label, get, set_, get())
        self.fields.append(f)
        signal.connect(lambda *_: self._changed(f))

    # ---- recording -------------------------------------------------------------------------
    def _changed(self, f: _Field) -> None:
        new = f.get()
        if self._quiet:
            f.value = new
            return
        old, f.value = f.value, new
        if old != new:
            self.stack.push(FieldChange(self, f, old, new))

    def apply(self, f: _Field, value) -> None:
        with self.paused():
            f.set(value)

    @contextmanager
    def paused(self):
        """Changes made inside are the program's, not the user's: not recorded."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1
            if not self._quiet:
                self.resync()

    def resync(self) -> None:
        for f in self.fields:
            f.value = f.get()
