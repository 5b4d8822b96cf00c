"""Train the motion primitive denoiser: `python -m models.motion.train` (CPU), or under torchrun (DDP).

Resumable (runs/motion/ckpt.pt holds model, optimiser, step and RNG state), logged to stdout and
runs/motion/train.log, and it exports the fp16 weights to assets/motion/ at every checkpoint so a
usable model exists early. Windows are half real (widened CMU), half procedural.

Loss = MSE of the clean primitive (normalised features)
     + 10  x MSE of forward-kinematics points (metres, canonical frame)
     + 100 x MSE of point velocities, the join from the last history frame included (continuity).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.common.paths import REPO, asset
from models.common.weights import save_weights
from models.motion import data as D
from models.motion import rig
from models.motion.model import MotionConfig, MotionDenoiser, features_to_pose

RUN_DIR = REPO / "runs" / "motion"
WEIGHTS = asset("motion", "motion.safetensors")


def feature_stats(d: dict, feats: torch.Tensor, starts: np.ndarray, n: int = 20000) -> tuple[list, list]:
    rng = np.random.default_rng(0)
    b = D.batch(d, rng.choice(starts, min(n, len(starts)), replace=False), rng, D.seq_end(d), feats)
    x = torch.cat([b["hist"], b["future"]], 1).reshape(-1, D.FEAT_DIM)
    return x.mean(0).tolist(), x.std(0).clamp(min=1e-2).tolist()


def points(f: torch.Tensor) -> torch.Tensor:
    return rig.forward_kinematics(*features_to_pose(f))


def losses(model, b: dict, text_emb: torch.Tensor, gen: torch.Generator, text_drop=0.1, goal_drop=0.5) -> dict:
    m = model.module if hasattr(model, "module") else model
    B = b["hist"].shape[0]
    x0 = m.normalise(b["future"])
    h = m.normalise(b["hist"])
    step = torch.randint(1, m.cfg.steps + 1, (B,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    x_t = m.noise(x0, step, eps)
    has_text = torch.rand(B, generator=gen) >= text_drop
    has_goal = b["has_goal"] & (torch.rand(B, generator=gen) >= goal_drop)
    pred = model(x_t, step, h, text_emb[b["text"]], has_text, b["goal"], has_goal)
    l_feat = F.mse_loss(pred, x0)
    p_pred = points(torch.cat([b["hist"][:, -1:], m.denormalise(pred)], 1))  # (B, 9, 20, 3)
    p_true = points(torch.cat([b["hist"][:, -1:], b["future"]], 1))
    l_pos = F.mse_loss(p_pred[:, 1:], p_true[:, 1:])
    l_vel = F.mse_loss(p_pred.diff(dim=1), p_true.diff(dim=1))
    return {"loss": l_feat + 10 * l_pos + 100 * l_vel, "feat": l_feat, "pos": l_pos, "vel": l_vel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (the machine is shared)")
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--real-share", type=float, default=0.5, help="share of windows from real clips")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--out", default=str(WEIGHTS))
    a = ap.parse_args()

    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = 0
    if ddp:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = torch.distributed.get_rank()
    torch.set_num_threads(a.threads)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    log_file = open(RUN_DIR / "train.log", "a") if rank == 0 else None

    def log(msg: str) -> None:
        if rank == 0:
            print(msg, flush=True)
            log_file.write(msg + "\n")
            log_file.flush()

    d = D.load()
    feats = torch.from_numpy(d["feats"]).double()
    ends = D.seq_end(d)
    real = D.window_starts(d, "train", "real")
    proc = D.window_starts(d, "train", "procedural")
    val = D.window_starts(d, "eval", "real")
    text_emb = torch.from_numpy(d["text_emb"]).float()

    ckpt_path = RUN_DIR / "ckpt.pt"
    resume = ckpt_path.exists() and not a.fresh
    if resume:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        cfg = MotionConfig(**ck["config"])
    else:
        mean, std = feature_stats(d, feats, np.concatenate([real, proc]))
        cfg = MotionConfig(d_model=a.d_model, n_layer=a.layers, n_head=a.heads, mean=mean, std=std)
    torch.manual_seed(0)
    model = MotionDenoiser(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.01)
    step, seen, t_used = 0, 0, 0.0
    if resume:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, seen, t_used = ck["step"], ck["seen"], ck["seconds"]
        log(f"resumed at step {step}")
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    log(f"model {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params; windows real {len(real)} "
        f"procedural {len(proc)} val {len(val)}; {json.dumps({k: v for k, v in vars(a).items()})}")

    rng = np.random.default_rng(1000 * rank + step)
    gen = torch.Generator().manual_seed(1000 * rank + step)
    vrng = np.random.default_rng(123)
    vbatch = D.batch(d, vrng.choice(val, min(1024, len(val)), replace=False), vrng, ends, feats)
    vbatch = {k: v.float() if v.is_floating_point() else v for k, v in vbatch.items()}

    def save() -> None:
        if rank != 0:
            return
        model.eval()
        with torch.no_grad():
            vl = losses(model, vbatch, text_emb, torch.Generator().manual_seed(7), 0.0, 0.0)
        model.train()
        meta = {"step": step, "windows_seen": seen, "frames_seen": seen * D.PRIM, "train_seconds": round(t_used),
                "val": {k: round(float(v), 5) for k, v in vl.items()}}
        save_weights(model, Path(a.out), cfg, meta)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "config": asdict(cfg), "step": step,
                    "seen": seen, "seconds": t_used}, ckpt_path)
        log(f"saved step {step}: val {meta['val']}")

    model.train()
    t_log = time.time()
    while step < a.steps:
        t0 = time.time()
        lr = a.lr * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / a.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        n_real = int(a.batch * a.real_share)
        starts = np.concatenate([rng.choice(real, n_real), rng.choice(proc, a.batch - n_real)])
        b = D.batch(d, starts, rng, ends, feats)
        b = {k: v.float() if v.is_floating_point() else v for k, v in b.items()}
        out = losses(net, b, text_emb, gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += a.batch * (torch.distributed.get_world_size() if ddp else 1)
        t_used += time.time() - t0
        if step % 25 == 0:
            log(f"step {step} loss {out['loss'].item():.4f} feat {out['feat'].item():.4f} pos {out['pos'].item():.5f} "
                f"vel {out['vel'].item():.6f} lr {lr:.2e} {(time.time() - t_log) / 25:.2f} s/step")
            t_log = time.time()
        if step % a.save_every == 0 or step == a.steps:
            save()
    if ddp:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
