"""Train the World model: the frame tokenizer, then the action-conditioned dynamics transformer.

    python -m models.world.data                      # record Crafter play first (cache dir)
    python -m models.world.train                     # all stages: tokenizer, tokens, dynamics
    python -m models.world.train --stage dynamics --minutes 40 --threads 2
    torchrun --nproc_per_node 4 -m models.world.train --stage dynamics   # the same under DDP

Stages: `tokenizer` fits the tile codebook (k-means) and exports the decoder to ONNX; `tokens`
encodes every recorded frame into tile tokens (cache dir); `dynamics` trains the transformer on
token sequences. Every stage is resumable (a checkpoint in runs/world/ with the optimizer state,
reloaded by default; --fresh starts over), logs to stdout, and writes the shipped fp16 weights to
assets/world/ every few minutes, so a usable model exists early.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from models.common.paths import REPO, asset, cache_dir
from models.common.weights import save_weights
from models.world.data import START, load_split
from models.world.tokenizer import TileTokenizer, TokenizerConfig, export_decoder_onnx, fit_codebook, load_tokenizer

RUNS = REPO / "runs" / "world"
TOKENIZER = asset("world", "tokenizer.safetensors")
DECODER_ONNX = asset("world", "decoder.onnx")
DYNAMICS = asset("world", "dynamics.safetensors")


# ---- distributed (torchrun) -------------------------------------------------------------------
def dist_setup() -> tuple[int, int]:
    if "RANK" not in os.environ:
        return 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def wrap(model: torch.nn.Module, world: int, device: str) -> torch.nn.Module:
    if world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[int(os.environ.get("LOCAL_RANK", 0))] if device.startswith("cuda") else None)


def lr_at(step: int, total: int, peak: float, warmup: int = 100, frac: float | None = None) -> float:
    """Linear warm-up over `warmup` steps, then cosine to 10% at `total` steps (or at `frac` = 1,
    the share of a wall-clock budget spent, when given)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup) if frac is None else frac)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


