"""`weft-cli speech "TEXT" --emotion happy=0.8 --seconds 3.5 -o out.wav`: speak text to a WAV file.

    weft-cli speech "Hello there." -o hello.wav
    weft-cli speech "I can't believe it!" --emotion surprised=0.9 --emotion happy=0.4 --speed 1.2 -o wow.wav
    weft-cli speech "Fine." --emotion angry=0.7,disgusted=0.3 --alpha 0.6 --seconds 1.5 --voice jo -o fine.wav

Emotions: happy, angry, sad, afraid, disgusted, melancholic, surprised, calm (each 0-1; --alpha scales
them all). Length: automatic, or --seconds (0.3-60) for a fixed length, or --speed (0.5-2, >1 faster).
No Qt and no torch here: the take is made by an engine process.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from widgets.emotions import emotion_summary, parse_emotions

MAX_CHARS = 2000


def _ranged(name: str, lo: float, hi: float):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got '{text}'") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be between {lo:g} and {hi:g}, got {v:g}")
        return v
    return parse


def _emotion(text: str) -> dict[str, float]:
    try:
        return parse_emotions([text])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give some text to speak, e.g. \"Hello there.\"")
    if len(text) > MAX_CHARS:
        raise argparse.ArgumentTypeError(f"the text is {len(text)} characters long; at most {MAX_CHARS} at a time")
    return text


def add_parser(sub) -> str:
    p = sub.add_parser("speech", help="speak text with an emotion and a length, save WAV",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    p.add_argument("text", type=_text, help="what to say (up to 2000 characters)")
    p.add_argument("--emotion", action="append", type=_emotion, default=[], metavar="NAME=VALUE",
                   help="an emotion in 0-1, e.g. happy=0.8 (repeat, or comma-separate, for a mixture)")
    p.add_argument("--alpha", type=_ranged("--alpha", 0, 1), default=1.0, help="emotion strength 0-1 (default 1)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=_ranged("--seconds", 0.3, 60), help="make the take this long (0.3-60 s)")
    length.add_argument("--speed", type=_ranged("--speed", 0.5, 2), help="speaking rate (0.5-2, above 1 is faster)")
    p.add_argument("--voice", default="joe", help="voice name (default joe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variation", type=float, default=0.0,
                   help="0 = the clearest take, the same every time; up to 1 = takes that differ with --seed")
    p.add_argument("--clarity", type=_ranged("--clarity", 1, 2.5),
                   help="formant sharpening (postfilter) 1-2.5; 1 = the envelopes as predicted (default: the model's)")
    p.add_argument("-o", "--output", type=output_path, default="speech.wav", help="WAV file to write (default speech.wav)")
    p.add_argument("--task", default="speech", help=argparse.SUPPRESS)  # tests point this at a fixture session
    return "speech"


def build_params(args) -> dict:
    """The engine request for parsed args (argparse has checked every value)."""
    emotion: dict[str, float] = {}
    for part in args.emotion:  # later mentions of a name win
        emotion.update(part)
    params = {"text": args.text, "voice": args.voice, "emotion": emotion, "alpha": args.alpha, "seed": args.seed,
              "variation": args.variation,
              "duration": "auto"}
    if args.clarity is not None:
        params["sharpen"] = args.clarity
    if args.seconds is not None:
        params.update(duration="seconds", seconds=args.seconds)
    elif args.speed is not None:
        params.update(duration="speed", speed=args.speed)
    return params


def output_path(name: str) -> Path:
    """Where to write: the suffix must be an audio format soundfile writes, the folder must exist."""
    import soundfile as sf

    path = Path(name)
    if not path.suffix:
        path = path.with_suffix(".wav")
    if path.suffix[1:].upper() not in sf.available_formats():
        raise argparse.ArgumentTypeError(f"cannot write audio as '{path.suffix}'; use .wav (or .flac)")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {path.parent} does not exist")
    return path


def run(args, client) -> int:
    import soundfile as sf

    from app.cli import progress_printer

    params = build_params(args)
    path = Path(args.output)
    bar = progress_printer("speech")

    def show(ev):
        if ev.kind == "progress" and ev.data.get("warning"):
            print(f"weft-cli speech: {ev.data['warning']}", file=sys.stderr)
        bar(ev)

    events = client.run(args.task, params, on_event=show, timeout=120 + 10 * len(args.text) / 15)
    outs = [e.data for e in events if e.kind == "output" and "audio" in e.data]
    if not outs:
        raise RuntimeError("the engine finished without sending any audio")
    out = outs[-1]
    audio = np.clip(np.asarray(out["audio"], np.float32).reshape(-1), -1.0, 1.0)
    rate = int(out.get("sample_rate", 16000))
    sf.write(str(path), audio, rate, subtype="PCM_16")
    print(f"{path}: {audio.size / rate:.2f} s at {rate} Hz "
          f"(voice {args.voice}, {emotion_summary(params['emotion'], args.alpha)})")
    return 0
