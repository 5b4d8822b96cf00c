"""Inline error box for a panel: a plain sentence, details on demand, a copy button."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle


class ErrorBox(QFrame):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ErrorBox")
        self.setStyleSheet("#ErrorBox { background: rgba(220, 60, 60, 40); border: 1px solid rgba(220, 60, 60, 160);"
                           " border-radius: 4px; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.copy_btn = QPushButton("Copy")
        self.copy_btn.setToolTip("Copy the error and its details to the clipboard")
        self.close_btn = QPushButton()  # Qt's own close icon: no font needed for a cross glyph
        self.close_btn.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogCloseButton))
        self.close_btn.setToolTip("Dismiss")
        lay.addWidget(self.label, 1)
        lay.addWidget(self.copy_btn)
        lay.addWidget(self.close_btn)
        self.copy_btn.clicked.connect(self.copy)
        self.close_btn.clicked.connect(self.clear)
        self.details = ""
        self.hide()

    def show_error(self, message: str, details: str = "") -> None:
        self.label.setText(message)
        self.details = details
        self.setToolTip(details[-2000:] if details else "")
        self.show()

    def text(self) -> str:
        return self.label.text() + (f"\n\n{self.details}" if self.details else "")

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text())

    def clear(self) -> None:
        self.label.clear()
        self.details = ""
        self.hide()
