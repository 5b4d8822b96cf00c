"""WORLD vocoder features and streaming synthesis (pyworld: MIT wrapper around the BSD WORLD code).

A frame (10 ms at 16 kHz) is: log-F0 (interpolated through unvoiced frames), a voicing flag, the
spectral envelope coded to 40 mel-cepstral-like coefficients, and coded aperiodicity (1 band at
16 kHz). Coding works on the log spectrum, so a gain, a spectral tilt or a frequency warp of the
envelope is an affine map of the coded vector: the prosody transforms (prosody.py) and the derived
voice use these maps and never leave the coded domain.

Streaming: `StreamingSynth` turns chunks of frames into audio as they arrive. WORLD places pulses
from the F0 history, so two independently synthesised chunks do not line up in phase; each chunk
is synthesised with a few frames of the previous one in front and cross-faded over them, which
leaves no step at the joins (tested).
"""
from __future__ import annotations

import functools
import glob
import importlib.util
import os

import numpy as np

FS = 16000
FRAME_MS = 10.0
HOP = int(FS * FRAME_MS / 1000)  # 160 samples
FFT = 1024
N_SP = 40  # coded spectral envelope
N_AP = 1  # coded aperiodicity bands at 16 kHz
N_FEAT = 1 + 1 + N_SP + N_AP  # lf0, vuv, csp, cap
# Optional sub-frames: the envelope and aperiodicity analysed between the 10 ms frames (frames with
# N_FEAT + (K - 1) * N_MID columns, K envelopes per frame; speech model v5 has K = 2, "mid-frames",
# 5 ms after each frame). Synthesis runs on the K grid (at least 5 ms); interpolating the envelope
# linearly to the half frame smears consonants: Whisper tiny.en WER of analysis-synthesis of the
# 197 held-out teacher clips (teacher audio 11.7 %): envelope every 5 ms 16.9 %, everything every
# 2.5 ms (K = 4) 15.6 %; on 40 clips the 10 ms envelope interpolated to 5 ms cost ~4 points.
N_MID = N_SP + N_AP


def n_sub(frames: np.ndarray) -> int:
    """Envelopes per 10 ms frame: 1 (frames only), 2 (with mid-frames, v5), 4 (every 2.5 ms)."""
    n = np.shape(frames)[1]
    k, r = divmod(n - N_FEAT, N_MID)
    if r or k < 0:
        raise ValueError(f"frames with {n} values each: expected {N_FEAT} + k * {N_MID}")
    return k + 1


def envelope_starts(k: int) -> list[int]:
    """Column where each of a frame's k envelopes (its own, then its sub-frames') starts; each is
    N_SP coded envelope values followed by N_AP aperiodicity values (N_MID in all)."""
    return [2] + [N_FEAT + j * N_MID for j in range(k - 1)]


def envelopes(frames: np.ndarray) -> np.ndarray:
    """(T, N_FEAT + (K-1) N_MID) -> (K T, N_MID): every envelope + aperiodicity in time order
    (frame, its sub-frames, next frame, ...)."""
    T, K = len(frames), n_sub(frames)
    return np.concatenate([frames[:, None, 2:N_FEAT], frames[:, N_FEAT:].reshape(T, K - 1, N_MID)], 1).reshape(T * K, N_MID)


F0_FLOOR, F0_CEIL = 60.0, 500.0


@functools.lru_cache(maxsize=1)
def pyworld():
    """Import pyworld. Its __init__ needs pkg_resources (gone from recent setuptools); when that
    fails, load the compiled extension directly — the functions are the same."""
    try:
        import pyworld as pw  # noqa: PLC0415
        return pw
    except ImportError:
        spec = importlib.util.find_spec("pyworld")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("pyworld is not installed (pip install pyworld)") from None
        for d in spec.submodule_search_locations:
            for f in glob.glob(os.path.join(d, "pyworld*.so")) + glob.glob(os.path.join(d, "pyworld*.pyd")):
                ext = importlib.util.spec_from_file_location("pyvocoder.pyworld", f)
                mod = importlib.util.module_from_spec(ext)
                ext.loader.exec_module(mod)
                return mod
        raise


