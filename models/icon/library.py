"""The icon library: every licence-clean icon of the corpus, tokenised, with its set, licence and
author, and a MiniLM text index over its labels. The Icon panel retrieves exemplars from it for a
prompt (the model then draws a new icon conditioned on them) and lets the user browse it.

Shipped in assets/icon/library/ (built from the corpus by `python -m models.icon.library`):
  icons.npz   tokens (int16, flat, BOS...EOS per icon), offsets (N+1,), set_id (N,), label (N,) index
              into the label texts, split (N,) as in the corpus (0 train / 1 val / 2 test, by base name)
  index.npz   label embeddings (T, D) int8 (scale 1/127): MiniLM projected by `proj` (384, D) (PCA),
              so the index fits the size budget; rich labels (aliases, tags, category) have rows too
  meta.json   icon names ("set:name"), label texts, label_of_row, and per set: name, licence, author
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.common.paths import asset, cache_dir

LIBRARY_DIR = asset("icon", "library")
INDEX_DIM = 192  # PCA of MiniLM's 384: keeps the index small; ranking of names barely changes


@dataclass
class LibraryIcon:
    id: int
    name: str  # "set:name"
    set: str
    license: str
    author: str
    tokens: np.ndarray  # BOS ... EOS

    @property
    def attribution(self) -> str:
        """What a user must show for CC-BY sets (and a courtesy for the others)."""
        who = f" by {self.author}" if self.author else ""
        return f"'{self.name.split(':', 1)[1]}' from {self.set}{who}, {self.license}"


class IconLibrary:
    def __init__(self, folder: Path = LIBRARY_DIR):
        z = np.load(folder / "icons.npz")
        self.tokens, self.offsets = z["tokens"], z["offsets"]
        self.set_id, self.label, self.split = z["set_id"], z["label"], z["split"]
        ix = np.load(folder / "index.npz")
        self.emb = ix["emb"].astype(np.float32) / 127.0  # (T, D) unit-ish rows
        self.proj = ix["proj"].astype(np.float32)  # (384, D)
        self.mean = ix["mean"].astype(np.float32)  # (384,)
        self.row_label = ix["row_label"]  # (T,) the label each index row stands for
        meta = json.loads((folder / "meta.json").read_text())
        self.names: list[str] = meta["names"]
        self.labels: list[str] = meta["labels"]
        self.sets: list[dict] = meta["sets"]
        self.lengths = np.diff(self.offsets)
        order = np.argsort(self.label, kind="stable")  # label -> its icons
        bounds = np.searchsorted(self.label[order], np.arange(len(self.labels) + 1))
        self._by_label = (order, bounds)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def icon(self, i: int) -> LibraryIcon:
        s = self.sets[int(self.set_id[i])]
        return LibraryIcon(int(i), self.names[i], s["prefix"], s["license"], s.get("author", ""),
                           self.tokens[self.offsets[i]:self.offsets[i + 1]].astype(np.int64))

    def icons_of_label(self, label: int) -> np.ndarray:
        order, bounds = self._by_label
        return order[bounds[label]:bounds[label + 1]]

    def project(self, text_vecs: np.ndarray) -> np.ndarray:
        """MiniLM vectors (B, 384) -> unit vectors in the index space (B, D)."""
        v = (np.asarray(text_vecs, np.float32) - self.mean) @ self.proj
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-8)

    def search(self, text_vec: np.ndarray, k: int = 4, *, max_tokens: int = 320, exclude: set[int] | None = None,
               distinct_sets: bool = True, seed: int | None = None) -> list[tuple[int, float]]:
        """The k library icons whose labels match a MiniLM vector best: [(icon id, cosine)], best first.
        Icons longer than max_tokens are skipped (they make poor exemplars); with distinct_sets no two
        come from one set, so exemplars show different drawings of the concept. Icons of one label
        tie; `seed` shuffles them (another seed, other exemplars), None keeps the library's order."""
        q = self.project(text_vec[None])[0]
        sims = self.emb @ q
        rng = np.random.default_rng(seed) if seed is not None else None
        out, seen_sets, seen = [], set(), set()
        top = np.argpartition(-sims, min(400, len(sims) - 1))[:400]  # no full sort of ~68k rows per search
        for row in top[np.argsort(-sims[top], kind="stable")]:
            members = self.icons_of_label(int(self.row_label[row]))
            for i in (rng.permutation(members) if rng is not None else members):
                i = int(i)
                if i in seen or (exclude and i in exclude) or self.lengths[i] > max_tokens:
                    continue
                if distinct_sets and int(self.set_id[i]) in seen_sets:
                    continue
                seen.add(i)
                seen_sets.add(int(self.set_id[i]))
                out.append((i, float(sims[row])))
                if len(out) == k:
                    return out
        return out

    def search_text(self, query: str, k: int = 20) -> list[tuple[int, float]]:
        """Browse by text without MiniLM: icons whose name contains every word of the query."""
        words = [w for w in query.lower().replace("-", " ").split() if w]
        hits = [i for i, n in enumerate(self.names) if all(w in n.lower() for w in words)] if words else []
        return [(i, 1.0) for i in hits[:k]]


