"""Text-match evaluator for icons: a small CNN on rasterised icons trained contrastively (CLIP-style
InfoNCE) against the frozen MiniLM embeddings of their labels, on the training split only.

Used by bench/icon_quality.py (top-5 retrieval of the prompt among the test prompts) and by the
Icon session to rerank candidates. `python -m models.icon.evaluator rasterise` renders the corpus
(cache dir), `python -m models.icon.evaluator train` trains it and writes assets/icon/evaluator.*.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.common.paths import asset, cache_dir
from models.common.weights import load_config, load_weights, save_weights


@dataclass
class EvaluatorConfig:
    size: int = 32  # raster side in pixels
    width: int = 32  # channels of the first conv layer (doubles at each of 3 downsamplings)
    text_dim: int = 384  # MiniLM
    dim: int = 256  # shared embedding space


class TextMatch(nn.Module):
    def __init__(self, cfg: EvaluatorConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        layers, c = [], 1
        for k in range(4):  # 32 -> 16 -> 8 -> 4 -> 2
            layers += [nn.Conv2d(c, w * 2**k, 3, stride=2, padding=1), nn.BatchNorm2d(w * 2**k), nn.GELU(),
                       nn.Conv2d(w * 2**k, w * 2**k, 3, padding=1), nn.BatchNorm2d(w * 2**k), nn.GELU()]
            c = w * 2**k
        self.cnn = nn.Sequential(*layers)
        self.img_proj = nn.Linear(c, cfg.dim)
        self.txt_proj = nn.Sequential(nn.Linear(cfg.text_dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))

    @property
    def size(self) -> int:
        return self.cfg.size

    def image(self, img: torch.Tensor) -> torch.Tensor:
        """img: (B, S, S) coverage in [0, 1] -> (B, dim) unit vectors."""
        h = self.cnn(img[:, None].float() * 2 - 1).mean((2, 3))
        return F.normalize(self.img_proj(h), dim=-1)

    def text(self, emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.txt_proj(emb.float()), dim=-1)

    @torch.inference_mode()
    def score(self, imgs: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """(B, S, S) images, one (384,) prompt embedding -> (B,) cosine similarities."""
        dev = next(self.parameters()).device
        i = self.image(torch.as_tensor(np.asarray(imgs, np.float32), device=dev))
        t = self.text(torch.as_tensor(np.asarray(text_emb, np.float32)[None], device=dev))
        return (i @ t.T)[:, 0].cpu().numpy()


def load_evaluator(path: Path, device: str = "cpu") -> TextMatch:
    cfg = EvaluatorConfig(**load_config(path)["config"])
    return load_weights(TextMatch(cfg), path, device)


# ---- rasterising the corpus ------------------------------------------------------------------------
def _render_chunk(args) -> np.ndarray:
    from models.icon.svg import render_paths
    from models.icon.tokenizer import decode

    tokens, offs, size = args
    out = np.zeros((len(offs) - 1, size, size), np.uint8)
    for k in range(len(offs) - 1):
        out[k] = np.rint(render_paths(decode(tokens[offs[k]:offs[k + 1]]), size) * 255)
    return out


def rasterise_corpus(corpus: Path, size: int = 32, workers: int = 2) -> Path:
    z = np.load(corpus)
    tokens, off = z["tokens"], z["offsets"]
    n = len(off) - 1
    chunks = [(tokens[off[a]:off[min(a + 500, n)]], off[a:min(a + 500, n) + 1] - off[a], size) for a in range(0, n, 500)]
    t0 = time.time()
    with Pool(workers) as pool:
        parts = []
        for i, part in enumerate(pool.imap(_render_chunk, chunks)):
            parts.append(part)
            if i % 10 == 0:
                print(f"rasterised {sum(len(p) for p in parts)}/{n} ({time.time() - t0:.0f} s)", flush=True)
    imgs = np.concatenate(parts)
    out = corpus.with_name(f"rasters{size}.npz")
    np.savez_compressed(out, bits=np.packbits(imgs > 127, axis=-1), size=size)
    print(f"wrote {out}")
    return out


def load_rasters(path: Path) -> np.ndarray:
    z = np.load(path)
    size = int(z["size"])
    return np.unpackbits(z["bits"], axis=-1)[..., :size]


# ---- training ------------------------------------------------------------------------------------
def train(corpus: Path, rasters: Path, out: Path, epochs: int = 6, batch: int = 512, device: str = "auto",
          threads: int = 2) -> dict:
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    torch.set_num_threads(threads)
    z = np.load(corpus)
    imgs = load_rasters(rasters)
    emb = z["text_emb"].astype(np.float32) / 127.0
    split, ta, tb = z["split"], z["text_a"], z["text_b"]
    tr = np.nonzero(split == 0)[0]
    cfg = EvaluatorConfig(size=imgs.shape[-1])
    model = TextMatch(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    steps = epochs * (len(tr) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=max(steps, 1), pct_start=0.1)
    imgs_t = torch.from_numpy(imgs)
    rng = np.random.default_rng(0)
    t0, step = time.time(), 0
    model.train()
    for ep in range(epochs):
        perm = rng.permutation(tr)
        for k in range(0, len(perm) - batch + 1, batch):
            idx = perm[k:k + batch]
            use_b = (tb[idx] >= 0) & (rng.random(len(idx)) < 0.5)
            t = torch.from_numpy(emb[np.where(use_b, tb[idx], ta[idx])]).to(device)
            x = imgs_t[idx].to(device).float()
            if rng.random() < 0.5:  # small translations keep the encoder from memorising pixel positions
                x = torch.roll(x, shifts=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), dims=(1, 2))
            i_e, t_e = model.image(x), model.text(t)
            logits = model.logit_scale.exp().clamp(max=100) * i_e @ t_e.T
            # icons sharing a label are positives of each other, not negatives
            same = torch.from_numpy(ta[idx][:, None] == ta[idx][None, :]).to(device)
            target = same.float() / same.float().sum(1, keepdim=True)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                print(f"evaluator epoch {ep} step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    metrics = retrieval_on_split(model, imgs, emb, ta, split, 2, device)
    print(f"evaluator on real test icons: {metrics}", flush=True)
    save_weights(model, out, asdict(cfg), {"epochs": epochs, "train_icons": int(len(tr)), **metrics})
    return metrics


@torch.inference_mode()
def retrieval_on_split(model, imgs, emb, ta, split, which: int, device, pool: int = 100, seed: int = 0) -> dict:
    """Top-1/5 retrieval of an icon's own label among `pool` distinct labels of the split (real icons:
    the evaluator's ceiling, the same protocol the quality bench uses for generated icons)."""
    model.eval()
    idx = np.nonzero(split == which)[0]
    labels = np.unique(ta[idx])
    rng = np.random.default_rng(seed)
    chosen = rng.choice(labels, size=min(pool, len(labels)), replace=False)
    picks = np.array([rng.choice(idx[ta[idx] == lab]) for lab in chosen])
    i_e = model.image(torch.from_numpy(imgs[picks]).to(device).float())
    t_e = model.text(torch.from_numpy(emb[chosen]).to(device))
    sims = (i_e @ t_e.T).cpu().numpy()  # (pool, pool), diagonal = own label
    rank = (sims > np.diag(sims)[:, None]).sum(1)
    return {"top1": round(float((rank < 1).mean()), 4), "top5": round(float((rank < 5).mean()), 4), "pool": int(len(chosen))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["rasterise", "train"])
    ap.add_argument("--data", default=None, help="corpus.npz (default: cache dir)")
    ap.add_argument("--rasters", default=None)
    ap.add_argument("--out", default=str(asset("icon", "evaluator.safetensors")))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    corpus = Path(args.data) if args.data else cache_dir("icon") / "corpus.npz"
    if args.cmd == "rasterise":
        rasterise_corpus(corpus, workers=args.workers)
    else:
        train(corpus, Path(args.rasters) if args.rasters else corpus.with_name("rasters32.npz"), Path(args.out),
              epochs=args.epochs, device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
