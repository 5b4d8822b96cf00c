"""Build the Icon training corpus: `python -m models.icon.data`.

Source: npm `@iconify/json` (icon sets with their licences, names, aliases, categories), labels
enriched from `@mdi/svg` meta.json (aliases, tags) and `lucide-static` tags.json (tags by icon
name). The packages are installed with npm into the cache dir (or --npm-dir points at an
existing node_modules). Only monochrome sets under MIT / Apache / ISC / CC0 / CC-BY / OFL are
used. Every icon goes through svg.parse_svg (svgelements), is tokenised, deduplicated, and split
train / val / test by base name (style words dropped) so test names are never seen in training.

Writes to cache_dir("icon"):
  corpus.npz     tokens (int16, flat), offsets (N+1), split (N,) 0/1/2, text_a / text_b (N,)
                 indices into texts (-1 = none), text_emb (T, 384) int8 (scale 1/127), set_id (N,)
  corpus.json    texts, names, sets with licences, counts
  test_src.jsonl the test icons' source SVGs (for the round-trip IoU check)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import time
import zlib
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from models.common.paths import asset, cache_dir

PERMISSIVE = re.compile(r"^(MIT|Apache-2\.0|ISC|CC0-1\.0|CC-BY-[0-9.]+|OFL-1\.1)$")
STYLE_WORDS = {"outline", "outlined", "fill", "filled", "solid", "bold", "duotone", "light", "thin", "regular",
               "rounded", "round", "sharp", "twotone", "line", "linear", "broken", "sm", "md", "lg", "small",
               "large", "alt", "mini", "micro", "o"}
NPM_PACKAGES = ["@iconify/json", "@mdi/svg", "lucide-static"]
MAX_TOKENS = 1000  # icons longer than this are rejected (the model's context is 1024)


def name_words(name: str) -> list[str]:
    return [w for w in re.split(r"[-_:\s]+", name.lower()) if w and not w.isdigit()]


def base_name(name: str) -> str:
    """The split key: the name without style words ("home-outline-rounded" -> "home")."""
    words = [w for w in name_words(name) if w not in STYLE_WORDS]
    return " ".join(words) or " ".join(name_words(name)) or name


def source_svg(body: str, left: float, top: float, w: float, h: float) -> str:
    """An Iconify icon body as a standalone square SVG (non-square viewBoxes centred, as the grid does)."""
    s = max(w, h)
    vb = f"{left - (s - w) / 2:g} {top - (s - h) / 2:g} {s:g} {s:g}"
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{s:g}" height="{s:g}" viewBox="{vb}">{body}</svg>'


def ensure_npm(npm_dir: str | None) -> Path:
    if npm_dir:
        return Path(npm_dir)
    root = cache_dir("icon", "npm")
    nm = root / "node_modules"
    if not (nm / "@iconify/json/collections.json").exists():
        print(f"installing {' '.join(NPM_PACKAGES)} into {root} (npm, ~500 MB) ...", flush=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(root), *NPM_PACKAGES], check=True)
    return nm


def _keep(name: str, per_set: int, n_total: int, salt: str) -> bool:
    """Deterministic subsample of a set down to about `per_set` icons."""
    if n_total <= per_set:
        return True
    h = int(hashlib.md5(f"{salt}:{name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < per_set / n_total


def process_set(job: tuple) -> dict:
    """One icon set -> tokenised icons and rejection counts (runs in a worker process)."""
    from models.icon.svg import IconError, parse_svg
    from models.icon.tokenizer import encode_icon

    path, prefix, per_set = job
    d = json.loads(Path(path).read_text())
    W, H = d.get("width", 16), d.get("height", 16)
    icons = {k: v for k, v in d["icons"].items() if not v.get("hidden")}
    cats: dict[str, str] = {}
    for cat, names in (d.get("categories") or {}).items():
        for n in names:
            cats.setdefault(n, cat)
    aliases: dict[str, list[str]] = {}
    for a, v in (d.get("aliases") or {}).items():
        if v.get("parent") in icons and len(v) == 1:  # plain aliases only (no transforms)
            aliases.setdefault(v["parent"], []).append(a)
    out, rejected = [], Counter()
    for name, ic in icons.items():
        if not _keep(name, per_set, len(icons), prefix):
            continue
        w, h = ic.get("width", W), ic.get("height", H)
        src = source_svg(ic["body"], ic.get("left", 0), ic.get("top", 0), w, h)
        try:
            paths = parse_svg(src)
        except IconError as e:
            rejected[e.reason] += 1
            continue
        except Exception as e:  # a parser crash on one icon is counted, not fatal
            rejected[f"crash:{type(e).__name__}"] += 1
            continue
        toks = encode_icon(paths)
        if len(toks) > MAX_TOKENS:
            rejected["too_long"] += 1
            continue
        out.append({"name": name, "set": prefix, "tokens": toks, "category": cats.get(name, ""),
                    "aliases": aliases.get(name, []), "src": src, "n_paths": len(paths)})
    return {"prefix": prefix, "icons": out, "rejected": rejected}


def label_texts(icon: dict, mdi_meta: dict, lucide_tags: dict) -> tuple[str, str | None]:
    """(short label from the name, richer label with aliases / tags / category or None)."""
    words = " ".join(name_words(icon["name"]))
    extra: list[str] = []
    for a in icon["aliases"][:3]:
        extra.append(" ".join(name_words(a)))
    if icon["set"] == "mdi" and icon["name"] in mdi_meta:
        m = mdi_meta[icon["name"]]
        extra += [" ".join(name_words(a)) for a in m["aliases"][:3]] + [t.lower() for t in m["tags"][:2]]
    extra += lucide_tags.get(base_name(icon["name"]).replace(" ", "-"), [])[:4]
    if icon["category"]:
        extra.append(icon["category"].lower())
    extra = list(dict.fromkeys(e for e in extra if e and e != words))[:3]
    return words, (f"{words}: {', '.join(extra)}" if extra else None)


def split_of(base: str, val: float, test: float) -> int:
    h = zlib.crc32(base.encode()) / 0xFFFFFFFF
    return 2 if h < test else 1 if h < test + val else 0


def ngram_table(tokens: np.ndarray, offsets: np.ndarray, keep: np.ndarray, n: int = 4, min_count: int = 3,
                max_entries: int = 150_000) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent next token after each context of 1..n-1 tokens in the icons `keep` (the training
    split), for the speculative drafter. -> (contexts (m, n-1) int16 padded with -1, next (m,) int16)."""
    seqs = [tokens[offsets[i]:offsets[i + 1]].astype(np.int64) for i in keep]
    flat = np.concatenate(seqs)
    icon_id = np.repeat(np.arange(len(seqs)), [len(s) for s in seqs])
    B = 2048  # > vocabulary size, so a context packs into one int64 key
    ctxs, nxts, cnts = [], [], []
    for order in range(1, n):
        m = len(flat) - order
        key = np.zeros(m, np.int64)
        for j in range(order):
            key = key * B + flat[j:j + m]
        nxt = flat[order:order + m]
        same = icon_id[:m] == icon_id[order:order + m]
        pair, count = np.unique((key[same] * B + nxt[same]), return_counts=True)
        k, t = pair // B, pair % B
        o = np.lexsort((-count, k))  # per context, the most frequent continuation first
        k, t, count = k[o], t[o], count[o]
        first = np.concatenate([[True], k[1:] != k[:-1]])
        k, t, count = k[first], t[first], count[first]
        ok = count >= min_count
        for kk, tt, cc in zip(k[ok], t[ok], count[ok]):
            ctx = []
            for _ in range(order):
                ctx.append(int(kk % B))
                kk //= B
            ctxs.append(ctx[::-1] + [-1] * (n - 1 - order))
            nxts.append(int(tt))
            cnts.append(int(cc))
    top = np.argsort(-np.array(cnts))[:max_entries]
    return np.array(ctxs, np.int16)[top], np.array(nxts, np.int16)[top]


