"""Decode speed: Weft's streaming decode loop against Hugging Face `transformers` generate()
(use_cache=True, greedy) on the same GPT-2-style shapes with random weights, batch 1, CPU.

    python bench/decode.py [--repeats 5] [--new 256] [--vocab 50257] [--quick]

Prints a table and one JSON line. Both loops run in this process, alternating, medians of the
repeats. `floor` is the same model's matrix multiplies alone, token after token (every fp32
weight streamed once per token, nothing else): no batch-1 fp32 loop can beat it, so
floor / hf is the highest ratio any loop could reach at that size. --quick (3 repeats of 64
tokens) finishes in well under a minute.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from models.common.generate import generate  # noqa: E402
from models.common.sampling import SamplingParams  # noqa: E402
from models.common.transformer import Transformer, TransformerConfig  # noqa: E402

CTX, PROMPT = 1024, 16
SIZES = {"6L-d256": (6, 256, 8), "12L-d512": (12, 512, 8)}  # n_layer, d_model, n_head


def weft_model(n_layer, d, n_head, vocab):
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=vocab, n_layer=n_layer, n_head=n_head, d_model=d, max_seq_len=CTX)).eval()


def ours(m):
    def run(prompt, new):
        return sum(1 for _ in generate(m, prompt, new, SamplingParams(temperature=0.0)))
    return run


def floor(m):
    """Every Linear of `m` applied to a fixed row, once per token: the weight traffic alone."""
    weights = [mod.weight for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    rows = {w.shape[1]: torch.randn(1, 1, w.shape[1]) for w in weights}

    def run(prompt, new):
        with torch.inference_mode():
            for _ in range(new):
                for w in weights:
                    F.linear(rows[w.shape[1]], w)
        return new
    return run


def hf(n_layer, d, n_head, vocab):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=CTX, n_embd=d, n_layer=n_layer, n_head=n_head)
    m = GPT2LMHeadModel(cfg).eval()

    def run(prompt, new):
        with torch.inference_mode():
            out = m.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True,
                             pad_token_id=0, attention_mask=torch.ones_like(prompt))
        return out.shape[1] - prompt.shape[1]
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=50257,
                    help="GPT-2's; 512 shows the loop where the output projection no longer dominates")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is often fastest for batch-1 decode)")
    ap.add_argument("--quick", action="store_true", help="3 repeats of 64 new tokens (for bench/all.py)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.new = 3, 64
    torch.set_num_threads(args.threads)
    import transformers

    torch.manual_seed(0)
    prompt = torch.randint(0, args.vocab, (1, PROMPT))
    results = {}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}, vocab {args.vocab}, "
          f"batch 1, prompt {PROMPT}, {args.new} new tokens, greedy, median of {args.repeats}")
    for name, (n_layer, d, n_head) in SIZES.items():
        m = weft_model(n_layer, d, n_head, args.vocab)
        runners = {"weft": ours(m), "hf": hf(n_layer, d, n_head, args.vocab), "floor": floor(m)}
        for r in runners.values():
            r(prompt, 8)  # warm-up
        times = {k: [] for k in runners}
        for _ in range(args.repeats):
            for k, r in runners.items():
                t0 = time.perf_counter()
                n = r(prompt, args.new)
                times[k].append(n / (time.perf_counter() - t0))
        w, h, f = (statistics.median(times[k]) for k in ("weft", "hf", "floor"))
        results[name] = {"weft_tok_s": round(w, 1), "hf_tok_s": round(h, 1), "ratio": round(w / h, 2),
                         "floor_tok_s": round(f, 1), "ceiling_ratio": round(f / h, 2)}
        print(f"{name:>9}: weft {w:7.1f} tok/s   hf generate {h:7.1f} tok/s   ratio {w / h:4.2f}x   "
              f"(matmul floor {f:7.1f} tok/s: at most {f / h:4.2f}x)")
    print(json.dumps({"bench": "decode", "device": "cpu", "vocab": args.vocab, "new_tokens": args.new,
                      "repeats": args.repeats, **results}))


if __name__ == "__main__":
    main()
