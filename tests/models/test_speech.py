"""Speech: front end, prosody transforms, WORLD streaming joins, the engine session (with a tiny
random model: the mechanics, not the voice), the teacher-word mapping of the data script and one
training step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.common.session import ParamError
from models.common.weights import save_weights
from models.speech import frontend, prosody, vocoder
from models.speech.model import SpeechConfig, SpeechModel
from models.speech.stream import SpeechBundle, SpeechSession, fit_lengths


# ---- front end ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, said", [
    ("It costs $12.50.", "it costs twelve dollars fifty cents."),
    ("Meet me at 3:30 on the 4th, ok?", "meet me at three thirty on the fourth, ok?"),
    ("In 1999 about 1,234 people came.", "in nineteen ninety nine about one thousand two hundred thirty four people came."),
    ("Dr. Smith said 42% -- twice!", "doctor smith said forty two percent, twice!"),
    ("Pi is 3.14; e is 2.72", "pi is three point one four, e is two point seven two"),
    ("It's -5 degrees & falling...", "it's minus five degrees and falling."),
    ("\u201cQuoted\u201d (aside) text\u2014done", "quoted aside text, done"),
    ("Call 007 in 2005", "call zero zero seven in two thousand five"),
])
def test_normalize_reads_numbers_and_punctuation(raw, said):
    assert frontend.normalize(raw) == said


def test_number_words():
    assert frontend.number_words(0) == "zero"
    assert frontend.number_words(115) == "one hundred fifteen"
    assert frontend.number_words(2_000_019) == "two million nineteen"
    assert frontend.ordinal_words(21) == "twenty first"
    assert frontend.ordinal_words(12) == "twelfth"
    assert frontend.year_words(1905) == "nineteen oh five"


def test_sentences_end_with_a_mark_and_long_ones_are_cut():
    assert frontend.split_sentences("Wait... what?! No, no. Hmm, ok") == ["wait.", "what?", "no, no.", "hmm, ok."]
    assert frontend.split_sentences("   ??? ") == []
    long = ", ".join(["the quick brown fox jumps over the lazy dog"] * 12)
    parts = frontend.split_sentences(long)
    assert len(parts) > 1 and all(len(p) <= 220 for p in parts)
    assert " ".join(parts).replace(",", "").replace(".", "").split() == long.replace(",", "").split()


def test_encode_word_spans_cover_the_sentence():
    e = frontend.encode("hello, big world.")
    assert [("hello, big world."[a:b]) for a, b in e.words] == ["hello, ", "big ", "world."]
    assert len(e.ids) == len("hello, big world.") and 0 not in e.ids


# ---- prosody and WORLD ------------------------------------------------------------------------
def _frames(T=120, f0=140.0):
    rng = np.random.default_rng(0)
    f = np.zeros((T, vocoder.N_FEAT), np.float32)
    f[:, 0] = np.log(f0) + 0.05 * np.sin(np.arange(T) / 7)
    f[:, 1] = (np.arange(T) % 30) < 24
    sp = np.exp(-np.linspace(0, 6, vocoder.FFT // 2 + 1))[None] * (1 + 0.3 * rng.random((T, 1)))
    f[:, 2:2 + vocoder.N_SP] = vocoder.pyworld().code_spectral_envelope(sp.astype(np.float64), vocoder.FS, vocoder.N_SP)
    f[:, -1] = -8.0
    return f


def test_emotions_move_pitch_energy_and_tempo_as_profiled():
    fr, wf, pf = _frames(), np.array([40, 40, 40]), np.array([0, 10, 10])
    base, _ = prosody.apply(fr, wf, pf, np.zeros(8))
    for name in prosody.EMOTIONS:
        p = prosody.PROFILES[name]
        out, wf2 = prosody.apply(fr, wf, pf, prosody.vector({name: 1.0}))
        assert wf2.sum() == len(out) and (wf2 % 2 == 0).all()
        dpitch = out[:, 0].mean() - base[:, 0].mean()
        assert np.sign(round(dpitch, 3)) == np.sign(p["pitch"] + p["final"] / 4) or abs(p["pitch"]) < 1.01
        denergy = vocoder.power_db(out[:, 2:2 + vocoder.N_SP]) - vocoder.power_db(base[:, 2:2 + vocoder.N_SP])
        assert np.sign(denergy) == np.sign(p["energy"])
        if abs(p["tempo"] - 1) > 0.05:
            assert (len(out) < len(base)) == (p["tempo"] > 1)


def test_energy_is_net_of_spectral_tilt():
    """A darker tilt lifts the low bands that dominate the power; the profile's energy is what the
    envelope's mean power moves by (melancholic: tilt -3 dB/octave, energy -3 dB)."""
    fr, wf, pf = _frames(), np.array([60, 60]), np.array([0, 0])
    base = vocoder.power_db(fr[:, 2:2 + vocoder.N_SP])
    for name in ("melancholic", "angry"):
        p = prosody.PROFILES[name]
        out, _ = prosody.apply(fr, wf, pf, prosody.vector({name: 1.0}))
        assert abs(vocoder.power_db(out[:, 2:2 + vocoder.N_SP]) - base - p["energy"]) < 0.5
        only_tilt = fr[:, 2:2 + vocoder.N_SP] + p["tilt"] * vocoder.tilt_vector(1.0)
        assert abs(vocoder.power_db(only_tilt) - base) > 1.0  # the tilt alone does move it


def test_repair_f0_folds_octave_errors_and_drops_stray_frames():
    T = 200
    f0 = 110.0 * np.exp(0.1 * np.sin(np.arange(T) / 20))
    f0[150:] = 0.0
    bad = f0.copy()
    bad[30:45] *= 2.0  # an octave up: folded back
    bad[80:84] *= 0.5  # an octave down: kept (creak at a phrase end looks like this)
    bad[90:93] *= 0.3  # far below: unvoiced
    bad[100:106] = 300.0  # not an octave of anything near: unvoiced
    fixed = vocoder.repair_f0(bad)
    assert np.allclose(fixed[30:45], f0[30:45]) and np.allclose(fixed[80:84], bad[80:84])
    assert (fixed[100:106] == 0).all() and (fixed[90:93] == 0).all() and (fixed[150:] == 0).all()
    keep = np.r_[0:30, 45:80, 84:90, 93:100, 106:150]
    assert np.array_equal(fixed[keep], f0[keep])
    assert np.array_equal(vocoder.repair_f0(np.zeros(5)), np.zeros(5))


