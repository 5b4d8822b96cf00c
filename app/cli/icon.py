"""`weft-cli icon "PROMPT" -n 4 -o DIR`: text to SVG icons through the engine (no Qt, no torch here).

Writes DIR/<prompt>-<k>.svg for each candidate (best text match first when the engine scores them),
or a single file when -o ends in .svg and -n is 1."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from app.cli import progress_printer


def add_parser(sub) -> str:
    p = sub.add_parser("icon", help="generate SVG icons from a text prompt")
    p.add_argument("prompt", help='what to draw, e.g. "a rocket"')
    p.add_argument("-n", "--num", type=int, default=4, help="candidates, generated together (1-8)")
    p.add_argument("-o", "--out", default=".", help="output folder (or a .svg file with -n 1)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300.0)
    return "icon"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "icon"


def run(args, client) -> int:
    if not args.prompt.strip():
        print("weft-cli icon: the prompt is empty", file=sys.stderr)
        return 2
    params = {"mode": "generate", "prompt": args.prompt, "n": args.num, "temperature": args.temperature,
              "top_p": args.top_p, "guidance": args.guidance, "seed": args.seed}
    events = client.run("icon", params, on_event=progress_printer("icon"), timeout=args.timeout)
    out = next(e for e in events if e.kind == "output").data
    cands = out["candidates"]
    order = list(range(len(cands)))
    if "scores" in out:
        order.sort(key=lambda i: -float(out["scores"][i]))
    target = Path(args.out)
    if target.suffix.lower() == ".svg" and len(cands) == 1:
        files = [target]
    else:
        target.mkdir(parents=True, exist_ok=True)
        files = [target / f"{slug(args.prompt)}-{k + 1}.svg" for k in range(len(cands))]
    target_parent = files[0].parent
    target_parent.mkdir(parents=True, exist_ok=True)
    written = 0
    for f, i in zip(files, order):
        c = cands[i]
        if not c["svg"]:
            print(f"candidate {i + 1} did not finish; skipped", file=sys.stderr)
            continue
        f.write_text(c["svg"])
        score = f"  text match {float(out['scores'][i]):.2f}" if "scores" in out else ""
        print(f"{f}{score}{'' if c['valid'] else '  (incomplete)'}")
        written += 1
    return 0 if written else 1
