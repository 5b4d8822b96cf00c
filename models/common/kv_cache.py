"""Static, preallocated key/value cache (gpt-fast) with an optional rolling window and sink tokens
(StreamingLLM) for endless streams such as the World and Motion panels.

Keys are stored already rotated by RoPE at their absolute position. Within the rolling window
relative distances are therefore exact. Sink tokens (the first `sink` positions, kept forever) are
rotated forward by the number of evicted positions when they are read, so the cache always looks
like one contiguous sequence of `sink + window` positions, the length the model was trained on.

All layers share one geometry, so the per-step bookkeeping (which slots to write, what each query
may see) is done once per forward in `plan()` and every layer only copies and reads (`apply()`).
A static cache's decode step (one token) needs no mask and reads only the filled prefix
[:pos + 1], not all `max_len` slots; keys and values sit in one buffer so one copy writes both.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class CachePlan:
    write: slice | torch.Tensor  # slots to write this step's keys/values into
    read_end: int | None  # static cache: keys [:read_end] are read; rolling: None = all slots
    mask: torch.Tensor | None  # (T, S) bool, True = may attend; None = all read slots visible
    sink_rot: tuple[torch.Tensor, torch.Tensor] | None  # cos/sin (D/2,) to re-position the sinks


class KVCache(nn.Module):
    def __init__(self, batch: int, n_head: int, head_dim: int, max_len: int, *, window: int | None = None,
                 sink: int = 0, dtype=torch.float32, device="cpu", rope_base: float = 10000.0,
                 slot_pos: torch.Tensor | None = None):
        super().__init__()
        self.rolling = window is not None
        self.sink, self.window = (sink, window) if self.rolling else (0, max_len)
        size = self.sink + self.window
        # keys and values in one buffer, so one copy writes both; k and v are views of it
        self.register_buffer("kv", torch.zeros(2, batch, n_head, size, head_dim, dtype=dtype, device=device), persistent=False)
        self.k, self.v = self.kv.unbind(0)  # (B, H, size, D) each
        # absolute position held by each slot, -1 = empty; (size,). Shared by every layer's cache.
        if slot_pos is None:
            slot_pos = torch.full((size,), -1, dtype=torch.long, device=device)
        self.slot_pos = slot_pos
        n_pairs = head_dim // 2
        self.inv_freq = 1.0 / (rope_base ** (torch.arange(n_pairs, dtype=torch.float64) / n_pairs))

    def _apply(self, fn, recurse=True):  # .to() / .half() replace the buffer: views follow it
        super()._apply(fn, recurse)
        self.k, self.v = self.kv.unbind(0)
        return self

    @property
    def size(self) -> int:
        return self.sink + self.window

    def reset(self) -> None:
        self.slot_pos.fill_(-1)

    def slots(self, input_pos: torch.Tensor) -> torch.Tensor:
        if not self.rolling:
            return input_pos
        return torch.where(input_pos < self.sink, input_pos, self.sink + (input_pos - self.sink) % self.window)

    def plan(self, input_pos: torch.Tensor, limit: torch.Tensor | None = None) -> CachePlan:
        """Record the positions written at input_pos (T,) and work out what queries with the given
        attend limits (T,; None = causal, each query sees up to itself) may see. Call once per
        forward, before any layer's `apply`."""
        T = input_pos.shape[0]
        start = int(input_pos[0])
        if T == 1 and not self.rolling:  # the decode step: no mask, read the filled prefix only
            if not 0 <= start < self.window:
                raise ValueError(f"position {start} is past the cache size {self.window}")
            self.slot_pos[start] = start
            end = start + 1 if limit is None else int(limit[0]) + 1
            return CachePlan(slice(start, start + 1), end, None, None)
        last = int(input_pos[-1])
        if limit is None:
            limit = input_pos
        if self.rolling and T > self.window:
            raise ValueError(f"a step of {T} tokens does not fit a rolling window of {self.window}")
        if not self.rolling and max(last, start) >= self.window:
            raise ValueError(f"position {max(last, start)} is past the cache size {self.window}")
        contiguous = last - start == T - 1
        if contiguous and (not self.rolling or start >= self.sink and (start - self.sink) % self.window + T <= self.window):
            s = start if not self.rolling else self.sink + (start - self.sink) % self.window
            write: slice | torch.Tensor = slice(s, s + T)  # the usual case: plain slice copies
        else:
            write = self.slots(input_pos)
        self.slot_pos[write] = input_pos
        if not self.rolling:
            end = int(limit.max()) + 1
            mask = None if T == 1 else torch.arange(end, device=limit.device)[None, :] <= limit[:, None]
            return CachePlan(write, end, mask, None)
        pos = self.slot_pos
        mask = (pos >= 0)[None, :] & (pos[None, :] <= limit[:, None])
        if bool(mask.all()):
            mask = None
        newest = int(pos.max())
        evicted = newest - self.window + 1 - self.sink  # positions dropped between sinks and window
        rot = None
        if self.sink and evicted > 0:
            ang = evicted * self.inv_freq
            rot = (ang.cos().to(self.k.dtype).to(self.k.device), ang.sin().to(self.k.dtype).to(self.k.device))
        return CachePlan(write, None, mask, rot)

    def apply(self, plan: CachePlan, kv: torch.Tensor):
        """Write kv (2, B, H, T, D), this step's keys and values, as planned; return keys, values
        and mask for attention."""
        if isinstance(plan.write, slice):
            self.kv[:, :, :, plan.write].copy_(kv)
        else:
            self.kv[:, :, :, plan.write] = kv
        if plan.read_end is not None:  # static cache: only the filled prefix
            k, v = self.kv[:, :, :, :plan.read_end].unbind(0)
            return k, v, plan.mask
        keys = self.k
        if plan.sink_rot is not None:
            cos, sin = plan.sink_rot
            keys = keys.clone()
            s1, s2 = keys[:, :, :self.sink].chunk(2, dim=-1)
            keys[:, :, :self.sink] = torch.cat([s1 * cos - s2 * sin, s1 * sin + s2 * cos], dim=-1)
        return keys, self.v, plan.mask

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor, limit: torch.Tensor | None = None):
        """plan + apply for a single cache (the transformer plans once for all layers instead)."""
        return self.apply(self.plan(input_pos, limit), torch.stack([k, v]))
