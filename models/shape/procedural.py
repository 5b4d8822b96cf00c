"""Procedural training shapes with generated labels: lathe objects (mugs, vases, bowls, bottles,
lamps, barrels, pillars), furniture built from boxes and cylinders (tables, chairs, stools, shelves,
benches, beds, sofas, cabinets) and a few CSG objects (a hollow box, an arch).

Each shape is an inside/outside test evaluated directly on the voxel grid (CSG is then plain
boolean algebra on grids), already normalised like the real meshes: centred, longest side 0.94 of
the cube, Y up. `make(kind, rng)` -> (occupancy (R, R, R) bool, caption).
"""
from __future__ import annotations

import numpy as np

FILL = 0.94  # longest side of every shape, as a fraction of the cube (the mesh loader uses the same)


class Canvas:
    """Point coordinates of the grid in the shape's own units (metres-ish), for a shape whose
    bounding box is `size` = (w, h, d), centred at the origin, Y up."""

    def __init__(self, size, R: int):
        size = np.asarray(size, np.float64)
        s = size.max() / FILL
        t = ((np.arange(R) + 0.5) / R - 0.5) * s
        self.x, self.y, self.z = np.meshgrid(t, t, t, indexing="ij")
        self.h = size[1]
        self.occ = np.zeros((R, R, R), bool)

    def box(self, c, half):
        return (abs(self.x - c[0]) <= half[0]) & (abs(self.y - c[1]) <= half[1]) & (abs(self.z - c[2]) <= half[2])

    def cyl(self, c, r, half_h, axis=1):
        p = [self.x - c[0], self.y - c[1], self.z - c[2]]
        a = p.pop(axis)
        return (p[0] ** 2 + p[1] ** 2 <= r * r) & (abs(a) <= half_h)

    def lathe(self, y0, y1, radius_fn):
        """Solid of revolution about Y between y0 and y1 with radius_fn(t in [0, 1])."""
        t = (self.y - y0) / (y1 - y0)
        r = radius_fn(np.clip(t, 0, 1))
        return (t >= 0) & (t <= 1) & (self.x ** 2 + self.z ** 2 <= r * r)

    def torus_x(self, c, R, r):
        """Torus in the XY plane (a mug handle)."""
        q = np.sqrt((self.x - c[0]) ** 2 + (self.y - c[1]) ** 2) - R
        return q ** 2 + (self.z - c[2]) ** 2 <= r * r

    def add(self, m):
        self.occ |= m

    def cut(self, m):
        self.occ &= ~m


