"""Decoder-only transformer shared by every Weft model: RoPE, a static KV cache, prefill and
one-token decoding through the same forward.

Kept small on purpose (nanoGPT / gpt-fast): a config dataclass, RMSNorm, attention, MLP, block,
and the model. Each modality builds its inputs (token ids or embeddings) and its heads around it.
The KV cache lives in `kv_cache.py`; sampling in `sampling.py`; the decode loop in `generate.py`.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():  # older opsets have no RMSNormalization: spell it out
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)  # one fused op on the decode path


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


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout
        self.kv_cache: KVCache | None = None

    def forward(self, x, cos, sin, mask, plan):
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim)
        qk = apply_rope(qkv[:, :, :2], cos, sin)  # q and k rotated together; cos/sin (T, 1, 1, hs/2)
        q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # (B, nh, T, hs)
        v = qkv[:, :, 2].transpose(1, 2)
        if self.kv_cache is not None:
            k, v, mask = self.kv_cache.apply(plan, k, v)
        if mask is None and self.kv_cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, dropout_p=self.dropout if self.training else 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        hidden = int(cfg.d_model * cfg.mlp_ratio)
        self.fc = nn.Linear(cfg.d_model, hidden, bias=False)
        self.proj = nn.Linear(hidden, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.d_model), Attention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.d_model), MLP(cfg)

    def forward(self, x, cos, sin, mask, plan):
        x = x + self.attn(self.norm1(x), cos, sin, mask, plan)
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

    def _rope(self, input_pos: torch.Tensor, rope_pos: torch.Tensor | None):
        """cos/sin for this step: from a precomputed table for ordinary positions inside the
        training length (the hot decode path), computed exactly otherwise."""
        if rope_pos is None and self.cfg.rope_axes == 1:
            if self._rope_table is None or self._rope_table[0].device != input_pos.device:
                cos, sin = rope_angles(torch.arange(self.cfg.max_seq_len), self.cfg.head_dim, self.cfg.rope_base)
                self._rope_table = (cos.to(input_pos.device), sin.to(input_pos.device))
            if 0 <= int(input_pos.min()) and int(input_pos.max()) < self.cfg.max_seq_len:
                return self._rope_table[0][input_pos], self._rope_table[1][input_pos]
        pos = rope_pos if rope_pos is not None else input_pos
        cos, sin = rope_angles(pos.cpu(), self.cfg.head_dim, self.cfg.rope_base, self.cfg.rope_axes)
        return cos.to(input_pos.device), sin.to(input_pos.device)

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
        x = embeds if idx is None else self.tok_emb(idx) + (embeds if embeds is not None else 0)
        T = x.shape[1]
        if input_pos is None:
            input_pos = torch.arange(T, device=x.device)
        cos, sin = self._rope(input_pos, rope_pos)
        cos, sin = cos[:, None, None], sin[:, None, None]  # (T, 1, 1, hs/2) against (B, T, 2, nh, hs/2)
        plan = None
        cache = self.blocks[0].attn.kv_cache
        if cache is not None:  # one bookkeeping step for every layer's cache
            plan = cache.plan(input_pos, attend_limit if attend_limit is not None else input_pos)
        for block in self.blocks:
            x = block(x, cos, sin, mask, plan)
        x = self.norm(x)
        if return_hidden or self.head is None:
            return x
        return self.head(x)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
