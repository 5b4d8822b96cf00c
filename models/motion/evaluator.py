"""A small contrastive motion-text evaluator for R-precision (benchmarks only, never shipped).

Motion encoder: 2 s windows (60 frames) in the canonical frame of their first frame, features plus
forward-kinematics points, through a 1-D conv net and mean pooling -> 128-d. Text encoder: a linear
map of the MiniLM embedding -> 128-d. Trained with a symmetric InfoNCE loss on the training split
(real widened clips and procedural sequences); cached in the user cache dir.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.common.paths import cache_dir
from models.motion import data as D
from models.motion import rig
from models.motion.model import features_to_pose

WINDOW = 60
DIM = 128


def window_features(world: torch.Tensor) -> torch.Tensor:
    """(B, 60, 64) world features -> (B, 60, 61 + 60) canonical features and points."""
    origin, yaw = D.reference(world[:, 0])
    c = D.canonicalise(world, origin, yaw)
    pts = rig.forward_kinematics(*features_to_pose(c))  # (B, 60, 20, 3)
    return torch.cat([c, pts.flatten(-2)], -1).float()


class MotionTextEvaluator(nn.Module):
    def __init__(self, in_dim: int = D.FEAT_DIM + 60, width: int = 192):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.motion = nn.Sequential(
            nn.Conv1d(in_dim, width, 5, padding=2), nn.GELU(),
            nn.Conv1d(width, width, 5, padding=2, stride=2), nn.GELU(),
            nn.Conv1d(width, width, 5, padding=2, stride=2), nn.GELU())
        self.motion_out = nn.Linear(width, DIM)
        self.text_out = nn.Sequential(nn.Linear(384, 256), nn.GELU(), nn.Linear(256, DIM))
        self.log_temp = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))

    def encode_motion(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 60, in_dim) -> (B, 128) unit vectors."""
        h = self.motion(((x - self.mean) / self.std).transpose(1, 2)).mean(-1)
        return F.normalize(self.motion_out(h), dim=-1)

    def encode_text(self, e: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_out(e), dim=-1)


def train_evaluator(steps: int = 500, batch: int = 96, log=print) -> MotionTextEvaluator:
    d = D.load()
    feats = torch.from_numpy(d["feats"]).double()
    off = d["seq_offsets"]
    starts = []
    for i in range(len(off) - 1):
        if d["splits"][i] == "train" and off[i + 1] - off[i] >= WINDOW:
            starts.append(np.arange(off[i], off[i + 1] - WINDOW + 1, 4))
    starts = np.concatenate(starts)
    seg = d["frame_seg"]
    # keep windows whose label does not change inside (so the text really describes them)
    same = seg[starts] == seg[starts + WINDOW - 1]
    starts = starts[same]
    text_emb = torch.from_numpy(d["text_emb"]).float()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = MotionTextEvaluator()
    x0 = window_features(feats[torch.from_numpy(rng.choice(starts, 2048))[:, None] + torch.arange(WINDOW)])
    model.mean.copy_(x0.reshape(-1, x0.shape[-1]).mean(0))
    model.std.copy_(x0.reshape(-1, x0.shape[-1]).std(0).clamp(min=1e-2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    for step in range(steps):
        s = rng.choice(starts, batch)
        x = window_features(feats[torch.from_numpy(s)[:, None] + torch.arange(WINDOW)])
        alts = d["seg_texts"][seg[s]]
        n_alt = (alts >= 0).sum(1)
        tid = alts[np.arange(batch), (rng.random(batch) * n_alt).astype(int)]
        m, t = model.encode_motion(x), model.encode_text(text_emb[tid])
        logits = m @ t.T * model.log_temp.exp().clamp(max=100)
        # windows with the same segment text are positives of each other: mask those off-diagonals
        same_txt = torch.from_numpy(seg[s][:, None] == seg[s][None, :]) & ~torch.eye(batch, dtype=torch.bool)
        logits = logits.masked_fill(same_txt, -1e4)
        target = torch.arange(batch)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0:
            log(f"evaluator step {step} loss {loss.item():.3f}")
    return model.eval()


def load_or_train(log=print) -> MotionTextEvaluator:
    path = cache_dir("motion") / "evaluator.pt"
    if path.exists():
        model = MotionTextEvaluator()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    model = train_evaluator(log=log)
    torch.save(model.state_dict(), path)
    return model


@torch.no_grad()
def r_precision(model: MotionTextEvaluator, motions: torch.Tensor, texts: torch.Tensor, true_idx: np.ndarray,
                pool: int = 32, seed: int = 0) -> dict:
    """motions (N, 60, in_dim), texts (K, 384) distinct candidate texts, true_idx (N,) into texts.
    For each motion, rank its true text among `pool - 1` other random texts (HumanML3D protocol)."""
    rng = np.random.default_rng(seed)
    m = model.encode_motion(motions)
    t = model.encode_text(texts)
    sims = (m @ t.T).numpy()
    K = len(texts)
    hits = {1: 0, 3: 0}
    for i, ti in enumerate(true_idx):
        others = rng.choice([k for k in range(K) if k != ti], min(pool - 1, K - 1), replace=False)
        cand = np.concatenate([[ti], others])
        rank = int((sims[i, cand] > sims[i, ti]).sum())
        for k in hits:
            hits[k] += rank < k
    n = max(len(true_idx), 1)
    return {"r_precision_top1": hits[1] / n, "r_precision_top3": hits[3] / n, "pool": int(min(pool, K))}