def _lathe_object(kind, rng, R):
    if kind == "mug":
        r, h = rng.uniform(0.3, 0.45), rng.uniform(0.7, 1.0)
        wall = rng.uniform(0.05, 0.08)
        handle = h * 0.25 + 0.045  # how far the handle sticks out of the body
        cv = Canvas((2 * r + handle, h, 2 * r), R)
        cv.x = cv.x + handle / 2  # centre body + handle together
        cv.add(cv.cyl((0, 0, 0), r, h / 2))
        cv.cut(cv.cyl((0, wall, 0), r - wall, h / 2))
        cv.add(cv.torus_x((r, 0, 0), h * 0.25, 0.045) & (cv.x > r - 0.02))
        return cv.occ, "a mug"
    if kind == "vase":
        h, r = rng.uniform(0.8, 1.2), rng.uniform(0.2, 0.4)
        a, b, p = rng.uniform(0.4, 1.0), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.7)
        fn = lambda t: r * (a + (1 - a) * np.sin(np.pi * np.clip(t / (2 * p), 0, 1)) ** 2 * (t < 2 * p) + b * (t >= 2 * p) * (1 - a)) + 0.02
        cv = Canvas((2 * r + 0.1, h, 2 * r + 0.1), R)
        cv.add(cv.lathe(-h / 2, h / 2, fn))
        cv.cut(cv.cyl((0, h * 0.1, 0), r * 0.35, h / 2))
        return cv.occ, "a vase"
    if kind == "bowl":
        r, h = rng.uniform(0.4, 0.5), rng.uniform(0.2, 0.35)
        cv = Canvas((2 * r, h, 2 * r), R)
        cv.add(cv.lathe(-h / 2, h / 2, lambda t: r * (0.45 + 0.55 * np.sqrt(t))))
        cv.cut(cv.lathe(-h / 2 + 0.06, h / 2 + 0.01, lambda t: (r - 0.06) * (0.3 + 0.7 * np.sqrt(t))))
        return cv.occ, "a bowl"
    if kind == "bottle":
        h, r = rng.uniform(0.9, 1.2), rng.uniform(0.12, 0.22)
        neck = rng.uniform(0.55, 0.7)
        fn = lambda t: np.where(t < neck, r, np.where(t < neck + 0.15, r - (r - r * 0.35) * (t - neck) / 0.15, r * 0.35))
        cv = Canvas((2 * r, h, 2 * r), R)
        cv.add(cv.lathe(-h / 2, h / 2, fn))
        return cv.occ, "a bottle"
    if kind == "lamp":
        h = rng.uniform(0.9, 1.4)
        shade_r, shade_h = rng.uniform(0.2, 0.35), rng.uniform(0.2, 0.3)
        floor = h > 1.15
        cv = Canvas((2 * shade_r, h, 2 * shade_r), R)
        y0 = -h / 2
        cv.add(cv.cyl((0, y0 + 0.02, 0), shade_r * 0.8, 0.02))
        cv.add(cv.cyl((0, 0, 0), 0.025, h / 2 - 0.02))
        top = h / 2
        cv.add(cv.lathe(top - shade_h, top, lambda t: shade_r - 0.5 * shade_r * t) & ~cv.lathe(top - shade_h - 0.01, top + 0.01, lambda t: shade_r - 0.5 * shade_r * t - 0.03))
        return cv.occ, "a floor lamp" if floor else "a table lamp"
    if kind == "barrel":
        h, r = rng.uniform(0.8, 1.1), rng.uniform(0.3, 0.45)
        cv = Canvas((2 * r * 1.12, h, 2 * r * 1.12), R)
        cv.add(cv.lathe(-h / 2, h / 2, lambda t: r * (1 + 0.12 * np.sin(np.pi * t))))
        return cv.occ, "a barrel"
    if kind == "pillar":
        h, r = rng.uniform(1.0, 1.4), rng.uniform(0.1, 0.18)
        cv = Canvas((2 * r * 1.6, h, 2 * r * 1.6), R)
        cv.add(cv.lathe(-h / 2, h / 2, lambda t: r * np.where((t < 0.08) | (t > 0.92), 1.6, 1.0)))
        return cv.occ, "a column"
    raise ValueError(kind)


