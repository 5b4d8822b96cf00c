"""World model quality on held-out Crafter worlds (seeds never used in training).

    python bench/world_quality.py                 # all figures
    python bench/world_quality.py --episodes 6 --drift-minutes 1

Figures (PSNR in dB, capped at 60 dB for identical frames, and SSIM against the real frames, 64x64 RGB):
- tokenizer: reconstruction of real frames (the ceiling for everything below);
- next frame, teacher-forced: the real previous frames in the context, the real key, one new frame;
- 16-step rollouts: from a real frame, 16 frames generated with the real keys, scored per step;
  next to it the "nothing moves" baseline (the start frame repeated) so the numbers have a floor;
- action consistency: on the frames where the real player moved one tile (judged from the real
  frames), whether the generated frame moved the same way, judged from the generated pixels by the
  tile shift of the 9x7 world view; percentage;
- drift over 3 minutes of generated play (15 FPS: 2700 frames) with keys replayed from real play:
  per-minute mean brightness, colour spread and tile-token histogram distance against real play.
Prints the figures and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TILE = 7
VIEW_ROWS = 7  # the world view is 9 x 7 tiles above the 9 x 2 inventory
MOVES = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}  # action -> player (dx, dy) in tiles


def scores(real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if np.array_equal(real, fake):  # identical frames: PSNR is infinite; count them at the 60 dB cap
        return 60.0, 1.0
    return (min(60.0, float(peak_signal_noise_ratio(real, fake, data_range=255))),
            float(structural_similarity(real, fake, channel_axis=-1, data_range=255)))


def tile_shift(prev: np.ndarray, cur: np.ndarray, margin: float = 1.15) -> tuple[int, int] | None:
    """How the player moved between two frames, from the pixels: the world view scrolls one tile
    the other way. Returns (dx, dy) in tiles, or None when the view is too uniform to tell."""
    v = VIEW_ROWS * TILE
    a, b = prev[:v, :63].astype(np.float32), cur[:v, :63].astype(np.float32)
    errs = {}
    for dx, dy in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
        # player moved (dx, dy): cur[y, x] shows what prev had at [y + dy, x + dx]
        ys, xs = slice(max(0, -dy) * TILE, v - max(0, dy) * TILE), slice(max(0, -dx) * TILE, 63 - max(0, dx) * TILE)
        ys2 = slice(ys.start + dy * TILE, ys.stop + dy * TILE)
        xs2 = slice(xs.start + dx * TILE, xs.stop + dx * TILE)
        d = np.abs(b[ys, xs] - a[ys2, xs2])
        # the player's own tile (centre) changes with facing; leave it out
        cy, cx = 3 * TILE - ys.start, 4 * TILE - xs.start
        d[max(cy, 0):cy + TILE, max(cx, 0):cx + TILE] = np.nan
        errs[(dx, dy)] = float(np.nanmean(d))
    ranked = sorted(errs.items(), key=lambda kv: kv[1])
    (best, e1), (_, e2) = ranked[0], ranked[1]
    if e2 < margin * e1 + 2.0:  # ambiguous (uniform grass, water, darkness)
        return None
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=12, help="held-out episodes used")
    p.add_argument("--tf-frames", type=int, default=150, help="teacher-forced frames per episode at most")
    p.add_argument("--rollouts", type=int, default=48, help="16-step rollouts")
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--steps", type=int, default=2, help="token-parallel steps per frame")
    p.add_argument("--guidance", type=float, default=None, help="key guidance (default: the session's)")
    p.add_argument("--drift-minutes", type=float, default=3.0)
    p.add_argument("--fps", type=float, default=15.0, help="frame rate that turns minutes into frames")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--weights", default=None, help="dynamics weights to judge (default: the shipped ones)")
    p.add_argument("--drift-temperature", type=float, default=0.0,
                   help="sampling temperature of the drift plays (the panel's default is 0.8; 0 = greedy)")
    args = p.parse_args(argv)

    import torch

    from models.world.data import load_split
    from models.world.model import Rollout, load_world_model
    from models.world.stream import DYNAMICS, TOKENIZER
    from models.world.tokenizer import load_tokenizer

    torch.set_num_threads(args.threads)
    t_start = time.time()
    frames, actions, bounds = load_split("eval", mmap=False)
    actions = actions.astype(np.int64)
    eps = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])][: args.episodes]
    ae = load_tokenizer(TOKENIZER)
    wm = load_world_model(Path(args.weights) if args.weights else DYNAMICS)
    from models.world.stream import DEFAULT_GUIDANCE

    g = DEFAULT_GUIDANCE if args.guidance is None else args.guidance
    res: dict = {"episodes": len(eps), "steps": args.steps, "guidance": g, "eval_frames": int(sum(b - a for a, b in eps))}

    def decode(tok):
        return ae.decode(tok).numpy()

    # ---- tokenizer ceiling --------------------------------------------------------------------------
    idx = np.concatenate([np.arange(a, b, 5) for a, b in eps])
    rec = decode(ae.encode(frames[idx]))
    s = np.array([scores(frames[i], r) for i, r in zip(idx, rec)])
    res["tokenizer_psnr"], res["tokenizer_ssim"] = round(s[:, 0].mean(), 2), round(s[:, 1].mean(), 4)
    print(f"tokenizer round trip: PSNR {res['tokenizer_psnr']} dB, SSIM {res['tokenizer_ssim']} ({len(idx)} frames)", flush=True)

    # ---- teacher-forced next frame + action consistency ----------------------------------------------
    tf_scores, tf_static, consistent, judged = [], [], 0, 0
    for a, b in eps:
        n = min(b - a, args.tf_frames + 1)
        tok = ae.encode(frames[a:a + n])
        roll = Rollout(wm, 1, guidance=g)
        roll.reset(tok[:1])
        for t in range(1, n):
            pred = roll.predict(torch.tensor([actions[a + t]]), steps=args.steps)
            roll.observe(tok[t:t + 1])
            fake = decode(pred)[0]
            real = frames[a + t]
            tf_scores.append(scores(real, fake))
            tf_static.append(scores(real, frames[a + t - 1]))
            act = int(actions[a + t])
            if act in MOVES:
                real_shift = tile_shift(frames[a + t - 1], real)
                if real_shift == MOVES[act]:  # the real player did move one tile this way
                    judged += 1
                    consistent += tile_shift(frames[a + t - 1], fake) == MOVES[act]
    s = np.array(tf_scores)
    res["next_frame_psnr"], res["next_frame_ssim"] = round(s[:, 0].mean(), 2), round(s[:, 1].mean(), 4)
    st = np.array(tf_static)
    res["next_frame_static_psnr"], res["next_frame_static_ssim"] = round(st[:, 0].mean(), 2), round(st[:, 1].mean(), 4)
    res["action_consistency_pct"] = round(100.0 * consistent / max(judged, 1), 1)
    res["action_consistency_judged"] = judged
    print(f"next frame (teacher-forced): PSNR {res['next_frame_psnr']} dB, SSIM {res['next_frame_ssim']} "
          f"({len(s)} frames); copying the previous real frame: PSNR {res['next_frame_static_psnr']} dB, "
          f"SSIM {res['next_frame_static_ssim']}", flush=True)
    print(f"action consistency: {res['action_consistency_pct']}% of {judged} real one-tile moves "
          f"reproduced in the generated frame", flush=True)

    # ---- 16-step autoregressive rollouts ------------------------------------------------------------
    H = args.horizon
    starts = [(a, t) for a, b in eps for t in range(a, b - H - 1, 12)]
    rng = np.random.default_rng(0)
    starts = [starts[i] for i in sorted(rng.choice(len(starts), min(args.rollouts, len(starts)), replace=False))]
    per_step = np.zeros((H, 2))
    base = np.zeros((H, 2))
    B = 8
    for i in range(0, len(starts), B):
        chunk = starts[i:i + B]
        t0 = np.array([t for _, t in chunk])
        roll = Rollout(wm, len(chunk), guidance=g)
        roll.reset(ae.encode(frames[t0]))
        for h in range(1, H + 1):
            pred = decode(roll.predict(torch.tensor(actions[t0 + h]), steps=args.steps))
            for j, t in enumerate(t0):
                per_step[h - 1] += scores(frames[t + h], pred[j])
                base[h - 1] += scores(frames[t + h], frames[t])
    per_step /= len(starts)
    base /= len(starts)
    res.update({"rollout16_psnr": round(per_step[:, 0].mean(), 2), "rollout16_ssim": round(per_step[:, 1].mean(), 4),
                "rollout16_psnr_step1_4_16": [round(per_step[k, 0], 2) for k in (0, 3, H - 1)],
                "rollout16_ssim_step1_4_16": [round(per_step[k, 1], 4) for k in (0, 3, H - 1)],
                "static_baseline_psnr": round(base[:, 0].mean(), 2), "static_baseline_ssim": round(base[:, 1].mean(), 4),
                "rollouts": len(starts)})
    print(f"{H}-step rollouts ({len(starts)}): PSNR {res['rollout16_psnr']} dB, SSIM {res['rollout16_ssim']}; "
          f"steps 1/4/{H}: {res['rollout16_psnr_step1_4_16']} dB; static baseline PSNR {res['static_baseline_psnr']} dB, "
          f"SSIM {res['static_baseline_ssim']}", flush=True)

    # ---- drift over minutes of play ---------------------------------------------------------------
    n_frames = int(args.drift_minutes * 60 * args.fps)
    real_tok = ae.encode(frames[np.concatenate([np.arange(a, b) for a, b in eps])]).numpy()
    V = wm.cfg.codes
    real_hist = np.bincount(real_tok.ravel(), minlength=V) / real_tok.size
    real_frames = frames[np.concatenate([np.arange(a, b) for a, b in eps])].astype(np.float32)
    real_bright, real_std = real_frames.mean(), real_frames.reshape(len(real_frames), -1).std(1).mean()
    play = np.concatenate([actions[a + 1:b] for a, b in eps])  # real keys, replayed in order
    R = min(4, len(eps))  # parallel plays from different start frames
    roll = Rollout(wm, R, guidance=g)
    roll.reset(ae.encode(frames[[a for a, _ in eps[:R]]]))
    per_min = max(1, int(60 * args.fps))
    window_tok, window_px, drift = [], [], []
    from models.common.sampling import SamplingParams

    sp, gen = SamplingParams(temperature=args.drift_temperature), torch.Generator().manual_seed(0)
    t_gen = time.time()
    for k in range(n_frames):
        keys = torch.tensor([play[(k + 97 * r) % len(play)] for r in range(R)])
        tok = roll.predict(keys, steps=args.steps, params=sp, gen=gen)
        window_tok.append(tok.numpy())
        if k % 15 == 0:
            window_px.append(decode(tok).astype(np.float32))
        if (k + 1) % per_min == 0 or k + 1 == n_frames:
            wt = np.concatenate(window_tok)
            hist = np.bincount(wt.ravel(), minlength=V) / wt.size
            px = np.concatenate(window_px)
            drift.append({"minute": round((k + 1) / per_min, 2),
                          "brightness": round(float(px.mean()), 1), "colour_spread": round(float(px.reshape(len(px), -1).std(1).mean()), 1),
                          "token_hist_l1": round(float(np.abs(hist - real_hist).sum()), 3)})
            window_tok, window_px = [], []
    res.update({"drift_minutes": args.drift_minutes, "drift_temperature": args.drift_temperature, "drift": drift, "real_brightness": round(float(real_bright), 1),
                "real_colour_spread": round(float(real_std), 1),
                "drift_gen_ms_per_frame": round(1000 * (time.time() - t_gen) / max(n_frames * R, 1), 2)})
    # the same histogram distance between two halves of real play, for scale
    half = len(real_tok) // 2
    h1 = np.bincount(real_tok[:half].ravel(), minlength=V) / real_tok[:half].size
    h2 = np.bincount(real_tok[half:].ravel(), minlength=V) / real_tok[half:].size
    res["real_vs_real_token_hist_l1"] = round(float(np.abs(h1 - h2).sum()), 3)
    for d in drift:
        print(f"drift, minute {d['minute']}: brightness {d['brightness']} (real {res['real_brightness']}), "
              f"colour spread {d['colour_spread']} (real {res['real_colour_spread']}), token histogram L1 "
              f"{d['token_hist_l1']} (real vs real {res['real_vs_real_token_hist_l1']})", flush=True)
    res["bench_s"] = round(time.time() - t_start, 1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
