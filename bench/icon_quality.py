"""Icon quality from the shipped files alone (model, library, evaluator), on a split of the library:
dev (the corpus' validation names: tune and choose here) or test (its test names: report only).
The model never trained on either split's names; the library holds them (as a user's library holds
"rocket"), but each prompt's own icon is hidden from retrieval.

For each prompt (a label of the split), n samples with retrieval on (exemplars from the library),
the same with retrieval off, and two baselines: the top library hit itself (plain search) and the
real held-out icon (the ceiling).
  validity    the sample decodes and renders something
  uniqueness  share of samples with no near-duplicate (32 px IoU >= 0.9) among the prompt's others
  text top-5  the evaluator (a CNN trained contrastively on the training split's names only) ranks
              the sample's own prompt in its top 5 among all the bench's prompts
  novelty     share of samples whose 32 px IoU with *every* library icon is < 0.9 (a copy scores 0)
  exemplar IoU  mean over samples of the highest IoU with the sample's own exemplars
Also writes a contact sheet of everyday prompts (--sheet, not the split's labels) to docs/.

    python bench/icon_quality.py [--split dev|test] [--prompts 60] [--quick] [--sheet docs/icon_contact_sheet.png]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EVERYDAY = ["a rocket", "coffee cup", "umbrella", "a cat", "a dog", "sun", "rain cloud", "snowflake", "lightning bolt",
            "hammer", "scissors", "bicycle", "car", "airplane", "house", "tree", "flower", "apple", "fish",
            "music note", "telephone", "envelope", "padlock", "trash can"]
SPLITS = {"dev": 1, "test": 2}


def raster(paths, size: int) -> np.ndarray:
    from models.icon.svg import IconPath, render_paths

    if not paths:
        return np.zeros((size, size), np.float32)
    return render_paths([IconPath.from_wire(p) for p in paths], size)


def token_raster(tokens, size: int) -> np.ndarray:
    from models.icon.svg import render_paths
    from models.icon.tokenizer import decode

    return render_paths(decode(tokens), size)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, P) and (m, P) boolean -> (n, m) IoU."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _render_ids(args):
    ids, size = args
    from models.icon.library import IconLibrary

    lib = IconLibrary()
    return np.stack([token_raster(lib.icon(int(i)).tokens, size) > 0.5 for i in ids])


def library_rasters(lib, size: int = 32) -> np.ndarray:
    """(N, size*size) bool rasters of the whole library, cached (about 2 minutes the first time)."""
    from multiprocessing import Pool

    from models.common.paths import cache_dir

    path = cache_dir("icon") / f"library_rasters{size}_{len(lib)}.npy"
    if path.exists():
        return np.unpackbits(np.load(path), axis=1)[:, :size * size].astype(bool)
    print(f"rasterising the {len(lib)} library icons for the novelty check (cached at {path}) ...", flush=True)
    chunks = np.array_split(np.arange(len(lib)), 64)
    with Pool(2) as pool:
        r = np.concatenate(pool.map(_render_ids, [(c, size) for c in chunks])).reshape(len(lib), -1)
    np.save(path, np.packbits(r, axis=1))
    return r


def run_prompt(bundle, prompt: str, n: int, seed: int, exemplars, exclude: list[int], args) -> dict:
    from models.icon.stream import IconSession

    s = IconSession(bundle, "cpu")
    s.start({"prompt": prompt, "n": n, "temperature": args.temperature, "top_p": args.top_p,
             "guidance": args.guidance, "seed": seed, "exemplars": exemplars, "k_exemplars": args.k,
             "exclude_library": exclude})
    out = None
    while not s.done:
        for kind, d in s.step():
            if kind == "output":
                out = d
    return out


def contact_sheet(bundle, path: Path, args) -> None:
    """Everyday prompts: the exemplars the library gave (grey) and the 4 new icons (black)."""
    from PIL import Image, ImageDraw

    cell, label_w = 96, 150
    rows = []
    for k, prompt in enumerate(EVERYDAY):
        out = run_prompt(bundle, prompt, 4, 1000 + k, "auto", [], args)
        shown = out.get("exemplars") or [{"id": i} for i, _ in bundle.library.search(
            bundle.encoder.encode([prompt])[0], 2)]  # no exemplars used: what plain search finds, for comparison
        ex = [token_raster(_svg_tokens(e), cell) for e in shown]
        rows.append((prompt, ex[:2], [raster(c["paths"], cell) for c in out["candidates"]],
                     [max(c.get("exemplar_iou") or [0]) for c in out["candidates"]]))
    img = Image.new("RGB", (label_w + cell * 6 + 16, cell * len(rows) + 24), "white")
    d = ImageDraw.Draw(img)
    d.text((label_w, 4), "library (exemplars, or plain search)", fill=(120, 120, 120))
    d.text((label_w + 2 * cell + 16, 4), "new icons (max IoU with an exemplar)", fill=(0, 0, 0))
    for r, (prompt, ex, cands, ious) in enumerate(rows):
        y = 24 + r * cell
        d.text((8, y + cell // 2 - 6), prompt, fill=(30, 30, 30))
        for c, im in enumerate(ex):
            tile = Image.fromarray((255 - np.clip(im, 0, 1) * 110).astype(np.uint8))
            img.paste(tile.resize((cell - 10, cell - 10)), (label_w + c * cell + 5, y + 5))
        for c, (im, v) in enumerate(zip(cands, ious)):
            x = label_w + (2 + c) * cell + 16
            tile = Image.fromarray((255 - np.clip(im, 0, 1) * 235).astype(np.uint8))
            img.paste(tile.resize((cell - 10, cell - 10)), (x + 5, y + 5))
            d.text((x + 6, y + cell - 16), f"{v:.2f}", fill=(200, 60, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    print(f"contact sheet: {path}")


def _svg_tokens(e: dict):
    from models.icon.library import IconLibrary

    global _LIB
    try:
        _LIB
    except NameError:
        _LIB = IconLibrary()
    return _LIB.icon(int(e["id"])).tokens


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=list(SPLITS), default="dev")
    ap.add_argument("--prompts", type=int, default=60)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--k", type=int, default=2, help="exemplars per prompt")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="24 prompts x 2 samples, no contact sheet")
    ap.add_argument("--sheet", default=None, help="also write a contact sheet of everyday prompts here")
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.samples = 24, 2
    torch.set_num_threads(args.threads)
    from models.icon.stream import load_bundle

    t0 = time.time()
    bundle = load_bundle("cpu")
    lib, ev = bundle.library, bundle.evaluator
    if lib is None or ev is None:
        raise SystemExit("the shipped icon library or evaluator is missing (assets/icon/library, evaluator.safetensors)")
    size = ev.size
    # one held-out icon per label of the split, labels drawn at random (seed 0)
    members = np.nonzero(lib.split == SPLITS[args.split])[0]
    first_of_label: dict[int, int] = {}
    for i in np.random.default_rng(0).permutation(members):
        first_of_label.setdefault(int(lib.label[i]), int(i))
    picks = list(first_of_label.values())[:args.prompts]
    prompts = [lib.labels[int(lib.label[i])] for i in picks]
    print(f"{args.split} split: {len(prompts)} prompts x {args.samples} samples (e.g. {', '.join(prompts[:6])})", flush=True)

    texts = np.stack([bundle.encoder.encode([p])[0] for p in prompts])
    with torch.inference_mode():
        t_e = ev.text(torch.from_numpy(texts)).numpy()

    def top5(images: np.ndarray, own: np.ndarray) -> float:
        with torch.inference_mode():
            i_e = ev.image(torch.from_numpy(images.astype(np.float32))).numpy()
        sims = i_e @ t_e.T
        return float(np.mean((sims > sims[np.arange(len(own)), own][:, None]).sum(1) < 5))

    lib_r = library_rasters(lib, size)
    results, rows = {}, {}
    for mode in ("auto", "off"):
        imgs, ok, uniq, ex_iou, t_mode = [], [], [], [], time.time()
        for k, (i, prompt) in enumerate(zip(picks, prompts)):
            out = run_prompt(bundle, prompt, args.samples, k, mode, [i], args)
            ims = [raster(c["paths"], size) for c in out["candidates"]]
            imgs += ims
            ok += [c["valid"] and (im > 0.5).any() for c, im in zip(out["candidates"], ims)]
            b = np.stack([im.reshape(-1) > 0.5 for im in ims])
            m = iou_matrix(b, b)
            np.fill_diagonal(m, 0)
            uniq += list((m < 0.9).all(1))
            ex_iou += [max(c.get("exemplar_iou") or [0.0]) for c in out["candidates"]]
            if mode == "auto" and k < 8:
                rows[prompt] = (out.get("exemplars", []), ims)
        gen = np.stack([im.reshape(-1) > 0.5 for im in imgs])
        nearest = np.zeros(len(gen))
        for s in range(0, len(lib_r), 20000):
            nearest = np.maximum(nearest, iou_matrix(gen, lib_r[s:s + 20000]).max(1))
        own = np.repeat(np.arange(len(prompts)), args.samples)
        results[mode] = {"validity": round(float(np.mean(ok)), 4), "uniqueness": round(float(np.mean(uniq)), 4),
                         "text_top5": round(top5(np.stack(imgs), own), 4),
                         "novelty": round(float(np.mean(nearest < 0.9)), 4),
                         "exemplar_iou_mean": round(float(np.mean(ex_iou)), 4) if mode == "auto" else None,
                         "copies_of_an_exemplar": round(float(np.mean(np.array(ex_iou) >= 0.9)), 4) if mode == "auto" else None,
                         "seconds": round(time.time() - t_mode, 1)}
        print(f"retrieval {mode}: {results[mode]}", flush=True)
    # baselines: plain search (the top library hit, the prompt's own icon hidden) and the real icons
    hits = [lib.search(texts[k], 1, exclude={i}, max_tokens=10_000) for k, i in enumerate(picks)]
    search_imgs = np.stack([token_raster(lib.icon(h[0][0]).tokens, size) if h else np.zeros((size, size)) for h in hits])
    real_imgs = np.stack([token_raster(lib.icon(i).tokens, size) for i in picks])
    base = {"plain_search_text_top5": round(top5(search_imgs, np.arange(len(picks))), 4),
            "real_icons_text_top5": round(top5(real_imgs, np.arange(len(picks))), 4),
            "chance_text_top5": round(min(5, len(picks)) / len(picks), 4)}
    print(f"baselines: {base}")
    fig = {"bench": "icon_quality", "split": args.split, "prompts": len(prompts), "samples_per_prompt": args.samples,
           "k_exemplars": args.k, "temperature": args.temperature, "guidance": args.guidance,
           "retrieval_on": results["auto"], "retrieval_off": results["off"], **base,
           "targets": {"text_top5_retrieval_on": 0.6, "novelty": 0.8},
           "met": results["auto"]["text_top5"] >= 0.6 and results["auto"]["novelty"] >= 0.8,
           "seconds": round(time.time() - t0, 1)}
    if args.sheet:
        contact_sheet(bundle, Path(args.sheet), args)
    print(json.dumps(fig))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
