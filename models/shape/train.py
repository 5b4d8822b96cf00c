"""Train ShapeGPT (octree transformer + leaf decoder) on the built shape data.

    python -m models.shape.train                      # CPU, about 45 minutes, writes assets/shape/
    python -m models.shape.train --steps 200 --resume # continue from runs/shape/ckpt.pt
    python -m models.shape.train --init W.safetensors --minutes 55 --lr 1e-3   # fine-tune (how v2 was made)
    torchrun --nproc-per-node 4 -m models.shape.train # same script, gradients averaged over ranks

One optimiser step = `--batch` shapes, each its own forward (octree sequences differ in length and
3D positions, so shapes are not padded together; `--packed` lays them end to end for GPUs). Every
shape is augmented (a left-right mirror; quarter turns about Y only with `--p-rotate`), serialised to
octree tokens, and conditioned on a random caption,
a random hand-drawn sketch from a random view, both or neither (classifier-free guidance). Inside
each level a random share of the tokens is revealed (MaskGIT-style) and the loss covers the rest.
The leaf decoder learns the 64^3 voxels inside the MIXED 16^3 cells of the same shape.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from safetensors.torch import load_file

from models.common.paths import REPO, asset
from models.common.weights import save_weights
from models.shape import data as sd
from models.shape import octree as oct
from models.shape.model import VIEWS, ShapeConfig, ShapeGPT, block

log = logging.getLogger("weft.shape.train")


def sample_inputs(ds: sd.ShapeData, i: int, rng: np.random.Generator, cfg: ShapeConfig, aug: bool = True,
                  p_text: float = 0.85, p_sketch: float = 0.5, reveal: bool = True, p_rotate: float = 0.0):
    """One training example as numpy arrays (None when the shape has too many tokens).
    Augmentation: a left-right mirror, and with probability `p_rotate` a turn about Y by a multiple of
    90 degrees. The sources face one way (front towards +Z), so turning them teaches the model to face
    a random way: a text prompt then gives a randomly turned shape (the shipped v1 model did)."""
    occ = ds.occ(i)
    if aug:
        turn = int(rng.integers(4)) if rng.random() < p_rotate else 0
        occ = sd.augment(occ, turn, bool(rng.integers(2)))
    tree = oct.serialise(occ, cfg.ar_depth)
    if tree.n_tokens > cfg.max_tokens:
        return None
    t = oct.tokens(tree)
    T = len(t["level"])
    revealed = np.zeros(T, bool)
    if reveal:
        for k in range(cfg.ar_depth):
            if rng.random() < 0.5:
                sel = t["level"] == k
                revealed[sel] = rng.random(int(sel.sum())) < rng.random()
    text = ds.text_emb[i, rng.integers(ds.text_emb.shape[1])]
    use_text = rng.random() < p_text
    use_sketch = rng.random() < p_sketch
    view = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
    sketch = np.zeros((sd.SKETCH, sd.SKETCH), np.float32)
    if use_sketch:
        style = "silhouette" if rng.random() < 0.25 else "edges"
        sketch = sd.render_sketch(occ, VIEWS[view], rng if rng.random() < 0.8 else None, style)
    # leaf decoder: the 2^ar_depth states grid -> the voxels inside each of its cells
    states = oct.state_pyramid(occ)[cfg.ar_depth]
    return {**t, "revealed": revealed, "text": text, "use_text": use_text, "sketch": sketch, "view": view,
            "use_sketch": use_sketch, "leaf_states": states, "leaf_target": block(occ, cfg.finest >> cfg.ar_depth)}


def _tensor(device: str):
    return lambda a, dt=torch.long: torch.as_tensor(np.asarray(a), dtype=dt, device=device)


def _example_losses(model: ShapeGPT, ex: dict, logits: torch.Tensor, revealed: torch.Tensor, tt):
    """(pattern CE on the tokens not revealed, leaf-voxel BCE on the MIXED cells) of one example."""
    todo = ~revealed
    target = tt(ex["pattern"])
    ar = F.cross_entropy(logits[todo].reshape(-1, 3), target[todo].reshape(-1)) if bool(todo.any()) else logits.sum() * 0
    cells = np.argwhere(ex["leaf_states"] == oct.MIXED)
    if len(cells):
        leaf_logits = model.leaf(tt(ex["leaf_states"]), tt(cells))  # (N, 64)
        target = ex["leaf_target"][cells[:, 0], cells[:, 1], cells[:, 2]]
        leaf = F.binary_cross_entropy_with_logits(leaf_logits, tt(target, torch.float32))
    else:
        leaf = logits.sum() * 0
    return ar, leaf


def losses(model: ShapeGPT, ex: dict, device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(octree loss, leaf loss, predicted tokens) for one example."""
    tt = _tensor(device)
    pre = model.prefix(tt(ex["text"], torch.float32)[None], tt(ex["sketch"], torch.float32)[None],
                       tt([ex["view"]]), tt([ex["use_text"]], torch.bool), tt([ex["use_sketch"]], torch.bool))
    revealed = tt(ex["revealed"], torch.bool)
    logits = model(pre, tt(ex["level"]), tt(ex["slot"]), tt(ex["xyz"]), tt(ex["parent"]), tt(ex["pattern"]), revealed)
    ar, leaf = _example_losses(model, ex, logits, revealed, tt)
    return ar, leaf, int((~revealed).sum())