def test_corpus_repair_pass_changes_only_pitch_and_voicing():
    from models.speech import data

    a, b = _frames(60), _frames(40)
    a[10:20, 0] += np.log(2)  # an octave error in a voiced stretch
    z = dict(frames=np.concatenate([a, b]).astype(np.float16), frame_off=np.array([0, 60, 100]), texts=np.array(["x", "y"]))
    out, before, after = data.repair_split(z)
    fr = out["frames"].astype(np.float32)
    assert np.array_equal(fr[:, 2:], z["frames"][:, 2:].astype(np.float32))
    voiced = a[:, 1] > 0.5
    assert np.abs(fr[:60, 0][voiced] - _frames(60)[:, 0][voiced]).max() < 0.01
    assert after <= before


def test_voice_warp_map_equals_decode_warp_encode():
    fr = _frames(8)
    pw = vocoder.pyworld()
    A, b = vocoder.warp_map(1.16)
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(fr[:, 2:42].astype(np.float64)), vocoder.FS, vocoder.FFT)
    f = np.linspace(0, vocoder.FS / 2, vocoder.FFT // 2 + 1)
    warped = np.exp(np.stack([np.interp(f / 1.16, f, np.log(r)) for r in sp]))
    direct = pw.code_spectral_envelope(warped, vocoder.FS, vocoder.N_SP)
    assert np.abs(fr[:, 2:42] @ A + b - direct).max() < 1e-3


def test_analysis_finds_a_vowel_voiced_and_noise_unvoiced():
    """A buzzy 'vowel' (a 130 Hz pulse train through two formant resonators) then white noise:
    the analysis the corpus is built with marks the first voiced at ~130 Hz and the second not."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(0)
    n = vocoder.FS // 2
    pulses = np.zeros(n)
    pulses[:: vocoder.FS // 130] = 1.0
    vowel = pulses
    for f, bw in ((700, 110), (1200, 120)):
        r = np.exp(-np.pi * bw / vocoder.FS)
        vowel = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / vocoder.FS), r * r], vowel)
    x = np.concatenate([0.3 * vowel / np.abs(vowel).max(), 0.05 * rng.standard_normal(n)])
    feats = vocoder.analyze(x)
    half = len(feats["vuv"]) // 2
    assert feats["vuv"][5:half - 5].mean() > 0.9 and feats["vuv"][half + 5:-5].mean() < 0.1
    f0 = np.exp(feats["lf0"][5:half - 5][feats["vuv"][5:half - 5] > 0])
    assert abs(np.median(f0) - 130) < 5


def test_mid_frames_are_analysed_and_used_by_synthesis():
    """With mid=True the analysis adds the envelope 5 ms after each frame; synthesis uses it in place
    of the linear interpolation (identical when the mid-frames are that interpolation), and a
    streaming synthesiser takes such frames too."""
    rng = np.random.default_rng(1)
    x = 0.05 * rng.standard_normal(vocoder.FS // 4)
    plain, mid = vocoder.analyze(x), vocoder.analyze(x, mid=True)
    assert mid["csp_mid"].shape == mid["csp"].shape == (len(plain["csp"]), vocoder.N_SP)
    assert mid["cap_mid"].shape == plain["cap"].shape
    fr = _frames(60)
    interp = vocoder.synthesis_grid(fr)[1::2, 2:]
    with_mid = np.concatenate([fr, interp], 1)
    assert with_mid.shape[1] == vocoder.N_FEAT + vocoder.N_MID == vocoder.pack({**vocoder.analyze(x, mid=True)}).shape[1]
    assert np.allclose(vocoder.synthesize(with_mid), vocoder.synthesize(fr), atol=1e-5)
    louder = with_mid.copy()
    louder[:, vocoder.N_FEAT:vocoder.N_FEAT + vocoder.N_SP] += vocoder.gain_vector(12.0)  # only the mid-frames
    a, b = vocoder.synthesize(fr), vocoder.synthesize(louder)
    assert np.sqrt((b ** 2).mean()) > 1.3 * np.sqrt((a ** 2).mean())
    s = vocoder.StreamingSynth()
    y = np.concatenate([s.push(louder[:30]), s.push(louder[30:], final=True)])
    assert len(y) == len(fr) * vocoder.HOP


def _with_subs(fr, K):
    """Frames with K envelopes each, the sub-frames being the linear interpolation of the frames'."""
    T = len(fr)
    env = fr[:, 2:]
    nxt = np.concatenate([env[1:], env[-1:]])
    subs = [env + (nxt - env) * j / K for j in range(1, K)]
    return np.concatenate([fr] + subs, 1).astype(np.float32) if K > 1 else fr


def test_frames_every_2_5_ms_are_analysed_moved_and_synthesised():
    """sub=4: four envelopes per 10 ms frame (the aim: a higher vocoder ceiling); synthesis runs
    every 2.5 ms and uses them; prosody keeps every sub-frame with its frame; a bad width is refused."""
    rng = np.random.default_rng(1)
    x = 0.05 * rng.standard_normal(vocoder.FS // 4)
    f4 = vocoder.pack(vocoder.analyze(x, sub=4))
    assert f4.shape == (len(vocoder.analyze(x)["csp"]), vocoder.N_FEAT + 3 * vocoder.N_MID) and vocoder.n_sub(f4) == 4
    assert vocoder.envelopes(f4).shape == (4 * len(f4), vocoder.N_MID)
    assert vocoder.synth_period_ms(f4) == 2.5 and vocoder.synth_period_ms(_frames(4)) == 5.0
    fr = _frames(60)
    full = _with_subs(fr, 4)
    a = vocoder.synthesize(full)
    assert len(a) == len(fr) * vocoder.HOP
    louder = full.copy()
    for k in range(3):  # only the sub-frames
        louder[:, vocoder.N_FEAT + k * vocoder.N_MID:vocoder.N_FEAT + k * vocoder.N_MID + vocoder.N_SP] += vocoder.gain_vector(12.0)
    b = vocoder.synthesize(louder)
    assert np.sqrt((b ** 2).mean()) > 1.5 * np.sqrt((a ** 2).mean())
    wf, pf = np.array([20, 20, 20]), np.array([0, 4, 4])
    same, w = prosody.retime(full, wf, pf, 1.0, 1.0)
    assert np.array_equal(w, wf) and np.allclose(same, full)
    sad, w4 = prosody.apply(full, wf, pf, prosody.vector({"sad": 1.0}), "jo")
    plain, w1 = prosody.apply(fr, wf, pf, prosody.vector({"sad": 1.0}), "jo")
    assert np.array_equal(w4, w1) and vocoder.n_sub(sad) == 4
    assert np.abs(sad[:, 2:vocoder.N_FEAT] - plain[:, 2:]).mean() < 0.05
    assert np.abs(vocoder.envelopes(sad)[:-4] - vocoder.envelopes(_with_subs(plain, 4))[:-4]).mean() < 0.05
    with pytest.raises(ValueError, match="expected"):
        vocoder.n_sub(np.zeros((3, vocoder.N_FEAT + 5)))
    t = torch.from_numpy(full)[None]
    mask = torch.ones(1, len(full))
    assert float(SpeechModel._delta_loss(t, t, mask)) == 0.0
    blurred = t.clone()
    blurred[..., vocoder.N_FEAT + vocoder.N_MID:] = 0.0  # sub-frames 2 and 3 wiped: the 2.5 ms grid sees it
    assert float(SpeechModel._delta_loss(blurred, t, mask)) > 0.1


def test_a_mid_frame_model_widens_to_2_5_ms_keeping_its_outputs():
    from models.speech.train import widen_frames

    kw = dict(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2)
    v5 = SpeechModel(SpeechConfig(**kw, n_feat=vocoder.N_FEAT + vocoder.N_MID)).eval()
    v6 = SpeechModel(SpeechConfig(**kw, n_feat=vocoder.N_FEAT + 3 * vocoder.N_MID)).eval()
    state = v5.state_dict()
    assert widen_frames(state, v6)
    v6.load_state_dict(state)
    x = torch.randn(1, 5, 2, v6.cfg.n_feat)
    cond = torch.randn(1, 5, 32)
    mid4 = slice(vocoder.N_FEAT + vocoder.N_MID, vocoder.N_FEAT + 2 * vocoder.N_MID)  # sub-frame 2 of 4 = v5's mid-frame
    x5 = torch.cat([x[..., :vocoder.N_FEAT], x[..., mid4]], -1)
    with torch.no_grad():
        o5 = v5.decoder(embeds=v5.prenet(x5.reshape(1, 5, -1)) + cond).view(1, 5, 2, -1)
        o6 = v6.decoder(embeds=v6.prenet(x.reshape(1, 5, -1)) + cond).view(1, 5, 2, -1)
    assert torch.allclose(o6[..., :vocoder.N_FEAT], o5[..., :vocoder.N_FEAT], atol=1e-5)
    assert torch.allclose(o6[..., mid4], o5[..., vocoder.N_FEAT:], atol=1e-5)
    first = slice(vocoder.N_FEAT, vocoder.N_FEAT + vocoder.N_MID)  # 2.5 ms: half-way between the frame and its mid-frame
    assert torch.allclose(o6[..., first], 0.5 * (o5[..., 2:vocoder.N_FEAT] + o5[..., vocoder.N_FEAT:]), atol=1e-5)


def test_prosody_moves_mid_frames_with_their_frames():
    fr, wf, pf = _frames(), np.array([40, 40, 40]), np.array([0, 10, 10])
    full = np.concatenate([fr, vocoder.synthesis_grid(fr)[1::2, 2:]], 1)
    same, w = prosody.retime(full, wf, pf, 1.0, 1.0)
    assert np.array_equal(w, wf) and np.allclose(same, full)
    for k in range(8):  # every emotion changes a frame's and its mid-frame's envelope alike
        v = np.eye(8)[k]
        a, wa = prosody.apply(full, wf, pf, v, "jo")
        b, wb = prosody.apply(fr, wf, pf, v, "jo")
        assert np.array_equal(wa, wb) and a.shape == (len(b), vocoder.N_FEAT + vocoder.N_MID)
        mid_of = vocoder.synthesis_grid(b)[1::2, 2:]
        assert np.abs(a[:-1, vocoder.N_FEAT:] - mid_of[:-1]).mean() < 0.05
        assert np.abs(a[:, 2:vocoder.N_FEAT] - b[:, 2:]).mean() < 0.05


def test_a_10ms_model_widens_to_mid_frames_keeping_its_outputs():
    from models.speech.train import widen_frames

    small = SpeechModel(SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2)).eval()
    big = SpeechModel(SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2,
                                   n_feat=vocoder.N_FEAT + vocoder.N_MID)).eval()
    state = small.state_dict()
    assert widen_frames(state, big) and not widen_frames(big.state_dict(), big)
    big.load_state_dict(state)
    x = torch.randn(1, 5, 2, big.cfg.n_feat)
    cond = torch.randn(1, 5, 32)
    with torch.no_grad():
        o_small = small.decoder(embeds=small.prenet(x[..., :vocoder.N_FEAT].reshape(1, 5, -1)) + cond).view(1, 5, 2, -1)
        o_big = big.decoder(embeds=big.prenet(x.reshape(1, 5, -1)) + cond).view(1, 5, 2, -1)
    assert torch.allclose(o_big[..., :vocoder.N_FEAT], o_small, atol=1e-5)
    assert torch.allclose(o_big[:, :, 0, vocoder.N_FEAT:], 0.5 * (o_small[:, :, 0, 2:] + o_small[:, :, 1, 2:]), atol=1e-5)