def write_ngrams(corpus: Path, out: Path) -> None:
    z = np.load(corpus)
    ctx, nxt = ngram_table(z["tokens"], z["offsets"], np.nonzero(z["split"] == 0)[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, context=ctx, next=nxt)
    print(f"wrote {out}: {len(nxt)} n-gram contexts ({out.stat().st_size / 2**20:.1f} MB)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm-dir", help="an existing node_modules with the packages (default: npm install into the cache)")
    ap.add_argument("--per-set", type=int, default=1000, help="at most about this many icons from one set")
    ap.add_argument("--max-sets", type=int, default=0, help="use only the first N eligible sets (0 = all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--val", type=float, default=0.02)
    ap.add_argument("--test", type=float, default=0.03)
    ap.add_argument("--out", default=None)
    ap.add_argument("--ngrams-only", action="store_true", help="only rebuild assets/icon/ngrams.npz from the corpus")
    args = ap.parse_args(argv)
    if args.ngrams_only:
        write_ngrams((Path(args.out) if args.out else cache_dir("icon")) / "corpus.npz", asset("icon", "ngrams.npz"))
        return 0
    t0 = time.time()
    nm = ensure_npm(args.npm_dir)
    out_dir = Path(args.out) if args.out else cache_dir("icon")
    out_dir.mkdir(parents=True, exist_ok=True)

    collections = json.loads((nm / "@iconify/json/collections.json").read_text())
    sets, skipped = {}, Counter()
    for prefix, info in sorted(collections.items()):
        spdx = (info.get("license") or {}).get("spdx", "")
        if info.get("palette"):
            skipped["multicolour set"] += info.get("total", 0)
        elif not PERMISSIVE.match(spdx or ""):
            skipped[f"licence {spdx or 'unknown'}"] += info.get("total", 0)
        else:
            sets[prefix] = {"name": info.get("name", prefix), "license": spdx,
                            "author": (info.get("author") or {}).get("name", ""), "total": info.get("total", 0)}
    if args.max_sets:
        sets = dict(list(sets.items())[: args.max_sets])
    print(f"{len(sets)} eligible sets ({sum(s['total'] for s in sets.values())} icons); skipped icons by set: "
          f"{dict(skipped.most_common())}", flush=True)

    mdi_meta = {m["name"]: m for m in json.loads((nm / "@mdi/svg/meta.json").read_text())}
    lucide_tags = json.loads((nm / "lucide-static/tags.json").read_text())

    done_dir = cache_dir("icon", f"sets-{args.per_set}")  # parsed sets, so an interrupted build resumes
    jobs = [(str(nm / "@iconify/json/json" / f"{p}.json"), p, args.per_set) for p in sets
            if not (done_dir / f"{p}.json").exists()]
    icons, rejected = [], Counter()
    for p in sets:
        if (done_dir / f"{p}.json").exists():
            res = json.loads((done_dir / f"{p}.json").read_text())
            icons += res["icons"]
            rejected.update(res["rejected"])
    if len(jobs) < len(sets):
        print(f"{len(sets) - len(jobs)} sets already parsed in {done_dir}", flush=True)
    with Pool(args.workers) as pool:
        for i, res in enumerate(pool.imap_unordered(process_set, jobs)):
            (done_dir / f"{res['prefix']}.json").write_text(json.dumps(res))
            icons += res["icons"]
            rejected.update(res["rejected"])
            print(f"[{i + 1}/{len(jobs)}] {res['prefix']}: kept {len(res['icons'])}, rejected "
                  f"{sum(res['rejected'].values())}  ({time.time() - t0:.0f} s)", flush=True)
    icons.sort(key=lambda r: (r["set"], r["name"]))

    seen, unique = set(), []
    for r in icons:  # exact duplicates (the same drawing in several sets) are kept once
        key = hashlib.sha1(np.asarray(r["tokens"], np.int16).tobytes()).digest()
        if key in seen:
            rejected["duplicate"] += 1
            continue
        seen.add(key)
        unique.append(r)
    icons = unique

    texts: dict[str, int] = {}
    text_a, text_b, split = [], [], []
    for r in icons:
        a, b = label_texts(r, mdi_meta, lucide_tags)
        text_a.append(texts.setdefault(a, len(texts)))
        text_b.append(texts.setdefault(b, len(texts)) if b else -1)
        split.append(split_of(base_name(r["name"]), args.val, args.test))
    text_list = list(texts)
    print(f"encoding {len(text_list)} label texts with MiniLM ...", flush=True)
    from models.common.text import shared_encoder

    enc = shared_encoder()
    order = sorted(range(len(text_list)), key=lambda i: len(text_list[i]))  # similar lengths batch with little padding
    emb = np.zeros((len(text_list), 384), np.float32)
    for k in range(0, len(order), 1024):
        part = order[k:k + 1024]
        emb[part] = enc.encode([text_list[i] for i in part])
        print(f"  encoded {min(k + 1024, len(order))}/{len(order)} ({time.time() - t0:.0f} s)", flush=True)
    lengths = np.array([len(r["tokens"]) for r in icons])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    set_ids = {p: i for i, p in enumerate(sets)}
    np.savez_compressed(
        out_dir / "corpus.npz",
        tokens=np.concatenate([np.asarray(r["tokens"], np.int16) for r in icons]),
        offsets=offsets, split=np.array(split, np.uint8), text_a=np.array(text_a, np.int32),
        text_b=np.array(text_b, np.int32), text_emb=np.clip(np.rint(emb * 127), -127, 127).astype(np.int8),
        set_id=np.array([set_ids[r["set"]] for r in icons], np.int16),
        n_paths=np.array([r["n_paths"] for r in icons], np.int16))
    split_arr = np.array(split)
    (out_dir / "corpus.json").write_text(json.dumps({
        "texts": text_list, "names": [f"{r['set']}:{r['name']}" for r in icons], "sets": sets,
        "counts": {"icons": len(icons), "train": int((split_arr == 0).sum()), "val": int((split_arr == 1).sum()),
                   "test": int((split_arr == 2).sum())}, "rejected": dict(rejected)}))
    with open(out_dir / "test_src.jsonl", "w") as f:
        for r, s in zip(icons, split):
            if s == 2:
                f.write(json.dumps({"name": f"{r['set']}:{r['name']}", "license": sets[r["set"]]["license"],
                                    "label": " ".join(name_words(r["name"])),
                                    "src": r["src"]}) + "\n")

    n_paths = np.array([r["n_paths"] for r in icons])
    print(f"\nicons kept: {len(icons)}  train {(split_arr == 0).sum()}  val {(split_arr == 1).sum()}  "
          f"test {(split_arr == 2).sum()}  label texts {len(text_list)}")
    print("rejected by reason:", dict(rejected.most_common()))
    print("tokens per icon percentiles (p5 p25 p50 p75 p95 p99 max):",
          [int(np.percentile(lengths, q)) for q in (5, 25, 50, 75, 95, 99)] + [int(lengths.max())])
    print(f"paths per icon: single-path {np.mean(n_paths == 1):.0%}, median {np.median(n_paths):.0f}, "
          f"p95 {np.percentile(n_paths, 95):.0f};  total tokens {int(lengths.sum())}")
    write_ngrams(out_dir / "corpus.npz", asset("icon", "ngrams.npz"))
    print(f"wrote {out_dir}/corpus.npz ({(out_dir / 'corpus.npz').stat().st_size / 2**20:.1f} MB) "
          f"in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
