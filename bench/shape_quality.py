"""3D panel quality against held-out shapes: the ShapeNet generation metrics (COV, MMD with Chamfer
distance, 1-NNA), category accuracy of text-prompted shapes judged by a shape classifier trained on
the training split (held-out captions judged by source category; and plain object-class prompts,
"a chair", "a table", ..., judged by a classifier of those classes), and sketch fidelity (IoU between the input sketch and the generated shape's
silhouette from the same view).

    python bench/shape_quality.py [--n 48] [--points 1024] [--guidance 2.5] [--steps 4] [--temperature 0.7]

Needs the built data (`python -m models.shape.data`) and the shipped weights. Every shape, real or
generated, goes through the same path: 64^3 occupancy -> marching cubes mesh -> surface points in
the unit cube. Baselines printed beside the model: "train sample" (random training shapes of the
same categories, what a model that memorised the training set would score) and, for the sketch,
the text-only generation (what the sketch adds) and the true shape (the ceiling).
Prints a table and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from models.shape import data as sd  # noqa: E402
from models.shape import mesh as shape_mesh  # noqa: E402


def points_of(occ: np.ndarray, n: int, seed: int) -> np.ndarray:
    v, f = shape_mesh.extract(occ, smooth_iters=0)
    return shape_mesh.points_on(v, f, n, seed)


def chamfer_matrix(A: list[np.ndarray], B: list[np.ndarray]) -> np.ndarray:
    """Symmetric Chamfer distance (mean squared nearest-neighbour distance, both ways) for all pairs."""
    trees_b = [cKDTree(b) for b in B]
    trees_a = [cKDTree(a) for a in A]
    D = np.zeros((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            D[i, j] = (trees_b[j].query(a)[0] ** 2).mean() + (trees_a[i].query(b)[0] ** 2).mean()
    return D


def distribution_metrics(gen: list[np.ndarray], ref: list[np.ndarray]) -> dict:
    """COV (higher better), MMD (lower better), 1-NNA (50% best) with Chamfer distance."""
    d_gr = chamfer_matrix(gen, ref)
    cov = len(set(d_gr.argmin(axis=1))) / len(ref)
    mmd = float(d_gr.min(axis=0).mean())
    d_gg, d_rr = chamfer_matrix(gen, gen), chamfer_matrix(ref, ref)
    np.fill_diagonal(d_gg, np.inf)
    np.fill_diagonal(d_rr, np.inf)
    # 1-NN classifier over gen + ref, leave-one-out: a sample is "right" when its nearest neighbour is from its own set
    right_g = (d_gg.min(1) < d_gr.min(1)).sum()
    right_r = (d_rr.min(1) < d_gr.min(0)).sum()
    nna = (right_g + right_r) / (len(gen) + len(ref))
    return {"COV": cov, "MMD_CD": mmd, "1-NNA": float(nna)}


def view_features(occ: np.ndarray) -> np.ndarray:
    """Classifier features: 16^3 occupancy fractions + three 32 x 32 silhouettes."""
    r, q = occ.shape[0] // 16, occ.shape[0] // 32
    coarse = occ.reshape(16, r, 16, r, 16, r).mean(axis=(1, 3, 5)).ravel()
    sils = [sd.project(occ, v)[0].reshape(32, q, 32, q).mean(axis=(1, 3)).ravel() for v in sd.VIEWS]
    return np.concatenate([coarse] + sils).astype(np.float32)


# Object classes for the category-prompt test: a shape belongs to a class when its name holds the
# word (and no other class's word); each has >= 36 training shapes, from at least two sources.
OBJECT_CLASSES = ("chair", "table", "lamp", "sofa", "bed", "cabinet", "tree", "barrel", "tower", "door", "rock", "bottle")


def object_class(name: str) -> str | None:
    import re

    hits = [c for c in OBJECT_CLASSES if re.search(rf"\b{c}s?\b", name.lower())]
    return hits[0] if len(hits) == 1 else None


def train_classifier(ds: sd.ShapeData, idx: np.ndarray, cats: list[str], labels=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = ds.categories if labels is None else labels
    X = np.stack([view_features(ds.occ(int(i))) for i in idx])
    y = np.array([cats.index(labels[i]) for i in idx])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.02))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    return clf


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=48, help="held-out shapes per metric")
    p.add_argument("--points", type=int, default=1024)
    p.add_argument("--guidance", type=float, default=2.5)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--min-per-category", type=int, default=60, help="categories the classifier judges")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompt-seeds", type=int, default=4, help="shapes per object-class prompt")
    p.add_argument("--weights", default=None, help="weights to judge (default: the shipped ones)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from models.common.text import shared_encoder
    from models.shape.stream import generate_shape, load_model

    t0 = time.time()
    ds = sd.ShapeData()
    bundle = {"model": load_model(Path(a.weights)) if a.weights else load_model(), "encoder": shared_encoder()}
    rng = np.random.default_rng(0)
    train_idx, test_idx = ds.indices(False), ds.indices(True)
    counts = {c: int((ds.categories[train_idx] == c).sum()) for c in set(ds.categories[train_idx])}
    cats = sorted(c for c, k in counts.items() if k >= a.min_per_category)
    test_judged = np.array([i for i in test_idx if ds.categories[i] in cats])
    ref_idx = rng.choice(test_judged, size=min(a.n, len(test_judged)), replace=False)

    # ---- generate from the held-out captions (text only) ----
    gen_occ = []
    for k, i in enumerate(ref_idx):
        out = generate_shape(bundle, str(ds.captions[i]), seed=k, guidance=a.guidance, steps=a.steps, temperature=a.temperature, mesh=False)
        gen_occ.append(out["occ"])
    ref_pts = [points_of(ds.occ(int(i)), a.points, 1) for i in ref_idx]
    gen_pts = [points_of(o, a.points, 2) for o in gen_occ]
    same_cat_train = [rng.choice(train_idx[ds.categories[train_idx] == ds.categories[i]]) for i in ref_idx]
    base_pts = [points_of(ds.occ(int(j)), a.points, 3) for j in same_cat_train]
    m_model = distribution_metrics(gen_pts, ref_pts)
    m_base = distribution_metrics(base_pts, ref_pts)

    # ---- category accuracy: classifier on the training split, judging the generated shapes ----
    clf_idx = np.concatenate([rng.choice(train_idx[ds.categories[train_idx] == c],
                                         size=min(120, counts[c]), replace=False) for c in cats])
    clf = train_classifier(ds, clf_idx, cats)
    truth = np.array([cats.index(ds.categories[i]) for i in ref_idx])
    acc_gen = float((clf.predict(np.stack([view_features(o) for o in gen_occ])) == truth).mean())
    acc_real = float((clf.predict(np.stack([view_features(ds.occ(int(i))) for i in ref_idx])) == truth).mean())

    # ---- category prompts: "a chair", "a table", ... judged by a classifier of those object classes ----
    obj = np.array([object_class(str(n)) or "" for n in ds.names])
    obj_train = np.array([i for i in train_idx if obj[i]])
    obj_test = np.array([i for i in test_idx if obj[i]])
    obj_clf = train_classifier(ds, obj_train, list(OBJECT_CLASSES), obj)
    obj_truth = np.array([OBJECT_CLASSES.index(obj[i]) for i in obj_test])
    obj_acc_real = float((obj_clf.predict(np.stack([view_features(ds.occ(int(i))) for i in obj_test])) == obj_truth).mean())
    per_class = {}
    for c in OBJECT_CLASSES:
        occs = [generate_shape(bundle, f"a {c}", seed=k, guidance=a.guidance, steps=a.steps, temperature=a.temperature,
                               mesh=False)["occ"] for k in range(a.prompt_seeds)]
        pred = obj_clf.predict(np.stack([view_features(o) for o in occs]))
        per_class[c] = int((pred == OBJECT_CLASSES.index(c)).sum())
    obj_acc_gen = sum(per_class.values()) / (len(OBJECT_CLASSES) * a.prompt_seeds)

    # ---- sketch fidelity: hand-drawn front sketches (outlines, and filled silhouettes) of held-out shapes ----
    sk_idx = rng.choice(test_idx, size=min(a.n, len(test_idx)), replace=False)
    ious = {f"{style}_{what}": [] for style in ("edges", "silhouette") for what in ("sketch", "text_only", "true_shape")}

    def iou(sketch, occ):
        sil = sd.frame(sd.project(occ, "front")[0].astype(np.float32)) > 0.5
        reg = sd.sketch_region(sketch)
        return float((sil & reg).sum() / max(1, (sil | reg).sum()))

    for k, i in enumerate(sk_idx):
        occ = ds.occ(int(i))
        t = generate_shape(bundle, str(ds.captions[i]), seed=k, guidance=a.guidance, steps=a.steps, temperature=a.temperature, mesh=False)
        for style in ("edges", "silhouette"):
            sketch = sd.render_sketch(occ, "front", np.random.default_rng(100 + k), style)
            pad = (255 * (1 - np.kron(sketch, np.ones((4, 4))))).astype(np.uint8)  # as a 256 px drawing
            g = generate_shape(bundle, sketch=pad, view="front", seed=k, guidance=a.guidance, steps=a.steps, temperature=a.temperature, mesh=False)
            used = g["sketch"]  # what the model saw: the drawing after the pad's framing
            ious[f"{style}_sketch"].append(iou(used, g["occ"]))
            ious[f"{style}_text_only"].append(iou(used, t["occ"]))
            ious[f"{style}_true_shape"].append(iou(used, occ))
    iou_mean = {k: round(float(np.mean(v)), 3) for k, v in ious.items()}

    res = {
        "bench": "shape_quality", "n": len(ref_idx), "points": a.points, "guidance": a.guidance, "steps": a.steps, "temperature": a.temperature,
        "model": {k: round(v, 5) for k, v in m_model.items()},
        "train_sample_baseline": {k: round(v, 5) for k, v in m_base.items()},
        "categories": len(cats), "category_acc_generated": round(acc_gen, 3), "category_acc_real_heldout": round(acc_real, 3),
        "category_chance": round(1 / len(cats), 3),
        "object_prompts": {"classes": len(OBJECT_CLASSES), "per_prompt": a.prompt_seeds, "acc_generated": round(obj_acc_gen, 3),
                           "acc_real_heldout": round(obj_acc_real, 3), "n_real_heldout": len(obj_test),
                           "chance": round(1 / len(OBJECT_CLASSES), 3), "hits": per_class},
        "sketch_iou_front": iou_mean, "seconds": round(time.time() - t0, 1),
    }
    print(f"held-out shapes: {len(ref_idx)} (categories with >= {a.min_per_category} training shapes: {len(cats)})")
    print(f"{'':24}{'COV ↑':>10}{'MMD-CD ↓':>12}{'1-NNA (50%)':>14}")
    for name, m in (("model (text prompts)", m_model), ("train-sample baseline", m_base)):
        print(f"{name:24}{m['COV']:>10.3f}{m['MMD_CD']:>12.5f}{m['1-NNA']:>14.3f}")
    print(f"category accuracy: generated {acc_gen:.3f}, real held-out {acc_real:.3f}, chance {1 / len(cats):.3f}")
    print(f"category prompts ('a chair', ... {len(OBJECT_CLASSES)} object classes x {a.prompt_seeds} seeds): generated "
          f"{obj_acc_gen:.3f}, real held-out shapes of those classes {obj_acc_real:.3f} (n {len(obj_test)}), "
          f"chance {1 / len(OBJECT_CLASSES):.3f}; hits {per_class}")
    for style in ("edges", "silhouette"):
        print(f"sketch IoU, front {style} sketches: sketch-conditioned {iou_mean[style + '_sketch']:.3f}, "
              f"text-only {iou_mean[style + '_text_only']:.3f}, true shape (ceiling) {iou_mean[style + '_true_shape']:.3f}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