class Checkpoint:
    """Model + optimizer + step in runs/world/<name>.pt (training state only; never shipped)."""

    def __init__(self, name: str, root: Path = RUNS):
        self.path = Path(root) / f"{name}.pt"

    def load(self, model, opt) -> int:
        if not self.path.exists():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        return int(state["step"])

    def save(self, model, opt, step: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
        tmp.replace(self.path)


# ---- stage 1: tokenizer -------------------------------------------------------------------------
def train_tokenizer(args, rank: int, device: str) -> None:
    """Fit the tile codebook with k-means, save it, export the decoder (rank 0 only: it is one fit)."""
    if rank != 0:
        return
    frames, _, _ = load_split("train")
    cfg = TokenizerConfig()
    t0 = time.time()
    centers = fit_codebook(frames, cfg.codes, n_frames=args.tok_frames, seed=0, max_iter=args.tok_iters)
    vq = TileTokenizer(cfg)
    vq.set_codebook(centers)
    ev, _, _ = load_split("eval")
    sample = np.asarray(ev[::5])
    rec = vq.decode(vq.encode(sample)).numpy()
    mse = float(np.mean((rec.astype(np.float64) - sample) ** 2))
    meta = {"tiles_fit": int(min(args.tok_frames, len(frames)) * cfg.n_tokens), "kmeans_iters": args.tok_iters,
            "eval_psnr_db": round(10 * math.log10(255.0**2 / max(mse, 1e-9)), 2),
            "minutes": round((time.time() - t0) / 60, 2)}
    save_weights(vq, TOKENIZER, cfg, meta)
    # the shipped decoder is exported from the fp16 weights, exactly what the engine loads
    export_decoder_onnx(load_tokenizer(TOKENIZER), DECODER_ONNX)
    print(json.dumps({"stage": "tokenizer", **meta}), flush=True)
    print(f"tokenizer: codebook in {TOKENIZER}, decoder in {DECODER_ONNX}", flush=True)


# ---- stage 2: tokens ------------------------------------------------------------------------------
@torch.inference_mode()
def encode_splits(device: str) -> None:
    ae = load_tokenizer(TOKENIZER, device)
    for split in ("train", "eval"):
        frames, _, _ = load_split(split)
        out = np.empty((len(frames), ae.cfg.n_tokens), dtype=np.int16)
        for i in range(0, len(frames), 512):
            out[i:i + 512] = ae.encode(np.asarray(frames[i:i + 512])).cpu().numpy()
        np.save(cache_dir("world") / f"{split}_tokens.npy", out)
        print(f"tokens: {split} {out.shape}, {len(np.unique(out))} distinct codes used", flush=True)


def load_tokens(split: str, root: Path | None = None):
    """-> tokens (N, 81), actions (N,), episode bounds (E + 1,) of a split. `root` may instead hold
    `<split>_tokens.npz` (tokens, actions, episodes): the compact form carried to a GPU machine."""
    root = Path(root or cache_dir("world"))
    if (root / f"{split}_tokens.npz").exists():
        z = np.load(root / f"{split}_tokens.npz")
        return z["tokens"].astype(np.int64), z["actions"].astype(np.int64), z["episodes"]
    path = root / f"{split}_tokens.npy"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run: python -m models.world.train --stage tokens")
    actions, bounds = np.load(root / f"{split}_actions.npy"), np.load(root / f"{split}_episodes.npy")
    return np.load(path).astype(np.int64), actions.astype(np.int64), bounds


def pack_tokens(split: str, out: Path) -> Path:
    """Write the compact `<split>_tokens.npz` (for `--data` on another machine)."""
    tokens, actions, bounds = load_tokens(split)
    path = Path(out) / f"{split}_tokens.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, tokens=tokens.astype(np.int16), actions=actions.astype(np.int8), episodes=bounds)
    return path


# ---- stage 3: dynamics ----------------------------------------------------------------------------
class SequenceSampler:
    """Random training sequences [sink] + W consecutive frames, the way the rolling cache holds them,
    with the real frame before the first window frame (its previous-frame input)."""

    def __init__(self, tokens, actions, bounds, window: int, rng: np.random.Generator, p_start: float = 0.3,
                 p_sink_start: float = 0.7, p_move: float = 0.35):
        self.tokens, self.actions, self.window, self.rng = tokens, actions, window, rng
        self.p_start, self.p_sink_start, self.p_move = p_start, p_sink_start, p_move
        # frames whose key moved the view (the previous frame differs a lot: a scroll); oversampled
        # as the last window frame, since moves are the rarer, harder half of steering
        same = (tokens[1:] == tokens[:-1]).mean(1)
        self.moved = np.where((np.isin(actions[1:], [1, 2, 3, 4])) & (same < 0.5))[0] + 1
        self.eps = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= window + 2]

    def batch(self, n: int):
        W = self.window
        toks, acts, tfrom, prev1 = [], [], [], []
        for _ in range(n):
            a, b = self.eps[self.rng.integers(len(self.eps))]
            if self.rng.random() < self.p_start:  # the very start of play: sink, then frames 1..W
                idx, tf, before = list(range(a, a + W + 1)), 1, a
            else:
                i = int(self.rng.integers(a + 1, b - W + 1))  # first window frame
                if self.rng.random() < self.p_move:
                    m = self.moved[(self.moved >= a + W) & (self.moved < b)]
                    if len(m):
                        i = int(self.rng.choice(m)) - W + 1  # the last window frame is a move
                j = a if self.rng.random() < self.p_sink_start else int(self.rng.integers(a, i))
                idx, tf, before = [j] + list(range(i, i + W)), (1 if j == i - 1 else 2), i - 1
            act = self.actions[idx].copy()
            act[0] = START
            toks.append(self.tokens[idx])
            acts.append(act)
            tfrom.append(tf)
            prev1.append(self.tokens[before])  # the real frame before the first window frame
        return (torch.from_numpy(np.stack(toks)), torch.from_numpy(np.stack(acts)), torch.tensor(tfrom),
                torch.from_numpy(np.stack(prev1)))