@pytest.mark.parametrize("subs", [1, 3])
def test_a_sub_frame_model_streams_a_take(tmp_path, subs):
    """Models with mid-frames (v5) or four envelopes per frame stream through the same session."""
    torch.manual_seed(0)
    cfg = SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2, n_feat=vocoder.N_FEAT + subs * vocoder.N_MID)
    m = SpeechModel(cfg)
    m.feat_std.fill_(0.1)
    m.feat_std[1] = 1.0
    save_weights(m, tmp_path / "m.safetensors", cfg)
    s = SpeechSession(SpeechBundle.from_file(tmp_path / "m.safetensors"), "cpu")
    s.start({"text": "Hello there.", "duration": "seconds", "seconds": 1.2, "seed": 0})
    events = run(s)
    out = [d for k, d in events if k == "output"][0]
    assert abs(out["seconds"] - 1.2) < 0.05
    audio = np.concatenate([d["audio"] for k, d in events if k == "partial"])
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_sharpen_deepens_formant_valleys_and_keeps_power_and_tilt():
    fr = _frames(40)
    full = np.concatenate([fr, vocoder.synthesis_grid(fr)[1::2, 2:]], 1)
    for f in (fr, full):
        assert np.array_equal(vocoder.sharpen(f, 1.0), f)
        sh = vocoder.sharpen(f, 1.5)
        assert sh.shape == f.shape and not np.shares_memory(sh, f)
        keep = [0, 1, 3] + ([vocoder.N_FEAT + 1] if f is full else [])  # pitch, voicing, tilt
        assert np.array_equal(sh[:, keep], f[:, keep]) and np.array_equal(sh[:, 2 + vocoder.N_SP], f[:, 2 + vocoder.N_SP])
        assert np.allclose(sh[:, 4:2 + vocoder.N_SP], 1.5 * f[:, 4:2 + vocoder.N_SP])
        for base in (2, vocoder.N_FEAT) if f is full else (2,):  # every frame keeps its power
            assert np.allclose(vocoder._frame_power_db(sh[:, base:base + vocoder.N_SP]),
                               vocoder._frame_power_db(f[:, base:base + vocoder.N_SP]), atol=1e-3)
    assert np.allclose(vocoder.sharpen(full, 1.5)[:, vocoder.N_FEAT + 2:vocoder.N_FEAT + vocoder.N_SP], 1.5 * full[:, vocoder.N_FEAT + 2:vocoder.N_FEAT + vocoder.N_SP])
    # an envelope with two formants (500 and 1500 Hz): the valley between them deepens
    pw = vocoder.pyworld()
    hz = np.linspace(0, vocoder.FS / 2, vocoder.FFT // 2 + 1)
    sp = 1e-3 * (1 + 20 * np.exp(-((hz - 500) / 120) ** 2) + 10 * np.exp(-((hz - 1500) / 150) ** 2))
    fr = _frames(1)
    fr[:, 2:2 + vocoder.N_SP] = pw.code_spectral_envelope(sp[None], vocoder.FS, vocoder.N_SP)

    def contrast(f):
        env = np.log(pw.decode_spectral_envelope(np.ascontiguousarray(f[:, 2:2 + vocoder.N_SP], dtype=np.float64), vocoder.FS, vocoder.FFT))[0]
        return env[np.argmin(np.abs(hz - 500))] - env[np.argmin(np.abs(hz - 1000))]

    assert contrast(vocoder.sharpen(fr, 1.5)) > 1.3 * contrast(fr) > 0


def test_session_applies_the_models_postfilter_or_the_one_asked_for(bundle):
    def take(**kw):
        s = SpeechSession(bundle, "cpu")
        s.start({"text": "Alpha beta gamma.", "seed": 0, **kw})
        return [d for k, d in run(s) if k == "output"][0]

    plain, sharp = take(), take(sharpen=1.6)
    assert len(plain["audio"]) == len(sharp["audio"]) and not np.allclose(plain["audio"], sharp["audio"])
    assert np.array_equal(plain["f0"], sharp["f0"])
    assert np.array_equal(take(sharpen=1.0)["audio"], plain["audio"])  # the tiny model's own value is 1
    with pytest.raises(ParamError, match="sharpen"):
        SpeechSession(bundle, "cpu").start({"text": "Hi.", "sharpen": 5})


def test_streaming_synthesis_joins_have_no_steps():
    fr = _frames(240)
    fr[:, 1] = 1.0
    whole = vocoder.synthesize(fr)
    s = vocoder.StreamingSynth()
    chunks = [s.push(fr[i:i + 24], final=i + 24 >= len(fr)) for i in range(0, len(fr), 24)]
    y = np.concatenate(chunks + [s.flush()])
    assert len(y) == len(whole) == len(fr) * vocoder.HOP
    jump = np.abs(np.diff(y))
    typical = np.percentile(np.abs(np.diff(whole)), 99.9)
    for k in range(1, 10):  # around every join (and the cross-fade behind it)
        j = k * 24 * vocoder.HOP
        assert jump[j - 3 * vocoder.HOP - 5:j + 5].max() <= 1.5 * typical
    assert np.sqrt((y ** 2).mean()) == pytest.approx(np.sqrt((whole ** 2).mean()), rel=0.25)


def _fade_lsd(y, whole, chunk=24, fade=3):
    """Mean log-spectral distance to the whole-sentence rendering over every join's cross-fade."""
    n, w, out = fade * vocoder.HOP, np.hanning(fade * vocoder.HOP), []
    for j in range(chunk * vocoder.HOP - n, len(whole) - chunk * vocoder.HOP, chunk * vocoder.HOP):
        a, b = (np.log(np.abs(np.fft.rfft(x[j:j + n] * w)) + 1e-6) for x in (y, whole))
        out.append(np.sqrt(((a - b) ** 2).mean()))
    return float(np.mean(out))


@pytest.mark.parametrize("f0", [100.0, 140.0, 180.0])
def test_streaming_joins_line_up_the_pulses(f0):
    """WORLD starts each rendering with its own pulse phase; a plain cross-fade mixes two pulse
    trains (a comb filter at every join). Aligned joins stay closer to the whole-sentence rendering
    and still give exactly len(frames) * HOP samples, whatever the chunk size."""
    fr = _frames(240, f0)
    fr[:, 1] = 1.0
    whole = vocoder.synthesize(fr)

    def stream(align, chunk=24):
        s = vocoder.StreamingSynth(align=align)
        return np.concatenate([s.push(fr[i:i + chunk], final=i + chunk >= len(fr)) for i in range(0, len(fr), chunk)] + [s.flush()])
    aligned, plain = stream(True), stream(False)
    assert len(aligned) == len(plain) == len(whole)
    assert _fade_lsd(aligned, whole) < 0.85 * _fade_lsd(plain, whole)
    for chunk in (7, 13, 50):
        assert len(stream(True, chunk)) == len(whole)


def test_fit_lengths_hits_the_total_exactly():
    got = fit_lengths(np.array([3.2, 10.7, 0.1, 6.0]), 50)
    assert got.sum() == 50 and got.min() >= 1
    assert list(np.argsort(got)) == [2, 0, 3, 1]
    with pytest.raises(ValueError):
        fit_lengths(np.ones(5), 3)


# ---- engine session with a tiny random model --------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    cfg = SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2)
    path = tmp_path_factory.mktemp("speech") / "tiny.safetensors"
    m = SpeechModel(cfg)
    m.feat_mean[0] = float(np.log(120.0))
    m.feat_mean[2:2 + vocoder.N_SP] = torch.from_numpy(_frames(1)[0, 2:2 + vocoder.N_SP])
    m.feat_std.fill_(0.1)
    m.feat_std[1] = 1.0
    with torch.no_grad():
        m.dur_head[-1].bias.fill_(float(np.log(12.0)))  # words of ~12 frames, like real speech
    save_weights(m, path, cfg)
    return SpeechBundle.from_file(path)


def run(session, steer_at=None, steer=None):
    events = []
    while not session.done:
        for kind, data in session.step():
            events.append((kind, data))
            if kind == "partial" and data["chunk"] == steer_at:
                session.steer(steer)
    return events


def test_session_streams_chunks_that_add_up_to_the_take(bundle):
    s = SpeechSession(bundle, "cpu")
    first = s.start({"text": "Hello there. How are you today?", "seed": 1})
    assert first[0][0] == "progress" and first[0][1]["total"] > 0 and first[0][1]["sentences"] == 2
    ev = run(s)
    parts = [d for k, d in ev if k == "partial"]
    out = [d for k, d in ev if k == "output"][0]
    assert [p["chunk"] for p in parts] == list(range(len(parts)))
    assert all(len(p["audio"]) <= 0.3 * vocoder.FS for p in parts[:-1])
    assert np.array_equal(np.concatenate([p["audio"] for p in parts]), out["audio"])
    assert out["spec"].shape == (len(out["f0"]), 64) and np.isfinite(out["audio"]).all()
    assert parts[1]["t0"] == pytest.approx(len(parts[0]["audio"]) / vocoder.FS)


def test_vocoder_worker_sends_the_first_chunk_at_once_and_stops_with_the_take(bundle):
    s = SpeechSession(bundle, "cpu")
    s.start({"text": "One two three four five six seven eight nine ten eleven twelve.", "seed": 0})
    first = s.step()
    assert first[0][0] == "partial" and first[0][1]["chunk"] == 0  # not held back by the pipeline
    second = s.step()  # chunk 1 is being rendered while chunk 2 is decoded: nothing to send yet
    assert [k for k, _ in second] == [] and s.pending is not None
    third = s.step()
    assert [d["chunk"] for k, d in third if k == "partial"] == [1]
    s.close()  # mid-take: the worker is stopped, nothing is left running
    assert s.pool is None and s.pending is None
    s2 = SpeechSession(bundle, "cpu")
    s2.close()  # never started: closing is harmless


@pytest.mark.parametrize("seconds", [1.0, 3.5, 7.26])
def test_duration_control_obeys_the_target(bundle, seconds):
    s = SpeechSession(bundle, "cpu")
    s.start({"text": "The quick brown fox jumps over the lazy dog. Then it sleeps.", "duration": "seconds", "seconds": seconds})
    out = [d for k, d in run(s) if k == "output"][0]
    assert abs(out["seconds"] - seconds) / seconds < 0.01


def test_speed_factor_and_steering_retime_the_rest(bundle):
    text = "One two three four five six seven eight nine ten eleven twelve."
    lens = {}
    for speed in (0.5, 2.0):
        s = SpeechSession(bundle, "cpu")
        s.start({"text": text, "duration": "speed", "speed": speed})
        lens[speed] = [d for k, d in run(s) if k == "output"][0]["seconds"]
    assert lens[0.5] > 2.5 * lens[2.0]
    s = SpeechSession(bundle, "cpu")
    s.start({"text": text, "duration": "seconds", "seconds": 4.0})
    ev = run(s, steer_at=1, steer={"emotion": {"melancholic": 1.0}, "alpha": 0.8})
    assert s.v[prosody.EMOTIONS.index("melancholic")] == pytest.approx(0.8)
    assert [d for k, d in ev if k == "output"][0]["seconds"] == pytest.approx(4.0, abs=0.02)


@pytest.mark.parametrize("params, msg", [
    ({"text": "  "}, "Type some text"),
    ({"text": "x" * 2001}, "limit"),
    ({"text": "hi", "emotion": {"bored": 1}}, "unknown emotion"),
    ({"text": "hi", "emotion": {"happy": 2}}, "between"),
    ({"text": "hi", "voice": "zoe"}, "unknown voice"),
    ({"text": "hi there you", "duration": "seconds", "seconds": 0.3, }, None),
    ({"text": " ".join(["word"] * 20), "duration": "seconds", "seconds": 0.3}, "too short"),
    ({"text": "hi", "duration": "speed", "speed": 9}, "between"),
    ({"text": "?!?"}, "nothing to say"),
])
def test_bad_params_are_plain_errors(bundle, params, msg):
    s = SpeechSession(bundle, "cpu")
    if msg is None:
        s.start(params)
        return
    with pytest.raises(ParamError, match=msg):
        s.start(params)


def test_two_sessions_do_not_share_a_cache(bundle):
    """Two sessions stepped in turn give each the audio it gives alone (variation 0: repeatable)."""
    params_a = {"text": "Alpha beta gamma delta.", "seed": 3, "variation": 0.0}
    params_b = {"text": "Something else entirely, and longer.", "seed": 4, "variation": 0.0}
    a = SpeechSession(bundle, "cpu")
    a.start(params_a)
    solo = [d for k, d in run(a) if k == "output"][0]["audio"]
    a, b = SpeechSession(bundle, "cpu"), SpeechSession(bundle, "cpu")
    a.start(params_a)
    b.start(params_b)
    out_a: list = []
    while not (a.done and b.done):  # interleaved, one step each, as the scheduler does
        for s, sink in ((a, out_a), (b, None)):
            if not s.done:
                got = s.step()
                if sink is not None:
                    sink.extend(got)
    mixed = [d for k, d in out_a if k == "output"][0]["audio"]
    assert len(solo) > 0 and a.caches is not b.caches and a.caches[0] is not b.caches[0]
    assert mixed.shape == solo.shape and np.array_equal(mixed, solo)


# ---- data script and training ----------------------------------------------------------------
def test_teacher_groups_map_onto_our_words():
    from models.speech.data import assign_words
    groups = [(100, 0, 2), (200, 0, 4), (300, 0, 5), (250, 0, 5), (400, 50, 8)]  # "with the" joined
    words = ["he ", "went ", "ahead ", "with ", "the ", "project."]
    got = assign_words(groups, words)
    assert got is not None and len(got) == 6
    assert sum(d for d, _ in got) == pytest.approx(1250)
    assert got[3][0] + got[4][0] == pytest.approx(250) and got[5] == (400, 50)


@pytest.mark.parametrize("char_align,ss,delta", [(False, 0.0, 0.0), (True, 0.5, 1.0)])
def test_one_training_step_lowers_the_loss(char_align, ss, delta):
    from models.speech.train import Corpus, collate
    items = []
    for k in range(4):
        s = "a small test sentence." if k % 2 else "another one, here."
        e = frontend.encode(s)
        wf = np.full(len(e.words), 10)
        items.append(dict(frames=_frames(int(wf.sum())).astype(np.float16), word_frames=wf, pause_frames=np.zeros_like(wf),
                          ids=np.array(e.ids), spans=np.array(e.words), text=s))
    z = {"frames": np.concatenate([i["frames"] for i in items]),
         "frame_off": np.cumsum([0] + [len(i["frames"]) for i in items]),
         "word_frames": np.concatenate([i["word_frames"] for i in items]),
         "pause_frames": np.concatenate([i["pause_frames"] for i in items]),
         "word_off": np.cumsum([0] + [len(i["word_frames"]) for i in items]),
         "ids": np.concatenate([i["ids"] for i in items]), "id_off": np.cumsum([0] + [len(i["ids"]) for i in items]),
         "spans": np.concatenate([i["spans"] for i in items]), "texts": np.array([i["text"] for i in items])}
    align = None
    if char_align:  # a made-up alignment: every character of a word gets its share, the first one most
        align = np.concatenate([np.r_[4, np.ones(len(i["ids"]) - 1, np.int64)] for i in items])
    corpus = Corpus(z, seed=1, align=align)
    batch = collate([corpus.item(i, np.zeros(8, np.float32), 0) for i in range(4)])
    assert ("char_share" in batch) == char_align
    torch.manual_seed(0)
    m = SpeechModel(SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2, prenet_dropout=0.0,
                                 char_align=char_align))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        out = m(batch, ss=ss, delta=delta)
        assert ("share" in out) == char_align and float(out["dspec"].detach()) > 0
        loss = out["loss"]
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(m(batch)["loss"].detach()) < 0.8 * first