def analyze(x: np.ndarray, f0_method: str = "harvest", mid: bool = False, sub: int | None = None) -> dict[str, np.ndarray]:
    """16 kHz float audio -> WORLD features per 10 ms frame (float32); with `mid`, also the envelope
    and aperiodicity 5 ms after every frame ("csp_mid", "cap_mid"); with `sub` = K, the K - 1
    envelopes between frames ("csp_sub" (T, K-1, N_SP), "cap_sub"; K = 2 is `mid`).

    f0_method "harvest" (default; its track is repaired with `repair_f0`) or "dio". On the teacher
    voice (a ~110 Hz male voice) DIO reports twice the pitch on many frames: where the two trackers
    disagree by an octave, the signal correlates 0.15 with itself at DIO's period and 0.84 at
    Harvest's. Whisper tiny.en WER of analysis-synthesis of held-out teacher audio (40 sentences):
    Harvest 15.9 %, Harvest repaired 16.3 %, DIO (f0 ceiling 300 Hz) 18.2 %; DIO as used for the
    speech model v3 22.4 % (30 sentences); on 100 (session 10) the trackers were level."""
    pw = pyworld()
    K = int(sub or (2 if mid else 1))
    x = np.ascontiguousarray(x, dtype=np.float64)
    fp = FRAME_MS / K
    if f0_method == "harvest":
        f0, t = pw.harvest(x, FS, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=fp)
    else:
        f0, t = pw.dio(x, FS, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=fp)
    f0 = pw.stonemask(x, f0, t, FS)
    if f0_method == "harvest":
        f0 = repair_f0(f0, win=int(round(100 * FRAME_MS / fp)))
    sp = pw.cheaptrick(x, f0, t, FS, fft_size=FFT)
    ap = pw.d4c(x, f0, t, FS, fft_size=FFT)
    csp = pw.code_spectral_envelope(sp, FS, N_SP).astype(np.float32)
    cap = pw.code_aperiodicity(ap, FS).astype(np.float32)
    out = {}
    if K > 1:  # every K-th analysis frame is a 10 ms frame; the ones between are its sub-frames (the last repeated if missing)
        T = (len(f0) + K - 1) // K
        idx = np.minimum(np.arange(T)[:, None] * K + np.arange(1, K)[None], len(f0) - 1)  # (T, K-1)
        out.update(csp_sub=csp[idx], cap_sub=cap[idx])
        if K == 2:
            out.update(csp_mid=csp[idx[:, 0]], cap_mid=cap[idx[:, 0]])
        f0, csp, cap = f0[::K], csp[::K], cap[::K]
    out.update(lf0=interp_lf0(f0), vuv=(f0 > 0).astype(np.float32), csp=csp, cap=cap)
    return out


def repair_f0(f0: np.ndarray, win: int = 100, max_up: float = 0.5, max_down: float = 0.9) -> np.ndarray:
    """Fix a pitch track's outliers against the running median of its voiced frames (+-`win`
    frames = +-1 s; log-F0). A frame more than `max_up` (x1.65) above the median is an octave error
    when halving it lands within 0.25 of the median (it is halved), else not periodic at its pitch
    and is made unvoiced. On the teacher voice, Harvest's frames that far above the sentence's median
    correlate 0.2 with the signal at their period (0.74 for the rest) and come in runs of up to 24
    frames, hence the wide window. A frame more than `max_down` (x0.41) below is made unvoiced;
    frames less far below are kept: that is real creak at phrase ends (correlation 0.7)."""
    f0 = np.asarray(f0, dtype=np.float64).copy()
    voiced = np.where(f0 > 0)[0]
    if len(voiced) < 3:
        return f0
    lf0 = np.log(f0[voiced])
    med = np.array([np.median(lf0[(voiced >= i - win) & (voiced <= i + win)]) for i in voiced])
    d = lf0 - med
    up = d > max_up
    fold = up & (np.abs(d - np.log(2)) < 0.25)
    f0[voiced[fold]] *= 0.5
    f0[voiced[(up & ~fold) | (d < -max_down)]] = 0.0
    return f0


