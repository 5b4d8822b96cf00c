"""Speech panel under pytest-qt against a real engine running the synthetic "tiny_speech" session
(tests/fixtures/sessions.py, the "speech" contract with a hum whose pitch follows the emotions):
a take streams into the plots and the takes list, a slider moved mid-take steers it, Stop cancels,
WAV export re-reads, bad text shows inline and loses nothing typed. Also the widgets' numpy data,
the sliders, and the CLI's argument checks."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from app.settings import Settings
from engine.protocol import Event
from widgets.emotions import EMOTIONS, PRESETS, emotion_summary, parse_emotions
from widgets.speech_plots import ENVELOPE_BLOCK, SpeechTrace, envelope

TASK = "tiny_speech"


# ---- plain data ---------------------------------------------------------------------------------
def test_envelope_keeps_peaks_and_trace_marks_unvoiced_as_gaps():
    a = np.zeros(ENVELOPE_BLOCK * 3 + 7, np.float32)
    a[5], a[ENVELOPE_BLOCK + 9] = 0.9, -0.7
    env = envelope(a)
    assert env.shape == (8,)  # 4 blocks (the last one padded), a (min, max) pair each
    assert env[1] == pytest.approx(0.9) and env[2] == pytest.approx(-0.7) and env[4:].max() == 0
    tr = SpeechTrace()
    tr.add(np.zeros(1600), [100, 0, 120], np.zeros((3, 64)))
    tr.add(np.zeros(800), [0, 130], np.full((2, 64), -10.0))
    t, f0 = tr.pitch()
    np.testing.assert_allclose(t, [0, 0.01, 0.02, 0.03, 0.04])
    assert np.isnan(f0[[1, 3]]).all() and f0[4] == 130
    assert tr.spectrogram().shape == (5, 64) and tr.seconds == pytest.approx(0.15)


def test_emotion_names_summary_and_parsing():
    assert len(EMOTIONS) == 8 and {"Neutral", "Excited", "Nervous", "Annoyed"} <= set(PRESETS)
    assert emotion_summary({}) == "neutral" and emotion_summary({"happy": 1.0}, alpha=0.0) == "neutral"
    assert emotion_summary({"calm": 0.2, "happy": 0.8}) == "happy 80 · calm 20"
    assert emotion_summary({"sad": 1.0}, alpha=0.5) == "sad 100 ×0.5"
    assert parse_emotions(["happy=0.8", "calm=0.2,Sad=1"]) == {"happy": 0.8, "calm": 0.2, "sad": 1.0}
    for bad, msg in (("happy", "NAME=VALUE"), ("joy=0.5", "unknown emotion 'joy'"),
                     ("happy=lots", "must be a number"), ("happy=1.5", "between 0 and 1"), ("=0.3", "NAME=VALUE")):
        with pytest.raises(ValueError, match=msg):
            parse_emotions([bad])


def test_cli_rejects_bad_arguments_before_starting_an_engine(capsys, tmp_path):
    from app.cli import main
    from app.cli.speech import build_params

    cases = [(["--emotion", "joy=1"], "unknown emotion 'joy'; the emotions are: happy, angry"),
             (["--emotion", "happy"], "expected NAME=VALUE, e.g. happy=0.8; got 'happy'"),
             (["--emotion", "happy=2"], "between 0 and 1"),
             (["--seconds", "90"], "--seconds must be between 0.3 and 60"),
             (["--seconds", "2", "--speed", "1.2"], "not allowed with argument --seconds"),
             (["--clarity", "3"], "--clarity must be between 1 and 2.5"),
             (["-o", str(tmp_path / "nowhere" / "x.wav")], "does not exist"),
             (["-o", str(tmp_path / "x.mp3x")], "cannot write audio as '.mp3x'")]
    for extra, msg in cases:
        with pytest.raises(SystemExit) as e:
            main(["speech", "Hello there.", *extra])
        assert e.value.code == 2 and msg in capsys.readouterr().err
    import argparse

    ns = argparse.Namespace(text="Hi.", voice="jo", emotion=[{"happy": 0.8}, {"calm": 0.2, "happy": 0.5}],
                            alpha=0.7, seed=3, variation=0.4, seconds=None, speed=1.2, clarity=None)
    assert build_params(ns) == {"text": "Hi.", "voice": "jo", "emotion": {"happy": 0.5, "calm": 0.2}, "alpha": 0.7,
                                "seed": 3, "variation": 0.4, "duration": "speed", "speed": 1.2}
    ns.clarity = 1.5
    assert build_params(ns)["sharpen"] == 1.5


def test_sliders_presets_reset_and_signal(qtbot):
    from widgets.emotion_sliders import CUSTOM, EmotionSliders

    w = EmotionSliders()
    qtbot.addWidget(w)
    got = []
    w.valuesChanged.connect(lambda e, a: got.append((e, a)))
    w.apply_preset("Excited")
    emo, alpha = w.values()
    assert emo["happy"] == 0.8 and emo["surprised"] == 0.6 and emo["sad"] == 0 and alpha == 1.0
    assert len(got) == 1 and got[0][0] == emo and w.preset_box.currentText() == "Excited"
    w.sliders["calm"].setValue(30)  # a user's drag
    assert got[-1][0]["calm"] == 0.3 and w.preset_box.currentText() == CUSTOM and w.value_labels["calm"].text() == "30"
    w.strength.setValue(40)
    assert got[-1][1] == 0.4
    w.reset()
    assert w.values() == ({n: 0.0 for n in EMOTIONS}, 1.0) and w.preset_box.currentText() == "Neutral"
    w.apply_preset("sad")  # any case finds the preset
    assert w.values()[0]["sad"] == 1.0 and w.preset_box.currentText() == "Sad"


# ---- the panel against a real engine --------------------------------------------------------------
@pytest.fixture(scope="module")
def speech_engine(tmp_path_factory):
    """One engine for the module's panel tests (it takes seconds to start)."""
    from engine.launch import EngineProcess

    root = tmp_path_factory.mktemp("speech_engine")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
        for var in ("WEFT_CONFIG_DIR", "WEFT_LOG_DIR", "WEFT_CACHE_DIR", "XDG_RUNTIME_DIR"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        with EngineProcess(device="cpu") as ep:
            yield ep


@pytest.fixture
def panel(qtbot, speech_engine, monkeypatch):
    from app.bridge import EngineBridge
    from app.speech_panel import SpeechPanel

    monkeypatch.setenv("WEFT_AUDIO", "none")
    bridge = EngineBridge()
    bridge.connect_to(speech_engine.endpoint)
    p = SpeechPanel(bridge, Settings(), task=TASK)
    qtbot.addWidget(p)
    p.resize(1100, 720)
    p.show()
    yield p
    p.stop()
    bridge.disconnect_engine()


def _say(panel, text, seconds=None):
    panel.text.setPlainText(text)
    if seconds is not None:
        panel.dur_seconds.setChecked(True)
        panel.seconds_spin.setValue(seconds)
    return panel.speak()


def test_panel_streams_a_take_into_plots_list_and_wav(qtbot, panel, tmp_path):
    bars = []
    panel.progress.valueChanged.connect(lambda v: bars.append((v, panel.progress.maximum(), len(panel.takes))))
    assert _say(panel, "Hello there, this is a streaming test.", seconds=1.5)
    assert panel.stop_btn.isEnabled() and panel.speak_btn.text() == "Speak again"
    qtbot.waitUntil(lambda: panel.plots.trace.chunks >= 1, timeout=5000)
    assert panel.audio.written > 0  # playback started with the first chunk...
    assert not panel.takes  # ...before the take was finished
    assert panel.notice.isVisible() and "playing silently" in panel.notice.text()
    qtbot.waitUntil(lambda: len(panel.takes) == 1, timeout=5000)
    take = panel.takes[0]
    assert take.sample_rate == 16000 and take.audio.size == 24000  # 1.5 s, as asked
    assert panel.plots.trace.samples == 24000 and panel.plots.trace.spectrogram().shape == (150, 64)
    assert panel.take_list.count() == 1 and "Hello there" in panel.take_list.item(0).text()
    assert "neutral" in panel.take_list.item(0).text() and "1.50 s" in panel.take_list.item(0).text()
    before = [(v, m) for v, m, n in bars if n == 0]
    assert len(before) >= 3 and all(v < m for v, m in before)  # never full before the output
    assert panel.progress.value() == panel.progress.maximum()
    qtbot.waitUntil(lambda: panel.plots.playhead() is not None, timeout=2000)  # the playhead follows playback
    img = panel.plots.grab().toImage()  # the three plots really draw (a bare background is one colour)
    colours = {img.pixel(x, y) for x in range(0, img.width(), 9) for y in range(0, img.height(), 9)}
    assert len(colours) > 20

    out = panel.export_wav(tmp_path / "take")
    assert out.suffix == ".wav"
    data, rate = sf.read(out)
    assert rate == 16000 and data.shape == (24000,)
    assert np.abs(data - take.audio).max() < 1e-3

    qtbot.waitUntil(lambda: panel.job is None and not panel.stop_btn.isEnabled(), timeout=5000)
    assert panel.replay(0) and panel.audio.samples_written == 24000 and panel.stop_btn.isEnabled()
    assert not panel.replay(5)


def test_words_read_from_letters_are_named_after_the_take(qtbot, panel):
    panel._on_progress({"total": 10, "done": 0, "seconds_planned": 0.1, "spelt": ["zqxjv", "blorp"]})
    assert "read from letters: zqxjv, blorp" in panel._spelt_note() and "braces" in panel._spelt_note()
    panel._on_progress({"total": 10, "done": 0, "seconds_planned": 0.1, "spelt": [f"w{i}" for i in range(7)]})
    assert panel._spelt_note().endswith("w0, w1, w2, w3 and 3 more (type its sounds in braces to fix one)")
    panel._on_progress({"total": 10, "done": 0, "seconds_planned": 0.1})
    assert panel._spelt_note() == ""


def test_slider_moved_mid_take_steers_the_next_chunks(qtbot, panel):
    # 10 s = 42 chunks, ~2 s of wall time at the fixture's pace: the throttled second steer (~100 ms
    # after the drag) lands long before the end even on a busy machine (3 s was flaky under load)
    assert _say(panel, "Steer me while I speak.", seconds=10.0)
    qtbot.waitUntil(lambda: panel.plots.trace.chunks >= 1, timeout=5000)
    sent = panel.steers_sent
    for v in range(10, 101, 10):  # a quick drag: ten changes within a few milliseconds
        panel.sliders.sliders["happy"].setValue(v)
    assert panel.steers_sent == sent + 1  # throttled: the first now, the latest value ~100 ms later
    qtbot.waitUntil(lambda: panel.steers_sent == sent + 2, timeout=1000)
    qtbot.waitUntil(lambda: len(panel.takes) == 1, timeout=8000)
    take = panel.takes[0]
    voiced = take.f0[take.f0 > 0]
    first, last = np.median(voiced[:20]), np.median(voiced[-20:])
    assert first == pytest.approx(120, rel=0.06)  # neutral "joe" at the start
    assert last == pytest.approx(192, rel=0.06)  # happy 1.0 raises the pitch by 60 %
    assert take.steered and "happy 100 → steered" in panel.take_list.item(0).text()


def test_stop_cancels_the_take(qtbot, panel):
    assert _say(panel, "This one is long and gets stopped.", seconds=20.0)
    qtbot.waitUntil(lambda: panel.plots.trace.chunks >= 2, timeout=5000)
    job, n = panel.job, panel.plots.trace.chunks
    with qtbot.waitSignal(panel.jobEnded, timeout=5000) as ended:
        panel.stop_btn.click()
        # a chunk already on its way when Stop was pressed is dropped, not played
        late = {"chunk": 99, "t0": 9.0, "audio": np.ones(3840, np.float32), "f0": np.zeros(24, np.float32),
                "spec": np.zeros((24, 64), np.float32)}
        panel.on_event(Event(job, "partial", 999, late))
        assert panel.audio.written == 0 and panel.plots.trace.chunks == n
    assert ended.args[1] == "cancelled"
    assert panel.status.text() == "Stopped." and not panel.takes and panel.audio.written == 0
    n = panel.plots.trace.chunks
    qtbot.wait(300)
    assert panel.plots.trace.chunks == n < 80  # nothing more arrives
    assert panel.progress.value() < panel.progress.maximum()
    qtbot.waitUntil(lambda: not panel.stop_btn.isEnabled() and panel.speak_btn.text() == "Speak", timeout=2000)


def test_bad_text_shows_inline_and_loses_nothing_typed(qtbot, panel):
    long_text = "word " * 450  # 2250 characters: the engine refuses it
    panel.text.setPlainText(long_text)
    panel.sliders.apply_preset("Nervous")
    assert "2250 / 2000" in panel.chars.text()
    with qtbot.waitSignal(panel.jobEnded, timeout=5000) as ended:
        assert panel.speak()
    assert ended.args[1] == "error"
    assert panel.error_box.isVisible() and "2250 characters long" in panel.error_box.label.text()
    assert panel.text.toPlainText() == long_text and panel.sliders.values()[0]["afraid"] == 0.7
    assert not panel.takes
    panel.text.setPlainText("   \n ")
    panel.error_box.clear()
    # the Speak shortcut, triggered directly: under Xvfb without a window manager the window may never
    # become active, so a synthetic Ctrl+Return is not delivered as a shortcut
    from PySide6.QtGui import QKeySequence, QShortcut

    speak_keys = [sc for sc in panel.findChildren(QShortcut) if sc.key() == QKeySequence("Ctrl+Return")]
    assert len(speak_keys) == 1
    speak_keys[0].activated.emit()
    assert panel.job is None and panel.error_box.isVisible()  # empty: refused here, nothing sent
    assert "Type some text" in panel.error_box.label.text() and panel.text.toPlainText() == "   \n "
    with pytest.raises(ValueError):
        panel.export_wav("nothing.wav")
    assert "Nothing to export" in panel.error_box.label.text()


def test_settings_survive_a_restart(qtbot, panel):
    from app.speech_panel import SpeechPanel

    panel.text.setPlainText("Remember me.")
    panel.voice_box.setCurrentText("jo")
    panel.sliders.set_values({"sad": 0.5, "calm": 0.25}, 0.6)
    panel.dur_speed.setChecked(True)
    panel.speed_spin.setValue(1.3)
    panel.seed_spin.setValue(42)
    assert "sharpen" not in panel.params()  # clarity "Model's": the model's own postfilter
    panel.clarity_spin.setValue(1.4)
    state = panel.save_state()
    assert state["sharpen"] == 1.4
    fresh = SpeechPanel(panel.bridge, Settings(), task=TASK)
    qtbot.addWidget(fresh)
    fresh.restore_state(state)
    assert fresh.save_state() == state
    assert fresh.params()["duration"] == "speed" and fresh.speed_spin.isEnabled() and not fresh.seconds_spin.isEnabled()
    fresh.restore_state({"alpha": "very", "text": "lost?"})  # garbage in a settings file changes nothing
    assert fresh.save_state() == state


def test_cli_writes_the_take_as_wav(speech_engine, tmp_path, capsys, monkeypatch):
    from app.cli import main

    monkeypatch.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
    out = tmp_path / "hi.wav"
    rc = main(["--connect", speech_engine.endpoint, "speech", "Hi there.", "--emotion", "happy=0.8",
               "--emotion", "calm=0.2", "--seconds", "0.96", "--voice", "jo", "--task", TASK, "-o", str(out)])
    assert rc == 0
    data, rate = sf.read(out)
    assert rate == 16000 and data.shape == (15360,)
    printed = capsys.readouterr().out
    assert f"{out}: 0.96 s at 16000 Hz (voice jo, happy 80 · calm 20)" in printed
    rc = main(["--connect", speech_engine.endpoint, "speech", "Hi.", "--voice", "bob", "--task", TASK, "-o", str(out)])
    assert rc == 1 and "unknown voice 'bob'" in capsys.readouterr().err


# ---- the product's own model (assets/speech) --------------------------------------------------------
def test_panel_speaks_with_the_shipped_model(qtbot, speech_engine, monkeypatch, tmp_path):
    """The real "speech" task end to end: a 2 s take of the trained model streams into the panel,
    with voiced pitch in a speaking range; the CLI writes the same task's WAV."""
    from app.bridge import EngineBridge
    from app.cli import main
    from app.speech_panel import SpeechPanel

    monkeypatch.setenv("WEFT_AUDIO", "none")
    bridge = EngineBridge()
    bridge.connect_to(speech_engine.endpoint)
    p = SpeechPanel(bridge, Settings())
    qtbot.addWidget(p)
    try:
        p.sliders.apply_preset("Excited")
        assert _say(p, "The weather is lovely today.", seconds=2.0)
        seen = []
        qtbot.waitUntil(lambda: seen.append((p.plots.trace.chunks, len(p.takes))) or len(p.takes) == 1,
                        timeout=90000)  # includes loading the weights
        streaming = [c for c, n in seen if n == 0]
        assert max(streaming) >= 3  # chunks were drawn while the take was still being made
        take = p.takes[0]
        assert take.audio.size == 32000 and np.isfinite(take.audio).all()
        assert np.sqrt(np.mean(take.audio ** 2)) > 0.01  # not silence
        voiced = take.f0[take.f0 > 0]
        assert len(voiced) > 40 and 70 < np.median(voiced) < 400
    finally:
        p.stop()
        bridge.disconnect_engine()
    out = tmp_path / "real.wav"
    assert main(["--connect", speech_engine.endpoint, "speech", "Hello.", "--speed", "0.8", "-o", str(out)]) == 0
    data, rate = sf.read(out)
    assert rate == 16000 and 0.2 < len(data) / rate < 3.0
