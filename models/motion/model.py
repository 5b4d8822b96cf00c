"""The motion primitive model: a few-step diffusion denoiser (DART-style) on the shared transformer.

One primitive = 8 frames at 30 fps, generated from the last 2 frames (history), the current text
(MiniLM, 384-d) and an optional goal direction on the floor, all in the canonical frame of the last
history frame (root at the origin on the floor plane, facing +X). The denoiser sees 13 tokens,
[text, goal, step, 2 history frames, 8 noisy frames], with full (bidirectional) attention, and
predicts the clean primitive; 10 DDIM steps from noise give a sample. Classifier-free guidance
runs the conditional and the text-dropped rows as one batch.

Unlike DART we diffuse the (normalised) motion features directly instead of a VAE latent: with
8 x 61 numbers per primitive the denoiser stays small and the model is one file, one training run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from models.common.sampling import guide
from models.common.transformer import Transformer, TransformerConfig
from models.motion import rig


@dataclass
class MotionConfig:
    feat_dim: int = 61  # canonical features per frame: root pos 3, root 6D 6, 8 joints x 6D, 4 hinges
    hist: int = 2  # history frames
    prim: int = 8  # frames per primitive
    text_dim: int = 384  # MiniLM sentence embedding
    d_model: int = 192  # transformer width
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads
    steps: int = 10  # diffusion steps (trained and sampled)
    mean: list = field(default_factory=list)  # (feat_dim,) feature normalisation, from the training data
    std: list = field(default_factory=list)


def alpha_bar(steps: int) -> torch.Tensor:
    """(steps + 1,) cumulative signal level, cosine schedule (Nichol & Dhariwal); index 0 = clean."""
    s = 0.008
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0]).clamp(min=1e-5).float()


class MotionDenoiser(nn.Module):
    def __init__(self, cfg: MotionConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.frame_in = nn.Linear(cfg.feat_dim, d)
        self.text_in = nn.Linear(cfg.text_dim, d)
        self.goal_in = nn.Linear(2, d)
        self.null_text = nn.Parameter(torch.zeros(d))
        self.no_goal = nn.Parameter(torch.zeros(d))
        self.step_emb = nn.Embedding(cfg.steps, d)
        self.type_emb = nn.Parameter(torch.randn(3, d) * 0.02)  # condition, history, noisy frame
        self.net = Transformer(TransformerConfig(vocab_size=0, n_layer=cfg.n_layer, n_head=cfg.n_head, d_model=d,
                                                 max_seq_len=3 + cfg.hist + cfg.prim, n_out=cfg.feat_dim))
        n = 3 + cfg.hist + cfg.prim
        self.register_buffer("full_mask", torch.ones(n, n, dtype=torch.bool), persistent=False)
        self.register_buffer("ab", alpha_bar(cfg.steps), persistent=False)
        mean = torch.tensor(cfg.mean) if cfg.mean else torch.zeros(cfg.feat_dim)
        std = torch.tensor(cfg.std) if cfg.std else torch.ones(cfg.feat_dim)
        self.register_buffer("mean", mean.float(), persistent=False)
        self.register_buffer("std", std.float(), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def forward(self, x_t: torch.Tensor, step: torch.Tensor, hist: torch.Tensor, text: torch.Tensor,
                has_text: torch.Tensor, goal: torch.Tensor, has_goal: torch.Tensor) -> torch.Tensor:
        """x_t (B, 8, F) noisy normalised primitive at `step` (B,) in 1..steps; hist (B, 2, F)
        normalised; text (B, 384); goal (B, 2) unit direction; has_* (B,) bool. -> clean x0 (B, 8, F)."""
        te = torch.where(has_text[:, None], self.text_in(text), self.null_text)
        ge = torch.where(has_goal[:, None], self.goal_in(goal), self.no_goal)
        cond = torch.stack([te, ge, self.step_emb(step - 1)], 1) + self.type_emb[0]  # (B, 3, d)
        h = self.frame_in(hist) + self.type_emb[1]
        x = self.frame_in(x_t) + self.type_emb[2]
        out = self.net(embeds=torch.cat([cond, h, x], 1), mask=self.full_mask)  # (B, 13, F)
        return out[:, -self.cfg.prim:]

    def noise(self, x0: torch.Tensor, step: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        ab = self.ab[step][:, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    @torch.inference_mode()
    def sample(self, hist: torch.Tensor, text: torch.Tensor, goal: torch.Tensor | None = None,
               guidance: float = 2.0, steps: int | None = None, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None, denoise=None) -> torch.Tensor:
        """DDIM (eta = 0) from noise. hist (B, 2, F) canonical (not normalised), text (B, 384),
        goal (B, 2) or None. `denoise` replaces `self.forward` (e.g. an ONNX Runtime session with
        the same inputs). Returns the primitive (B, 8, F), canonical, not normalised."""
        denoise = denoise or self
        B, dev = hist.shape[0], hist.device
        n_steps = steps or self.cfg.steps
        h = self.normalise(hist)
        has_goal = torch.full((B,), goal is not None, dtype=torch.bool, device=dev)
        goal = goal if goal is not None else torch.zeros(B, 2, device=dev)
        cfg = guidance != 1.0
        if cfg:  # rows B.. drop the text (the goal stays: guidance is on the text only)
            h, goal, has_goal = torch.cat([h, h]), torch.cat([goal, goal]), torch.cat([has_goal, has_goal])
            text = torch.cat([text, text])
            has_text = torch.arange(2 * B, device=dev) < B
        else:
            has_text = torch.ones(B, dtype=torch.bool, device=dev)
        x = noise if noise is not None else torch.randn(B, self.cfg.prim, self.cfg.feat_dim, generator=generator, device=dev)
        schedule = torch.linspace(self.cfg.steps, 0, n_steps + 1).round().long().tolist()
        for t, t_next in zip(schedule[:-1], schedule[1:]):
            xin = torch.cat([x, x]) if cfg else x
            x0 = denoise(xin, torch.full((xin.shape[0],), t, device=dev), h, text, has_text, goal, has_goal)
            if cfg:
                x0 = guide(x0[:B], x0[B:], guidance)
            ab, ab_next = self.ab[t], self.ab[t_next]
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        return self.denormalise(x)


def features_to_pose(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 61) canonical features -> root position (..., 3) and local rotations (..., 15, 3, 3)."""
    lead = f.shape[:-1]
    rots = torch.eye(3, dtype=f.dtype, device=f.device).expand(*lead, 15, 3, 3).clone()
    rots[..., 0, :, :] = rig.sixd_to_mat(f[..., 3:9])
    six = f[..., 9:57].reshape(*lead, 8, 6)
    rots[..., rig.SPHERICAL, :, :] = rig.sixd_to_mat(six)
    rots[..., rig.HINGES, :, :] = rig.rot_z(f[..., 57:61])
    return f[..., :3], rots


def pose_to_features(root: torch.Tensor, rots: torch.Tensor) -> torch.Tensor:
    """Inverse of `features_to_pose` (rotations in the canonical frame)."""
    hinge = torch.stack([torch.atan2(rots[..., k, 1, 0], rots[..., k, 0, 0]) for k in rig.HINGES], -1)
    six = rig.mat_to_6d(rots[..., rig.SPHERICAL, :, :]).flatten(-2)
    return torch.cat([root, rig.mat_to_6d(rots[..., 0, :, :]), six, hinge], -1)