def interp_lf0(f0: np.ndarray) -> np.ndarray:
    """log F0 with unvoiced frames linearly interpolated (a continuous contour to model)."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = f0 > 0
    if not voiced.any():
        return np.full(len(f0), np.log(120.0), np.float32)
    idx = np.arange(len(f0))
    return np.interp(idx, idx[voiced], np.log(f0[voiced])).astype(np.float32)


def pack(feats: dict[str, np.ndarray]) -> np.ndarray:
    """Feature dict -> (T, N_FEAT) float32 array in the order lf0, vuv, csp, cap (then each
    sub-frame's csp and cap when there: (T, N_FEAT + (K-1) N_MID))."""
    cols = [feats["lf0"][:, None], feats["vuv"][:, None], feats["csp"], feats["cap"]]
    if "csp_sub" in feats:
        T = len(feats["csp"])
        cols.append(np.concatenate([feats["csp_sub"], feats["cap_sub"]], 2).reshape(T, -1))
    elif "csp_mid" in feats:
        cols += [feats["csp_mid"], feats["cap_mid"]]
    return np.concatenate(cols, 1).astype(np.float32)


def unpack(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, N_FEAT[+N_MID]) -> f0 in Hz (0 = unvoiced), coded envelope, coded aperiodicity (of the
    frames, not their mid-frames)."""
    frames = np.asarray(frames, dtype=np.float64)
    f0 = np.exp(np.clip(frames[:, 0], np.log(F0_FLOOR), np.log(F0_CEIL))) * (frames[:, 1] > 0.5)
    return f0, frames[:, 2:2 + N_SP], frames[:, 2 + N_SP:N_FEAT]


def synthesis_grid(frames: np.ndarray) -> np.ndarray:
    """10 ms frames -> frames on the synthesis grid, every 10 / G ms with G = max(2, K) (see
    n_sub): pitch linear, a grid frame voiced when both its neighbouring frames are; the envelope
    and aperiodicity from the sub-frames where the frames carry them, else linear. Returns
    (G T, N_FEAT); plain frames and v5's mid-frames give the 5 ms grid."""
    frames = np.asarray(frames)
    K = n_sub(frames)
    G = max(2, K)
    subs = frames[:, N_FEAT:].reshape(len(frames), K - 1, N_MID) if K > 1 else None
    frames = frames[:, :N_FEAT]
    T = len(frames)
    src = np.arange(G * T) / G
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (src - i0)[:, None]
    out = frames[i0] * (1 - w) + frames[i1] * w
    out[:, 1] = frames[i0, 1] * frames[i1, 1]
    if subs is not None:
        for k in range(1, K):
            out[k::G, 2:] = subs[:, k - 1]
    return out


def synth_period_ms(frames: np.ndarray) -> float:
    """Spacing of `synthesis_grid`'s frames: 5 ms, or 2.5 ms for frames with 4 envelopes each."""
    return FRAME_MS / max(2, n_sub(frames))


def synthesize(frames: np.ndarray) -> np.ndarray:
    """(T, N_FEAT[+(K-1) N_MID]) frames -> float32 audio at 16 kHz (T * 160 samples).

    Synthesis runs every 5 ms (frames linearly interpolated, or their mid-frames used), or every
    2.5 ms for frames with 4 envelopes each: WORLD places pulses and interpolates the
    envelope per synthesis frame, and at 10 ms the speech smears (Whisper tiny.en WER on the
    teacher's own analysed frames: 27 % synthesised at 10 ms, 14 % at 5 ms; teacher audio 8.5 %)."""
    pw = pyworld()
    frames = np.asarray(frames, np.float64)
    f0, csp, cap = unpack(synthesis_grid(frames))
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(csp), FS, FFT)
    ap = pw.decode_aperiodicity(np.ascontiguousarray(np.minimum(cap, -1e-3)), FS, FFT)
    y = pw.synthesize(np.ascontiguousarray(f0), sp, ap, FS, synth_period_ms(frames))
    n = len(frames) * HOP
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    return y.astype(np.float32)