def train_dynamics(args, rank: int, world: int, device: str) -> None:
    from models.world.model import WorldConfig, WorldModel

    tokens, actions, bounds = load_tokens("train", args.data)
    if args.init:  # fine-tune shipped weights (their config wins over the size flags)
        from models.world.model import load_world_model

        wm = load_world_model(args.init, device)
        cfg = wm.cfg
    else:
        cfg = WorldConfig(action_to_all=True, d_model=args.d_model, n_layer=args.n_layer, n_head=args.n_head,
                          prev_neighbours=args.prev_neighbours)
        wm = WorldModel(cfg).to(device)
    out = Path(args.out)
    opt = torch.optim.AdamW(wm.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.05)
    ck = Checkpoint("dynamics", args.run_dir)
    step = 0 if args.fresh else ck.load(wm, opt)
    model = wrap(wm, world, device)
    loss_fn = model.module.loss if world > 1 else model.loss
    sampler = SequenceSampler(tokens, actions, bounds, cfg.window_frames, np.random.default_rng(7 + rank + step))
    if rank == 0:
        print(f"dynamics: {wm.tf.num_params() + wm.slot_emb.weight.numel()} parameters, "
              f"{len(sampler.eps)} episodes, {len(tokens)} frames", flush=True)
    total, t0, last_save = args.steps, time.time(), time.time()
    deadline = t0 + 60 * args.minutes
    tokens_seen = step * args.batch * world * cfg.seq_frames * cfg.block
    ema = None
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()
    while step < total and time.time() < deadline:
        tok, act, tf, prev1 = sampler.batch(args.batch)
        # the schedule ends at `--steps` or at the wall-clock cap, whichever comes first
        frac = max(step / total, (time.time() - t0) / (60 * args.minutes))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, args.lr, warmup=args.warmup, frac=frac)
        wm.train()
        with amp:
            loss = loss_fn(tok.to(device), act.to(device), tf.to(device), prev1.to(device), noise_max=args.noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += tok.shape[0] * world * cfg.seq_frames * cfg.block
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if rank == 0 and (step % 25 == 0 or step == 1):
            print(json.dumps({"stage": "dynamics", "step": step, "loss": round(loss.item(), 4), "ema": round(ema, 4),
                              "lr": round(opt.param_groups[0]["lr"], 6), "tokens_seen": tokens_seen,
                              "min": round((time.time() - t0) / 60, 2)}), flush=True)
        if rank == 0 and time.time() - last_save > 60 * args.save_every:
            ck.save(wm, opt, step)
            save_weights(wm.eval(), out, cfg, {"steps": step, "tokens_seen": tokens_seen, "loss_ema": ema})
            last_save = time.time()
    if rank == 0:
        ck.save(wm, opt, step)
        save_weights(wm.eval(), out, cfg, {"steps": step, "tokens_seen": tokens_seen, "loss_ema": ema,
                                           "minutes": round((time.time() - t0) / 60, 2), "batch": args.batch * world,
                                           "init": str(args.init) if args.init else None})
        print(f"dynamics: {step} steps, loss {ema:.4f}, weights in {out}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=["all", "tokenizer", "tokens", "dynamics"], default="all")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (the machine is shared)")
    p.add_argument("--fresh", action="store_true", help="ignore the checkpoint in runs/world/")
    p.add_argument("--save-every", type=float, default=3.0, help="minutes between weight saves")
    p.add_argument("--tok-frames", type=int, default=3000, help="frames whose tiles fit the codebook")
    p.add_argument("--tok-iters", type=int, default=30, help="k-means passes")
    p.add_argument("--steps", type=int, default=3000, help="dynamics optimizer steps (schedule length)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--noise", type=float, default=0.15, help="largest context corruption rate")
    p.add_argument("--minutes", type=float, default=45.0, help="wall-clock cap of the dynamics stage")
    p.add_argument("--d-model", type=int, default=160, help="(the shipped model's size by default)")
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-head", type=int, default=5)
    p.add_argument("--prev-neighbours", action=argparse.BooleanOptionalAction, default=True,
                   help="embed the previous frame's neighbouring tiles")
    p.add_argument("--data", type=Path, default=None, help="folder with <split>_tokens.npz (default: cache dir)")
    p.add_argument("--out", type=Path, default=DYNAMICS, help="shipped fp16 weights")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning)")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--run-dir", type=Path, default=RUNS, help="training checkpoints")
    p.add_argument("--pack", type=Path, default=None, help="only write the compact token files into this folder")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.pack:
        for split in ("train", "eval"):
            print(pack_tokens(split, args.pack))
        return 0
    rank, world = dist_setup()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    if rank == 0:
        print(json.dumps({"args": vars(args), "world_size": world, "device": device}, default=str), flush=True)
    if args.stage in ("all", "tokenizer"):
        train_tokenizer(args, rank, device)
    if args.stage in ("all", "tokens") and rank == 0:
        encode_splits(device)
    if world > 1:
        dist.barrier()
    if args.stage in ("all", "dynamics"):
        train_dynamics(args, rank, world, device)
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
