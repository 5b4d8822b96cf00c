"""`weft-cli world --actions FILE -o out.mp4`: render a scripted walk through a generated world.

The actions file lists one key per line, optionally with a repeat count, e.g.

    # walk right for 12 frames, hit what is there, then wander
    move_right 12
    do 4
    noop
    move_up 8

(or a JSON list of action names or ids). Frames are rendered by the engine as fast as it can and
written to MP4 or GIF, upscaled with nearest neighbour.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ACTION_NAMES = ["noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep", "place_stone",
                "place_table", "place_furnace", "place_plant", "make_wood_pickaxe", "make_stone_pickaxe",
                "make_iron_pickaxe", "make_wood_sword", "make_stone_sword", "make_iron_sword"]
MAX_FRAMES = 20_000


def read_actions(path: str | Path) -> list[str]:
    """Parse an actions file into one action name per frame; ValueError with the line on bad input."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"actions file {p} does not exist")
    text = p.read_text()
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON: {e}") from None
        lines = [(str(a), 1, i + 1) for i, a in enumerate(items)]
    else:
        lines = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) > 2:
                raise ValueError(f"{p}:{n}: expected 'ACTION [COUNT]', got '{raw.strip()}'")
            try:
                count = int(parts[1].lstrip("x*")) if len(parts) == 2 else 1
            except ValueError:
                raise ValueError(f"{p}:{n}: the repeat count must be a whole number, got '{parts[1]}'") from None
            if count < 1:
                raise ValueError(f"{p}:{n}: the repeat count must be at least 1")
            lines.append((parts[0], count, n))
    out = []
    for name, count, n in lines:
        if name.isdigit() and int(name) < len(ACTION_NAMES):
            name = ACTION_NAMES[int(name)]
        if name not in ACTION_NAMES:
            raise ValueError(f"{p}:{n}: unknown action '{name}'; actions are: {', '.join(ACTION_NAMES)}")
        out += [name] * count
    if not out:
        raise ValueError(f"{p} lists no actions")
    if len(out) > MAX_FRAMES:
        raise ValueError(f"{p} asks for {len(out)} frames; at most {MAX_FRAMES} per run")
    return out


def add_parser(sub) -> str:
    p = sub.add_parser("world", help="render a scripted run through a generated world to MP4/GIF")
    p.add_argument("--actions", required=True, help="file with one action per line (ACTION [COUNT]) or a JSON list")
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
    actions = read_actions(args.actions)
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
