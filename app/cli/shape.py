"""`weft-cli shape "PROMPT" [--sketch PNG] -o FILE.glb`: text- and/or sketch-to-3D from the command line.

    weft-cli shape "a wooden chair" -o chair.glb
    weft-cli shape "" --sketch lamp.png --view front -o lamp.obj
    weft-cli shape "a table lamp" --sketch lamp.png -o lamp.ply --seed 3 --guidance 3
    weft-cli shape "a blob" -o blob.glb --size 0.3

The engine grows the octree level by level (printed as it goes) and returns the smoothed mesh,
written as GLB, OBJ (+ .mtl) or PLY by the file's extension, the way a 3D tool takes it as is: in
metres, standing on the floor (min y = 0, centred in x and z), Y up, +Z front, with vertex normals and
a default material. The size is a typical one for the object the prompt names (a dining chair 0.9 m
tall, a cup 0.1 m: app/object_sizes.py; 1 m on the longest side when no known object is named), or
`--size METRES` for the longest side.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def read_sketch(path: str | Path) -> np.ndarray:
    """An image file -> (H, W, 4) uint8; ValueError (SketchFileError) with a plain sentence when it is
    not a usable sketch (app/sketch_files.py: limits, damaged files, empty drawings)."""
    from app.sketch_files import load_sketch

    return load_sketch(path)


def add_parser(sub) -> str:
    p = sub.add_parser("shape", help="generate a 3D shape from text and/or a sketch (GLB/OBJ/PLY)")
    p.add_argument("prompt", help="what to make, e.g. 'a wooden chair' ('' with --sketch for sketch only)")
    p.add_argument("--sketch", help="PNG/JPEG drawing: dark lines on a light background")
    p.add_argument("--view", default="front", choices=["front", "side", "top"], help="where the sketch is drawn from")
    p.add_argument("-o", "--output", required=True, help="FILE.glb, FILE.obj or FILE.ply")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=2.5, help="classifier-free guidance (1 = off)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--steps", type=int, default=4, help="masked decoding steps per octree level (1-8)")
    p.add_argument("--size", metavar="METRES", help="longest side of the exported object in metres "
                   "(default: a typical size for the object the prompt names, else 1 m)")
    return "shape"


def validate(args) -> str | None:
    """Refuse bad arguments before an engine starts: one plain sentence, or None."""
    from app.object_sizes import check_size
    from app.shape_files import EXPORT_FORMATS

    if Path(args.output).suffix.lower() not in EXPORT_FORMATS:
        return f"The output must end in {', '.join(EXPORT_FORMATS)} (got '{Path(args.output).name}')."
    if getattr(args, "size", None) is not None:
        try:
            check_size(args.size)
        except ValueError as e:
            return str(e)
    return None


def export_target(args):
    """The size to export at: --size when given, else a typical size for the prompt's object."""
    from app.object_sizes import explicit_size, size_for

    if getattr(args, "size", None) is not None:
        return explicit_size(args.size)
    return size_for(args.prompt or "")


def run(args, client) -> int:
    from app.shape_files import EXPORT_FORMATS, export_mesh, place

    out = Path(args.output)
    if out.suffix.lower() not in EXPORT_FORMATS:
        raise ValueError(f"output must end in {', '.join(EXPORT_FORMATS)}, got {out.name}")
    size = export_target(args)
    prompt = (args.prompt or "").strip()
    params = {"prompt": prompt, "view": args.view, "seed": args.seed, "guidance": args.guidance,
              "temperature": args.temperature, "steps": args.steps}
    if args.sketch:
        params["sketch"] = read_sketch(args.sketch)
        params["mode"] = "both" if prompt else "sketch"
    else:
        if not prompt:
            raise ValueError("give a prompt, a --sketch, or both")
        params["mode"] = "text"
    result: dict = {}

    def on_event(ev):
        if ev.kind == "partial" and "grid" in ev.data:
            print(f"level {ev.data['level']}: {ev.data['grid']}^3 grid, {len(ev.data['centres'])} surface cells",
                  file=sys.stderr, flush=True)
        elif ev.kind == "output":
            result.update(ev.data)

    events = client.run("shape", params, on_event=on_event, timeout=300)
    last = events[-1] if events else None
    if last is not None and last.kind == "error":
        raise ValueError(last.data.get("message", "the job failed"))
    if "vertices" not in result:
        raise RuntimeError("the engine finished without a mesh")
    if len(result["faces"]) == 0:
        raise ValueError("the model grew an empty shape this time; try another seed or prompt")
    path = export_mesh(result["vertices"], result["faces"], out, size.metres, size.measure)
    extents = np.ptp(place(result["vertices"], size.metres, size.measure), 0)
    print(f"{path}: {len(result['vertices'])} vertices, {len(result['faces'])} triangles "
          f"({result.get('total_ms', 0):.0f} ms in the engine); {size.describe(extents)}")
    return 0