def _furniture(kind, rng, R):
    if kind in ("table", "round table"):
        w, h, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.8), rng.uniform(0.6, 1.0)
        top = rng.uniform(0.03, 0.06)
        cv = Canvas((w, h, d if kind == "table" else w), R)
        y_top = h / 2 - top
        if kind == "table":
            cv.add(cv.box((0, y_top + top / 2, 0), (w / 2, top / 2, d / 2)))
            leg = rng.uniform(0.03, 0.06)
            for sx in (-1, 1):
                for sz in (-1, 1):
                    cv.add(cv.box((sx * (w / 2 - leg * 1.5), 0, sz * (d / 2 - leg * 1.5)), (leg, h / 2, leg)))
        else:
            cv.add(cv.cyl((0, y_top + top / 2, 0), w / 2, top / 2))
            cv.add(cv.cyl((0, 0, 0), 0.05, h / 2))
            cv.add(cv.cyl((0, -h / 2 + 0.02, 0), w / 4, 0.02))
        return cv.occ, "a " + kind
    if kind in ("chair", "stool", "bench"):
        w = rng.uniform(0.4, 0.55) if kind != "bench" else rng.uniform(1.2, 1.8)
        d = rng.uniform(0.4, 0.55)
        seat_h = rng.uniform(0.42, 0.5) if kind != "stool" else rng.uniform(0.5, 0.75)
        back = rng.uniform(0.4, 0.6) if kind == "chair" else 0.0
        h = seat_h + back
        cv = Canvas((w, h, d), R)
        y0 = -h / 2
        seat_t = 0.05
        cv.add(cv.box((0, y0 + seat_h - seat_t / 2, 0), (w / 2, seat_t / 2, d / 2)))
        leg = 0.03
        for sx in (-1, 1):
            for sz in (-1, 1):
                cv.add(cv.box((sx * (w / 2 - leg), y0 + seat_h / 2, sz * (d / 2 - leg)), (leg, seat_h / 2, leg)))
        if back:
            cv.add(cv.box((0, y0 + seat_h + back / 2, -d / 2 + 0.03), (w / 2, back / 2, 0.03)))
        return cv.occ, "a " + kind
    if kind in ("bookshelf", "cabinet"):
        w, h, d = rng.uniform(0.6, 1.2), rng.uniform(0.8, 1.9), rng.uniform(0.3, 0.5)
        cv = Canvas((w, h, d), R)
        cv.add(cv.box((0, 0, 0), (w / 2, h / 2, d / 2)))
        t = 0.035
        if kind == "bookshelf":
            n = int(rng.integers(3, 6))
            inner_h = (h - 2 * t - (n - 1) * t) / n
            for i in range(n):
                yc = -h / 2 + t + inner_h / 2 + i * (inner_h + t)
                cv.cut(cv.box((0, yc, t), (w / 2 - t, inner_h / 2, d / 2)))
        return cv.occ, "a " + kind
    if kind in ("bed", "sofa"):
        w, d = rng.uniform(1.4, 2.0), rng.uniform(0.8, 1.6) if kind == "sofa" else rng.uniform(1.9, 2.1)
        h = rng.uniform(0.7, 1.0)
        cv = Canvas((w, h, d), R)
        y0 = -h / 2
        base = 0.42 if kind == "sofa" else 0.45
        cv.add(cv.box((0, y0 + base / 2, 0), (w / 2, base / 2, d / 2)))
        if kind == "sofa":
            cv.add(cv.box((0, 0, -d / 2 + 0.1), (w / 2, h / 2, 0.1)))
            for s in (-1, 1):
                cv.add(cv.box((s * (w / 2 - 0.09), y0 + 0.3, 0), (0.09, 0.3, d / 2)))
        else:
            cv.add(cv.box((0, 0, -d / 2 + 0.04), (w / 2, h / 2, 0.04)))
            cv.add(cv.box((0, y0 + base + 0.05, -d / 2 + 0.3), (w / 2 - 0.15, 0.05, 0.15)))
        return cv.occ, "a " + kind
    raise ValueError(kind)


def _csg(kind, rng, R):
    if kind == "box":
        w, h, d = rng.uniform(0.5, 1.0, 3)
        cv = Canvas((w, h, d), R)
        cv.add(cv.box((0, 0, 0), (w / 2, h / 2, d / 2)))
        cv.cut(cv.box((0, 0.06, 0), (w / 2 - 0.05, h / 2, d / 2 - 0.05)))
        return cv.occ, "an open box"
    if kind == "arch":
        w, h, d = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), rng.uniform(0.2, 0.5)
        cv = Canvas((w, h, d), R)
        cv.add(cv.box((0, 0, 0), (w / 2, h / 2, d / 2)))
        r = w * rng.uniform(0.25, 0.35)
        cv.cut(cv.box((0, -h / 2 + (h - r) / 2 - 0.1, 0), (r, (h - r) / 2, d)))
        cv.cut(cv.cyl((0, -h / 2 + (h - r) - 0.1, 0), r, d, axis=2))
        return cv.occ, "an arch"
    raise ValueError(kind)


LATHE = ["mug", "vase", "bowl", "bottle", "lamp", "barrel", "pillar"]
FURNITURE = ["table", "round table", "chair", "stool", "bench", "bookshelf", "cabinet", "bed", "sofa"]
CSG = ["box", "arch"]
KINDS = LATHE + FURNITURE + CSG


def make(kind: str, rng: np.random.Generator, R: int = 64) -> tuple[np.ndarray, str]:
    if kind in LATHE:
        return _lathe_object(kind, rng, R)
    if kind in FURNITURE:
        return _furniture(kind, rng, R)
    if kind in CSG:
        return _csg(kind, rng, R)
    raise ValueError(f"unknown procedural kind {kind!r}; kinds: {', '.join(KINDS)}")