def test_delta_loss_sees_blurred_edges_on_the_5ms_grid_and_ignores_offsets_and_padding():
    B, T, n = 1, 8, vocoder.N_FEAT + vocoder.N_MID
    tgt = torch.zeros(B, T, n)
    tgt[:, 4:, 2:vocoder.N_FEAT] = 1.0  # an edge between frame 3's mid-frame and frame 4
    tgt[:, 4:, vocoder.N_FEAT:] = 1.0
    mask = torch.ones(B, T)
    loss = SpeechModel._delta_loss
    assert float(loss(tgt, tgt, mask)) == 0.0
    assert float(loss(tgt + 0.3, tgt, mask)) == pytest.approx(0.0, abs=1e-6)  # a constant offset: no change error
    blur = tgt.clone()
    blur[:, 3, vocoder.N_FEAT:] = 0.5  # the edge spread over one more 5 ms step
    assert float(loss(blur, tgt, mask)) > 0
    late = tgt.clone()
    late[:, 6:] = 5.0
    mask[:, 6:] = 0.0  # padding: its changes do not count
    assert float(loss(late, tgt, mask)) == pytest.approx(0.0, abs=1e-6)
    plain = tgt[..., :vocoder.N_FEAT]  # 10 ms frames: changes between frames
    assert float(loss(plain, plain, torch.ones(B, T))) == 0.0 and float(loss(plain * 0, plain, torch.ones(B, T))) > 0


