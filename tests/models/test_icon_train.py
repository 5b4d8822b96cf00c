"""Icon training: fill-in-the-middle samples are built right, and a few steps of the real training
script run, export loadable fp16 weights and resume from their checkpoint. Tiny synthetic corpus."""
from __future__ import annotations

import json

import numpy as np

from models.icon.stream import IconSession, load_bundle
from models.icon.svg import parse_svg
from models.icon.tokenizer import EOS, FIM_MID, FIM_PRE, FIM_SUF, PATH, TXT, encode_icon
from models.icon.train import Corpus, main

SVGS = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect x="{0}" y="2" width="5" height="5"/>'
        '<circle cx="18" cy="{1}" r="3"/><path d="M2 20h{2}v2h-{2}z"/></svg>'.format(a, b, c)
        for a, b, c in [(1, 17, 4), (2, 16, 6), (3, 18, 8), (1, 15, 5), (2, 19, 7), (3, 16, 3)]]


def write_corpus(path):
    icons = [encode_icon(parse_svg(s)) for s in SVGS]
    off = np.concatenate([[0], np.cumsum([len(t) for t in icons])])
    emb = np.eye(len(icons), 384, dtype=np.float32)
    np.savez_compressed(path, tokens=np.concatenate(icons).astype(np.int16), offsets=off,
                        split=np.array([0, 0, 0, 0, 1, 2], np.uint8), text_a=np.arange(len(icons), dtype=np.int32),
                        text_b=np.full(len(icons), -1, np.int32), text_emb=(emb * 127).astype(np.int8))
    return icons


def test_fim_samples_put_one_path_in_the_middle(tmp_path):
    icons = write_corpus(tmp_path / "corpus.npz")
    c = Corpus(tmp_path / "corpus.npz", 0, 1024)
    rng = np.random.default_rng(0)
    for _ in range(20):
        seq, first, text = c.sample(0, rng, fim=True, drop_text=0.0)
        assert seq[0] == TXT and seq[1] == FIM_PRE and seq[first] == FIM_MID and seq[-1] == EOS
        mid = seq[first + 1:-1]
        assert mid[0] == PATH and PATH not in mid[1:]
        body = icons[0][1:-1]
        pre, suf = seq[2:seq.index(FIM_SUF)], seq[seq.index(FIM_SUF) + 1:first]
        assert pre + mid == body[:len(pre) + len(mid)]  # the paths before, then the hole
        assert suf == [] or pre + mid + suf == body  # after: the rest of the icon, or nothing (suggest)
        assert abs(np.linalg.norm(text) - 1) < 0.01
    seq, first, _ = c.sample(0, rng, fim=False)
    assert seq == [TXT] + icons[0] and first == 1


def test_train_exports_loadable_weights_and_resumes(tmp_path):
    write_corpus(tmp_path / "corpus.npz")
    out = tmp_path / "icon.safetensors"
    args = ["--data", str(tmp_path / "corpus.npz"), "--run-dir", str(tmp_path / "run"), "--out", str(out),
            "--d-model", "32", "--n-layer", "1", "--n-head", "2", "--tokens-per-batch", "2048", "--eval-every", "3",
            "--warmup", "2", "--threads", "1"]
    assert main(args + ["--max-steps", "3"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())["meta"]
    assert meta["step"] == 3 and meta["tokens_seen"] > 0
    assert main(args + ["--max-steps", "6"]) == 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resuming from" in log and "step 6 val loss" in log
    bundle = load_bundle("cpu", weights=out, with_text=False)
    s = IconSession(bundle, "cpu")
    s.start({"prompt": "x", "n": 1, "max_tokens": 20})
    while not s.done:
        s.step()
    assert s.n_tokens > 0
