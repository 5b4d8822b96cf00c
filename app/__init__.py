"""Weft Studio's Qt application (the GUI talks to the engine; it never imports torch)."""