# ---- character alignment ------------------------------------------------------------------------
def test_align_word_finds_a_clear_segmentation_with_a_silent_letter():
    from models.speech.align import align_word

    true = [3, 0, 5, 4]  # the second character gets no frame
    lab = np.repeat([0, 2, 3], [3, 5, 4])
    cost = np.ones((4, 12))
    cost[lab, np.arange(12)] = 0.0
    assert align_word(cost, skip=0.2, pull=0.0).tolist() == true
    assert align_word(np.zeros((1, 7))).tolist() == [7]


def test_char_positions_follow_the_shares():
    from models.speech.model import char_positions, position_features

    spans = np.array([[0, 4], [4, 9]])
    widx, prog, _ = position_features([8, 10])
    linear = char_positions(spans, widx, prog)
    assert np.allclose(char_positions(spans, widx, prog, np.ones(9)), linear)  # equal shares = linear
    pos = char_positions(spans, widx, prog, np.array([0.5, 0.0, 0.25, 0.25, 1, 1, 1, 1, 1]))
    # the first half of word 0 is its first letter, the silent second letter is never visited
    assert pos[0] < 0.5 and pos[1] < 0.5 and np.all(np.abs(pos[:4] - 1) > 0.5)
    assert np.all(np.diff(pos) >= 0)


