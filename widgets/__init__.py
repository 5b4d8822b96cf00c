"""Reusable Qt views that draw plain numpy data (no torch, no engine)."""
