"""The studio's one theme, dark by default (light as a setting): a Fusion QPalette plus a small style
sheet for the whole application. Canvases that paint themselves (icon page, sketch pad, plots, 3D
viewports) take their colours from widgets/theme.py and follow palette changes."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("dark", "light")

_DARK = {
    QPalette.ColorRole.Window: "#2d2e32", QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#202124", QPalette.ColorRole.AlternateBase: "#2d2e32",
    QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#3a3b40",
    QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.ToolTipBase: "#202124", QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.Highlight: "#4285f4", QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.PlaceholderText: "#8c8c8c", QPalette.ColorRole.Link: "#8ab4f8",
    QPalette.ColorRole.Light: "#4a4b50", QPalette.ColorRole.Midlight: "#3f4045",
    QPalette.ColorRole.Mid: "#2a2b2f", QPalette.ColorRole.Dark: "#1c1d20", QPalette.ColorRole.Shadow: "#111113",
}
_DARK_DISABLED = {QPalette.ColorRole.WindowText: "#7a7a7a", QPalette.ColorRole.Text: "#7a7a7a",
                  QPalette.ColorRole.ButtonText: "#7a7a7a", QPalette.ColorRole.Button: "#313236",
                  QPalette.ColorRole.Base: "#26272a", QPalette.ColorRole.HighlightedText: "#9a9a9a"}

_SHEET = {
    "dark": """
        QToolTip { color: #e6e6e6; background: #202124; border: 1px solid #55565c; padding: 3px; }
        QGroupBox { border: 1px solid #45464c; border-radius: 4px; margin-top: 1.1em; padding-top: 4px; }
        QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 3px; color: #c8c8c8; }
        QTabBar::tab:selected { color: #ffffff; }
        QMenu::separator { height: 1px; background: #45464c; margin: 4px 6px; }
    """,
    "light": """
        QToolTip { color: #202020; background: #ffffdc; border: 1px solid #b0b0b0; padding: 3px; }
        QGroupBox { border: 1px solid #c4c4c4; border-radius: 4px; margin-top: 1.1em; padding-top: 4px; }
        QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 3px; color: #404040; }
    """,
}


def theme_name(theme: str) -> str:
    """A valid theme name: an old "system" (or anything unknown) is the default, dark."""
    return theme if theme in THEMES else "dark"


def palette_for(theme: str, app: QApplication) -> QPalette:
    if theme_name(theme) == "light":
        return app.style().standardPalette()
    p = QPalette()
    for role, colour in _DARK.items():
        p.setColor(role, QColor(colour))
    for role, colour in _DARK_DISABLED.items():
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return p


def apply_theme(app: QApplication, theme: str) -> str:
    """Fusion with the theme's palette and style sheet on the whole app; canvases follow (PaletteChange)."""
    name = theme_name(theme)
    app.setStyle("Fusion")
    app.setPalette(palette_for(name, app))
    app.setStyleSheet(_SHEET[name])
    return name
