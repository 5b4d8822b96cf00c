"""`weft-cli world --actions FILE -o out.mp4`: render a scripted walk through a generated world.

The actions (a file, or inline with --keys) take the keys the World panel reads, any case, or the
action names, each optionally with a repeat count (KEY*N or KEY N), separated by commas or lines:

    # walk right for 12 frames, hit what is there, then wander
    D*12, SPACE*4
    noop
    move_up 8

(or a JSON list of action names, keys or ids). Frames are rendered by the engine as fast as it can and
written to MP4 or GIF, upscaled with nearest neighbour.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ACTION_NAMES = ["noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep", "place_stone",
                "place_table", "place_furnace", "place_plant", "make_wood_pickaxe", "make_stone_pickaxe",
                "make_iron_pickaxe", "make_wood_sword", "make_stone_sword", "make_iron_sword"]
MAX_FRAMES = 20_000


# keys as the World panel reads them (widgets/world_view.py), any case; besides the action names
KEYS = {"w": "move_up", "up": "move_up", "↑": "move_up", "a": "move_left", "left": "move_left", "←": "move_left",
        "s": "move_down", "down": "move_down", "↓": "move_down", "d": "move_right", "right": "move_right",
        "→": "move_right", "space": "do", "tab": "sleep", "r": "place_stone", "t": "place_table",
        "f": "place_furnace", "p": "place_plant", "1": "make_wood_pickaxe", "2": "make_stone_pickaxe",
        "3": "make_iron_pickaxe", "4": "make_wood_sword", "5": "make_stone_sword", "6": "make_iron_sword",
        "none": "noop", "wait": "noop", "-": "noop"}
_STEP = re.compile(r"^(?P<a>\S+?)\s*[*×]\s*(?P<na>\S+)$|^(?P<b>\S+)\s+x?(?P<nb>\S+)$|^(?P<c>\S+)$", re.IGNORECASE)


def action_of(word: str) -> str | None:
    """An action name for a key ('W', 'space', '→'), an action name in any case, or None."""
    w = word.strip().lower()
    if w in ACTION_NAMES:
        return w
    return KEYS.get(w)


def parse_script(text: str, where: str = "the script") -> list[str]:
    """'W*20, D*10, SPACE*5' or one step per line ('move_right 12', 'd 3', 'noop') -> one action per
    frame; ValueError naming the step on bad input. Steps are separated by commas or new lines; '#'
    starts a comment."""
    out: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        for step in raw.split("#", 1)[0].split(","):
            step = step.strip()
            if not step:
                continue
            m = _STEP.match(step)
            if m is None:
                raise ValueError(f"{where}:{n}: expected 'KEY', 'KEY*N' or 'KEY N', got '{step}'")
            key = m.group("a") or m.group("b") or m.group("c")
            count = m.group("na") or m.group("nb") or "1"
            action = action_of(key)
            if action is None:
                raise ValueError(f"{where}:{n}: unknown key or action '{key}'; keys are W A S D (or arrows), "
                                 f"SPACE, TAB, R T F P, 1-6, NOOP; actions are: {', '.join(ACTION_NAMES)}")
            try:
                times = int(count)
            except ValueError:
                raise ValueError(f"{where}:{n}: the repeat count must be a whole number, got '{count}'") from None
            if times < 1:
                raise ValueError(f"{where}:{n}: the repeat count must be at least 1")
            if len(out) + times > MAX_FRAMES:
                raise ValueError(f"{where} asks for more than {MAX_FRAMES} frames; at most {MAX_FRAMES} per run")
            out += [action] * times
    if not out:
        raise ValueError(f"{where} lists no actions")
    return out


def read_actions(path: str | Path) -> list[str]:
    """Parse an actions file into one action name per frame; ValueError with the line on bad input.
    A JSON list holds action names, keys or action ids (numbers); any other text is a script
    (see parse_script)."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"actions file {p} does not exist")
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a text file") from None
    if not text.lstrip().startswith("["):
        return parse_script(text, str(p))
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON: {e}") from None
    out = []
    for i, a in enumerate(items):
        if isinstance(a, int) and not isinstance(a, bool) and 0 <= a < len(ACTION_NAMES):
            out.append(ACTION_NAMES[a])
        elif isinstance(a, str) and action_of(a):
            out.append(action_of(a))
        else:
            raise ValueError(f"{p}: item {i + 1} ({a!r}) is not an action name, key or id 0-{len(ACTION_NAMES) - 1}")
    if not out:
        raise ValueError(f"{p} lists no actions")
    if len(out) > MAX_FRAMES:
        raise ValueError(f"{p} asks for {len(out)} frames; at most {MAX_FRAMES} per run")
    return out


def validate(args) -> str | None:
    """The script is read before any engine starts: a bad key is one sentence, at once."""
    try:
        read_actions(args.actions) if args.actions else parse_script(args.keys, "--keys")
    except ValueError as e:
        return str(e)
    return None


def add_parser(sub) -> str:
    p = sub.add_parser("world", help="render a scripted run through a generated world to MP4/GIF")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--actions", help="file of keys or actions (KEY*N or KEY N, by commas or lines) or a JSON list")
    src.add_argument("--keys", help="the same script inline, e.g. \"W*20, D*10, SPACE*5\"")
    p.add_argument("-o", "--output", required=True, help="out.mp4, out.gif, or out.png (a strip of frames)")
    p.add_argument("--start", type=int, default=0, help="index of the real start frame (held-out world)")
    p.add_argument("--steps", type=int, default=2, help="token-parallel steps per frame (1-8)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (the world empties into meadow)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=15.0, help="frame rate of the written video")
    p.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscale factor")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the engine (default: scales with the run)")
    return "world"


def run(args, client) -> int:
    from app.cli import progress_printer
    from app.world_video import FORMATS, write_video

    if Path(args.output).suffix.lower() not in FORMATS:
        raise ValueError(f"output must end in {' or '.join(FORMATS)}, got {args.output}")
    actions = read_actions(args.actions) if args.actions else parse_script(args.keys, "--keys")
    params = {"actions": actions, "start": args.start, "steps": args.steps, "temperature": args.temperature,
              "seed": args.seed, "fps": 0}
    show = progress_printer("world")
    frames, labels = [], []

    def on_event(ev):
        if ev.kind == "partial" and "frame" in ev.data:
            frames.append(ev.data["frame"].copy())
            labels.append(str(ev.data.get("action", "")).replace("move_", "").replace("reset", "start"))
            if len(frames) % 20 == 0:
                print(f"\rworld: {len(frames) - 1}/{len(actions)} frames", end="", file=sys.stderr, flush=True)
        show(ev)

    client.run("world", params, on_event=on_event, timeout=args.timeout or 120 + 2.0 * len(actions))
    if Path(args.output).suffix.lower() == ".png":
        from app.world_video import write_strip

        path = write_strip(frames, args.output, labels=labels, scale=args.scale)
    else:
        path = write_video(frames, args.output, fps=args.fps, scale=args.scale)
    print(f"{path}: {len(frames)} frames ({len(actions)} generated + the start frame)")
    return 0