class StreamingSynth:
    """Frames in (any chunk size), audio out, continuous across chunk joins.

    Each chunk is synthesised again with `context` frames of the previous one in front, and the
    previous chunk's last `fade` frames are cross-faded into it. WORLD starts every synthesis with
    its own pulse phase, so the two renderings' glottal pulses do not line up: a plain cross-fade
    mixes two pulse trains (a 30 ms comb filter at every join, 12 % of the audio at 0.24 s chunks).
    With `align`, the new rendering is first shifted by the lag (at most `max_lag` samples either
    way) at which it best matches the held-back tail, like WSOLA; the shifts are kept from adding
    up (`max_drift`), and the last chunk is trimmed or padded so the total is exactly
    len(frames) * HOP. Measured with speech model v5's frames of 197 held-out sentences (Whisper
    tiny.en WER): whole-sentence synthesis 20.0 %, 0.24 s chunks with plain cross-fades 22.0 %."""

    def __init__(self, context: int = 6, fade: int = 3, align: bool = True, max_lag: int = 128, max_drift: int = 160):
        self.context, self.fade = context, fade  # frames of history re-synthesised; frames cross-faded
        self.align, self.max_lag, self.max_drift = align, max_lag, max_drift
        self.prev: np.ndarray | None = None
        self.tail = np.zeros(0, np.float32)  # audio of the last `fade` frames of the previous chunk
        self.drift = 0  # samples emitted minus samples of frames pushed (from the alignment shifts)

    def _lag(self, y: np.ndarray, start: int) -> int:
        """The shift of `y` around `start` that best matches the held-back tail (normalised
        cross-correlation), within max_lag and keeping |drift| <= max_drift."""
        n = len(self.tail)
        lo = max(-self.max_lag, self.drift - self.max_drift, -start)
        hi = min(self.max_lag, self.drift + self.max_drift, len(y) - start - n)
        if hi <= lo or float(self.tail @ self.tail) < 1e-8:
            return 0
        seg = y[start + lo:start + hi + n].astype(np.float64)
        t = self.tail.astype(np.float64)
        corr = np.correlate(seg, t, mode="valid")  # one value per lag lo..hi
        energy = np.convolve(seg ** 2, np.ones(n), mode="valid")
        score = corr / np.sqrt(np.maximum(energy, 1e-12) * float(t @ t))
        return lo + int(np.argmax(score))

    def push(self, frames: np.ndarray, final: bool = False) -> np.ndarray:
        """Synthesise `frames`; returns the audio that is now final (the last `fade` frames are held
        back for the cross-fade unless `final`)."""
        frames = np.asarray(frames, np.float32)
        ctx = self.prev[-self.context:] if self.prev is not None else frames[:0]
        seq = np.concatenate([ctx, frames]) if len(ctx) else frames
        y = synthesize(seq)
        start = len(ctx) * HOP - len(self.tail)  # where the held-back tail starts in y
        if self.align and len(self.tail):
            lag = self._lag(y, start)
            start += lag
            self.drift -= lag  # starting later emits fewer samples
        y = y[start:]
        n = len(self.tail)
        if n:
            w = np.linspace(0.0, 1.0, n, dtype=np.float32)
            y[:n] = self.tail * (1 - w) + y[:n] * w
        self.prev = seq[-self.context:]
        if final:  # exactly len(frames) * HOP samples in all
            y = y[:len(y) - self.drift] if self.drift > 0 else np.pad(y, (0, -self.drift))
            self.drift = 0
        keep = 0 if final else min(self.fade * HOP, len(y))
        self.tail = y[len(y) - keep:].copy() if keep else np.zeros(0, np.float32)
        return y[:len(y) - keep]

    def flush(self) -> np.ndarray:
        out, self.tail = self.tail, np.zeros(0, np.float32)
        return out


# ---- affine maps in the coded-envelope domain -------------------------------------------------