def losses_packed(model: ShapeGPT, exs: list[dict], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch means of `losses` over several examples, with the octree transformer run once for
    all of them (`ShapeGPT.forward_packed`): the same objective, far fewer launches on a GPU."""
    tt = _tensor(device)
    pre = model.prefix(tt(np.stack([e["text"] for e in exs]), torch.float32),
                       tt(np.stack([e["sketch"] for e in exs]), torch.float32), tt([e["view"] for e in exs]),
                       tt([e["use_text"] for e in exs], torch.bool), tt([e["use_sketch"] for e in exs], torch.bool))
    items = [(tt(e["level"]), tt(e["slot"]), tt(e["xyz"]), tt(e["parent"]), tt(e["pattern"]), tt(e["revealed"], torch.bool))
             for e in exs]
    pairs = [_example_losses(model, e, logits, it[5], tt)
             for e, it, logits in zip(exs, items, model.forward_packed(pre, items))]
    return torch.stack([a for a, _ in pairs]).mean(), torch.stack([b for _, b in pairs]).mean()


@torch.no_grad()
def evaluate(model: ShapeGPT, ds: sd.ShapeData, idx: np.ndarray, cfg: ShapeConfig, device: str) -> dict:
    """Held-out loss with everything masked (one-step decoding), text on, no sketch; leaf loss; and
    the octree loss with the text left out (`val_ar_notext`: how much the prompt is used)."""
    model.eval()
    rng = np.random.default_rng(0)
    ar_sum, bare_sum, leaf_sum, n = 0.0, 0.0, 0.0, 0
    for i in idx:
        ex = sample_inputs(ds, int(i), rng, cfg, aug=False, p_text=1.0, p_sketch=0.0, reveal=False)
        if ex is None:
            continue
        ar, leaf, _ = losses(model, ex, device)
        bare, _, _ = losses(model, {**ex, "use_text": False}, device)
        ar_sum, bare_sum, leaf_sum, n = ar_sum + float(ar), bare_sum + float(bare), leaf_sum + float(leaf), n + 1
    model.train()
    n = max(n, 1)
    return {"val_ar": ar_sum / n, "val_leaf": leaf_sum / n, "val_ar_notext": bare_sum / n}


class Examples(torch.utils.data.IterableDataset):
    """Endless training examples made in DataLoader worker processes (augmentation, octree
    serialisation and sketch rendering are numpy work that would otherwise starve a GPU)."""

    def __init__(self, ds: sd.ShapeData, idx: np.ndarray, cfg: ShapeConfig, seed: int, p_rotate: float = 0.0):
        self.ds, self.idx, self.cfg, self.seed, self.p_rotate = ds, idx, cfg, seed, p_rotate

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            ex = sample_inputs(self.ds, int(rng.choice(self.idx)), rng, self.cfg, p_rotate=self.p_rotate)
            if ex is not None:
                yield ex


def _as_is(ex):
    return ex


def export(model: ShapeGPT, cfg: ShapeConfig, meta: dict, out: Path) -> None:
    save_weights(model, out, {"shape": cfg.__dict__}, meta)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1400, help="optimiser steps")
    p.add_argument("--batch", type=int, default=8, help="shapes per optimiser step (per rank)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--data", default=None, help="a shapes_*.npz or a folder of them (default: the cache dir)")
    p.add_argument("--run-dir", default=str(REPO / "runs" / "shape"))
    p.add_argument("--out", default=str(asset("shape", "shape.safetensors")))
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/ckpt.pt")
    p.add_argument("--init", default=None, help="start from these weights (.safetensors; layers they lack keep "
                                                  "their initialisation, e.g. the zero-initialised condition bias)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=0.0, help="wall-clock cap (0: none); the cosine ends there")
    p.add_argument("--workers", type=int, default=0, help="DataLoader processes making examples (0: in-process)")
    p.add_argument("--packed", action="store_true",
                   help="one transformer forward per batch (shapes laid end to end; for GPUs: on a CPU the "
                        "block-diagonal attention costs more than it saves)")
    p.add_argument("--keep-last", action="store_true", help="export the last step, not the best held-out one")
    p.add_argument("--d-model", type=int, default=ShapeConfig.d_model)
    p.add_argument("--n-layer", type=int, default=ShapeConfig.n_layer)
    p.add_argument("--n-head", type=int, default=ShapeConfig.n_head)
    p.add_argument("--dropout", type=float, default=ShapeConfig.dropout)
    p.add_argument("--p-rotate", type=float, default=0.0,
                   help="share of examples turned about Y by a random multiple of 90 degrees (v1 used 1.0)")
    p.add_argument("--cond-bias", action=argparse.BooleanOptionalAction, default=True,
                   help="add the condition to every octree token as well as the prefix (ShapeConfig.cond_bias)")
    a = p.parse_args(argv)

    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = 0
    if ddp:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(a.threads)
    run_dir = Path(a.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(asctime)s %(message)s",
                        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(run_dir / "train.log")])

    data = a.data
    if data and Path(data).is_dir():  # a folder of shapes_*.npz (e.g. carried to a GPU machine)
        data = sorted(Path(data).glob("shapes_*.npz"))
    ds = sd.ShapeData(data)
    train_idx, val_idx = ds.indices(False), ds.indices(True)[:48]
    cfg = ShapeConfig(d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head, dropout=a.dropout, cond_bias=a.cond_bias)
    torch.manual_seed(a.seed)
    model = ShapeGPT(cfg).to(device)
    if a.init and not a.resume:
        state = {k: v.float() for k, v in load_file(a.init).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.endswith(("_bias.weight", "_bias.bias")) for k in missing):
            raise SystemExit(f"--init {a.init} does not fit this model: missing {missing}, unexpected {unexpected}")
        log.info("initialised from %s (new: %s)", a.init, ", ".join(missing) or "nothing")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.05)
    step, tokens_seen, shapes_seen, t_spent = 0, 0, 0, 0.0
    ckpt = run_dir / "ckpt.pt"
    if a.resume and ckpt.exists():
        st = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, tokens_seen, shapes_seen, t_spent = st["step"], st["tokens"], st["shapes"], st["seconds"]
        log.info("resumed at step %d", step)
    log.info("%d train / %d held-out shapes; %.2fM parameters; %s", len(train_idx), int((ds.split == 1).sum()),
             sum(p.numel() for p in model.parameters()) / 1e6, device)
    rng = np.random.default_rng(a.seed * 1000 + rank + step * 7919)
    examples = None
    if a.workers > 0:
        examples = iter(torch.utils.data.DataLoader(Examples(ds, train_idx, cfg, a.seed * 1000 + rank + step * 7919, a.p_rotate),
                                                    batch_size=None, collate_fn=_as_is, num_workers=a.workers,
                                                    prefetch_factor=8, persistent_workers=True))

    def draw() -> dict:
        """The next training example (from the workers, or made here); shapes over the token budget skipped."""
        while True:
            ex = next(examples) if examples is not None else sample_inputs(ds, int(rng.choice(train_idx)), rng, cfg,
                                                                           p_rotate=a.p_rotate)
            if ex is not None:
                return ex

    model.train()
    t0 = time.time() - t_spent
    ema = None
    best = float("inf")
    while step < a.steps and (a.minutes <= 0 or time.time() - t0 < 60 * a.minutes):
        # cosine over `--steps`, or over the wall-clock cap when that comes first
        frac = step / a.steps if a.minutes <= 0 else max(step / a.steps, (time.time() - t0) / (60 * a.minutes))
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        n = 0
        ar_tot, leaf_tot = 0.0, 0.0
        if a.packed:  # the whole batch in one transformer forward (GPU)
            exs = [draw() for _ in range(a.batch)]
            ar, leaf = losses_packed(model, exs, device)
            (ar + 0.5 * leaf).backward()
            ar_tot, leaf_tot = float(ar.detach()) * a.batch, float(leaf.detach()) * a.batch
            tokens_seen += sum(len(e["level"]) for e in exs)
            n = a.batch
        while n < a.batch:
            ex = draw()
            ar, leaf, k = losses(model, ex, device)
            ((ar + 0.5 * leaf) / a.batch).backward()
            ar_tot, leaf_tot = ar_tot + float(ar.detach()), leaf_tot + float(leaf.detach())
            tokens_seen += len(ex["level"])
            n += 1
        if ddp:
            for prm in model.parameters():
                if prm.grad is not None:
                    dist.all_reduce(prm.grad)
                    prm.grad /= dist.get_world_size()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        shapes_seen += a.batch * (dist.get_world_size() if ddp else 1)
        cur = (ar_tot / a.batch, leaf_tot / a.batch)
        ema = cur if ema is None else (0.95 * ema[0] + 0.05 * cur[0], 0.95 * ema[1] + 0.05 * cur[1])
        if step % 10 == 0:
            log.info("step %d  ar %.4f  leaf %.4f  lr %.2e  %d tokens  %.0f s", step, ema[0], ema[1], lr,
                     tokens_seen, time.time() - t0)
        last = step == a.steps or (a.minutes > 0 and time.time() - t0 >= 60 * a.minutes)
        improved = False
        if rank == 0 and (step % a.eval_every == 0 or last):
            ev = evaluate(model, ds, val_idx, cfg, device)
            log.info("eval step %d  %s", step, json.dumps({k: round(v, 4) for k, v in ev.items()}))
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **ev, "train_ar": ema[0], "train_leaf": ema[1],
                                    "tokens": tokens_seen, "seconds": time.time() - t0}) + "\n")
            score = ev["val_ar"] + 0.5 * ev["val_leaf"]
            improved, best = score < best, min(best, score)
        if rank == 0 and (step % a.save_every == 0 or last):
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": tokens_seen,
                        "shapes": shapes_seen, "seconds": time.time() - t0}, ckpt)
        # the shipped weights are the best held-out checkpoint so far (a long run can overfit 3k shapes)
        if rank == 0 and (improved or (a.keep_last and last)):
            meta = {"step": step, "shapes_seen": shapes_seen, "tokens_seen": tokens_seen,
                    "train_seconds": round(time.time() - t0), "train_ar": round(ema[0], 4), "train_leaf": round(ema[1], 4),
                    "val_ar": round(ev["val_ar"], 4), "val_leaf": round(ev["val_leaf"], 4), "device": device}
            export(model, cfg, meta, Path(a.out))
    if ddp:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
