"""The Speech panel's engine session: text to audio that streams in ~0.24 s chunks while decoding goes on.

start(params): the text is normalised and split into sentences (frontend.py), every sentence is
encoded at once, word durations are predicted for the chosen voice and emotion — or fitted to the
requested length — and the plan (frames, seconds) goes out as the first `progress` event.
Each step() then decodes 12 decoder steps (24 frames = 0.24 s) of the current sentence with the KV
cache and hands them to a vocoder worker thread (WORLD, StreamingSynth: cross-faded joins), which
renders them while the next chunk is decoded; the step then sends the previous chunk's `partial`
(audio, F0, spectrogram bands, energy). The first chunk is sent at once, for the time to first
audio. The last step sends `output` with the whole take.

Params: text (1-2000 chars), voice ("joe" | "jo"), emotion {name: 0-1} for the 8 emotions, alpha
(0-1), duration ("auto" | "seconds" | "speed"), seconds (0.3-60), speed (0.5-2, > 1 faster), seed,
variation (0-1: 0 = the clearest take, the same every time; more = takes that differ with the seed).
A phoneme model also reads pronunciations typed in braces: "{T AH0 M EY1 T OW2}" (ARPAbet).
Steer: emotion and alpha — they apply from the next chunk; the words not started yet are re-timed
for the new emotion (keeping the requested total length in "seconds" mode).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from models.common.paths import asset
from models.common.session import ParamError, StreamSession, check_range
from models.common.threads import torch_threads
from models.common.weights import load_config, load_weights
from models.speech import frontend, prosody, vocoder
from models.speech.model import SpeechConfig, SpeechModel, char_positions, position_features

WEIGHTS = asset("speech", "acoustic.safetensors")
CHUNK_STEPS = 12  # decoder steps per partial (12 x 20 ms = 0.24 s)
MAX_CHARS = 2000
MAX_SECONDS = 60.0
# Steps inside a vowel, a sonorant (m n ng l r w y) or a voiced obstruent (z zh v dh, b d g jh) are
# voiced whatever the voicing planner says (phoneme models). The planner learned from DIO's erratic
# voicing and whispers common words ("isn't it"); Whisper WER, 100 held-out sentences: 29.5 % planner
# only, 28.1 % + vowels, 26.7 % + sonorants. The teacher's features (Harvest) call only 25-30 % of
# the frames of voiced obstruents voiced — no more than of their voiceless twins (s 20 %, p 28 %) —
# so the model never learned "z" from "s" by voicing; speech model v6 on all 197 held-out sentences
# (session 11): 18.8 % vowels + sonorants, 17.5 % + z zh v dh, 16.2 % + b d g jh (teacher 11.7 %).
VOICING_RULE = True
SONORANTS = ("M", "N", "NG", "L", "R", "W", "Y")
VOICED_OBSTRUENTS = ("Z", "ZH", "V", "DH", "B", "D", "G", "JH")
_VOICED_IDS = np.array([i for ph, i in frontend.PHONE_ID.items() if ph[-1] in "012" or ph in SONORANTS + VOICED_OBSTRUENTS])


class SpeechBundle:
    """The acoustic model shared by all speech sessions of an engine."""

    def __init__(self, model: SpeechModel, device: str):
        self.model, self.device = model, device
        self.cfg = model.cfg
        if self.cfg.prenet_dropout_inference:
            self.model.prenet.train()  # Tacotron: prenet dropout stays on at inference

    @classmethod
    def from_file(cls, path=WEIGHTS, device: str = "cpu") -> "SpeechBundle":
        cfg = SpeechConfig(**load_config(path)["config"])
        return cls(load_weights(SpeechModel(cfg), path, device), device)


class Plan:
    """One sentence: its encoding, word spans and (re-plannable) word lengths in frames."""

    def __init__(self, text: str, enc: torch.Tensor, spans: np.ndarray, logd: np.ndarray):
        self.text, self.enc, self.spans, self.logd = text, enc, spans, logd
        self.word_frames = np.zeros(len(spans), np.int64)
        self.shares: np.ndarray | None = None  # each character's share of its word (aligned models)
        self.ids: np.ndarray | None = None  # the symbols read (for the vowel-voicing rule)


def fit_lengths(pred: np.ndarray, total_steps: int, min_steps: int = 1) -> np.ndarray:
    """Predicted word lengths (steps, float) -> integers with exactly `total_steps` in all
    (largest remainder), each at least `min_steps`."""
    pred = np.maximum(np.asarray(pred, np.float64), 1e-3)
    n = len(pred)
    budget = total_steps - min_steps * n
    if budget < 0:
        raise ValueError("total too short")
    x = pred / pred.sum() * budget
    base = np.floor(x).astype(np.int64)
    rest = budget - base.sum()
    base[np.argsort(-(x - base))[:rest]] += 1
    return base + min_steps


class SpeechSession(StreamSession):
    task = "speech"
    demo = {"text": "Hello from Weft Studio. This sentence is streamed as it is made.", "seed": 0}
    realtime = False
    pool = pending = None  # the vocoder worker and the chunk it is rendering (set by start)

    @classmethod
    def load(cls, device: str) -> SpeechBundle:
        bundle = SpeechBundle.from_file(WEIGHTS, device)
        s = cls(bundle, device)  # warm-up: one short sentence end to end
        s.start({"text": "Hello.", "seed": 0})
        while not s.done:
            s.step()
        return bundle

    # ---- params -----------------------------------------------------------------------------
    @staticmethod
    def _emotion(params: dict) -> tuple[np.ndarray, dict, float]:
        emo = params.get("emotion") or {}
        if not isinstance(emo, dict):
            raise ParamError("emotion must be a mapping of emotion names to values between 0 and 1")
        for name, w in emo.items():
            if name not in prosody.EMOTIONS:
                raise ParamError(f"unknown emotion '{name}'; emotions are: {', '.join(prosody.EMOTIONS)}")
            check_range({"v": w}, "v", 0.0, 1.0, 0.0)
        alpha = check_range(params, "alpha", 0.0, 1.0, 1.0)
        return prosody.vector({k: float(v) for k, v in emo.items()}, alpha), dict(emo), alpha

    def start(self, params: dict):
        with torch_threads(1):
            return self._start(params)

    def _start(self, params: dict):
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ParamError("Type some text to speak.")
        if len(text) > MAX_CHARS:
            raise ParamError(f"The text is {len(text)} characters long; the limit is {MAX_CHARS}.")
        voice = params.get("voice", "joe")
        if voice not in prosody.VOICE_NAMES:
            raise ParamError(f"unknown voice '{voice}'; voices are: {', '.join(prosody.VOICE_NAMES)}")
        self.v, self.emotion, self.alpha = self._emotion(params)
        self.mode = params.get("duration", "auto")
        if self.mode not in ("auto", "seconds", "speed"):
            raise ParamError("duration must be 'auto', 'seconds' or 'speed'")
        self.seconds = check_range(params, "seconds", 0.3, MAX_SECONDS, 3.0) if self.mode == "seconds" else None
        self.speed = check_range(params, "speed", 0.5, 2.0, 1.0) if self.mode == "speed" else 1.0
        seed = check_range(params, "seed", 0, 2**31 - 1, 0, int)
        # variation: prenet dropout at inference (Tacotron) as a share of the trained rate; 0 = the
        # clearest, repeatable take; > 0 = takes that differ with the seed (and blur a little)
        self.variation = check_range(params, "variation", 0.0, 1.0,
                                     1.0 if self.bundle.cfg.prenet_dropout_inference else 0.0)
        # clarity: the envelope postfilter (vocoder.sharpen); the model's tuned value unless given
        self.sharpen = check_range(params, "sharpen", 1.0, 2.5, float(self.bundle.cfg.sharpen))
        try:
            said, user = frontend.user_pronunciations(text)
        except ValueError as e:
            raise ParamError(str(e)) from None
        if user and not self.bundle.cfg.phonemes:
            raise ParamError("this speech model reads letters: pronunciations in {braces} need a phoneme model")
        sentences = frontend.split_sentences(said)
        if not sentences:
            raise ParamError("There is nothing to say in this text (no letters or numbers).")
        self.text = text
        m, cfg = self.bundle.model, self.bundle.cfg
        self.voice_id = torch.tensor([prosody.VOICE_NAMES.index(voice)], device=self.device)
        torch.manual_seed(seed)
        self.plans: list[Plan] = []
        self.spelt: list[str] = []  # words a phoneme model reads from their letters (not in the lexicon)
        with torch.inference_mode():
            for s in sentences:
                e = frontend.encode(s, phonemes=cfg.phonemes, user=user)
                ids = torch.tensor([e.ids], device=self.device)
                enc = m.encode(ids, torch.tensor([len(e.ids)], device=self.device))
                spans = np.asarray(e.words, np.int64)
                self.plans.append(Plan(s, enc, spans, np.zeros(len(spans))))
                self.plans[-1].ids = np.asarray(e.ids)
                pieces = [w.rstrip(frontend.PUNCT) for w in s.split(" ") if w]
                self.spelt += [w for w, sp in zip(pieces, e.spelt or []) if sp and w not in user and w not in self.spelt]
        n_words = sum(len(p.spans) for p in self.plans)
        if self.seconds is not None and self.seconds < n_words * 0.04:
            raise ParamError(f"{self.seconds:g} s is too short for this text: it needs at least {n_words * 0.04:.1f} s.")
        self.caches = None
        self.sent, self.word_started = 0, 0  # sentence being decoded; words of it already begun
        self.target_steps = round(self.seconds / (vocoder.FRAME_MS / 1000 * cfg.step)) if self.seconds else None
        self._replan(first=True)
        self._start_sentence()
        self.synth = vocoder.StreamingSynth()
        self.pool, self.pending = None, None
        self.chunks: list[dict] = []
        self.chunk_no, self.t_audio = 0, 0.0
        self.t0, self.t_first = time.perf_counter(), None
        self.frames_done = 0
        out = [("progress", self._progress())]
        skipped = frontend.unspeakable(text)
        if skipped:  # said, not dropped silently
            shown = " ".join(skipped[:12]) + (" …" if len(skipped) > 12 else "")
            out.append(("progress", {"warning": f"Skipped what cannot be spoken: {shown}"}))
        return out

    def _progress(self) -> dict:
        total = int(sum(p.word_frames.sum() for p in self.plans))
        return {"done": self.frames_done, "total": total, "seconds_planned": total * vocoder.FRAME_MS / 1000,
                "sample_rate": vocoder.FS, "voices": list(prosody.VOICE_NAMES), "sentences": len(self.plans),
                "spelt": list(self.spelt)}

    # ---- planning ---------------------------------------------------------------------------
    def _replan(self, first: bool = False) -> None:
        """(Re)predict durations of every word not started yet with the current emotion, and fit
        them to the requested total (seconds mode) or scale them (speed mode)."""
        m, step = self.bundle.model, self.bundle.cfg.step
        v = torch.from_numpy(self.v)[None].to(self.device)
        with torch.inference_mode():
            for p in self.plans[self.sent:]:
                spans = torch.from_numpy(p.spans)[None].to(self.device)
                p.logd = m.durations(p.enc, spans, self.voice_id, v)[0].cpu().numpy()
                if m.cfg.char_align:
                    p.shares = m.char_shares(p.enc, spans, self.voice_id, v)[0].cpu().numpy()
        fixed = 0  # steps already committed (sentences done + words begun in the current one)
        free: list[tuple[int, int]] = []  # (sentence, word) whose length may change
        for si, p in enumerate(self.plans):
            for wi in range(len(p.spans)):
                if si < self.sent or (si == self.sent and wi < self.word_started and not first):
                    fixed += int(p.word_frames[wi]) // step
                else:
                    free.append((si, wi))
        if not free:
            return
        pred = np.array([np.exp(self.plans[si].logd[wi]) / step for si, wi in free]) / self.speed
        if self.target_steps is not None:
            lengths = fit_lengths(pred, max(self.target_steps - fixed, len(free)))
        else:
            lengths = np.maximum(1, np.round(pred)).astype(np.int64)
        for (si, wi), n in zip(free, lengths):
            self.plans[si].word_frames[wi] = int(n) * step

    def _start_sentence(self) -> None:
        p = self.plans[self.sent]
        self._layout(p)
        self.t = 0
        self.prev = torch.zeros(1, 1, self.bundle.cfg.step * self.bundle.cfg.n_feat, device=self.device)
        # this session's own KV cache, sized to the sentence (sessions share the model; attention
        # cost grows with the cache length, so no oversized static cache)
        dec = self.bundle.model.decoder
        # room for a steer that slows the rest of the sentence down (slowest profile mix ~1.8x)
        self.cache_len = min(8192, int(len(self.char_pos) * 2.2) + 32)
        dec.setup_cache(1, max_len=self.cache_len)
        self.caches = [b.attn.kv_cache for b in dec.blocks]

    def _attach(self) -> None:
        for b, c in zip(self.bundle.model.decoder.blocks, self.caches):
            b.attn.kv_cache = c

    def _layout(self, p: Plan) -> None:
        """Per-step inputs of the sentence for its current word lengths, and its voicing plan
        (for the current emotion; steps already decoded keep theirs)."""
        widx, prog, feats = position_features(p.word_frames, self.bundle.cfg.step)
        self.widx = widx
        self.char_pos = torch.from_numpy(char_positions(p.spans, widx, prog, p.shares)).to(self.device)
        self.pos_feats = torch.from_numpy(feats).to(self.device)
        m = self.bundle.model
        with torch.inference_mode():
            style = m.style(self.voice_id, torch.from_numpy(self.v)[None].to(self.device))[:, None]
            S = len(self.char_pos)
            self.vuv_plan = (m.voicing(p.enc, self.char_pos[None], self.pos_feats[None], style.expand(-1, S, -1))[0] > 0).float()
            if VOICING_RULE and m.cfg.phonemes and p.ids is not None:
                sym = p.ids[np.clip(np.round(self.char_pos.cpu().numpy()).astype(int), 0, len(p.ids) - 1)]
                self.vuv_plan[torch.from_numpy(np.isin(sym, _VOICED_IDS)).to(self.device)] = 1.0
            self.cond = m.step_cond(p.enc, self.char_pos[None], self.pos_feats[None], style.expand(-1, S, -1), self.vuv_plan[None])
            self.positions = torch.arange(S, device=self.device)

    # ---- streaming --------------------------------------------------------------------------
    def steer(self, params: dict) -> None:
        if "emotion" not in params and "alpha" not in params:
            raise ParamError("speech can be steered with 'emotion' and 'alpha'")
        merged = {"emotion": params.get("emotion", self.emotion), "alpha": params.get("alpha", self.alpha)}
        self.v, self.emotion, self.alpha = self._emotion(merged)
        if self.sent < len(self.plans):
            self.word_started = int(self.widx[min(self.t, len(self.widx) - 1)]) + 1 if self.t else 0
            with torch_threads(1):
                self._replan()
                self._layout(self.plans[self.sent])

    def step(self):
        with torch_threads(1):  # one thread: faster for this small model on a busy 2-core machine
            return self._step()

    def _prenet_mode(self) -> None:
        """This session's variation on the shared model (sessions are stepped one at a time)."""
        pre = self.bundle.model.prenet
        for mod in pre:
            if isinstance(mod, torch.nn.Dropout):
                mod.p = self.bundle.cfg.prenet_dropout * self.variation
        pre.train(self.variation > 0)

    def _step(self):
        m, cfg = self.bundle.model, self.bundle.cfg
        frames = []
        self._attach()
        self._prenet_mode()
        with torch.inference_mode():
            for _ in range(CHUNK_STEPS):
                if self.t >= len(self.char_pos) or self.t >= self.cache_len:
                    self.t = len(self.char_pos)  # (a sentence never outgrows its cache)
                    break
                t = self.t
                x = m.prenet(self.prev) + self.cond[:, t:t + 1]
                out = m.decoder(embeds=x, input_pos=self.positions[t:t + 1])
                f = m.denormalize_out(out)  # (1, step, n_feat)
                f[..., 1] = self.vuv_plan[t]  # the planned voicing decides (the decoder's own flag is a training signal)
                self.prev = m.ar_input(m.normalize(f))
                frames.append(f[0])
                self.t += 1
                self.word_started = int(self.widx[t]) + 1
        sentence_done = self.t >= len(self.char_pos)
        last = sentence_done and self.sent == len(self.plans) - 1
        if sentence_done and not last:
            self.sent += 1
            self.word_started = 0
            self._start_sentence()
        out = []
        job = None
        if frames:
            fr = vocoder.sharpen(torch.cat(frames).cpu().numpy(), self.sharpen)
            job = self._synth_pool().submit(self._render, fr, last)
        if self.pending is not None:  # the previous chunk, synthesised while this one was decoded
            out += self._emit(self.pending.result())
            self.pending = None
        if job is not None:
            if self.chunk_no == 0 or last:  # the first chunk at once (time to first audio), the last to end
                out += self._emit(job.result())
            else:
                self.pending = job
        if last:
            out += self._finish()
        return out

    # ---- vocoder: a worker thread renders chunk k while the decoder makes chunk k+1 ------------
    def _synth_pool(self):
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weft-speech-vocoder")
        return self.pool

    def _render(self, fr: np.ndarray, last: bool) -> dict:
        """Frames -> audio (StreamingSynth, in order: one worker) and the plot features. WORLD's C
        code releases the GIL, so this overlaps the decoder's next chunk on the second core."""
        audio = self.synth.push(fr, final=last)
        if last:
            audio = np.concatenate([audio, self.synth.flush()])
        f0, _, _ = vocoder.unpack(fr)
        spec, energy = vocoder.plot_features(fr)
        return {"audio": audio, "f0": f0.astype(np.float32), "spec": spec, "energy": energy, "n_frames": len(fr)}

    def _emit(self, r: dict) -> list:
        data = {"chunk": self.chunk_no, "t0": self.t_audio, "audio": r["audio"], "f0": r["f0"], "spec": r["spec"],
                "energy": r["energy"], "frame_period": vocoder.FRAME_MS / 1000, "sample_rate": vocoder.FS}
        if self.t_first is None:
            self.t_first = time.perf_counter() - self.t0
        self.chunks.append(data)
        self.chunk_no += 1
        self.t_audio += len(r["audio"]) / vocoder.FS
        self.frames_done += r["n_frames"]
        return [("partial", data), ("progress", self._progress())]

    def _finish(self):
        self.done = True
        self._stop_pool()
        cat = lambda k: np.concatenate([c[k] for c in self.chunks]) if self.chunks else np.zeros(0, np.float32)  # noqa: E731
        audio = cat("audio")
        return [("output", {"audio": audio, "sample_rate": vocoder.FS, "f0": cat("f0"),
                            "spec": np.concatenate([c["spec"] for c in self.chunks]) if self.chunks else np.zeros((0, 64), np.float32),
                            "energy": cat("energy"), "seconds": len(audio) / vocoder.FS, "text": self.text,
                            "first_audio_ms": round(1000 * (self.t_first or 0), 1),
                            "rtf": round((time.perf_counter() - self.t0) / max(len(audio) / vocoder.FS, 1e-6), 3)})]

    def stats(self) -> dict:
        secs = self.frames_done * vocoder.FRAME_MS / 1000
        el = time.perf_counter() - self.t0
        return {"frames": self.frames_done, "audio_s": round(secs, 2), "rtf": round(el / secs, 3) if secs else None}

    def _stop_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool, self.pending = None, None

    def close(self) -> None:
        self._stop_pool()
        self.caches = None