@functools.lru_cache(maxsize=None)
def _freqs() -> np.ndarray:
    return np.linspace(0, FS / 2, FFT // 2 + 1)


def _code_log(logsp: np.ndarray) -> np.ndarray:
    return pyworld().code_spectral_envelope(np.exp(np.atleast_2d(logsp)).astype(np.float64), FS, N_SP)


@functools.lru_cache(maxsize=None)
def gain_vector(db: float) -> np.ndarray:
    """Coded-domain offset that scales the envelope by `db` decibels (power)."""
    n = FFT // 2 + 1
    return (_code_log(np.full(n, db / 10 * np.log(10))) - _code_log(np.zeros(n)))[0].astype(np.float32)


@functools.lru_cache(maxsize=None)
def tilt_vector(db_per_octave: float) -> np.ndarray:
    """Coded-domain offset for a spectral tilt around 1 kHz (positive = brighter)."""
    f = np.maximum(_freqs(), 62.5)
    logsp = db_per_octave * np.log2(f / 1000.0) / 10 * np.log(10)
    return (_code_log(logsp) - _code_log(np.zeros_like(logsp)))[0].astype(np.float32)


@functools.lru_cache(maxsize=None)
def warp_map(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with coded(warped envelope) = coded @ A + b, for the envelope stretched along frequency
    by `alpha` (> 1 moves formants up: a shorter vocal tract)."""
    pw = pyworld()
    basis = np.concatenate([np.zeros((1, N_SP)), np.eye(N_SP)])
    logsp = np.log(pw.decode_spectral_envelope(np.ascontiguousarray(basis), FS, FFT))
    f = _freqs()
    warped = np.stack([np.interp(f / alpha, f, row) for row in logsp])
    coded = _code_log(warped)
    b = coded[0]
    return (coded[1:] - b).astype(np.float32), b.astype(np.float32)


def sharpen(frames: np.ndarray, beta: float, first: int = 2) -> np.ndarray:
    """Postfilter for over-smooth predicted envelopes (the HTS mel-cepstral postfilter): coded
    envelope coefficients from `first` on, of the frames and their mid-frames, times `beta`. The
    coding is cepstrum-like (a DCT of the mel-warped log envelope), so this deepens the valleys
    between formants the regression blurs. Deeper valleys mean higher peaks, so coefficient 0 (level)
    is then moved to give every frame its power back (without that, beta 1.6 doubled the loudness
    and clipped); coefficient 1 (tilt) is left alone. Returns a new array (float32 or wider);
    beta = 1 returns the frames unchanged."""
    out = np.array(frames, dtype=np.result_type(np.asarray(frames).dtype, np.float32), copy=True)
    if beta != 1.0 and len(out):
        per_db = gain_vector(1.0)[0]  # coefficient 0 per dB of power (a gain only moves coefficient 0)
        for base in envelope_starts(n_sub(out)):
            before = _frame_power_db(out[:, base:base + N_SP])
            out[:, base + first:base + N_SP] *= beta
            out[:, base] += (before - _frame_power_db(out[:, base:base + N_SP])) * per_db
    return out


def _frame_power_db(csp: np.ndarray) -> np.ndarray:
    sp = pyworld().decode_spectral_envelope(np.ascontiguousarray(csp, dtype=np.float64), FS, FFT)
    return 10 * np.log10(sp.mean(1) + 1e-20)


def power_db(csp: np.ndarray) -> float:
    """Mean power (dB) of coded envelopes (T, N_SP) over all frames: what an RMS meter sees."""
    sp = pyworld().decode_spectral_envelope(np.ascontiguousarray(np.atleast_2d(csp), dtype=np.float64), FS, FFT)
    return float(10 * np.log10(sp.mean() + 1e-20))


def plot_features(frames: np.ndarray, n_bands: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(T, N_FEAT) -> spectrogram (T, n_bands) in dB on a mel-like axis, and energy (T,) in dB
    (the envelope's mean power), for the panel's plots; the envelope is decoded once."""
    pw = pyworld()
    _, csp, _ = unpack(frames)
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(csp), FS, FFT)
    mel = np.linspace(0, 2595 * np.log10(1 + (FS / 2) / 700), n_bands)
    hz = 700 * (10 ** (mel / 2595) - 1)
    idx = np.clip(np.round(hz / (FS / 2) * (FFT // 2)).astype(int), 0, FFT // 2)
    spec = (10 * np.log10(sp[:, idx] + 1e-12)).astype(np.float32)
    return spec, (10 * np.log10(sp.mean(1) + 1e-12)).astype(np.float32)
