"""`weft-cli motion "walk forward; turn left; jump" --seconds 10 -o out.bvh`: a scripted motion take.

Commands separated by ';' are spread evenly over the take (or give times: "0: walk; 4.5: jump").
Writes BVH (and optionally an npz with world joint positions). No Qt and no torch here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from app.cli import progress_printer


def add_parser(sub) -> str:
    p = sub.add_parser("motion", help="generate a character motion from text commands, save BVH",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    p.add_argument("commands", help="commands separated by ';', e.g. \"walk forward; turn left; jump\"")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the take (default 10)")
    p.add_argument("-o", "--output", default="motion.bvh", help="BVH file to write")
    p.add_argument("--npz", help="also write world joint positions and channels to this .npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance on the text (1-6)")
    p.add_argument("--goal", help="walk to a floor point X,Z (metres) instead of following the commands")
    p.add_argument("--no-foot-lock", action="store_true", help="show the model's raw legs (feet may slide)")
    return "motion"


def parse_commands(spec: str, seconds: float) -> list[list]:
    """'walk; 4: jump' -> [[0.0, 'walk'], [4.0, 'jump']]; untimed commands are spread evenly."""
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        raise ValueError("give at least one command, e.g. \"walk forward; turn left\"")
    out = []
    for i, part in enumerate(parts):
        head, sep, rest = part.partition(":")
        try:
            t = float(head) if sep else None
        except ValueError:
            t = None
        if t is not None:
            out.append([t, rest.strip()])
        else:
            out.append([i * seconds / len(parts), part])
    return out


def run(args, client) -> int:
    if not 0 < args.seconds <= 3600:
        raise ValueError("--seconds must be in (0, 3600]")
    params = {"commands": parse_commands(args.commands, args.seconds), "seconds": args.seconds,
              "seed": args.seed, "guidance": args.guidance, "foot_lock": not args.no_foot_lock}
    if args.goal:
        try:
            x, z = (float(v) for v in args.goal.split(","))
        except ValueError:
            raise ValueError("--goal must be X,Z in metres, e.g. 3,-2") from None
        params["goal"] = [x, z]
    bar = progress_printer("motion")
    warned: list[str] = []

    def show(ev):
        if ev.kind == "progress" and ev.data.get("warning"):
            warned.append(ev.data["warning"])
            print(f"\nweft-cli motion: {ev.data['warning']}", file=sys.stderr)
        bar(ev)

    events = client.run("motion", params, on_event=show, timeout=max(120.0, 20 * args.seconds))
    outs = [e for e in events if e.kind == "output"]
    if not outs:
        print("weft-cli: the engine sent no motion", file=sys.stderr)
        return 1
    out = outs[-1].data
    Path(args.output).write_text(out["bvh"])
    if args.npz:
        np.savez(args.npz, points=np.asarray(out["points"]), channels=np.asarray(out["channels"]), fps=np.array(30),
                 texts=np.array(out["texts"]))
    fin = events[-1].data
    print(f"wrote {args.output}: {len(out['points'])} frames ({len(out['points']) / 30:.1f} s) "
          f"at {fin.get('gen_fps', '?')} generated frames/s")
    return 0
