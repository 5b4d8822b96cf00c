"""The eight emotions as prosody profiles, and the voices, applied to WORLD features.

There is no permissively licensed, emotion-labelled English speech here, so an emotion is *defined*
as a prosody profile — pitch level, pitch range, a pitch contour across the sentence and on its last
word, a tremor, energy, spectral tilt, tempo and pause length — applied to the teacher's neutral
speech at random strengths and mixtures. The acoustic model learns to produce these changes from the
8-value vector; it never hears acted emotional speech. A vector mixes profiles: additive parameters
add with their weights, multiplicative ones multiply as powers.

Everything works on 10 ms frames (vocoder.py) and word durations, so the labels (the vector) and the
targets (the transformed frames and durations) stay consistent.
"""
from __future__ import annotations

import numpy as np

from models.speech import vocoder

EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")

# pitch / contour / final / tremor in semitones, energy in dB, tilt in dB per octave;
# range (around the sentence's mean pitch), tempo (> 1 faster) and pause are factors.
PROFILES: dict[str, dict[str, float]] = {
    "happy":       dict(pitch=3.0, range=1.35, energy=3.0, tempo=1.08, tilt=1.5, pause=0.85, contour=1.0, final=1.0, tremor=0.0),
    "angry":       dict(pitch=1.5, range=1.25, energy=6.0, tempo=1.12, tilt=3.0, pause=0.7, contour=-1.0, final=-1.5, tremor=0.0),
    "sad":         dict(pitch=-2.5, range=0.6, energy=-4.0, tempo=0.82, tilt=-2.5, pause=1.5, contour=-1.5, final=-1.5, tremor=0.0),
    "afraid":      dict(pitch=4.0, range=0.8, energy=-1.0, tempo=1.18, tilt=0.0, pause=1.2, contour=0.0, final=1.0, tremor=0.8),
    "disgusted":   dict(pitch=-1.5, range=1.15, energy=1.0, tempo=0.85, tilt=-1.0, pause=1.2, contour=-2.0, final=-2.0, tremor=0.0),
    "melancholic": dict(pitch=-3.5, range=0.5, energy=-3.0, tempo=0.75, tilt=-3.0, pause=1.7, contour=-1.0, final=-1.0, tremor=0.2),
    "surprised":   dict(pitch=5.0, range=1.7, energy=2.0, tempo=1.0, tilt=1.0, pause=1.0, contour=2.0, final=3.0, tremor=0.0),
    "calm":        dict(pitch=-1.0, range=0.75, energy=-2.0, tempo=0.9, tilt=-1.5, pause=1.25, contour=-0.5, final=-0.5, tremor=0.0),
}
_MULT = ("range", "tempo", "pause")
NEUTRAL = dict(pitch=0.0, range=1.0, energy=0.0, tempo=1.0, tilt=0.0, pause=1.0, contour=0.0, final=0.0, tremor=0.0)

# Voices: the teacher ("joe") and a derived one ("jo": higher pitch, formants moved up by a
# frequency warp of the envelope). Derived, not recorded: said so in the model card.
VOICES: dict[str, dict[str, float]] = {
    "joe": dict(pitch=0.0, warp=1.0),
    "jo": dict(pitch=8.0, warp=1.16),
}
VOICE_NAMES = tuple(VOICES)


def vector(emotion: dict[str, float] | None, alpha: float = 1.0) -> np.ndarray:
    """{name: weight} and strength alpha -> the model's 8-value conditioning vector."""
    v = np.zeros(len(EMOTIONS), np.float32)
    for name, w in (emotion or {}).items():
        v[EMOTIONS.index(name)] = float(w)
    return np.clip(v, 0, 1) * float(alpha)


def mix(v: np.ndarray) -> dict[str, float]:
    """Profile parameters for an emotion vector."""
    out = dict(NEUTRAL)
    for w, name in zip(v, EMOTIONS):
        if w <= 0:
            continue
        for k, x in PROFILES[name].items():
            out[k] = out[k] * x ** w if k in _MULT else out[k] + w * x
    return out


