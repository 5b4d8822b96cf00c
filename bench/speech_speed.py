"""Speech speed on this machine (CPU): real-time factor and time to first audio, against the piper
teacher on the same sentences in the same run.

    python bench/speech_speed.py [--n 20]

1. in-process: SpeechSession (one thread) on --n held-out sentences: time from start() to the first
   audio chunk, and wall time / audio seconds (RTF) for the whole take; split into decoding and
   WORLD synthesis.
2. engine: the same through a real engine process and the client (first audio = submit to the
   first `partial` arriving on the client).
3. teacher: piper (joe medium, ONNX Runtime) on the same sentences; it makes a whole sentence at
   once, so its first audio is the time to synthesise the first sentence. (piper-tts is GPL-3.0 and
   is used here, in a benchmark, never in the product.)
Prints the figures and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sentences(n: int) -> list[str]:
    from models.speech.data import load

    texts = [str(t) for t in load("test")["texts"]]
    return texts[:n]


def pct(xs, q):
    return round(float(np.percentile(xs, q)), 3)


def in_process(texts: list[str]) -> dict:
    import torch

    from models.speech import stream, vocoder

    torch.set_num_threads(1)
    b = stream.SpeechBundle.from_file()
    s = stream.SpeechSession(b, "cpu")
    s.start({"text": "Warm up, please.", "seed": 0})
    while not s.done:
        s.step()
    firsts, rtfs, synth_share = [], [], []
    orig_push = vocoder.StreamingSynth.push
    synth_t = [0.0]

    def timed_push(self, frames, final=False):
        t = time.perf_counter()
        try:
            return orig_push(self, frames, final)
        finally:
            synth_t[0] += time.perf_counter() - t
    vocoder.StreamingSynth.push = timed_push
    try:
        for text in texts:
            synth_t[0] = 0.0
            t0 = time.perf_counter()
            s = stream.SpeechSession(b, "cpu")
            s.start({"text": text, "seed": 0})
            first, secs = None, 0.0
            while not s.done:
                for kind, d in s.step():
                    if kind == "partial" and first is None:
                        first = time.perf_counter() - t0
                    if kind == "output":
                        secs = d["seconds"]
            wall = time.perf_counter() - t0
            firsts.append(first)
            rtfs.append(wall / secs)
            synth_share.append(synth_t[0] / wall)
    finally:
        vocoder.StreamingSynth.push = orig_push
    return {"first_audio_ms_p50": round(1000 * pct(firsts, 50)), "first_audio_ms_p90": round(1000 * pct(firsts, 90)),
            "rtf_p50": pct(rtfs, 50), "rtf_p90": pct(rtfs, 90), "synthesis_share_of_time": pct(synth_share, 50)}


def through_engine(texts: list[str]) -> dict:
    from engine.client import EngineClient
    from engine.launch import EngineProcess

    firsts, rtfs = [], []
    with EngineProcess(device="cpu") as ep:
        client = EngineClient(ep.endpoint)
        try:
            client.run("speech", {"text": "Warm up.", "seed": 0}, timeout=120)
            for text in texts:
                t0 = time.perf_counter()
                first = []

                def on_event(ev):
                    if ev.kind == "partial" and not first:
                        first.append(time.perf_counter() - t0)
                evs = client.run("speech", {"text": text, "seed": 0}, on_event=on_event, timeout=120)
                wall = time.perf_counter() - t0
                out = [e for e in evs if e.kind == "output"][0]
                firsts.append(first[0])
                rtfs.append(wall / out.data["seconds"])
        finally:
            client.close()
    return {"first_audio_ms_p50": round(1000 * pct(firsts, 50)), "first_audio_ms_p90": round(1000 * pct(firsts, 90)),
            "rtf_p50": pct(rtfs, 50), "rtf_p90": pct(rtfs, 90)}


def teacher(texts: list[str]) -> dict:
    from models.speech import data

    data.teacher_say("Warm up, please.")
    firsts, rtfs = [], []
    for text in texts:
        t0 = time.perf_counter()
        audio, _ = data.teacher_say(text)
        wall = time.perf_counter() - t0
        firsts.append(wall)
        rtfs.append(wall / (len(audio) / data.TEACHER_SR))
    return {"first_audio_ms_p50": round(1000 * pct(firsts, 50)), "first_audio_ms_p90": round(1000 * pct(firsts, 90)),
            "rtf_p50": pct(rtfs, 50), "rtf_p90": pct(rtfs, 90)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--skip-engine", action="store_true")
    p.add_argument("--skip-teacher", action="store_true")
    args = p.parse_args(argv)
    import os
    texts = sentences(args.n)
    res = {"sentences": len(texts), "cpu": f"{os.cpu_count()} cores"}
    res["weft_in_process"] = in_process(texts)
    print("weft (in-process, 1 thread):", res["weft_in_process"], flush=True)
    if not args.skip_engine:
        res["weft_engine"] = through_engine(texts)
        print("weft (engine + client):     ", res["weft_engine"], flush=True)
    if not args.skip_teacher:
        res["teacher_piper"] = teacher(texts)
        print("teacher (piper joe medium): ", res["teacher_piper"], flush=True)
    print(json.dumps({"bench": "speech_speed", **res}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
