"""Character alignment inside each word: which teacher frames belong to which letter.

    python -m models.speech.align [--weights assets/speech/acoustic.safetensors] [--iters 4]

The teacher (piper) gives word boundaries; inside a word the decoder used to be told a *linear*
position through its letters, so "thought" spread its sound evenly over seven letters. This
script finds a monotonic alignment of each word's frames to its characters, Glow-TTS style
(monotonic alignment search), with the acoustic model's own contextual character states as the
emission model:

1. start from the linear alignment;
2. fit a ridge regression from the encoder state of a frame's character to the frame's
   normalised WORLD features (envelope, log-F0, voicing);
3. re-align every word by dynamic programming: each frame goes to one character, characters in
   order, a character may get no frame (silent letters: the "e" of "make") at a small cost, with a
   mild pull towards the diagonal; the word's trailing pause stays on its last character;
4. repeat 2-3 a few times.

Writes align_<split>.npz (frames per character, aligned with the data's `ids`) to the speech cache
dir. Own code: the DP is ~30 lines and needs no library (numba is not installed here).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.common.paths import cache_dir
from models.speech import frontend

SKIP_COST = 0.5  # per character that gets no frame (in units of the per-frame feature distance)
DIAG_PULL = 2.0  # weight of the squared distance from the diagonal (time fraction vs char fraction)


def align_word(cost: np.ndarray, skip: float = SKIP_COST, pull: float = DIAG_PULL) -> np.ndarray:
    """Monotonic alignment of m frames to n characters. cost: (n, m) emission costs.
    Returns frames per character (n,), summing to m; characters may get 0 frames."""
    n, m = cost.shape
    if n == 1:
        return np.array([m])
    ci = (np.arange(n) + 0.5) / n
    fj = (np.arange(m) + 0.5) / m
    c = cost + pull * (ci[:, None] - fj[None, :]) ** 2
    D = np.full((n, m), np.inf)
    src = np.zeros((n, m), np.int64)
    D[:, 0] = c[:, 0] + skip * np.arange(n)  # the first frame may start after skipped characters
    for j in range(1, m):
        prev = D[:, j - 1]
        best, arg = np.inf, -1  # min over i' < i of D[i', j-1] + skip * (i - i' - 1)
        for i in range(n):
            stay = prev[i]
            if best <= stay:
                D[i, j], src[i, j] = c[i, j] + best, arg
            else:
                D[i, j], src[i, j] = c[i, j] + stay, i
            # move the running minimum one character on (skipping i costs `skip`)
            if prev[i] < best + skip:
                best, arg = prev[i], i
            else:
                best += skip
    end = D[:, -1] + skip * (n - 1 - np.arange(n))  # trailing characters may be skipped
    i = int(np.argmin(end))
    counts = np.zeros(n, np.int64)
    for j in range(m - 1, -1, -1):
        counts[i] += 1
        i = src[i, j] if j > 0 else i
    return counts


def linear_counts(n: int, m: int) -> np.ndarray:
    """Frames per character when a word's m frames are spread evenly over its n characters."""
    edges = np.round(np.linspace(0, m, n + 1)).astype(np.int64)
    return np.diff(edges)


