"""The World model: an action-conditioned, block-causal transformer over frame tokens (GameNGen /
Oasis / Inferix family, built on the shared `models.common.transformer`).

A frame is one block of 82 tokens: the key pressed before it (one action token) and its 81 tile
tokens from the tokenizer. Each tile token also carries the embedding of the previous frame's
token at the same tile (the last frame stacked onto the input, as GameNGen and DIAMOND do), so
"nothing changed here" is the easy default and attention has to find only what moved. Inside a block attention is bidirectional; across blocks it is causal,
so a frame sees every earlier frame still in the cache and itself. Each new frame is made in a few
token-parallel steps (MaskGIT): all 81 tiles start as [MASK], every step predicts all of them and
keeps the most confident, the last step fills the rest.

Endless play uses the shared rolling KV cache: the first frame (the real start frame) stays as a
sink block forever, the last `window_frames` blocks roll. Training shows the model the same picture:
sequences are [sink frame] + `window_frames` consecutive frames, where the sink is either the
frame right before (the very start of play) or an earlier frame of the episode, and the context
frames are corrupted with random tokens (GameNGen's noise augmentation) so long rollouts do not drift.

    wm = WorldModel(WorldConfig())
    roll = Rollout(wm, batch=1)
    roll.reset(start_tokens)                 # (B, 81)
    tokens = roll.predict(actions, steps=2)  # (B, 81): the next frame for keys `actions` (B,)
    roll.observe(true_tokens)                # optional teacher forcing: replace the prediction
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.common.sampling import SamplingParams, guide, sample
from models.common.transformer import Transformer, TransformerConfig


@dataclass
class WorldConfig:
    codes: int = 1000  # tokenizer vocabulary (FSQ codes)
    n_tokens: int = 81  # tile tokens per frame (9x9)
    n_actions: int = 18  # 17 Crafter keys + START (the first frame of play)
    d_model: int = 128  # residual width
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads (32 dims each)
    mlp_ratio: float = 3.0
    window_frames: int = 2  # rolling frames in the KV cache, the one being made included
    sink_frames: int = 1  # frames kept forever at the start of the cache (the start frame)
    action_to_all: bool = False  # add the frame's action embedding to every token of its block, not only its slot
    prev_neighbours: bool = False  # also embed the previous frame's 4 neighbouring tiles (a conv-like stem)
    rope_base: float = 10000.0

    @property
    def block(self) -> int:  # tokens per frame: action + tiles
        return 1 + self.n_tokens

    @property
    def mask_id(self) -> int:
        return self.codes

    @property
    def vocab(self) -> int:  # codes, [MASK], actions
        return self.codes + 1 + self.n_actions

    @property
    def seq_frames(self) -> int:
        return self.sink_frames + self.window_frames


class WorldModel(nn.Module):
    def __init__(self, cfg: WorldConfig):
        super().__init__()
        self.cfg = cfg
        self.tf = Transformer(TransformerConfig(
            vocab_size=cfg.vocab, n_layer=cfg.n_layer, n_head=cfg.n_head, d_model=cfg.d_model,
            max_seq_len=cfg.block * cfg.seq_frames, mlp_ratio=cfg.mlp_ratio, rope_base=cfg.rope_base,
            n_out=cfg.codes))
        # where a token sits inside its frame (action slot, then the 9x9 tiles row by row)
        self.slot_emb = nn.Embedding(cfg.block, cfg.d_model)
        # the previous frame's token at the same tile (GameNGen / DIAMOND stack the last frame onto
        # the input channels); id `codes` = no previous frame (the start frame, action slots)
        self.prev_emb = nn.Embedding(cfg.codes + 1, cfg.d_model)
        nn.init.normal_(self.slot_emb.weight, std=0.02)
        nn.init.normal_(self.prev_emb.weight, std=0.02)
        if cfg.prev_neighbours:
            # the previous frame's tokens left / right / above / below each tile, one table per
            # direction: a move scrolls the view by one tile, so "take my neighbour's token" is
            # a lookup the key selects, like the receptive field of the U-Nets in GameNGen / DIAMOND
            self.nbr_emb = nn.Embedding(4 * (cfg.codes + 1), cfg.d_model)
            nn.init.normal_(self.nbr_emb.weight, std=0.02)

    def block_ids(self, actions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """actions (...,), tokens (..., 81) -> transformer ids (..., 82)."""
        act = (actions.long() + self.cfg.codes + 1)[..., None]
        return torch.cat([act, tokens.long()], dim=-1)

    def prev_ids(self, prev: torch.Tensor | None, B: int, device) -> torch.Tensor:
        """Previous-frame tokens (B, 81) or None -> ids (B, 82) for `prev_emb` (action slot: none)."""
        none = torch.full((B, 1), self.cfg.codes, dtype=torch.long, device=device)
        if prev is None:
            return none.expand(B, self.cfg.block)
        return torch.cat([none, prev.long().to(device)], dim=1)

    def logits(self, ids: torch.Tensor, input_pos: torch.Tensor, prev: torch.Tensor, *, attend_limit=None,
               mask=None, last: int | None = None) -> torch.Tensor:
        """ids (B, T) at absolute positions input_pos (T,), prev (B, T) previous-frame ids (see
        `prev_ids`) -> code logits (B, T, codes), or of the `last` positions only.
        T is a whole number of blocks, each starting with its action token."""
        L = self.cfg.block
        slot = (input_pos % L).to(ids.device)
        emb = self.slot_emb(slot)[None] + self.prev_emb(prev)
        if self.cfg.prev_neighbours:
            emb = emb + self.neighbour_embeds(prev)
        if self.cfg.action_to_all:  # every tile's query knows the key at once (no hop through the action slot)
            act = self.tf.tok_emb(ids[:, ::L])  # (B, T / L, C)
            emb = emb + act.repeat_interleave(L, dim=1) * (slot > 0)[None, :, None]
        h = self.tf(ids, embeds=emb, input_pos=input_pos, attend_limit=attend_limit, mask=mask, return_hidden=True)
        return self.tf.head(h if last is None else h[:, -last:])

    def neighbour_embeds(self, prev: torch.Tensor) -> torch.Tensor:
        """prev (B, T) previous-frame ids, whole blocks -> (B, T, d): the embeddings of each tile's
        4 neighbours in the previous frame (outside the grid and action slots: "none")."""
        c, L = self.cfg, self.cfg.block
        B, T = prev.shape
        side = math.isqrt(c.n_tokens)
        grid = prev.reshape(B, T // L, L)[:, :, 1:].reshape(B, T // L, side, side)
        pad = F.pad(grid, (1, 1, 1, 1), value=c.codes)
        nbrs = torch.stack([pad[..., 1:-1, :-2], pad[..., 1:-1, 2:], pad[..., :-2, 1:-1], pad[..., 2:, 1:-1]], -1)
        nbrs = nbrs + torch.arange(4, device=prev.device) * (c.codes + 1)  # left, right, up, down tables
        e = self.nbr_emb(nbrs.reshape(B, T // L, c.n_tokens, 4)).sum(-2)  # (B, T / L, 81, d)
        return F.pad(e, (0, 0, 1, 0)).reshape(B, T, -1)  # the action slot gets none

    # ---- training -----------------------------------------------------------------------------
    def loss(self, tokens: torch.Tensor, actions: torch.Tensor, target_from: torch.Tensor,
             prev1: torch.Tensor | None = None, noise_max: float = 0.15,
             gen: torch.Generator | None = None) -> torch.Tensor:
        """Masked-token loss on every frame after the sink, with clean context.

        tokens (B, F, 81) int64, actions (B, F) (START for the sink), target_from (B,): the first frame
        index whose prediction counts (1 when the sink is the frame right before, else 2: with a
        distant sink the first window frame has no visible predecessor). prev1 (B, 81): the real
        predecessor of frame 1 (default: the sink, i.e. contiguous play).

        The input is the F clean (noise-augmented) blocks followed by masked copies of blocks 1..F-1;
        a masked copy of block j sees clean blocks < j and itself, exactly what inference sees.
        """
        cfg, dev = self.cfg, tokens.device
        B, Fr, N = tokens.shape
        L = cfg.block
        # context noise augmentation: each sequence draws a corruption rate in [0, noise_max]
        rate = torch.rand(B, 1, 1, device=dev, generator=gen) * noise_max
        noisy = torch.rand(B, Fr, N, device=dev, generator=gen) < rate
        rand_tok = torch.randint(0, cfg.codes, (B, Fr, N), device=dev, generator=gen)
        ctx = torch.where(noisy, rand_tok, tokens)
        clean = self.block_ids(actions, ctx)  # (B, F, L)
        # each frame's previous frame (as the context holds it); the sink has none
        p1 = ctx[:, 0] if prev1 is None else torch.where(noisy[:, 1], rand_tok[:, 1], prev1.to(dev))
        prev_tok = torch.cat([p1[:, None], ctx[:, 1:-1]], dim=1)  # (B, F-1, 81): of frames 1..F-1
        prev_clean = torch.cat([self.prev_ids(None, B, dev)[:, None],
                                torch.stack([self.prev_ids(prev_tok[:, j], B, dev) for j in range(Fr - 1)], 1)], 1)
        # MaskGIT cosine schedule: a masked fraction per (sequence, frame), at least one token
        u = torch.rand(B, Fr - 1, 1, device=dev, generator=gen)
        frac = torch.cos(u * math.pi / 2)
        masked = torch.rand(B, Fr - 1, N, device=dev, generator=gen) < frac
        masked[..., 0] |= ~masked.any(-1)
        tgt = tokens[:, 1:]
        inp = self.block_ids(actions[:, 1:], torch.where(masked, torch.full_like(tgt, cfg.mask_id), tgt))
        ids = torch.cat([clean.reshape(B, Fr * L), inp.reshape(B, (Fr - 1) * L)], dim=1)
        prev = torch.cat([prev_clean.reshape(B, Fr * L), prev_clean[:, 1:].reshape(B, (Fr - 1) * L)], dim=1)
        pos = torch.cat([torch.arange(Fr * L), torch.arange(L, Fr * L)]).to(dev)
        logits = self.logits(ids, pos, prev, mask=self.train_mask(Fr, dev), last=(Fr - 1) * L)  # (B, (F-1)*L, codes)
        logits = logits.reshape(B, Fr - 1, L, cfg.codes)[:, :, 1:]  # drop the action slots
        frame = torch.arange(1, Fr, device=dev)[None, :, None]
        counts = masked & (frame >= target_from[:, None, None])
        return F.cross_entropy(logits[counts], tgt[counts])

    def train_mask(self, Fr: int, device) -> torch.Tensor:
        """(T, T) bool attention mask for `loss`: clean blocks block-causal, masked copies as above."""
        L = self.cfg.block
        blk = torch.cat([torch.arange(Fr).repeat_interleave(L), torch.arange(1, Fr).repeat_interleave(L)])
        is_copy = torch.cat([torch.zeros(Fr * L, dtype=torch.bool), torch.ones((Fr - 1) * L, dtype=torch.bool)])
        q_blk, k_blk = blk[:, None], blk[None, :]
        q_copy, k_copy = is_copy[:, None], is_copy[None, :]
        clean_q = ~q_copy & ~k_copy & (k_blk <= q_blk)
        copy_q = q_copy & ((~k_copy & (k_blk < q_blk)) | (k_copy & (k_blk == q_blk)))
        return (clean_q | copy_q).to(device)


class Rollout:
    """Frame-by-frame generation with the rolling KV cache: `reset` with a start frame, then
    `predict` one frame per key press, forever. Positions grow without bound; the cache holds the
    sink block plus the last `window_frames` blocks.

    Each frame's final tokens are written into the cache together with the first step of the next
    frame (one forward of 2 blocks), so a frame with `steps` MaskGIT steps costs `steps` forwards.

    guidance > 1: classifier-free guidance on the key. Every row also runs with noop (its "nothing
    pressed" twin, sharing its context) and the logits move away from it: noop + g * (key - noop),
    which makes the effect of a key stronger. It doubles the batch.
    """

    def __init__(self, model: WorldModel, batch: int = 1, guidance: float = 1.0):
        self.m, self.cfg, self.B, self.guidance = model, model.cfg, batch, float(guidance)
        self.rows = 2 * batch if self.guidance != 1.0 else batch  # cache rows: keyed rows, then noop twins
        c = self.cfg
        model.tf.setup_cache(self.rows, window=c.window_frames * c.block, sink=c.sink_frames * c.block)
        self.dev = next(model.parameters()).device
        self.pos = 0  # absolute position of the next block
        self.pending: torch.Tensor | None = None  # (B, L) ids of the last frame, not yet in the cache
        self.pending_prev: torch.Tensor | None = None  # (B, L) prev ids of that frame
        self.frames = 0

    def cache_slots(self) -> int:
        return sum(b.attn.kv_cache.size for b in self.m.tf.blocks)

    @torch.inference_mode()
    def reset(self, tokens: torch.Tensor, settle: bool = True) -> None:
        """Start play from a real frame (B, 81): it becomes the sink block. With `settle`, the same
        frame also opens the rolling window as if one frame passed with no key, so the first
        prediction sees its previous frame in the window as every later one does (training shows
        the sink alone only for episode starts, which are always bare meadows in Crafter)."""
        self.m.tf.reset_cache()
        tokens = self._rows(tokens.to(self.dev).long())
        start = torch.full((self.rows,), self.cfg.n_actions - 1, dtype=torch.long, device=self.dev)
        block = self.m.block_ids(start, tokens)
        self.pos, self.frames = 0, 0
        L = self.cfg.block
        pos = torch.arange(0, L, device=self.dev)
        self.m.logits(block, pos, self.m.prev_ids(None, self.rows, self.dev), attend_limit=torch.full_like(pos, L - 1), last=1)
        # the start frame is in the cache; it is also the previous frame of the first prediction
        self.pending, self.pending_prev, self.pos = None, None, L
        self.last = tokens
        if settle:  # written into the cache with the first prediction's first step
            noop = torch.zeros(self.rows, dtype=torch.long, device=self.dev)
            self.pending, self.pending_prev = self.m.block_ids(noop, tokens), self.m.prev_ids(tokens, self.rows, self.dev)
            self.pos = 2 * L

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> (rows, ...): the noop twins share their row's frame."""
        return torch.cat([x, x]) if self.rows != self.B else x

    @torch.inference_mode()
    def predict(self, actions: torch.Tensor, steps: int = 2, params: SamplingParams | None = None,
                gen: torch.Generator | None = None) -> torch.Tensor:
        """Make the next frame for keys `actions` (B,) in `steps` token-parallel steps -> tokens (B, 81)."""
        c, L, N, dev = self.cfg, self.cfg.block, self.cfg.n_tokens, self.dev
        params = params or SamplingParams(temperature=0.0)
        act = torch.as_tensor(actions, device=dev).long().reshape(self.B)
        if self.rows != self.B:
            act = torch.cat([act, torch.zeros_like(act)])  # the noop twins
        tokens = torch.full((self.B, N), c.mask_id, dtype=torch.long, device=dev)
        known = torch.zeros(self.B, N, dtype=torch.bool, device=dev)
        new_pos = torch.arange(self.pos, self.pos + L, device=dev)
        new_lim = torch.full_like(new_pos, self.pos + L - 1)
        new_prev = self.m.prev_ids(self.last, self.rows, dev)
        for s in range(steps):
            ids, prev = self.m.block_ids(act, self._rows(tokens)), new_prev
            if s == 0 and self.pending is not None:  # commit the previous frame in the same forward
                ids = torch.cat([self.pending, ids], dim=1)
                prev = torch.cat([self.pending_prev, new_prev], dim=1)
                pos = torch.cat([new_pos - L, new_pos])
                lim = torch.cat([torch.full_like(new_pos, self.pos - 1), new_lim])
            else:
                pos, lim = new_pos, new_lim
            logits = self.m.logits(ids, pos, prev, attend_limit=lim, last=N)  # (rows, 81, codes)
            if self.rows != self.B:
                logits = guide(logits[: self.B], logits[self.B:], self.guidance)  # (B, 81, codes)
            flat = logits.reshape(self.B * N, c.codes)
            pick = sample(flat, params, gen).reshape(self.B, N)
            conf = torch.log_softmax(logits.float(), -1).gather(-1, pick[..., None])[..., 0]
            conf = conf.masked_fill(known, float("inf"))  # tokens already fixed stay fixed
            n_known = N if s == steps - 1 else int(math.ceil(N * (1 - math.cos(math.pi / 2 * (s + 1) / steps))))
            keep = torch.zeros_like(known)
            keep.scatter_(1, conf.topk(n_known, dim=1).indices, True)
            tokens = torch.where(known, tokens, torch.where(keep, pick, tokens))
            known = known | keep
        self.pending, self.pending_prev, self.last = self.m.block_ids(act, self._rows(tokens)), new_prev, self._rows(tokens)
        self.pos += L
        self.frames += 1
        return tokens

    @torch.inference_mode()
    def observe(self, tokens: torch.Tensor) -> None:
        """Teacher forcing: the real frame (B, 81) replaces the last prediction in the context."""
        assert self.pending is not None, "observe() follows predict()"
        self.last = self._rows(tokens.to(self.dev).long())
        self.pending = torch.cat([self.pending[:, :1], self.last], dim=1)


def load_world_model(path, device: str = "cpu") -> WorldModel:
    from models.common.weights import load_config, load_weights

    cfg = WorldConfig(**load_config(path)["config"])
    return load_weights(WorldModel(cfg), path, device)
