"""The engine-facing 3D session: text and/or sketch -> an octree that grows level by level, then a mesh.

Params: prompt (str), sketch ((H, W) or (H, W, 3|4) image array, dark ink on light or ink in alpha),
mode ("text" | "sketch" | "both"), view ("front" | "side" | "top": where the sketch is drawn from),
sketch_binds (default True: no voxel outside the sketched area seen from that view; the model decides
depth and the hidden sides — data.sketch_allowed),
seed, guidance (classifier-free, 1 = off; 2.5), temperature (0.7), steps (masked steps per level, 1-8; 4),
smooth (mesh smoothing iterations).

Events: one `partial` per finished octree level, {"level": k, "grid": 2^k, "centres": (N, 3) float32
in [-0.5, 0.5] (Y up), "states": (N,) uint8 (1 = solid, 2 = boundary cell still to refine), "size":
voxel side, "tokens": nodes decoded}, only the surface cells of each level (what is visible); the
leaf level (64^3) arrives the same way; then `output` {"vertices", "faces", "occupancy" (64^3 bits,
np.packbits), ...} and the timings.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.ndimage as ndi
import torch

from models.common.paths import asset
from models.common.sampling import SamplingParams
from models.common.session import ParamError, StreamSession, check_range
from models.common.weights import load_config, load_weights
from models.shape import data as sd
from models.shape import mesh as shape_mesh
from models.shape import octree as oct
from models.shape.model import VIEWS, GenRequest, ShapeConfig, ShapeGPT, generate, leaf_voxels

WEIGHTS = asset("shape", "shape.safetensors")
MODES = ("text", "sketch", "both")
MAX_PROMPT = 300


def load_model(path=WEIGHTS, device: str = "cpu") -> ShapeGPT:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: train it with `python -m models.shape.train`")
    cfg = ShapeConfig(**load_config(path)["config"]["shape"])
    return load_weights(ShapeGPT(cfg), path, device)


def surface_cells(states: np.ndarray) -> np.ndarray:
    """States grid -> the non-empty cells with at least one empty face neighbour (bool grid)."""
    solid = states != oct.EMPTY
    inner = ndi.binary_erosion(solid, structure=ndi.generate_binary_structure(3, 1), border_value=0)
    return solid & ~inner


def level_event(states: np.ndarray, level: int, tokens: int) -> dict:
    shown = np.where(surface_cells(states), states, oct.EMPTY).astype(np.uint8)
    centres, st, size = oct.voxels(shown)
    return {"level": level, "grid": int(states.shape[0]), "centres": centres, "states": st, "size": size,
            "tokens": tokens}


class ShapeSession(StreamSession):
    task = "shape"
    demo = {"prompt": "a wooden chair", "seed": 0}

    @classmethod
    def load(cls, device: str):
        from models.common.text import shared_encoder

        model = load_model(WEIGHTS, device)
        enc = shared_encoder()
        text = enc.encode(["a chair"])[0]
        for _ in generate(model, GenRequest(text=text), SamplingParams(seed=0), device):  # warm up
            pass
        return {"model": model, "encoder": enc}

    @classmethod
    def parse_job(cls, params: dict):
        if params.get("sketch") is not None and (params.get("mode") or "sketch") in ("sketch", "both"):
            from models.common import file_readers

            return file_readers.shape_sketch, params.get("sketch"), "this sketch"
        return None

    # ---- start ---------------------------------------------------------------------------------
    def start(self, params: dict):
        prompt = str(params.get("prompt") or "").strip()
        mode = str(params.get("mode") or ("both" if params.get("sketch") is not None and prompt else
                                          "sketch" if params.get("sketch") is not None else "text"))
        if mode not in MODES:
            raise ParamError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode in ("text", "both") and not prompt:
            raise ParamError("Type a prompt first (for example 'a wooden chair'), or switch to sketch mode.")
        if len(prompt) > MAX_PROMPT:
            raise ParamError(f"the prompt is {len(prompt)} characters long; keep it under {MAX_PROMPT}")
        view = str(params.get("view") or "front")
        if view not in VIEWS:
            raise ParamError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        sketch = None
        if mode in ("sketch", "both"):
            raw = params.get("sketch")
            if raw is None:
                raise ParamError("Draw a sketch first (or load an image), or switch to text mode.")
            parsed = params.get("parsed")
            if isinstance(parsed, np.ndarray) and parsed.shape == (sd.SKETCH, sd.SKETCH):
                sketch = parsed.astype(np.float32)  # framed by the engine in a limited child process
            else:
                try:
                    sketch = sd.prepare_user_sketch(np.asarray(raw))
                except ValueError as e:
                    raise ParamError(str(e)) from None
        try:
            sp = SamplingParams(temperature=check_range(params, "temperature", 0.0, 2.0, 0.7),
                                guidance=check_range(params, "guidance", 1.0, 10.0, 2.5),
                                seed=check_range(params, "seed", 0, 2**31 - 1, 0, int))
        except ValueError as e:
            raise ParamError(str(e)) from None
        steps = check_range(params, "steps", 1, 8, 4, int)
        self.smooth = check_range(params, "smooth", 0, 30, 6, int)
        model: ShapeGPT = self.bundle["model"]
        text = self.bundle["encoder"].encode([prompt])[0] if mode in ("text", "both") else None
        allowed = None
        if sketch is not None and bool(params.get("sketch_binds", True)):  # the outline is a constraint
            try:
                allowed = sd.sketch_allowed(sketch, view, R=model.cfg.finest)
            except ValueError as e:
                raise ParamError(str(e)) from None
        req = GenRequest(text=text, sketch=sketch, view=VIEWS.index(view), steps=steps, allowed=allowed)
        self.model, self.req, self.sp = model, req, sp
        self.levels = generate(model, req, sp, self.device)
        self.tree: oct.Octree | None = None
        self.total = model.cfg.ar_depth + 2  # octree levels + leaf level + mesh
        self.done_steps = 0
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.level_ms: list[float] = []
        self.occ: np.ndarray | None = None
        self.sketch_used = sketch
        self.phase = "levels"
        return [("progress", {"done": 0, "total": self.total + 1, "stage": "octree"})]

    # ---- steps ---------------------------------------------------------------------------------
    def step(self):
        t = time.perf_counter()
        if self.phase == "levels":
            tree = next(self.levels, None)
            if tree is not None:
                self.tree = tree
                k = len(tree.levels)
                now = time.perf_counter()
                self.level_ms.append(1000 * (now - t))
                self.timings[f"level{k}_ms"] = 1000 * (now - self.t0)  # since start: what the user waits
                self.done_steps += 1
                ev = level_event(tree.to_grid(mixed_as=oct.MIXED), k, tree.n_tokens)
                return [("partial", ev), ("progress", {"done": self.done_steps, "total": self.total + 1, "stage": f"level {k}"})]
            self.phase = "leaf"
        if self.phase == "leaf":
            if self.tree is None:
                raise RuntimeError("the model produced no octree")
            self.occ = leaf_voxels(self.model, self.tree, self.req.leaf_threshold, self.device)
            if self.req.allowed is not None:
                self.occ &= self.req.allowed  # exact at the voxel level too
            self.timings["octree_ms"] = 1000 * (time.perf_counter() - self.t0)
            self.done_steps += 1
            self.phase = "mesh"
            # the leaf decoder fills in every level below the transformer's at once: send each of them
            out = []
            pyramid = oct.state_pyramid(self.occ)
            for k in range(len(self.tree.levels) + 1, len(pyramid)):
                out.append(("partial", level_event(pyramid[k], k, self.tree.n_tokens)))
            return out + [("progress", {"done": self.done_steps, "total": self.total + 1, "stage": "mesh"})]
        t = time.perf_counter()
        v, f = shape_mesh.extract(self.occ, smooth_iters=self.smooth)
        self.timings["mesh_ms"] = 1000 * (time.perf_counter() - t)
        self.timings["total_ms"] = 1000 * (time.perf_counter() - self.t0)
        self.done = True
        out = {"vertices": v, "faces": f, "occupancy": np.packbits(self.occ.reshape(-1)), "grid": int(self.occ.shape[0]),
               "tokens": self.tree.n_tokens, **{k: round(x, 1) for k, x in self.timings.items()}}
        if self.sketch_used is not None:
            out["sketch"] = self.sketch_used
        return [("output", out)]

    def close(self) -> None:
        if getattr(self, "levels", None) is not None:
            self.levels.close()  # frees the KV cache

    def stats(self) -> dict:
        s = {k: round(v, 1) for k, v in self.timings.items()}
        if self.tree is not None:
            s["tokens"] = self.tree.n_tokens
        if self.level_ms:
            s["level_ms"] = [round(x, 1) for x in self.level_ms]
        return s


def generate_shape(bundle: dict, prompt: str | None = None, sketch: np.ndarray | None = None, view: str = "front",
                   seed: int = 0, guidance: float = 2.5, temperature: float = 0.7, steps: int = 4,
                   mesh: bool = True) -> dict:
    """Run one session to the end in-process (benchmarks, gallery). Returns the output dict plus
    the per-level events under "levels"."""
    torch.manual_seed(seed)
    s = ShapeSession(bundle, "cpu")
    mode = "both" if prompt and sketch is not None else "sketch" if sketch is not None else "text"
    s.start({"prompt": prompt or "", "sketch": sketch, "mode": mode, "view": view, "seed": seed,
             "guidance": guidance, "temperature": temperature, "steps": steps})
    levels, out = [], None
    while not s.done:
        for kind, d in s.step():
            if kind == "partial":
                levels.append(d)
            elif kind == "output":
                out = d
        if not mesh and s.phase == "mesh":
            out = {"occupancy": np.packbits(s.occ.reshape(-1)), **s.timings}
            if s.sketch_used is not None:
                out["sketch"] = s.sketch_used
            break
    s.close()
    out["levels"] = levels
    out["occ"] = s.occ
    return out
