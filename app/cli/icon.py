"""`weft-cli icon "PROMPT" -n 4 -o DIR`: text to SVG icons through the engine (no Qt, no torch here).

Writes DIR/<prompt>-<k>.svg for each candidate as soon as that candidate is finished, or, when -o ends
in .svg, that name itself (-n 1) or x-1.svg ... x-n.svg. Existing files are never overwritten (a
free name gets -2, -3 ...). The seed is random unless --seed is given and is printed, so a run can be
repeated. Library exemplars are used unless --no-library; --exemplar ID picks them (see the panel's
Library tab or `--library QUERY`, which lists library icons with their licences and exits)."""
from __future__ import annotations

import hashlib
import random
import re
import sys
import unicodedata
from pathlib import Path

from app.cli import progress_printer

MAX_PROMPT = 500


def add_parser(sub) -> str:
    p = sub.add_parser("icon", help="generate SVG icons from a text prompt")
    p.add_argument("prompt", help='what to draw, e.g. "a rocket" (with --library: what to look for)')
    p.add_argument("-n", "--num", type=int, default=4, help="candidates, generated together (1-8)")
    p.add_argument("-o", "--out", default=".", help="output folder, or x.svg (x-1.svg ... x-n.svg when -n > 1)")
    p.add_argument("--temperature", type=float, default=0.8, help="0-2")
    p.add_argument("--top-p", type=float, default=0.95, help="0.05-1")
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance, 0-10")
    p.add_argument("--seed", type=int, default=None, help="repeat a run (default: a new random seed, printed)")
    p.add_argument("--no-library", action="store_true", help="draw without library exemplars")
    p.add_argument("--exemplar", type=int, action="append", default=None, metavar="ID",
                   help="a library icon to draw after (up to 3; default: the best matches for the prompt)")
    p.add_argument("--library", action="store_true", help="only list the library icons that match the prompt")
    p.add_argument("--timeout", type=float, default=300.0)
    return "icon"


def validate(args) -> str | None:
    """A plain sentence for the first bad argument, before any engine starts (None: all good)."""
    if not args.prompt.strip():
        return "the prompt is empty: say what to draw, e.g. \"a rocket\""
    if len(args.prompt) > MAX_PROMPT:
        return f"the prompt is {len(args.prompt)} characters long; keep it under {MAX_PROMPT}"
    for name, v, lo, hi in (("-n", args.num, 1, 8), ("--temperature", args.temperature, 0, 2),
                            ("--top-p", args.top_p, 0.05, 1), ("--guidance", args.guidance, 0, 10)):
        if not lo <= v <= hi:
            return f"{name} must be between {lo} and {hi}, got {v}"
    if args.seed is not None and not 0 <= args.seed < 2**31 - 1:
        return f"--seed must be between 0 and {2**31 - 2}, got {args.seed}"
    if args.exemplar and len(args.exemplar) > 3:
        return "give at most 3 --exemplar icons"
    out = Path(args.out)
    parent = out.parent if out.suffix.lower() == ".svg" else out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{parent} is a file, not a folder"
    return None


def slug(text: str) -> str:
    """A safe file name from any prompt: ASCII words when there are some, else a short hash."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-")
    return s or "icon-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def free_name(path: Path) -> Path:
    """`path`, or path-2, path-3 ... when it exists: nothing is overwritten."""
    if not path.exists():
        return path
    k = 2
    while (cand := path.with_name(f"{path.stem}-{k}{path.suffix}")).exists():
        k += 1
    return cand


def target_files(out: str, prompt: str, n: int) -> list[Path]:
    target = Path(out)
    if target.suffix.lower() == ".svg":
        names = [target] if n == 1 else [target.with_name(f"{target.stem}-{k + 1}.svg") for k in range(n)]
    else:
        names = [target / f"{slug(prompt)}-{k + 1}.svg" for k in range(n)]
    return names


def run(args, client) -> int:
    err = validate(args)
    if err:
        print(f"weft-cli icon: {err}", file=sys.stderr)
        return 2
    if args.library:
        out = next(e for e in client.run("icon", {"mode": "library", "query": args.prompt, "k": 24},
                                         timeout=args.timeout) if e.kind == "output").data
        for it in out["items"]:
            print(f"{it['id']:>7}  {it['name']:40}  {it['license']:12} {it['author']}")
        return 0
    seed = args.seed if args.seed is not None else random.randrange(2**31 - 1)
    exemplars = "off" if args.no_library else (args.exemplar or "auto")
    params = {"mode": "generate", "prompt": args.prompt, "n": args.num, "temperature": args.temperature,
              "top_p": args.top_p, "guidance": args.guidance, "seed": seed, "exemplars": exemplars}
    names = target_files(args.out, args.prompt, args.num)
    names[0].parent.mkdir(parents=True, exist_ok=True)
    written: dict[int, Path] = {}
    show = progress_printer("icon")

    def on_event(ev):
        d = ev.data
        if ev.kind == "progress" and d.get("candidate_done") and d.get("svg"):
            k = int(d["candidate"])
            if k not in written:  # a finished candidate is written at once
                written[k] = free_name(names[k])
                written[k].write_text(d["svg"])
        show(ev)

    events = client.run("icon", params, on_event=on_event, timeout=args.timeout)
    out = next(e for e in events if e.kind == "output").data
    cands = out["candidates"]
    for k, c in enumerate(cands):  # anything that ended without its own event (cut at the token budget)
        if k not in written and c["svg"]:
            written[k] = free_name(names[k])
            written[k].write_text(c["svg"])
    scores = out.get("scores")
    order = sorted(written, key=lambda k: -float(scores[k])) if scores is not None else sorted(written)
    print(f"seed {seed}" + (f"; drawn after: {'; '.join(e['attribution'] for e in out['exemplars'])}"
                            if out.get("exemplars") else ""))
    for k in order:
        score = f"  text match {float(scores[k]):.2f}" if scores is not None else ""
        print(f"{written[k]}{score}{'' if cands[k]['valid'] else '  (incomplete)'}")
    for k, c in enumerate(cands):
        if k not in written:
            print(f"candidate {k + 1} did not finish; skipped", file=sys.stderr)
    return 0 if written else 1
