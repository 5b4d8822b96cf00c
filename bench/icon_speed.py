"""Icon speed on this machine (CPU): time to the first finished path, time to a whole icon (p50, p90),
tokens/s, and the speed-up of grammar-aware n-gram speculative decoding: for sampled requests
(speculative sampling: same distribution, different draws, so compared per token) and for greedy
requests (whose output must be identical to plain greedy decoding). The headline latency figures
are the default path (plain sampling).

    PYTHONPATH=. python bench/icon_speed.py [--prompts 16] [--threads 2]

Runs the engine's IconSession in-process (no engine round trip) with the shipped weights.
Prints the figures and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

PROMPTS = ["star", "home", "heart", "rocket", "bell", "camera", "cloud", "lock", "user", "search", "settings gear",
           "trash can", "calendar", "music note", "shopping cart", "arrow left", "battery", "flag", "book", "key"]


def run_once(session_cls, bundle, params):
    s = session_cls(bundle, "cpu")
    t0 = time.perf_counter()
    s.start(params)
    first = stroke = None
    rows = None
    while not s.done:
        for kind, d in s.step():
            if kind == "partial" and stroke is None and len(d.get("pts", ())) >= 2:
                stroke = time.perf_counter() - t0  # the path in progress first drawn (two points)
            if kind == "partial" and d["final"] and first is None:
                first = time.perf_counter() - t0
            if kind == "output":
                rows = d
    total = time.perf_counter() - t0
    s.first_stroke_s = stroke if stroke is not None else total
    return s, first if first is not None else total, total, rows


def pct(xs, q):
    return round(float(np.percentile(xs, q)) * 1000, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=1, help="candidates per request for the latency figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from models.icon.stream import IconSession, load_bundle

    bundle = load_bundle("cpu")
    prompts = PROMPTS[: args.prompts]
    run_once(IconSession, bundle, {"prompt": "warm up", "n": 1, "max_tokens": 32})

    def sampled(speculative: bool) -> dict:
        firsts, totals, tok_s, lengths, fw, strokes = [], [], [], [], 0, []
        for i, p in enumerate(prompts):
            s, first, total, _ = run_once(IconSession, bundle, {"prompt": p, "n": args.n, "temperature": 0.8,
                                                                "top_p": 0.95, "guidance": 2.0, "seed": i,
                                                                "speculative": speculative})
            firsts.append(first)
            totals.append(total)
            strokes.append(s.first_stroke_s)
            tok_s.append(s.n_tokens * s.n / total)
            lengths.append(s.n_tokens)
            fw += s.spec_stats.get("forwards", s.n_tokens)
        return {"first": firsts, "total": totals, "tok_s": tok_s, "lengths": lengths, "stroke": strokes,
                "per_forward": sum(lengths) / max(fw, 1), "ms_per_token": 1000 * sum(totals) / max(sum(lengths), 1)}

    plain = sampled(False)
    spec = sampled(True) if args.n == 1 else plain  # drafting is for single-candidate requests
    for name, r in (("plain", plain), ("speculative", spec)) if args.n == 1 else (("plain", plain),):
        print(f"sampled (n={args.n}, guidance 2, T=0.8, top-p 0.95), {name}, {len(prompts)} prompts, {args.threads} threads:")
        print(f"  first stroke drawn    p50 {pct(r['stroke'], 50)} ms  p90 {pct(r['stroke'], 90)} ms  (path in progress)")
        print(f"  first path on screen  p50 {pct(r['first'], 50)} ms  p90 {pct(r['first'], 90)} ms  (finished)")
        print(f"  whole icon            p50 {pct(r['total'], 50)} ms  p90 {pct(r['total'], 90)} ms  "
              f"(median {np.median(r['lengths']):.0f} tokens)")
        print(f"  tokens/s              {np.mean(r['tok_s']):.0f}  ({r['ms_per_token']:.1f} ms per token, "
              f"{r['per_forward']:.2f} tokens per forward)")
    sampled_speedup = plain["ms_per_token"] / spec["ms_per_token"]
    firsts, totals, tok_s = plain["first"], plain["total"], plain["tok_s"]  # the default for sampled requests

    t_plain, t_spec, same, acc, fw, toks = [], [], 0, 0, 0, 0
    for p in prompts:
        base = {"prompt": p, "n": 1, "temperature": 0.0, "guidance": 2.0}
        s1, _, tp, _ = run_once(IconSession, bundle, {**base, "speculative": False})
        s2, _, ts, _ = run_once(IconSession, bundle, {**base, "speculative": True})
        t_plain.append(tp)
        t_spec.append(ts)
        same += s1.rows == s2.rows
        acc += s2.spec_stats.get("accepted", 0)
        fw += s2.spec_stats.get("forwards", 0)
        toks += s2.spec_stats.get("tokens", 0)
    speedup = float(np.sum(t_plain) / np.sum(t_spec))
    print(f"greedy (guidance 2): plain {np.mean(t_plain) * 1000:.0f} ms/icon, speculative {np.mean(t_spec) * 1000:.0f} "
          f"ms/icon -> speed-up {speedup:.2f}x; identical outputs {same}/{len(prompts)}; "
          f"{toks / max(fw, 1):.2f} tokens per forward, {acc} drafts accepted")
    print(json.dumps({"bench": "icon_speed", "device": "cpu", "threads": args.threads, "n": args.n,
                      "first_path_ms_p50": pct(firsts, 50), "first_path_ms_p90": pct(firsts, 90),
                      "icon_ms_p50": pct(totals, 50), "icon_ms_p90": pct(totals, 90),
                      "tokens_per_s": round(float(np.mean(tok_s)), 1), "speculative_speedup": round(speedup, 3),
                      "first_stroke_ms_p50": pct(plain["stroke"], 50), "first_stroke_ms_p90": pct(plain["stroke"], 90),
                      "sampled_plain_icon_ms_p50": pct(plain["total"], 50), "sampled_plain_first_path_ms_p50": pct(plain["first"], 50),
                      "sampled_speculative_speedup_per_token": round(sampled_speedup, 3),
                      "sampled_tokens_per_forward": round(spec["per_forward"], 3),
                      "speculative_identical": f"{same}/{len(prompts)}",
                      "tokens_per_forward": round(toks / max(fw, 1), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
