"""World dynamics model: block-causal masks, cache consistency, the rolling cache over long play,
token-parallel generation, and a tiny model that learns (tiny random weights; no shipped files)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models.world.data import START
from models.world.model import Rollout, WorldConfig, WorldModel


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run fastest on one thread, above all on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(**kw) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldConfig(codes=32, n_tokens=9, d_model=32, n_layer=2, n_head=2, mlp_ratio=2.0, **kw)
    return WorldModel(cfg).eval()


def test_train_mask_is_block_causal_with_masked_copies():
    wm = tiny()
    L, Fr = wm.cfg.block, 3
    m = wm.train_mask(Fr, "cpu")
    assert m.shape == (Fr * L + (Fr - 1) * L,) * 2
    blocks = m[::L, ::L].int().tolist()  # one query/key per block: clean 0,1,2 then copies of 1,2
    assert blocks == [[1, 0, 0, 0, 0],
                      [1, 1, 0, 0, 0],
                      [1, 1, 1, 0, 0],
                      [1, 0, 0, 1, 0],   # copy of frame 1 sees clean frame 0 and itself only
                      [1, 1, 0, 0, 1]]
    assert m[:L, :L].all()  # bidirectional inside a frame


def test_cached_prefix_matches_full_forward():
    wm = tiny(window_frames=3)
    L = wm.cfg.block
    tok = torch.randint(0, 32, (1, 4, 9))
    act = torch.randint(0, 17, (1, 4))
    act[:, 0] = START
    ids = wm.block_ids(act[0], tok[0]).reshape(1, -1)
    prev = torch.cat([wm.prev_ids(None, 1, "cpu")] + [wm.prev_ids(tok[0, f - 1:f], 1, "cpu") for f in range(1, 4)], 1)
    blk = torch.arange(ids.shape[1]) // L
    with torch.inference_mode():
        full = wm.logits(ids, torch.arange(ids.shape[1]), prev, mask=blk[None, :] <= blk[:, None])
        roll = Rollout(wm, 1)
        roll.reset(tok[0, :1])
        for f in range(1, 4):
            pos = torch.arange(f * L, (f + 1) * L)
            lg = wm.logits(wm.block_ids(act[0, f:f + 1], tok[0, f:f + 1]), pos, prev[:, f * L:(f + 1) * L],
                           attend_limit=torch.full((L,), pos[-1]))
            assert torch.allclose(lg, full[:, f * L:(f + 1) * L], atol=1e-4)


def test_neighbour_embeddings_look_up_the_previous_frames_adjacent_tiles():
    wm = tiny(prev_neighbours=True)
    c, L = wm.cfg, wm.cfg.block
    prev_tok = torch.arange(9).reshape(1, 9) + 10  # 3x3 grid 10..18, row by row
    prev = torch.cat([wm.prev_ids(None, 1, "cpu"), wm.prev_ids(prev_tok, 1, "cpu")], 1)  # 2 blocks
    e = wm.neighbour_embeds(prev)
    W, none = wm.nbr_emb.weight, c.codes
    row = lambda direction, tok: W[direction * (c.codes + 1) + tok]
    assert torch.allclose(e[0, :L], (row(0, none) + row(1, none) + row(2, none) + row(3, none)).expand(L, -1)
                          * (torch.arange(L) > 0)[:, None])  # no previous frame: "none" all round; action slot 0
    centre = L + 1 + 4  # tile (1, 1) of the second block: neighbours 13 (left), 15 (right), 11 (up), 17 (down)
    assert torch.allclose(e[0, centre], row(0, 13) + row(1, 15) + row(2, 11) + row(3, 17))
    corner = L + 1  # tile (0, 0): left and up are outside the grid
    assert torch.allclose(e[0, corner], row(0, none) + row(1, 11) + row(2, none) + row(3, 13))
    assert torch.equal(e[0, L], torch.zeros(c.d_model))  # the action slot


@pytest.mark.parametrize("kw", [{}, {"action_to_all": True}, {"action_to_all": True, "prev_neighbours": True}])
def test_rollout_teacher_forced_matches_the_training_forward(kw):
    """Rollout (fused commit + rolling cache) sees exactly what the training forward sees."""
    wm = tiny(**kw)
    with torch.no_grad():
        wm.tf.head.weight.mul_(100.0)  # peaked logits: no argmax ties for float noise to flip
    L = wm.cfg.block
    tok = torch.randint(0, 32, (1, 6, 9))
    act = torch.randint(0, 17, (1, 6))
    full = copy.deepcopy(wm)  # no cache: a model with a cache would ignore `mask`
    roll = Rollout(wm, 1)
    roll.reset(tok[:, 0], settle=False)
    masked = torch.full((1, 9), wm.cfg.mask_id)
    with torch.inference_mode():
        for f in range(1, 6):
            roll.predict(act[:, f], steps=1)
            got = roll.last.clone()
            roll.observe(tok[:, f])
            # reference: no cache; the sink, then the last (window - 1) real frames, then the masked frame
            keep = [0] + list(range(max(1, f - wm.cfg.window_frames + 1), f))
            ids = torch.cat([wm.block_ids(torch.tensor([START] if k == 0 else act[0, k:k + 1]), tok[:, k]) for k in keep]
                            + [wm.block_ids(act[:, f], masked)], 1)
            prev = torch.cat([wm.prev_ids(None if k == 0 else tok[:, k - 1], 1, "cpu") for k in keep]
                             + [wm.prev_ids(tok[:, f - 1], 1, "cpu")], 1)
            n = len(keep) + 1
            blk = torch.arange(n * L) // L
            ref = full.logits(ids, torch.arange(n * L), prev, mask=blk[None, :] <= blk[:, None], last=9).argmax(-1)
            assert torch.equal(got, ref), f



def test_rolling_cache_keeps_its_size_over_long_play():
    wm = tiny()
    roll = Rollout(wm, 1)
    roll.reset(torch.randint(0, 32, (1, 9)))
    slots = roll.cache_slots()
    assert slots == wm.cfg.n_layer * wm.cfg.block * (wm.cfg.sink_frames + wm.cfg.window_frames)
    k0 = wm.tf.blocks[0].attn.kv_cache.k
    sink_before = k0[:, :, : wm.cfg.block].clone()
    for i in range(40):
        out = roll.predict(torch.tensor([i % 17]), steps=2)
        assert out.shape == (1, 9) and int(out.max()) < 32  # never a [MASK] or action id
    assert roll.cache_slots() == slots and wm.tf.blocks[0].attn.kv_cache.k is k0
    assert roll.pos == wm.cfg.block * 42  # sink, the settled start frame, 40 frames
    # the sink (the start frame) is still there after 40 frames, untouched
    assert torch.equal(wm.tf.blocks[0].attn.kv_cache.k[:, :, : wm.cfg.block], sink_before)
    held = wm.tf.blocks[0].attn.kv_cache.slot_pos
    assert sorted(held.tolist())[: wm.cfg.block] == list(range(wm.cfg.block))


def test_action_changes_the_next_frame_and_observe_replaces_it():
    wm = tiny()
    roll = Rollout(wm, 2)
    start = torch.randint(0, 32, (1, 9)).repeat(2, 1)
    roll.reset(start)
    L = wm.cfg.block
    masked = torch.full((2, 9), wm.cfg.mask_id)
    with torch.inference_mode():  # same state, different keys -> different predictions for the next frame
        lg = wm.logits(wm.block_ids(torch.tensor([1, 2]), masked), torch.arange(L, 2 * L),
                       wm.prev_ids(start, 2, "cpu"), attend_limit=torch.full((L,), 2 * L - 1))
    assert (lg[0] - lg[1]).abs().max() > 1e-3
    roll.reset(start)
    assert roll.pending[:, 0].tolist() == [33, 33]  # settle: the start frame held once with noop
    roll.predict(torch.tensor([1, 2]), steps=1)
    assert roll.pending[:, 0].tolist() == [1 + 33, 2 + 33]  # the keys went into the frame blocks
    truth = torch.randint(0, 32, (2, 9))
    roll.observe(truth)
    assert torch.equal(roll.pending[:, 1:], truth)


def test_tiny_model_learns_to_shift_tiles_with_the_key():
    """A 3x3 world where move_right shifts tiles left by one: the loss must fall well below chance."""
    torch.manual_seed(0)
    wm = tiny()
    wm.train()
    opt = torch.optim.AdamW(wm.parameters(), lr=5e-3)
    def batch(n=16):
        frames = torch.randint(0, 32, (n, 1, 3, 3))
        seq = [frames]
        for _ in range(2):
            seq.append(torch.roll(seq[-1], -1, dims=3))
        tok = torch.cat(seq, 1).reshape(n, 3, 9)
        act = torch.full((n, 3), 2)
        act[:, 0] = START
        return tok, act
    first = None
    for step in range(80):
        tok, act = batch()
        loss = wm.loss(tok, act, torch.ones(16, dtype=torch.long), noise_max=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert first > 3.0 and loss.item() < 0.5 * first, (first, loss.item())


def test_key_guidance_runs_a_noop_twin_with_the_same_context():
    wm = tiny()
    roll = Rollout(wm, 1, guidance=3.0)
    roll.reset(torch.randint(0, 32, (1, 9)))
    assert wm.tf.blocks[0].attn.kv_cache.k.shape[0] == 2  # the keyed row and its noop twin
    for a in (2, 2, 5):
        out = roll.predict(torch.tensor([a]), steps=2)
        assert out.shape == (1, 9)
        assert roll.pending[:, 0].tolist() == [a + 33, 0 + 33]  # keyed row, noop twin
        assert torch.equal(roll.last[0], roll.last[1]) and torch.equal(roll.last[:1], out)  # one shared frame