def random_vector(rng: np.random.Generator) -> np.ndarray:
    """Training labels: 15% neutral, 55% one emotion, 30% a mixture of two; random strengths."""
    v = np.zeros(len(EMOTIONS), np.float32)
    r = rng.random()
    if r < 0.15:
        return v
    if r < 0.70:
        v[rng.integers(len(EMOTIONS))] = 1.0 if rng.random() < 0.4 else rng.uniform(0.25, 1.0)
        return v
    a, b = rng.choice(len(EMOTIONS), 2, replace=False)
    w = rng.uniform(0.2, 0.8)
    s = rng.uniform(0.5, 1.0)
    v[a], v[b] = w * s, (1 - w) * s
    return v


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of frames (T, C) to n frames (vuv re-thresholded by the caller)."""
    if n <= 0:
        return x[:0]
    if len(x) == 0:
        return np.zeros((n, x.shape[1]), x.dtype)
    src = np.linspace(0, len(x) - 1, n) if n > 1 else np.zeros(1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, len(x) - 1)
    w = (src - i0)[:, None].astype(np.float32)
    return x[i0] * (1 - w) + x[i1] * w


def retime_lengths(word_frames: np.ndarray, pause_frames: np.ndarray, tempo: float, pause: float,
                   step: int = 2) -> list[tuple[int, int, int, int]]:
    """Per word (speech frames, pause frames) before and after `retime`: (s0, g0, s1, g1)."""
    out = []
    for n, p in zip(np.asarray(word_frames).tolist(), np.asarray(pause_frames).tolist()):
        p = min(p, n)
        s0, g0 = n - p, p
        ns = max(1, int(round(s0 / tempo))) if s0 else 0
        ng = int(round(g0 * pause / tempo)) if g0 else 0
        total = max(step, int(round((ns + ng) / step)) * step)
        ng = max(0, min(ng, total - ns)) if ns else total
        out.append((s0, g0, total - ng, ng))
    return out


def retime(frames: np.ndarray, word_frames: np.ndarray, pause_frames: np.ndarray, tempo: float, pause: float,
           step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Stretch each word's speech part by 1/tempo and its trailing pause by pause/tempo; every new
    word length is a multiple of `step` frames. Returns (frames, word_frames). Frames with sub-frames
    (vocoder.n_sub K > 1: v5's mid-frames, K = 2) have their envelopes resampled on the 10/K ms grid
    (frame, sub-frames, frame, ...), so a sub-frame stays where it belongs between its frames."""
    base = frames[:, :vocoder.N_FEAT]
    K = vocoder.n_sub(frames)
    envk = vocoder.envelopes(frames) if K > 1 else None  # (K T, N_MID)
    out, outk, lens, s = [], [], [], 0
    for s0, g0, ns, ng in retime_lengths(word_frames, pause_frames, tempo, pause, step):
        for grid, src, k, acc in ((base, s, 1, out), (envk, K * s, K, outk)):
            if grid is None:
                continue
            seg = grid[src:src + k * (s0 + g0)]
            speech, gap = seg[:k * s0], seg[k * s0:]
            parts = [_resample(speech, k * ns)] if ns else []
            if ng:
                parts.append(_resample(gap, k * ng))
            acc.append(np.concatenate(parts) if len(parts) > 1 else parts[0])
        s += s0 + g0
        lens.append(ns + ng)
    new = np.concatenate(out).astype(np.float32)
    new[:, 1] = (new[:, 1] > 0.5).astype(np.float32)
    if envk is not None:
        e = np.concatenate(outk).astype(np.float32).reshape(len(new), K, vocoder.N_MID)
        new[:, 2:] = e[:, 0]
        new = np.concatenate([new, e[:, 1:].reshape(len(new), -1)], 1)
    return new, np.asarray(lens, np.int64)


def retime_chars(char_frames: np.ndarray, spans: np.ndarray, lengths: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Frames per character (aligned, each word's pause on its last character) after `retime`:
    the speech part of every character scales with its word's speech, the pause with the pause.
    Returns float frames per character."""
    out = np.asarray(char_frames, np.float64).copy()
    for (a, b), (s0, g0, s1, g1) in zip(np.asarray(spans).tolist(), lengths):
        c = out[a:b]
        c[-1] -= g0
        c *= s1 / max(s0, 1)
        c[-1] += g1
        out[a:b] = np.maximum(c, 0.0)
    return out


def apply(frames: np.ndarray, word_frames: np.ndarray, pause_frames: np.ndarray, v: np.ndarray,
          voice: str = "joe", step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Emotion vector `v` and `voice` applied to neutral teacher frames (T, N_FEAT[+(K-1) N_MID]) -> (frames, word_frames)."""
    p = mix(v)
    frames, word_frames = retime(frames, word_frames, pause_frames, p["tempo"], p["pause"], step)
    T = len(frames)
    lf0 = frames[:, 0].astype(np.float64)
    voiced = frames[:, 1] > 0.5
    mean = lf0[voiced].mean() if voiced.any() else lf0.mean()
    semis = np.full(T, p["pitch"])
    u = np.arange(T) / max(T - 1, 1)
    semis += p["contour"] * (u - 0.5)
    last = int(word_frames[-1]) if len(word_frames) else 0
    if last:
        semis[T - last:] += p["final"] * np.linspace(0, 1, last)
    semis += p["tremor"] * np.sin(2 * np.pi * 6.0 * np.arange(T) * vocoder.FRAME_MS / 1000)
    vp = VOICES[voice]
    lf0 = mean + p["range"] * (lf0 - mean) + (semis + vp["pitch"]) * np.log(2) / 12
    out = frames.copy()
    out[:, 0] = lf0.astype(np.float32)
    # the envelopes: the frames' and, when there, their sub-frames'
    cols = [slice(a, a + vocoder.N_SP) for a in vocoder.envelope_starts(vocoder.n_sub(out))]
    csp = np.concatenate([out[:, c] for c in cols])
    if vp["warp"] != 1.0:
        A, b = vocoder.warp_map(vp["warp"])
        csp = csp @ A + b
    if p["tilt"]:  # energy is net of tilt: a darker tilt lifts the low bands that dominate RMS
        tilted = csp + p["tilt"] * vocoder.tilt_vector(1.0)
        csp = tilted + (vocoder.power_db(csp) - vocoder.power_db(tilted)) * vocoder.gain_vector(1.0)
    csp = csp + p["energy"] * vocoder.gain_vector(1.0)
    for k, c in enumerate(cols):
        out[:, c] = csp[k * T:(k + 1) * T]
    return out, word_frames
