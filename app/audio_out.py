"""Speech playback: audio chunks play as they arrive, through sounddevice (PortAudio) when there is a
sound card, otherwise silently on a clock that behaves like one.

sounddevice is imported only when playback starts: without the PortAudio library its import raises
OSError, and without an output device opening a stream raises PortAudioError. Either way AudioOut
falls back to silent playback that still takes every chunk and keeps time (the playhead moves,
replays work) and says why in `reason`. WEFT_AUDIO=none forces silent playback (tests, servers).
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections import deque

import numpy as np

log = logging.getLogger("weft.audio")

NO_DEVICE = "No audio output device: playing silently."
NO_PORTAUDIO = "No audio output (the PortAudio library is missing): playing silently."
FORCED_OFF = "Audio output is off (WEFT_AUDIO=none): playing silently."


def _import_sounddevice():
    return importlib.import_module("sounddevice")


class AudioOut:
    """start(rate) once per take, write(chunk) for each float32 mono chunk, stop() to cut it off.

    `position()` is the number of seconds heard so far: the samples the sound card has taken, or on
    the silent clock the wall time since the first chunk, held back while no audio is queued (as a
    real card would starve while generation is slower than real time)."""

    def __init__(self):
        self.silent = False
        self.reason = ""
        self.sample_rate = 16000
        self._lock = threading.Lock()
        self._queue: deque[np.ndarray] = deque()
        self._head = 0  # samples of _queue[0] already played
        self._written = 0  # samples given to write() since start()
        self._played = 0.0  # samples played (float: the silent clock advances fractionally)
        self._stream = None
        self._running = False  # started by the first chunk
        self._clock = 0.0  # time.monotonic() of the silent clock's last advance

    # ---- control --------------------------------------------------------------------------
    def start(self, sample_rate: int) -> None:
        """Get ready for a new take at `sample_rate` Hz; sound begins with the first write()."""
        self.stop()
        self.sample_rate = int(sample_rate)
        self.silent, self.reason = False, ""
        if os.environ.get("WEFT_AUDIO", "").lower() in ("none", "off", "0"):
            self._go_silent(FORCED_OFF)
            return
        try:
            sd = _import_sounddevice()
        except (OSError, ImportError) as e:
            self._go_silent(NO_PORTAUDIO, e)
            return
        try:
            self._stream = sd.OutputStream(samplerate=self.sample_rate, channels=1, dtype="float32",
                                           callback=self._fill, blocksize=0, latency="low")
        except Exception as e:  # sd.PortAudioError (no device), ValueError (rate unsupported), ...
            self._stream = None
            self._go_silent(NO_DEVICE, e)

    def write(self, chunk) -> None:
        """Queue a mono chunk (float32 samples in [-1, 1]); the first one starts playback."""
        a = np.ascontiguousarray(np.asarray(chunk, np.float32).reshape(-1))
        if not a.size:
            return
        if self._stream is None and not self.silent:  # write() without start(), or after stop()
            self.start(self.sample_rate)
        with self._lock:
            self._advance_silent()
            if not self.silent:  # the silent clock only counts samples
                self._queue.append(a)
            self._written += a.size
            start_now = not self._running
            self._running = True
            self._clock = time.monotonic()
        if start_now and self._stream is not None:
            try:
                self._stream.start()
            except Exception as e:  # the device went away between open and start
                self._close_stream()
                with self._lock:
                    self._queue.clear()
                    self._head = 0
                    self._clock = time.monotonic()
                self._go_silent(NO_DEVICE, e)

    def stop(self) -> None:
        """Cut playback off and drop what is queued."""
        self._close_stream()
        with self._lock:
            self._queue.clear()
            self._head = 0
            self._written = 0
            self._played = 0.0
            self._running = False

    def close(self) -> None:
        self.stop()

    # ---- time -----------------------------------------------------------------------------
    def position(self) -> float:
        """Seconds of the take heard so far."""
        with self._lock:
            self._advance_silent()
            return self._played / self.sample_rate

    def queued(self) -> float:
        """Seconds written but not heard yet."""
        with self._lock:
            self._advance_silent()
            return (self._written - self._played) / self.sample_rate

    @property
    def written(self) -> float:
        """Seconds written since start()."""
        return self._written / self.sample_rate

    @property
    def samples_written(self) -> int:
        return self._written

    @property
    def playing(self) -> bool:
        return self._running and self.queued() > 1e-9

    # ---- internals ------------------------------------------------------------------------
    def _go_silent(self, reason: str, err: Exception | None = None) -> None:
        if err is not None:
            log.info("%s (%s: %s)", reason, type(err).__name__, err)
        self.silent, self.reason = True, reason

    def _advance_silent(self) -> None:  # caller holds the lock
        if not (self.silent and self._running):
            return
        now = time.monotonic()
        self._played = min(self._played + (now - self._clock) * self.sample_rate, float(self._written))
        self._clock = now

    def _fill(self, outdata, frames, time_info, status) -> None:
        """PortAudio callback (its own thread): copy queued samples out, silence where none are."""
        out = outdata[:, 0]
        got = 0
        with self._lock:
            while got < frames and self._queue:
                head = self._queue[0]
                take = min(frames - got, head.size - self._head)
                out[got:got + take] = head[self._head:self._head + take]
                got += take
                self._head += take
                if self._head >= head.size:
                    self._queue.popleft()
                    self._head = 0
            self._played += got
        out[got:] = 0.0

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as e:  # closing a dead device must not take the panel down
                log.info("closing the audio stream failed: %s", e)