def features(frames: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """WORLD frames -> what the aligner compares: normalised envelope + log-F0 (voiced) + voicing."""
    frames = frames[:, :len(mean)]  # a model for 10 ms frames aligning data with mid-frames: frames only
    f = (frames.astype(np.float32) - mean) / std
    vuv = frames[:, 1:2].astype(np.float32)
    return np.concatenate([f[:, 2:42], f[:, :1] * vuv, 2.0 * vuv], 1)


def word_segments(z: dict, u: int):
    """(char start, char end, frame start, speech frames, all frames) per word of utterance u."""
    wo = slice(z["word_off"][u], z["word_off"][u + 1])
    wf, pf, spans = z["word_frames"][wo].astype(int), z["pause_frames"][wo].astype(int), z["spans"][wo].astype(int)
    t = 0
    for (a, b), n, p in zip(spans, wf, pf):
        yield a, b, t, max(1, n - min(p, n)), n
        t += n


def char_counts(z: dict, u: int, states: np.ndarray | None, feats: np.ndarray, W: np.ndarray | None) -> np.ndarray:
    """Frames per character of utterance u (speech frames aligned, each word's pause on its last char)."""
    L = int(z["id_off"][u + 1] - z["id_off"][u])
    out = np.zeros(L, np.int64)
    for a, b, t, ns, n in word_segments(z, u):
        if W is None:
            cnt = linear_counts(b - a, ns)
        else:
            pred = np.concatenate([states[a:b], np.ones((b - a, 1), np.float32)], 1) @ W  # (n_chars, D)
            obs = feats[t:t + ns]
            cost = ((pred[:, None, :] - obs[None]) ** 2).mean(-1)
            cnt = align_word(cost)
        cnt[-1] += n - ns
        out[a:b] = cnt
    return out


def fit(z: dict, states: list[np.ndarray], feats: list[np.ndarray], counts: list[np.ndarray], ridge: float = 1.0,
        max_rows: int = 400_000, seed: int = 0) -> np.ndarray:
    """Ridge regression char state (+1) -> frame features over the speech frames of the alignment."""
    X, Y = [], []
    for u, (s, f, c) in enumerate(zip(states, feats, counts)):
        for a, b, t, ns, n in word_segments(z, u):
            cc = c[a:b].copy()
            cc[-1] -= n - ns  # the pause frames are not speech
            idx = np.repeat(np.arange(a, b), np.maximum(cc, 0))[:ns]
            X.append(s[idx])
            Y.append(f[t:t + len(idx)])
    X, Y = np.concatenate(X), np.concatenate(Y)
    if len(X) > max_rows:
        keep = np.random.default_rng(seed).choice(len(X), max_rows, replace=False)
        X, Y = X[keep], Y[keep]
    X = np.concatenate([X, np.ones((len(X), 1), np.float32)], 1).astype(np.float64)
    A = X.T @ X + ridge * np.eye(X.shape[1])
    return np.linalg.solve(A, X.T @ Y.astype(np.float64)).astype(np.float32)


def context_onehot(z: dict, n_symbols: int) -> list[np.ndarray]:
    """Per symbol: one-hot of (previous, this, next) symbol — the emission model for phoneme input,
    where no trained encoder exists yet (a phoneme says most of what its frames sound like)."""
    out = []
    for u in range(len(z["texts"])):
        ids = z["ids"][z["id_off"][u]:z["id_off"][u + 1]].astype(np.int64)
        L = len(ids)
        x = np.zeros((L, 3 * n_symbols), np.float32)
        x[np.arange(L), ids] = 1
        x[np.arange(1, L), n_symbols + ids[:-1]] = 0.5
        x[np.arange(L - 1), 2 * n_symbols + ids[1:]] = 0.5
        out.append(x)
    return out


@torch.no_grad()
def encoder_states(model, z: dict) -> list[np.ndarray]:
    out = []
    for u in range(len(z["texts"])):
        ids = torch.from_numpy(z["ids"][z["id_off"][u]:z["id_off"][u + 1]].astype(np.int64))[None]
        out.append(model.encode(ids, torch.tensor([ids.shape[1]]))[0].numpy())
    return out


def main(argv=None) -> int:
    from models.speech.data import load  # noqa: PLC0415
    from models.speech.stream import WEIGHTS, SpeechBundle  # noqa: PLC0415

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=WEIGHTS, help="acoustic model whose encoder states are the emissions")
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--onehot", action="store_true",
                   help="emissions from one-hot symbol context instead of the model's states (phoneme data)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = SpeechBundle.from_file(args.weights).model.eval()
    mean, std = model.feat_mean.numpy(), model.feat_std.numpy()
    root = Path(args.data or cache_dir("speech"))
    for split in ("train", "test"):
        z = load(split, args.data)
        n_utt = len(z["texts"])
        states = context_onehot(z, frontend.N_SYMBOLS) if args.onehot else encoder_states(model, z)
        feats = [features(z["frames"][z["frame_off"][u]:z["frame_off"][u + 1]], mean, std) for u in range(n_utt)]
        counts = [char_counts(z, u, None, feats[u], None) for u in range(n_utt)]
        W = None if split == "train" else W_train
        for it in range(args.iters):
            if split == "train":
                W = fit(z, states, feats, counts)
            new = [char_counts(z, u, states[u], feats[u], W) for u in range(n_utt)]
            moved = np.mean([np.abs(np.cumsum(a) - np.cumsum(b)).mean() for a, b in zip(new, counts)])
            zero = np.mean(np.concatenate(new) == 0)
            counts = new
            print(f"{split} iteration {it + 1}: mean boundary move {moved:.2f} frames, chars without frames {zero:.1%}, "
                  f"{time.time() - t0:.0f} s", flush=True)
            if split == "test":
                break  # held-out sentences use the regression fitted on the training split
        if split == "train":
            W_train = W
        np.savez(root / f"align_{split}.npz", char_frames=np.concatenate(counts).astype(np.int16),
                 id_off=z["id_off"], W=W_train)
        print(f"wrote {root / f'align_{split}.npz'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