def test_retimed_character_frames_add_up_to_the_new_words():
    from models.speech import prosody

    wf, pf = np.array([20, 14]), np.array([6, 0])
    spans = np.array([[0, 3], [3, 6]])
    chars = np.array([4, 6, 10, 7, 5, 2])  # the pause (6) sits on the last character of word 0
    lengths = prosody.retime_lengths(wf, pf, tempo=0.8, pause=1.5)
    new = prosody.retime_chars(chars, spans, lengths)
    _, new_wf = prosody.retime(np.zeros((34, vocoder.N_FEAT), np.float32), wf, pf, 0.8, 1.5)
    assert np.allclose([new[:3].sum(), new[3:].sum()], new_wf)


def test_aligned_model_session_keeps_duration_control(tmp_path):
    torch.manual_seed(0)
    cfg = SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2, char_align=True)
    m = SpeechModel(cfg)
    m.feat_std.fill_(0.1)
    m.feat_std[1] = 1.0
    save_weights(m, tmp_path / "a.safetensors", cfg)
    b = SpeechBundle.from_file(tmp_path / "a.safetensors")
    s = SpeechSession(b, "cpu")
    s.start({"text": "Hello there, how are you?", "duration": "seconds", "seconds": 2.0, "seed": 0})
    out = [d for k, d in run(s) if k == "output"][0]
    assert abs(out["seconds"] - 2.0) < 0.05
    assert s.plans[0].shares is not None and np.allclose(
        [s.plans[0].shares[a:b].sum() for a, b in s.plans[0].spans], 1.0, atol=1e-4)


