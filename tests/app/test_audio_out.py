"""Speech playback: silent fallback without PortAudio or without a device (never a crash), the silent
clock keeps time like a sound card, and a working stream plays the chunks in order from the first."""
from __future__ import annotations

import importlib.abc
import sys
import time
import types

import numpy as np
import pytest

from app import audio_out
from app.audio_out import FORCED_OFF, NO_DEVICE, NO_PORTAUDIO, AudioOut


class _NoPortAudio(importlib.abc.MetaPathFinder):
    """What `import sounddevice` does on a machine without the PortAudio library."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def fake_sounddevice(open_error: str | None = None):
    """A stand-in sounddevice module: OutputStream records its callback, or raises PortAudioError."""
    mod = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    class OutputStream:
        opened: list = []

        def __init__(self, samplerate, channels, dtype, callback, **kw):
            if open_error is not None:
                raise PortAudioError(open_error)
            self.samplerate, self.callback, self.started, self.closed = samplerate, callback, False, False
            OutputStream.opened.append(self)

        def start(self):
            self.started = True

        def abort(self):
            self.started = False

        def close(self):
            self.closed = True

    mod.PortAudioError, mod.OutputStream = PortAudioError, OutputStream
    return mod


@pytest.fixture
def audio_on(monkeypatch):
    monkeypatch.delenv("WEFT_AUDIO", raising=False)


def test_forced_silent_keeps_time_and_starves_like_a_card(monkeypatch):
    monkeypatch.setenv("WEFT_AUDIO", "none")
    out = AudioOut()
    out.start(16000)
    assert out.silent and out.reason == FORCED_OFF
    assert out.position() == 0.0 and not out.playing  # nothing plays before the first chunk
    out.write(np.zeros(1600, np.float32))  # 0.1 s
    assert out.playing
    time.sleep(0.25)
    assert out.position() == pytest.approx(0.1)  # starved: it cannot play what it has not got
    out.write(np.zeros(16000, np.float32))  # 1 s more: the clock goes on from 0.1, it does not jump
    time.sleep(0.1)
    assert 0.15 <= out.position() < 0.5
    assert out.written == pytest.approx(1.1) and out.queued() > 0.5
    out.stop()
    assert out.position() == 0.0 and out.written == 0.0 and not out.playing


def test_no_portaudio_library_plays_silently(monkeypatch, audio_on):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(OSError):  # the import itself fails, as without libportaudio
        import sounddevice  # noqa: F401
    out = AudioOut()
    out.start(16000)
    assert out.silent and out.reason == NO_PORTAUDIO and "playing silently" in out.reason
    out.write(np.ones(3200, np.float32))
    assert out.written == pytest.approx(0.2) and out.playing


def test_no_output_device_plays_silently(monkeypatch, audio_on):
    fake = fake_sounddevice(open_error="Error querying device -1")
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    out = AudioOut()
    out.start(16000)
    assert out.silent and out.reason == NO_DEVICE == "No audio output device: playing silently."
    out.write(np.ones(1600, np.float32))
    time.sleep(0.05)
    assert 0.03 <= out.position() <= 0.1


def test_stream_plays_chunks_in_order_from_the_first(monkeypatch, audio_on):
    fake = fake_sounddevice()
    monkeypatch.setattr(audio_out, "_import_sounddevice", lambda: fake)
    out = AudioOut()
    out.start(16000)
    assert not out.silent and out.reason == ""
    stream = fake.OutputStream.opened[-1]
    assert stream.samplerate == 16000 and not stream.started  # not before the first chunk
    out.write(np.arange(5, dtype=np.float32))
    assert stream.started
    out.write(np.arange(5, 8, dtype=np.float32))
    buf = np.full((6, 1), -1.0, np.float32)
    stream.callback(buf, 6, None, None)  # the card asks for 6 samples
    np.testing.assert_array_equal(buf[:, 0], [0, 1, 2, 3, 4, 5])
    assert out.position() == pytest.approx(6 / 16000)
    buf = np.full((4, 1), -1.0, np.float32)
    stream.callback(buf, 4, None, None)  # 2 left, then silence (an underrun plays zeros, not garbage)
    np.testing.assert_array_equal(buf[:, 0], [6, 7, 0, 0])
    assert out.position() == pytest.approx(8 / 16000) and out.queued() == 0
    out.stop()
    assert stream.closed


def test_device_lost_at_start_falls_back(monkeypatch, audio_on):
    fake = fake_sounddevice()

    def boom(self):
        raise fake.PortAudioError("device unplugged")

    monkeypatch.setattr(fake.OutputStream, "start", boom)
    monkeypatch.setattr(audio_out, "_import_sounddevice", lambda: fake)
    out = AudioOut()
    out.start(22050)
    out.write(np.zeros(2205, np.float32))
    assert out.silent and out.reason == NO_DEVICE
    assert out.written == pytest.approx(0.1) and out.playing