# ---- build ------------------------------------------------------------------------------------------
def build(corpus_dir: Path, out: Path, dim: int = INDEX_DIM) -> dict:
    z = np.load(corpus_dir / "corpus.npz")
    meta = json.loads((corpus_dir / "corpus.json").read_text())
    texts: list[str] = meta["texts"]
    n = len(z["offsets"]) - 1
    text_a, text_b = z["text_a"], z["text_b"]
    emb = z["text_emb"].astype(np.float32) / 127.0  # (T, 384) per label text
    # the index: every label text used by some icon (a: from the name; b: with aliases / tags / category)
    used = np.unique(np.concatenate([text_a[text_a >= 0], text_b[text_b >= 0]]))
    mean = emb[used].mean(0)
    _, _, vt = np.linalg.svd(emb[used] - mean, full_matrices=False)
    proj = vt[:dim].T.astype(np.float32)  # (384, dim)
    e = (emb[used] - mean) @ proj
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-8)
    # an icon is found through its own label (a) or its rich label (b); both map back to label a
    label_of_text = {int(t): -1 for t in used}
    for i in range(n):
        label_of_text[int(text_a[i])] = int(text_a[i])
    for i in range(n):
        if text_b[i] >= 0 and label_of_text[int(text_b[i])] == -1:
            label_of_text[int(text_b[i])] = int(text_a[i])
    row_label = np.array([label_of_text[int(t)] for t in used], np.int64)
    # compact label ids: only label-a texts name icons
    label_ids = {t: k for k, t in enumerate(np.unique(text_a))}
    labels = [texts[t] for t in label_ids]
    row_label = np.array([label_ids[t] for t in row_label], np.int32)
    sets_by_prefix = meta["sets"]
    prefixes = list(sets_by_prefix)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "icons.npz", tokens=z["tokens"].astype(np.int16), offsets=z["offsets"].astype(np.int64),
                        set_id=z["set_id"].astype(np.int16), split=z["split"].astype(np.uint8),
                        label=np.array([label_ids[int(t)] for t in text_a], np.int32))
    np.savez_compressed(out / "index.npz", emb=np.clip(np.rint(e * 127), -127, 127).astype(np.int8),
                        proj=proj.astype(np.float16), mean=mean.astype(np.float16), row_label=row_label)
    sets = [{"prefix": p, **sets_by_prefix[p]} for p in prefixes]
    (out / "meta.json").write_text(json.dumps({"names": meta["names"], "labels": labels, "sets": sets}))
    sizes = {f.name: round(f.stat().st_size / 2**20, 2) for f in out.iterdir()}
    return {"icons": n, "labels": len(labels), "index_rows": len(used), "dim": dim, "sets": len(sets), "mb": sizes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Pack the icon corpus as the shipped library (assets/icon/library)")
    ap.add_argument("--corpus", default=None, help="folder with corpus.npz / corpus.json (default: the cache)")
    ap.add_argument("--out", default=str(LIBRARY_DIR))
    ap.add_argument("--dim", type=int, default=INDEX_DIM)
    args = ap.parse_args(argv)
    print(json.dumps(build(Path(args.corpus) if args.corpus else cache_dir("icon"), Path(args.out), args.dim)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