def test_variation_zero_is_repeatable_and_seeds_vary_takes_above_it(bundle):
    def take(**kw):
        s = SpeechSession(bundle, "cpu")
        s.start({"text": "Alpha beta gamma.", **kw})
        return [d for k, d in run(s) if k == "output"][0]["audio"]

    assert np.array_equal(take(seed=1), take(seed=2))  # variation 0: the seed does not matter
    a, b = take(seed=1, variation=1.0), take(seed=2, variation=1.0)
    assert len(a) == len(b) and not np.allclose(a, b)
    assert np.array_equal(a, take(seed=1, variation=1.0))
    with pytest.raises(ParamError, match="variation"):
        SpeechSession(bundle, "cpu").start({"text": "Hi.", "variation": 2})


# ---- phoneme input (CMUdict lexicon) ----------------------------------------------------------
def test_lexicon_reads_known_words_and_regular_forms_of_them():
    from models.speech import lexicon

    assert lexicon.pronounce("hello") == ("HH", "AH0", "L", "OW1")
    assert lexicon.pronounce("isn't") == ("IH1", "Z", "AH0", "N", "T")
    assert lexicon.pronounce("though")[-1] == "OW1" and lexicon.pronounce("through")[-1] == "UW1"
    # not in the dictionary: a known stem and a regular suffix
    assert lexicon.pronounce("telescoped") == lexicon.pronounce("telescope") + ("T",)
    assert lexicon.pronounce("kited") == lexicon.pronounce("kite") + ("IH0", "D")
    assert lexicon.pronounce("saltiness")[-3:] == ("N", "AH0", "S")
    assert lexicon.pronounce("zqxjv") is None
    assert all(p in lexicon.PHONES for p in lexicon.pronounce("extraordinary"))


def test_phoneme_encoding_spells_unknown_words_and_keeps_punctuation():
    s = "hello, zqxjv world."
    e = frontend.encode(s, phonemes=True)
    assert e.spelt == [False, True, False]
    toks = [e.ids[a:b] for a, b in e.words]
    assert toks[0] == [frontend.PHONE_ID[p] for p in ("HH", "AH0", "L", "OW1")] + [frontend.CHAR_ID[","], frontend.CHAR_ID[" "]]
    assert toks[1] == [frontend.CHAR_ID[c] for c in "zqxjv "]
    assert toks[2][-1] == frontend.CHAR_ID["."] and max(e.ids) < frontend.N_SYMBOLS
    assert [b - a for a, b in e.words] == [len(t) for t in toks] and e.words[-1][1] == len(e.ids)
    forced = frontend.encode(s, phonemes=True, spell=lambda i, w: i == 0)
    assert forced.spelt == [True, True, False] and forced.ids[:5] == [frontend.CHAR_ID[c] for c in "hello"]
    assert frontend.encode(s).spelt is None  # character mode is unchanged


