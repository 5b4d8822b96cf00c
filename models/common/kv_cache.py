"""Static, preallocated key/value cache (gpt-fast) with an optional rolling window and sink tokens
(StreamingLLM) for endless streams such as the World and Motion panels.

Keys are stored already rotated by RoPE at their absolute position. Within the rolling window
relative distances are therefore exact. Sink tokens (the first `sink` positions, kept forever) are
rotated forward by the number of evicted positions when they are read, so the cache always looks
like one contiguous sequence of `sink + window` positions, the length the model was trained on.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class KVCache(nn.Module):
    def __init__(self, batch: int, n_head: int, head_dim: int, max_len: int, *, window: int | None = None,
                 sink: int = 0, dtype=torch.float32, device="cpu", rope_base: float = 10000.0):
        super().__init__()
        self.rolling = window is not None
        self.sink, self.window = (sink, window) if self.rolling else (0, max_len)
        size = self.sink + self.window
        self.register_buffer("k", torch.zeros(batch, n_head, size, head_dim, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(batch, n_head, size, head_dim, dtype=dtype, device=device), persistent=False)
        # absolute position held by each slot, -1 = empty; (size,)
        self.register_buffer("slot_pos", torch.full((size,), -1, dtype=torch.long, device=device), persistent=False)
        n_pairs = head_dim // 2
        self.inv_freq = 1.0 / (rope_base ** (torch.arange(n_pairs, dtype=torch.float64) / n_pairs))

    @property
    def size(self) -> int:
        return self.sink + self.window

    def reset(self) -> None:
        self.slot_pos.fill_(-1)

    def slots(self, input_pos: torch.Tensor) -> torch.Tensor:
        if not self.rolling:
            return input_pos
        return torch.where(input_pos < self.sink, input_pos, self.sink + (input_pos - self.sink) % self.window)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor, limit: torch.Tensor):
        """Write k, v (B, H, T, D) at absolute positions input_pos (T,); return the keys, values and
        boolean mask (T, S) (None when every returned slot is visible) for attention."""
        T = input_pos.shape[0]
        if self.rolling and T > self.window:
            raise ValueError(f"a step of {T} tokens does not fit a rolling window of {self.window}")
        if not self.rolling and int(input_pos[-1]) >= self.window:
            raise ValueError(f"position {int(input_pos[-1])} is past the cache size {self.window}")
        start = int(input_pos[0])
        if not self.rolling or start >= self.sink and (start - self.sink) % self.window + T <= self.window:
            # contiguous positions that do not wrap (the usual case): plain slice copies
            s = start if not self.rolling else self.sink + (start - self.sink) % self.window
            self.k[:, :, s:s + T].copy_(k)
            self.v[:, :, s:s + T].copy_(v)
            self.slot_pos[s:s + T].copy_(input_pos)
        else:
            slots = self.slots(input_pos)
            self.k[:, :, slots] = k
            self.v[:, :, slots] = v
            self.slot_pos[slots] = input_pos
        if not self.rolling:
            end = int(limit.max()) + 1
            keys, vals = self.k[:, :, :end], self.v[:, :, :end]
            if T == 1:
                return keys, vals, None
            mask = torch.arange(end, device=limit.device)[None, :] <= limit[:, None]
            return keys, vals, mask
        pos = self.slot_pos
        mask = (pos >= 0)[None, :] & (pos[None, :] <= limit[:, None])
        keys = self.k
        newest = int(pos.max())
        evicted = newest - self.window + 1 - self.sink  # positions dropped between sinks and window
        if self.sink and evicted > 0:
            keys = keys.clone()
            ang = evicted * self.inv_freq
            cos, sin = ang.cos().to(keys.dtype).to(keys.device), ang.sin().to(keys.dtype).to(keys.device)
            s = keys[:, :, : self.sink]
            s1, s2 = s.chunk(2, dim=-1)
            keys[:, :, : self.sink] = torch.cat([s1 * cos - s2 * sin, s1 * sin + s2 * cos], dim=-1)
        return keys, self.v, mask
