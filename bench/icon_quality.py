"""Icon quality on held-out test labels (names never seen in training), 4 samples each:

  validity    the sample decodes to an SVG that renders non-empty
  uniqueness  IconShop: share of samples with no near-duplicate among the other samples of the same
              prompt (near-duplicate = 32 px raster IoU >= 0.9)
  novelty     IconShop: share of samples with no near-duplicate in the training split (same test)
  text match  top-5 retrieval: the sample's own prompt ranks in the evaluator's top 5 among all
              the benchmark's prompts; the same figure for the real test icons is the ceiling
Also writes docs/icon_gallery.png (8 prompts x 4 samples).

    PYTHONPATH=. python bench/icon_quality.py [--prompts 100] [--threads 2]
Needs the corpus in the cache dir (python -m models.icon.data; evaluator rasters for novelty).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch



def raster(paths, size):
    from models.icon.svg import IconPath, render_paths

    if not paths:
        return np.zeros((size, size), np.float32)
    return render_paths([IconPath.from_wire(p) for p in paths], size)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, P) and (m, P) boolean -> (n, m) IoU."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def gallery(rows: list[tuple[str, list[np.ndarray]]], path: Path, cell: int = 112) -> None:
    from PIL import Image, ImageDraw

    label_w = 170
    img = Image.new("RGB", (label_w + cell * 4, cell * len(rows)), "white")
    draw = ImageDraw.Draw(img)
    for r, (label, samples) in enumerate(rows):
        draw.text((8, r * cell + cell // 2 - 6), label[:26], fill=(40, 40, 40))
        for c, s in enumerate(samples[:4]):
            tile = Image.fromarray((255 - np.clip(s, 0, 1) * 230).astype(np.uint8)).convert("RGB")
            img.paste(tile.resize((cell - 12, cell - 12)), (label_w + c * cell + 6, r * cell + 6))
            draw.rectangle([label_w + c * cell + 5, r * cell + 5, label_w + (c + 1) * cell - 6, (r + 1) * cell - 6],
                           outline=(210, 210, 210))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gallery", default="docs/icon_gallery.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from models.common.paths import cache_dir
    from models.icon.evaluator import load_rasters
    from models.icon.stream import IconSession, load_bundle

    bundle = load_bundle("cpu")
    ev = bundle.evaluator
    corpus = cache_dir("icon")
    test = [json.loads(line) for line in open(corpus / "test_src.jsonl")]
    by_label: dict[str, list[dict]] = {}
    for t in test:
        by_label.setdefault(t["label"], []).append(t)
    rng = np.random.default_rng(0)
    labels = sorted(by_label)
    labels = [labels[i] for i in rng.choice(len(labels), size=min(args.prompts, len(labels)), replace=False)]
    print(f"{len(labels)} held-out test labels x {args.samples} samples", flush=True)

    t0 = time.time()
    samples: dict[str, list[dict]] = {}
    for i, label in enumerate(labels):
        s = IconSession(bundle, "cpu")
        s.start({"prompt": label, "n": args.samples, "temperature": args.temperature, "top_p": args.top_p,
                 "guidance": args.guidance, "seed": i})
        out = None
        while not s.done:
            for kind, d in s.step():
                if kind == "output":
                    out = d
        samples[label] = out["candidates"]
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(labels)} prompts ({time.time() - t0:.0f} s)", flush=True)

    size = ev.size if ev is not None else 32
    imgs = {lab: [raster(c["paths"], size) for c in cs] for lab, cs in samples.items()}
    flat = [(c, im) for lab in labels for c, im in zip(samples[lab], imgs[lab])]
    valid = [c["valid"] and (im > 0.5).any() for c, im in flat]
    validity = float(np.mean(valid))
    why = Counter(f"{c.get('ended', '?')}, {'renders empty' if c['valid'] else 'unfinished'}"
                  for (c, _), ok in zip(flat, valid) if not ok)
    if why:
        print("invalid samples (how they ended):", dict(why))

    uniq = []
    for lab in labels:
        b = np.stack([im.reshape(-1) > 0.5 for im in imgs[lab]])
        m = iou_matrix(b, b)
        np.fill_diagonal(m, 0)
        uniq += list((m < 0.9).all(1))
    uniqueness = float(np.mean(uniq))

    novelty = None
    rpath = corpus / f"rasters{size}.npz"
    if rpath.exists():
        z = np.load(corpus / "corpus.npz")
        train_imgs = load_rasters(rpath)[z["split"] == 0].reshape(-1, size * size) > 0
        gen = np.stack([im.reshape(-1) > 0.5 for lab in labels for im in imgs[lab]])
        best = np.zeros(len(gen))
        for k in range(0, len(train_imgs), 20000):
            best = np.maximum(best, iou_matrix(gen, train_imgs[k:k + 20000]).max(1))
        novelty = float(np.mean(best < 0.9))

    top5 = top5_real = None
    if ev is not None:
        temb = np.stack([bundle.encoder.encode([lab])[0] for lab in labels])
        with torch.inference_mode():
            t_e = ev.text(torch.from_numpy(temb)).numpy()

            def ranks(images: np.ndarray, own: np.ndarray) -> np.ndarray:
                i_e = ev.image(torch.from_numpy(images.astype(np.float32))).numpy()
                sims = i_e @ t_e.T
                return (sims > sims[np.arange(len(own)), own][:, None]).sum(1)

            gen = np.stack([im for lab in labels for im in imgs[lab]])
            own = np.repeat(np.arange(len(labels)), args.samples)
            top5 = float(np.mean(ranks(gen, own) < 5))
            from models.icon.svg import render

            real = np.stack([render(by_label[lab][0]["src"].replace("currentColor", "black"), size) for lab in labels])
            top5_real = float(np.mean(ranks(real, np.arange(len(labels))) < 5))

    gallery([(lab, [raster(c["paths"], 128) for c in samples[lab]]) for lab in labels[:8]], Path(args.gallery))
    fig = {"bench": "icon_quality", "prompts": len(labels), "samples_per_prompt": args.samples,
           "temperature": args.temperature, "top_p": args.top_p, "guidance": args.guidance,
           "validity": round(validity, 4), "uniqueness": round(uniqueness, 4),
           "novelty": None if novelty is None else round(novelty, 4),
           "text_top5": None if top5 is None else round(top5, 4),
           "text_top5_real_test_icons": None if top5_real is None else round(top5_real, 4),
           "text_top5_chance": round(min(5, len(labels)) / len(labels), 4), "seconds": round(time.time() - t0, 1)}
    print(f"validity {validity:.1%}  uniqueness {uniqueness:.1%}  novelty {novelty if novelty is None else f'{novelty:.1%}'}"
          f"  text top-5 {top5} (real test icons {top5_real}, chance {fig['text_top5_chance']})")
    print(f"gallery: {args.gallery}")
    print(json.dumps(fig))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
