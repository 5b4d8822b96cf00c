"""Decode speed: Weft's streaming decode loop against Hugging Face `transformers` generate()
(use_cache=True, greedy) on the same GPT-2-style shapes with random weights, batch 1, CPU.

    python bench/decode.py [--repeats 5] [--new 256]

Prints a table and one JSON line. Both run in this process, alternating, medians of the repeats.
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

from models.common.generate import generate  # noqa: E402
from models.common.sampling import SamplingParams  # noqa: E402
from models.common.transformer import Transformer, TransformerConfig  # noqa: E402

CTX, PROMPT = 1024, 16
VOCAB = 50257  # GPT-2's; --vocab 512 shows the loop where the output projection no longer dominates


def ours(n_layer, d, n_head):
    torch.manual_seed(0)
    m = Transformer(TransformerConfig(vocab_size=VOCAB, n_layer=n_layer, n_head=n_head, d_model=d, max_seq_len=CTX)).eval()

    def run(prompt, new):
        toks = list(generate(m, prompt, new, SamplingParams(temperature=0.0)))
        return len(toks)
    return run


def hf(n_layer, d, n_head):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=CTX, n_embd=d, n_layer=n_layer, n_head=n_head)
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
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is often fastest for batch-1 decode)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global VOCAB
    VOCAB = args.vocab
    import transformers

    prompt = torch.randint(0, VOCAB, (1, PROMPT))
    results = {}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}, vocab {VOCAB}, "
          f"batch 1, prompt {PROMPT}, {args.new} new tokens, greedy, median of {args.repeats}")
    for name, (n_layer, d, n_head) in {"6L-d256": (6, 256, 8), "12L-d512": (12, 512, 8)}.items():
        runners = {"weft": ours(n_layer, d, n_head), "hf": hf(n_layer, d, n_head)}
        for r in runners.values():
            r(prompt, 8)  # warm-up
        times = {k: [] for k in runners}
        for _ in range(args.repeats):
            for k, r in runners.items():
                t0 = time.perf_counter()
                n = r(prompt, args.new)
                times[k].append(n / (time.perf_counter() - t0))
        w, h = statistics.median(times["weft"]), statistics.median(times["hf"])
        results[name] = {"weft_tok_s": round(w, 1), "hf_tok_s": round(h, 1), "ratio": round(w / h, 2)}
        print(f"{name:>9}: weft {w:7.1f} tok/s   hf generate {h:7.1f} tok/s   ratio {w / h:4.2f}x")
    print(json.dumps({"bench": "decode", "device": "cpu", "vocab": VOCAB, "new_tokens": args.new, **results}))


if __name__ == "__main__":
    main()