def test_data_converts_to_phonemes_with_the_same_words():
    from models.speech.align import context_onehot
    from models.speech.data import to_phonemes

    texts = ["a small test sentence.", "another one, here."]
    encs = [frontend.encode(t) for t in texts]
    z = {"texts": np.array(texts), "ids": np.concatenate([e.ids for e in encs]).astype(np.int16),
         "id_off": np.cumsum([0] + [len(e.ids) for e in encs]), "spans": np.concatenate([e.words for e in encs]).astype(np.int16),
         "word_off": np.cumsum([0] + [len(e.words) for e in encs])}
    ph = to_phonemes(z)
    assert len(ph["spans"]) == len(z["spans"]) and not ph["spelt"].any()
    assert ph["id_off"][-1] == len(ph["ids"]) and ph["ids"].max() >= len(frontend.SYMBOLS)
    x = context_onehot(ph, frontend.N_SYMBOLS)[1]
    assert x.shape == (ph["id_off"][2] - ph["id_off"][1], 3 * frontend.N_SYMBOLS) and (x[:, :frontend.N_SYMBOLS].sum(1) == 1).all()
    assert to_phonemes(z, spell_p=1.0)["spelt"].all()


def test_a_character_model_widens_to_phonemes_and_runs(tmp_path):
    from models.speech.train import widen_symbols

    small = SpeechModel(SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2, char_align=True))
    cfg = SpeechConfig(d_enc=32, enc_layers=1, enc_heads=2, d_model=32, n_layer=1, n_head=2, char_align=True,
                       phonemes=True, n_chars=frontend.N_SYMBOLS)
    big = SpeechModel(cfg)
    state = small.state_dict()
    assert widen_symbols(state, big)
    big.load_state_dict(state)
    w = big.char_emb.weight.detach()
    assert torch.equal(w[:len(frontend.SYMBOLS)], small.char_emb.weight.detach())
    b_ = frontend.PHONE_ID["B"]
    assert torch.allclose(w[b_], w[frontend.CHAR_ID["b"]], atol=0.2) and not torch.equal(w[b_], w[frontend.CHAR_ID["b"]])
    assert not widen_symbols(big.state_dict(), big)  # already wide
    big.feat_std.fill_(0.1)
    big.feat_std[1] = 1.0
    save_weights(big, tmp_path / "p.safetensors", cfg)
    s = SpeechSession(SpeechBundle.from_file(tmp_path / "p.safetensors"), "cpu")
    first = s.start({"text": "Hello there, zqxjv.", "duration": "seconds", "seconds": 1.5})
    assert first[0][1]["spelt"] == ["zqxjv"]  # the panel tells the user which words were read from letters
    out = [d for k, d in run(s) if k == "output"][0]
    assert abs(out["seconds"] - 1.5) < 0.05
    assert max(int(s.plans[0].spans.max()), 0) <= s.plans[0].enc.shape[1]
    # vowels, sonorants and voiced obstruents are voiced whatever the (here random) voicing planner says
    from models.speech import stream
    s = SpeechSession(SpeechBundle.from_file(tmp_path / "p.safetensors"), "cpu")
    s.start({"text": "Mama saw the big zoo's vast hill.", "duration": "seconds", "seconds": 3.0})
    sym = s.plans[0].ids[np.clip(np.round(s.char_pos.numpy()).astype(int), 0, len(s.plans[0].ids) - 1)]
    voiced = np.isin(sym, stream._VOICED_IDS)
    assert voiced.sum() > len(sym) // 3 and (s.vuv_plan[torch.from_numpy(voiced)] == 1).all()
    obstruents = [frontend.PHONE_ID[ph] for ph in ("DH", "B", "G", "Z", "V")]  # "the big zoo's vast"
    assert set(obstruents) <= set(stream._VOICED_IDS) and np.isin(sym, obstruents).sum() >= 3
    assert frontend.PHONE_ID["S"] not in stream._VOICED_IDS and frontend.PHONE_ID["T"] not in stream._VOICED_IDS
    # a pronunciation typed in braces is what the model reads for that word
    s = SpeechSession(SpeechBundle.from_file(tmp_path / "p.safetensors"), "cpu")
    s.start({"text": "Say {T AH M EY1 T OW2} now."})
    a, b = s.plans[0].spans[1]
    ids = s.plans[0].enc.shape[1]
    assert b - a == 6 + 1 and ids == 3 + 7 + 3  # "say " (S EY1, space) + the six sounds and a space + "now." (N AW1 .)
    assert [d for k, d in run(s) if k == "output"][0]["seconds"] > 0
    with pytest.raises(ParamError, match="ARPAbet"):
        SpeechSession(SpeechBundle.from_file(tmp_path / "p.safetensors"), "cpu").start({"text": "Say {Q X}."})


def test_braced_pronunciations_parse_and_a_letter_model_refuses_them(bundle):
    text, user = frontend.user_pronunciations("Hi {hh ah l ow1}, and {K AE1 T}.")
    assert list(user.values()) == [("HH", "AH1", "L", "OW1"), ("K", "AE1", "T")]
    sent = frontend.split_sentences(text)[0]
    e = frontend.encode(sent, phonemes=True, user=user)
    assert e.ids[e.words[1][0]:e.words[1][0] + 4] == [frontend.PHONE_ID[p] for p in user[sent.split()[1].rstrip(",")]]
    for bad in ("{}", "{XY1}"):
        with pytest.raises(ValueError):
            frontend.user_pronunciations(bad)
    with pytest.raises(ParamError, match="phoneme model"):
        SpeechSession(bundle, "cpu").start({"text": "Hi {HH AY1}."})


def test_what_cannot_be_spoken_is_listed_not_dropped_silently(bundle):
    assert frontend.unspeakable("Hello 😀 there, café naïve — 東京 ✓") == ["😀", "東", "京", "✓"]
    assert frontend.unspeakable("It costs $12.50 at 5 o'clock & more.") == []
    s = SpeechSession(bundle, "cpu")
    out = s.start({"text": "Hello 😀 there, café.", "seed": 1})
    warn = [d["warning"] for k, d in out if k == "progress" and "warning" in d]
    assert warn == ["Skipped what cannot be spoken: 😀"]
    s2 = SpeechSession(bundle, "cpu")
    assert not any("warning" in d for k, d in s2.start({"text": "Hello there.", "seed": 1}))
