"""Training data for the 3D panel: real meshes -> solid 64^3 occupancy grids with captions, plus
procedural shapes, plus the sketch renderer used for training and evaluation.

    python -m models.shape.data                     # every source, one <cache>/shape/shapes_<source>.npz each
    python -m models.shape.data --sources mesh3d procedural   # a subset (training reads whatever exists)

Sources (see models/shape/CARD.md for licences):
- ../shared/data/mesh3d: 2,058 CC0 low-poly meshes (Kenney, Quaternius) with captions and 42 categories.
- Debian `sweethome3d-furniture` (apt-get download, unpacked into the cache dir): about 820 labelled
  OBJ furniture models, CC0 / CC-BY-3.0, names + categories + tags from PluginFurnitureCatalog.properties.
- procedural.py: lathe, furniture and CSG shapes with generated labels.

Every mesh is centred, scaled so its longest side is 0.94 of the cube, and voxelised solid: dense
surface samples mark the shell (it errs outwards by up to half a voxel), a one-voxel closing seals
small cracks, the enclosed space is filled (scipy's binary_fill_holes), and for meshes that are not
watertight, voxels the shell hides from 5 of the 6 axis directions count as inside too.
About 7% of the shapes are held out (split == 1) for evaluation, chosen by a hash of the name.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from models.common.paths import SHARED_DATA, cache_dir
from models.shape import procedural

log = logging.getLogger("weft.shape.data")
RES = 64  # finest grid: octree depth 6
FILL = procedural.FILL
VIEWS = ("front", "side", "top")  # sketch views: looking along -Z, along -X, down -Y
HELD_OUT = 0.07


# ---- meshes -> occupancy ----------------------------------------------------------------------
def normalise_vertices(v: np.ndarray, R: int = RES) -> np.ndarray:
    """(V, 3) -> grid units: centred in the cube, longest side FILL * R."""
    lo, hi = v.min(0), v.max(0)
    span = float((hi - lo).max())
    if not np.isfinite(span) or span <= 0:
        raise ValueError("the mesh has no extent")
    return (v - (lo + hi) / 2) / span * FILL * R + R / 2


def occupancy(mesh, R: int = RES, seed: int = 0) -> np.ndarray:
    """trimesh.Trimesh -> solid occupancy (R, R, R) bool, robust to cracks and open meshes."""
    import trimesh

    if len(mesh.faces) == 0:
        raise ValueError("the mesh has no faces")
    m = trimesh.Trimesh(normalise_vertices(np.asarray(mesh.vertices, np.float64), R), mesh.faces, process=False)
    n = int(np.clip(m.area * 10, 30_000, 100_000))  # ~10 samples per voxel face of surface
    pts, _ = trimesh.sample.sample_surface(m, n, seed=seed)
    pts = np.concatenate([pts, m.vertices])
    ij = np.clip(np.floor(pts).astype(np.int64), 0, R - 1)
    shell = np.zeros((R, R, R), bool)
    shell[ij[:, 0], ij[:, 1], ij[:, 2]] = True
    closed = ndi.binary_closing(np.pad(shell, 2), iterations=1)[2:-2, 2:-2, 2:-2] | shell
    solid = ndi.binary_fill_holes(closed)
    if not mesh.is_watertight:
        # holes bigger than the closing: also count voxels that the shell hides from at least 5 of
        # the 6 axis directions (a box with a missing side stays solid; an open cup may fill up)
        solid |= enclosed_votes(closed) >= 5
    return solid


def enclosed_votes(shell: np.ndarray) -> np.ndarray:
    """For each voxel, in how many of the 6 axis directions a ray from it meets the shell. (R, R, R) int."""
    votes = np.zeros(shell.shape, np.int8)
    for axis in range(3):
        s = shell.astype(np.int32)
        before = np.cumsum(s, axis=axis) - s  # shell voxels strictly before, along +axis
        after = np.flip(np.cumsum(np.flip(s, axis), axis=axis), axis) - s
        votes += (before > 0).astype(np.int8) + (after > 0).astype(np.int8)
    return np.where(shell, 6, votes)


def load_mesh(path: str | Path, rotation: np.ndarray | None = None):
    """Any trimesh-readable file (OBJ, PLY, GLB, STL...) -> one Trimesh; ValueError when unreadable."""
    import trimesh

    try:
        m = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for broken files
        raise ValueError(f"could not read {Path(path).name}: {e}") from None
    if not isinstance(m, trimesh.Trimesh) or len(m.faces) == 0:
        raise ValueError(f"{Path(path).name} holds no triangles")
    if rotation is not None:
        m.vertices = m.vertices @ rotation.T
    return m


# ---- sources ----------------------------------------------------------------------------------
def mesh3d_items(raw: Path) -> list[dict]:
    src = SHARED_DATA / "mesh3d"
    if not (raw / "meshes").exists():
        log.info("unpacking %s", src / "meshes.tar.xz")
        with tarfile.open(src / "meshes.tar.xz") as tf:
            tf.extractall(raw, filter="data")
    items = []
    with open(src / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            items.append({"path": str(raw / row["file"]), "name": row["name"], "category": row["category"],
                          "caption": row["text"], "source": "mesh3d", "license": row["license"]})
    return items


def sh3d_items(raw: Path) -> list[dict]:
    """Debian sweethome3d-furniture: apt-get download + unpack (once), then read the catalogues."""
    base = raw / "sh3d"
    deb_dir = base / "deb"
    if not (deb_dir / "usr").exists():
        base.mkdir(parents=True, exist_ok=True)
        debs = list(base.glob("sweethome3d-furniture_*.deb"))
        if not debs:
            log.info("apt-get download sweethome3d-furniture")
            subprocess.run(["apt-get", "download", "sweethome3d-furniture"], cwd=base, check=True)
            debs = list(base.glob("sweethome3d-furniture_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(deb_dir)], check=True)
    items = []
    for lib in sorted((deb_dir / "usr/share/sweethome3d/furniture").glob("*.sh3f")):
        out = base / lib.stem
        if not out.exists():
            with zipfile.ZipFile(lib) as z:
                z.extractall(out)
        licence = "CC0-1.0" if "CC-0" in lib.stem else "CC-BY-3.0"
        props = {}
        for line in (out / "PluginFurnitureCatalog.properties").read_text(encoding="latin-1").splitlines():
            if "#" in line and "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                field, _, idx = key.partition("#")
                props.setdefault(idx, {})[field] = value.strip()
        for p in props.values():
            if "model" not in p or "name" not in p:
                continue
            rot = None
            if "modelRotation" in p:
                rot = np.array([float(x) for x in p["modelRotation"].split()], np.float64).reshape(3, 3)
            tags = [t.strip() for t in p.get("tags", "").split(",") if t.strip() and t.strip() != "Blend Swap"]
            name = p["name"].lower()
            cat = p.get("category", "furniture").lower()
            items.append({"path": str(out / p["model"].lstrip("/")), "name": name, "category": cat,
                          "caption": f"a 3D model of a {name} ({cat})" + (f", {', '.join(tags).lower()}" if tags else ""),
                          "source": f"sweethome3d/{lib.stem}", "license": licence, "rotation": rot})
    return items


def procedural_items(per_kind: int) -> list[dict]:
    return [{"path": None, "kind": k, "seed": i, "source": "procedural", "license": "generated"}
            for k in procedural.KINDS for i in range(per_kind)]


def captions_for(item: dict) -> list[str]:
    """A few phrasings of one shape's label, so prompts need not follow one template."""
    name, cat = item["name"], item["category"]
    return [item["caption"], name, f"a {name}", f"a 3D model of a {name}", f"{name}, {cat}"]


