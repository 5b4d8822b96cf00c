"""Decoder-only transformer shared by every Weft model: RoPE, a static KV cache, prefill and
one-token decoding through the same forward.

Kept small on purpose (nanoGPT / gpt-fast): a config dataclass, RMSNorm, attention, MLP, block,
and the model. Each modality builds its inputs (token ids or embeddings) and its heads around it.
The KV cache lives in `kv_cache.py`; sampling in `sampling.py`; the decode loop in `generate.py`.

Batch-1 decoding on a CPU is the weights streaming through the matmuls plus a few microseconds
per op dispatched, some 40 ops a layer; so the decode path is written in few ops (RoPE in place
from a precomputed full-width table, RMSNorm without scalar wrapping, one cache copy for keys
and values), each bit for bit the formula it replaces: greedy and seeded outputs do not change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.common.kv_cache import KVCache


@dataclass
class TransformerConfig:
    vocab_size: int = 512  # token ids the input embedding and output head cover (0 = no token embedding)
    n_layer: int = 6  # transformer blocks
    n_head: int = 8  # attention heads
    d_model: int = 256  # residual width
    max_seq_len: int = 1024  # longest sequence seen in training (cache size for non-rolling use)
    mlp_ratio: float = 4.0  # hidden width of the MLP relative to d_model
    dropout: float = 0.0  # training only
    rope_base: float = 10000.0  # RoPE frequency base
    rope_axes: int = 1  # 1 = sequence positions; 3 = 3D positions (x, y, z), each axis a third of the dims
    n_out: int = 0  # output head width; 0 = vocab_size (tied to nothing; heads are cheap here)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        # float32 CPU constants of the decode path below (plain attributes: they never move;
        # ordinary tensors even when built under inference_mode, so training can use them)
        with torch.inference_mode(False):
            self._dim_eps = (torch.tensor(float(dim), device="cpu"), torch.tensor(eps, device="cpu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and x.device.type == "cpu":
            # F.rms_norm's own composite (square, sum, divide, add eps, rsqrt, scale), bit for bit,
            # less its per-call wrapping of the Python scalars into new tensors: 13-25 calls a token
            n, eps = self._dim_eps
            return x * (x * x).sum(-1, keepdim=True).div_(n).add_(eps).rsqrt_() * self.weight
        if torch.onnx.is_in_onnx_export():  # older opsets have no RMSNormalization: spell it out
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_angles(pos: torch.Tensor, head_dim: int, base: float, axes: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of rotary angles for positions `pos`.

    pos: (T,) integer positions, or (T, axes) for multi-axis (3D) RoPE where each axis rotates
    its own slice of the head dimensions. Angles are computed in float64 so positions deep into
    an endless stream (millions of tokens) still rotate precisely. Returns (T, head_dim // 2) each.
    """
    if pos.dim() == 1:
        pos = pos[:, None]
    n_pairs = head_dim // 2
    per_axis = n_pairs // axes
    chunks = []
    for a in range(axes):
        n = per_axis if a < axes - 1 else n_pairs - per_axis * (axes - 1)
        inv = 1.0 / (base ** (torch.arange(n, dtype=torch.float64) / max(n, 1)))
        chunks.append(pos[:, a].to(torch.float64)[:, None] * inv[None, :])
    ang = torch.cat(chunks, dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dim; cos/sin (..., D/2) broadcast against x."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def rope_rotation(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin (..., D/2) -> the full-width pair (cat(cos, cos), cat(-sin, sin)) (..., D) that
    `rotate_` takes."""
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def rotate_(x: torch.Tensor, cos2: torch.Tensor, sin2: torch.Tensor) -> torch.Tensor:
    """`apply_rope` in place with the full-width cos2/sin2 of `rope_rotation`:
    x * cos2 + (x2, x1) * sin2, half the ops and bit for bit the same result
    (x1*cos + x2*(-sin) is x1*cos - x2*sin in IEEE arithmetic, and sums commute)."""
    x1, x2 = x.chunk(2, dim=-1)
    rot = torch.cat([x2, x1], dim=-1).mul_(sin2)
    return x.mul_(cos2).add_(rot)


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout
        self.kv_cache: KVCache | None = None

    def forward(self, x, cos2, sin2, mask, plan):
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        if cos2.dtype != qkv.dtype:  # autocast: rotate in the activations' precision, as apply_rope does
            cos2, sin2 = cos2.to(qkv.dtype), sin2.to(qkv.dtype)
        rotate_(qkv[:2], cos2, sin2)  # q and k in place, together; cos2/sin2 (T, hs)
        q, k, v = qkv.unbind(0)
        if self.kv_cache is not None:
            k, v, mask = self.kv_cache.apply(plan, qkv[1:])  # keys and values in one copy
        dropout = self.dropout if self.training else 0.0
        if mask is None and self.kv_cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, dropout_p=dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        hidden = int(cfg.d_model * cfg.mlp_ratio)
        self.fc = nn.Linear(cfg.d_model, hidden, bias=False)
        self.proj = nn.Linear(hidden, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        x = self.proj(F.gelu(self.fc(x), approximate="tanh"))
        return self.drop(x) if self.training else x


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.d_model), Attention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.d_model), MLP(cfg)

    def forward(self, x, cos2, sin2, mask, plan):
        x = x + self.attn(self.norm1(x), cos2, sin2, mask, plan)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """Token (or embedding) sequence in, logits (or hidden states) out.

    Training: `forward(idx)` with a causal mask, or `forward(embeds=..., mask=...)` for custom
    (block-causal, bidirectional) masks. Inference: call `setup_cache(...)` once, then
    `forward(..., input_pos=...)` both for the prefill and for every decode step.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model) if cfg.vocab_size else None
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm = RMSNorm(cfg.d_model)
        n_out = cfg.n_out or cfg.vocab_size
        self.head = nn.Linear(cfg.d_model, n_out, bias=False) if n_out else None
        self._rope_table: tuple[torch.Tensor, torch.Tensor] | None = None
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def _rope(self, T: int, input_pos: torch.Tensor | None, rope_pos: torch.Tensor | None, like: torch.Tensor):
        """Full-width cos2/sin2 (T, hs) for this step (see `rope_rotation`): slices of a table
        precomputed for positions inside the training length (the hot decode path: one
        position, a plain slice), computed exactly otherwise (3D RoPE, far into a stream)."""
        if rope_pos is None and self.cfg.rope_axes == 1:
            table = self._rope_table
            if table is None or table[0].device != like.device or table[0].dtype != like.dtype:
                with torch.inference_mode(False):  # an ordinary tensor: autograd may save its slices
                    cos, sin = rope_angles(torch.arange(self.cfg.max_seq_len), self.cfg.head_dim, self.cfg.rope_base)
                    self._rope_table = table = tuple(t.to(like.device, like.dtype) for t in rope_rotation(cos, sin))
            cos2, sin2 = table
            if input_pos is None:
                if T <= self.cfg.max_seq_len:
                    return cos2[:T], sin2[:T]
                input_pos = torch.arange(T, device=like.device)
            elif T == 1:
                p = int(input_pos[0])
                if 0 <= p < self.cfg.max_seq_len:
                    return cos2[p:p + 1], sin2[p:p + 1]
            elif 0 <= int(input_pos.min()) and int(input_pos.max()) < self.cfg.max_seq_len:
                return cos2[input_pos], sin2[input_pos]
        pos = rope_pos if rope_pos is not None else input_pos
        if pos is None:
            pos = torch.arange(T)
        cos2, sin2 = rope_rotation(*rope_angles(pos.cpu(), self.cfg.head_dim, self.cfg.rope_base, self.cfg.rope_axes))
        return cos2.to(like), sin2.to(like)

    def setup_cache(self, batch: int, max_len: int | None = None, *, window: int | None = None, sink: int = 0,
                    dtype: torch.dtype | None = None) -> None:
        """Preallocate K/V for `batch` sequences. `window` set: a rolling cache of `sink` + `window`
        slots for endless streams (StreamingLLM); otherwise a static cache of `max_len` slots."""
        p = next(self.parameters())
        if window is not None and self.cfg.rope_axes != 1:
            raise ValueError("a rolling cache needs 1-axis RoPE (sinks are re-positioned along the sequence)")
        shared_pos = None
        for b in self.blocks:
            b.attn.kv_cache = KVCache(batch, self.cfg.n_head, self.cfg.head_dim,
                                      max_len=max_len or self.cfg.max_seq_len, window=window, sink=sink,
                                      dtype=dtype or p.dtype, device=p.device, rope_base=self.cfg.rope_base,
                                      slot_pos=shared_pos)
            shared_pos = b.attn.kv_cache.slot_pos

    def clear_cache(self) -> None:
        for b in self.blocks:
            b.attn.kv_cache = None

    def reset_cache(self) -> None:
        for b in self.blocks:
            if b.attn.kv_cache is not None:
                b.attn.kv_cache.reset()

    def forward(self, idx: torch.Tensor | None = None, *, embeds: torch.Tensor | None = None,
                input_pos: torch.Tensor | None = None, rope_pos: torch.Tensor | None = None,
                attend_limit: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                return_hidden: bool = False) -> torch.Tensor:
        """idx: (B, T) token ids and/or embeds: (B, T, C) added to them.
        input_pos: (T,) absolute sequence positions (required with a cache).
        rope_pos: (T,) or (T, axes) positions for RoPE when they differ from input_pos (3D RoPE).
        attend_limit: (T,) with a cache, the last position each query may see (default: itself,
        i.e. causal; a block's last position gives block-causal attention).
        mask: (T, S) bool, True = may attend; training-time custom masks (no cache).
        Returns logits (B, T, n_out), or hidden states (B, T, C) with return_hidden.
        """
        if idx is None:
            x = embeds
        else:
            x = self.tok_emb(idx) if embeds is None else self.tok_emb(idx) + embeds
        T = x.shape[1]
        cache = self.blocks[0].attn.kv_cache
        if cache is not None and input_pos is None:
            input_pos = torch.arange(T, device=x.device)
        cos2, sin2 = self._rope(T, input_pos, rope_pos, x)
        plan = None
        if cache is not None:  # one bookkeeping step for every layer's cache
            plan = cache.plan(input_pos, attend_limit)
        for block in self.blocks:
            x = block(x, cos2, sin2, mask, plan)
        x = self.norm(x)
        if return_hidden or self.head is None:
            return x
        return self.head(x)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
