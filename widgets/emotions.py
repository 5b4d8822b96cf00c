"""The speech model's eight emotions, their presets and a one-line summary. Plain Python (no Qt), so
the sliders, the Speech panel and `weft-cli speech` share one list."""
from __future__ import annotations

EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")

# preset name -> emotion values in [0, 1]; names missing from a preset are 0
PRESETS: dict[str, dict[str, float]] = {
    "Neutral": {},
    **{name.capitalize(): {name: 1.0} for name in EMOTIONS},
    "Excited": {"happy": 0.8, "surprised": 0.6},
    "Nervous": {"afraid": 0.7, "sad": 0.3},
    "Annoyed": {"angry": 0.6, "disgusted": 0.5},
    "Wistful": {"melancholic": 0.7, "calm": 0.4},
    "Cheerful calm": {"happy": 0.5, "calm": 0.6},
}


def full_vector(emotion: dict[str, float] | None) -> dict[str, float]:
    """All eight names with values clipped to [0, 1] (unknown names dropped)."""
    emotion = emotion or {}
    return {name: min(1.0, max(0.0, float(emotion.get(name, 0.0)))) for name in EMOTIONS}


def emotion_summary(emotion: dict[str, float] | None, alpha: float = 1.0, most: int = 3) -> str:
    """'happy 80 · calm 20' (percent, strongest first), 'neutral' when nothing is set; the strength is
    added when it is below 100%, e.g. 'sad 100 ×0.5'."""
    vec = {k: v for k, v in full_vector(emotion).items() if v >= 0.005}
    if not vec or alpha < 0.005:
        return "neutral"
    parts = [f"{k} {round(100 * v)}" for k, v in sorted(vec.items(), key=lambda kv: -kv[1])[:most]]
    if len(vec) > most:
        parts.append(f"+{len(vec) - most}")
    text = " · ".join(parts)
    return text if alpha >= 0.995 else f"{text} ×{alpha:.2g}"


def parse_emotions(specs: list[str]) -> dict[str, float]:
    """['happy=0.8', 'calm=0.2'] (or 'happy=0.8,calm=0.2') -> {'happy': 0.8, 'calm': 0.2}.
    Raises ValueError with a sentence naming the bad item."""
    out: dict[str, float] = {}
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip().lower()
            if not sep or not name or not value.strip():
                raise ValueError(f"expected NAME=VALUE, e.g. happy=0.8; got '{item}'")
            if name not in EMOTIONS:
                raise ValueError(f"unknown emotion '{name}'; the emotions are: {', '.join(EMOTIONS)}")
            try:
                v = float(value)
            except ValueError:
                raise ValueError(f"the value of {name} must be a number between 0 and 1; got '{value.strip()}'") from None
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"the value of {name} must be between 0 and 1; got {v:g}")
            out[name] = v
    return out