def build_item(item: dict) -> dict | None:
    try:
        if item["source"] == "procedural":
            occ, caption = procedural.make(item["kind"], np.random.default_rng(1000 + item["seed"]))
            name = caption.split(" ", 1)[1]
            item = {**item, "name": name, "category": "procedural " + procedural_group(item["kind"]),
                    "caption": f"a 3D model of {caption}"}
        else:
            occ = occupancy(load_mesh(item["path"], item.get("rotation")))
    except Exception as e:
        log.warning("skipped %s: %s", item.get("path") or item.get("kind"), e)
        return None
    frac = occ.mean()
    if frac <= 0 or frac >= 0.999:
        return None
    return {**item, "occ": np.packbits(occ.reshape(-1))}


def procedural_group(kind: str) -> str:
    return "furniture" if kind in procedural.FURNITURE else "vessel" if kind in procedural.LATHE else "object"


def held_out(name: str, source: str) -> bool:
    h = int(hashlib.sha1(f"{source}:{name}".encode()).hexdigest()[:8], 16)
    return (h % 1000) < HELD_OUT * 1000


SOURCES = ("procedural", "mesh3d", "sh3d")


def build(out: Path, source: str, per_kind: int = 30, limit: int = 0) -> Path | None:
    raw = cache_dir("shape", "raw")
    if source == "mesh3d":
        items = mesh3d_items(raw)
    elif source == "sh3d":
        try:
            items = sh3d_items(raw)
        except (OSError, subprocess.CalledProcessError) as e:
            log.warning("sweethome3d-furniture unavailable (%s); continuing without it", e)
            return None
    elif source == "procedural":
        items = procedural_items(per_kind)
    else:
        raise ValueError(f"unknown source {source!r}; sources: {', '.join(SOURCES)}")
    if limit:
        items = items[::max(1, len(items) // limit)][:limit]
    t0, done = time.time(), []
    for i, it in enumerate(items):
        r = build_item(it)
        if r is not None:
            done.append(r)
        if (i + 1) % 100 == 0:
            log.info("%d/%d meshes, %d kept, %.0f s", i + 1, len(items), len(done), time.time() - t0)
    texts = [captions_for(d) for d in done]
    from models.common.text import shared_encoder

    enc = shared_encoder()
    flat = [t for ts in texts for t in ts]
    emb = enc.encode(flat).reshape(len(done), len(texts[0]), -1).astype(np.float16)
    # held out by name (real meshes: unseen names) or by seed (procedural: unseen variants of every kind)
    split = np.array([held_out(d["name"] + (f"#{d['seed']}" if "seed" in d else ""), d["source"]) for d in done], np.uint8)
    np.savez_compressed(
        out, occ=np.stack([d["occ"] for d in done]), text_emb=emb, split=split,
        captions=np.array([t[0] for t in texts]), names=np.array([d["name"] for d in done]),
        categories=np.array([d["category"] for d in done]), sources=np.array([d["source"] for d in done]),
        licenses=np.array([d["license"] for d in done]), res=np.array(RES))
    log.info("wrote %s: %d shapes (%d held out) in %.0f s", out, len(done), int(split.sum()), time.time() - t0)
    return out


class ShapeData:
    """The built dataset (every shapes_*.npz in the cache dir, or the files given): occupancy grids
    unpacked on demand, caption embeddings, labels, split."""

    def __init__(self, paths: list[Path] | Path | None = None):
        if paths is None:
            paths = sorted(cache_dir("shape").glob("shapes_*.npz"))
        paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        if not paths or not all(p.exists() for p in paths):
            raise FileNotFoundError(f"no shape data ({paths or cache_dir('shape')}): build it with "
                                    "`python -m models.shape.data`")
        zs = [np.load(p) for p in paths]
        cat = lambda k: np.concatenate([z[k] for z in zs])
        self.occ_bits = cat("occ")
        self.text_emb = cat("text_emb").astype(np.float32)
        self.split = cat("split")
        self.captions, self.names = cat("captions"), cat("names")
        self.categories, self.sources = cat("categories"), cat("sources")
        self.res = int(zs[0]["res"])

    def __len__(self) -> int:
        return len(self.occ_bits)

    def occ(self, i: int) -> np.ndarray:
        return np.unpackbits(self.occ_bits[i])[: self.res ** 3].reshape((self.res,) * 3).astype(bool)

    def indices(self, held_out: bool) -> np.ndarray:
        return np.nonzero(self.split == int(held_out))[0]


# ---- augmentation -----------------------------------------------------------------------------
def augment(occ: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Rotate by k * 90 degrees about Y (up) and optionally mirror X: the shape stays upright."""
    out = np.rot90(occ, k=k, axes=(2, 0))
    return np.ascontiguousarray(out[::-1] if flip else out)


# ---- sketches ---------------------------------------------------------------------------------
SKETCH = 64  # sketch side in pixels, as the model sees it


def project(occ: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Silhouette (H, W) bool and depth (H, W) float (0 = nearest) of a grid seen from `view`.
    Image rows go top to bottom, columns left to right as a person sees the object."""
    R = occ.shape[0]
    if view == "front":  # camera on +Z looking at -Z: columns = x, rows = -y
        vol = occ[:, ::-1, ::-1].transpose(1, 0, 2)  # (y down, x, depth from +Z)
    elif view == "side":  # camera on +X looking at -X: columns = -z, rows = -y
        vol = occ[::-1, ::-1, ::-1].transpose(1, 2, 0)
    elif view == "top":  # camera above looking down: columns = x, rows = z
        vol = occ[:, ::-1, :].transpose(2, 0, 1)
    else:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    sil = vol.any(axis=2)
    depth = np.where(sil, vol.argmax(axis=2), R).astype(np.float32)
    return sil, depth


def frame(img: np.ndarray, size: int = SKETCH, fill: float = 0.86) -> np.ndarray:
    """Crop a 2D drawing (H, W) float to its ink, centre it, scale its longer side to `fill` of a
    `size` square (bilinear). Training sketches and user sketches go through this same framing."""
    ink = img > 0.1
    labels, n = ndi.label(ink)
    if n > 1:  # stray specks (a few pixels) must not move the frame
        sizes = ndi.sum(ink, labels, range(1, n + 1))
        ink = np.isin(labels, 1 + np.nonzero(sizes >= min(4, sizes.max()))[0])
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return np.zeros((size, size), np.float32)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = img[y0:y1, x0:x1].astype(np.float32)
    s = fill * size / max(crop.shape)
    out = np.zeros((size, size), np.float32)
    h, w = max(1, round(crop.shape[0] * s)), max(1, round(crop.shape[1] * s))
    zoomed = ndi.zoom(crop, (h / crop.shape[0], w / crop.shape[1]), order=1)[:h, :w]
    oy, ox = (size - zoomed.shape[0]) // 2, (size - zoomed.shape[1]) // 2
    out[oy:oy + zoomed.shape[0], ox:ox + zoomed.shape[1]] = zoomed
    return np.clip(out, 0, 1)


def edges(sil: np.ndarray, depth: np.ndarray, jump: float = 3.0) -> np.ndarray:
    """Line drawing: the outline plus creases where the depth jumps. (H, W) bool."""
    outline = sil & ~ndi.binary_erosion(sil)
    d = np.where(sil, depth, depth[sil].max() + jump * 2 if sil.any() else 0)
    gy, gx = np.abs(np.diff(d, axis=0, append=d[-1:])), np.abs(np.diff(d, axis=1, append=d[:, -1:]))
    crease = sil & ((gy > jump) | (gx > jump))
    return outline | crease


def render_sketch(occ: np.ndarray, view: str, rng: np.random.Generator | None = None, style: str = "edges") -> np.ndarray:
    """A sketch of the shape from `view`, framed for the model: (64, 64) float32, 1 = ink.
    With `rng`, it is made to look hand-drawn (wobbly warp, uneven strokes, gaps, slight tilt)."""
    sil, depth = project(occ, view)
    if style == "silhouette":
        img = sil.astype(np.float32)
    else:
        img = edges(sil, depth).astype(np.float32)
    if rng is not None:
        img = handdrawn(img, rng)
    return frame(img)


def handdrawn(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    H, W = img.shape
    up = 2  # draw at twice the resolution so warps stay smooth
    img = ndi.zoom(img, up, order=1)
    H, W = img.shape
    # smooth random displacement field (wobbly strokes) + small rotation and anisotropic scale
    amp = rng.uniform(0.3, 1.5) * up
    dy = ndi.gaussian_filter(rng.normal(size=(H, W)), 6 * up) * amp * 30
    dx = ndi.gaussian_filter(rng.normal(size=(H, W)), 6 * up) * amp * 30
    ang = np.deg2rad(rng.uniform(-6, 6))
    sy, sx = rng.uniform(0.9, 1.1, 2)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cy, cx = H / 2, W / 2
    ry = ((yy - cy) * np.cos(ang) - (xx - cx) * np.sin(ang)) * sy + cy + dy
    rx = ((yy - cy) * np.sin(ang) + (xx - cx) * np.cos(ang)) * sx + cx + dx
    img = ndi.map_coordinates(img, [ry, rx], order=1, mode="constant")
    # stroke width: thin to bold
    width = rng.integers(0, 3)
    if width:
        img = ndi.grey_dilation(img, size=(width + 1, width + 1))
    # gaps: erase a few small blobs; faint pressure variation
    gaps = ndi.gaussian_filter(rng.random((H, W)), 3 * up) < np.quantile(rng.random(16), 0.1) * 0.45
    img = img * ~gaps * rng.uniform(0.7, 1.0)
    img = img[::up, ::up]
    return np.clip(img, 0, 1).astype(np.float32)


def prepare_user_sketch(img: np.ndarray) -> np.ndarray:
    """A drawing from the sketch pad or an image file -> the model's (64, 64) framing.
    img: (H, W) or (H, W, 3|4) uint8 / float, dark ink on a light background or ink in alpha."""
    a = np.asarray(img)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating) or a.dtype == bool):
        raise ValueError("a sketch must be an image of numbers")
    if a.size == 0:
        raise ValueError("the sketch is empty: draw something first")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
        finite = np.isfinite(a)
        if not finite.any():
            raise ValueError("the sketch holds no numbers (every value is NaN or infinite): draw it again")
        if not finite.all():
            raise ValueError("the sketch has values that are not numbers (NaN or infinity)")
    if a.ndim == 3:
        if a.shape[2] == 4 and a[..., 3].min() < 0.99:  # transparent background: ink is the alpha
            ink = a[..., 3] * (1 - a[..., :3].mean(-1) * 0.5)
        else:
            ink = 1 - a[..., :3].mean(-1)
    elif a.ndim == 2:
        ink = 1 - a if a.mean() > 0.5 else a
    else:
        raise ValueError(f"a sketch must be a 2D image, got shape {a.shape}")
    ink = np.clip((ink - 0.15) / 0.6, 0, 1)
    if ink.max() <= 0:
        raise ValueError("the sketch is empty: draw something first")
    # resample to about the training stroke width before framing
    scale = 96 / max(ink.shape)
    if scale < 1:
        ink = ndi.grey_dilation(ink, size=(max(1, int(1 / scale)),) * 2)
        ink = ndi.zoom(ink, scale, order=1)
    return frame(ink)


def sketch_region(sketch: np.ndarray) -> np.ndarray:
    """The area a sketch encloses (filled outline), (H, W) bool: compared with silhouettes for IoU."""
    ink = sketch > 0.3
    closed = ndi.binary_closing(ink, iterations=2)
    return ndi.binary_fill_holes(closed) | ink


def sketch_allowed(sketch: np.ndarray, view: str, R: int = RES, fill: float = 0.86, dilate: int = 1) -> np.ndarray:
    """Where a shape may be, given a framed (64, 64) sketch seen from `view`: the sketched area (outline
    filled) mapped onto the grid's projection plane and extruded along the view's depth, (R, R, R) bool.

    Framing scales the sketch's longer side to `fill` of its square; a shape is normalised with its
    longest side FILL of the cube. Mapping one onto the other assumes the sketch shows the shape's
    longest side; when it does not (a deep object drawn from the front) the region comes out larger
    than the truth, so the constraint can loosen but never cuts a shape the sketch allows."""
    region = sketch_region(np.asarray(sketch, np.float32))
    if not region.any():
        raise ValueError("the sketch is empty: draw something first")
    size = region.shape[0]
    # grid-plane pixel (row, col) centre -> sketch pixel: same centre, scale fill*size <-> FILL*R
    k = (fill * size) / (FILL * R)
    centres = (np.arange(R) + 0.5 - R / 2) * k + size / 2
    idx = np.clip(np.floor(centres).astype(int), 0, size - 1)
    inside = (centres >= 0) & (centres < size)
    plane = region[np.ix_(idx, idx)] & inside[:, None] & inside[None, :]  # (rows, cols) as project() shows
    if dilate:
        plane = ndi.binary_dilation(plane, iterations=dilate)
    r = R - 1 - np.arange(R)  # image row of each y (rows go down, y goes up)
    if view == "front":  # occ[x, y, z] seen at (row R-1-y, col x)
        a = plane[r[None, :], np.arange(R)[:, None]]  # (x, y)
        return np.repeat(a[:, :, None], R, axis=2)
    if view == "side":  # occ[x, y, z] seen at (row R-1-y, col R-1-z)
        a = plane[r[:, None], (R - 1 - np.arange(R))[None, :]]  # (y, z)
        return np.repeat(a[None, :, :], R, axis=0)
    if view == "top":  # occ[x, y, z] seen at (row z, col x)
        a = plane.T  # (x, z)
        return np.repeat(a[:, None, :], R, axis=1)
    raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    p.add_argument("--out-dir", default=None, help="where shapes_<source>.npz go (default <cache>/shape)")
    p.add_argument("--per-kind", type=int, default=100, help="procedural shapes per kind (30 until model v3)")
    p.add_argument("--limit", type=int, default=0, help="build only this many items (a quick check)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    out_dir = Path(a.out_dir) if a.out_dir else cache_dir("shape")
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in a.sources:
        build(out_dir / f"shapes_{src}.npz", src, per_kind=a.per_kind, limit=a.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
