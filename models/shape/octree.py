"""Octrees of solid occupancy grids, serialised level by level in z-order (OctGPT).

A node of level k is a cell of the 2^k grid. Its state is EMPTY, FULL or MIXED (some of its
voxels are inside the shape, some are not). Only MIXED nodes are split, so the octree of a
64^3 grid is a list of levels; level k holds every MIXED node of the 2^k grid, sorted by Morton
(z-order) code, each with its *pattern*: the states of its 8 children at level k+1 (child c sits
at offset ((c >> 2) & 1, (c >> 1) & 1, c & 1), i.e. Morton order). One node = one token.

Children of a node are contiguous in Morton order, so the next level's nodes come out sorted by
construction: expanding level k's MIXED children in order gives level k+1.

Coordinates: grid index (x, y, z), Y up, the shape normalised into the cube [-0.5, 0.5]^3;
`centres()` returns world coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EMPTY, FULL, MIXED = 0, 1, 2
CHILD_OFFSETS = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=np.int64)  # (8, 3)


def morton(xyz: np.ndarray, bits: int) -> np.ndarray:
    """Morton (z-order) codes of integer coordinates (N, 3) with `bits` bits per axis (x most significant)."""
    xyz = np.asarray(xyz, dtype=np.int64)
    code = np.zeros(len(xyz), dtype=np.int64)
    for b in range(bits - 1, -1, -1):
        for a in range(3):
            code = (code << 1) | ((xyz[:, a] >> b) & 1)
    return code


def state_pyramid(occ: np.ndarray) -> list[np.ndarray]:
    """occ: (R, R, R) bool with R a power of two -> [states of the 1, 2, 4, ..., R grids] (uint8)."""
    R = occ.shape[0]
    if occ.shape != (R, R, R) or R & (R - 1):
        raise ValueError(f"occupancy must be a cube with a power-of-two side, got {occ.shape}")
    frac = occ.astype(np.float32)
    out = [np.where(occ, FULL, EMPTY).astype(np.uint8)]
    while frac.shape[0] > 1:
        n = frac.shape[0] // 2
        frac = frac.reshape(n, 2, n, 2, n, 2).mean(axis=(1, 3, 5))
        out.append(np.where(frac <= 0, EMPTY, np.where(frac >= 1, FULL, MIXED)).astype(np.uint8))
    return out[::-1]


@dataclass
class OctreeLevel:
    """The MIXED nodes of one level: integer coordinates (N, 3) in the 2^depth grid, their slot in
    the parent (N,), 8..0 = root, the parent's pattern (N, 8) and their own pattern (N, 8) (-1 = unknown)."""

    depth: int
    xyz: np.ndarray
    slot: np.ndarray
    parent_pattern: np.ndarray
    pattern: np.ndarray

    def __len__(self) -> int:
        return len(self.xyz)


@dataclass
class Octree:
    levels: list[OctreeLevel] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return sum(len(lv) for lv in self.levels)

    def next_level(self) -> OctreeLevel:
        """The MIXED children of the last (fully decoded) level, as a new level with unknown patterns."""
        if not self.levels:
            return root_level()
        return expand(self.levels[-1])

    def to_grid(self, depth: int | None = None, mixed_as: int = FULL) -> np.ndarray:
        """States of the 2^depth grid (uint8), depth <= len(levels). Leaves still MIXED at that depth
        become `mixed_as` (FULL for a solid preview; MIXED to keep them)."""
        depth = len(self.levels) if depth is None else depth
        grid = np.full((1, 1, 1), MIXED, np.uint8)
        for k in range(depth):
            lv = self.levels[k]
            grid = np.repeat(np.repeat(np.repeat(grid, 2, 0), 2, 1), 2, 2)
            if len(lv):
                child = (2 * lv.xyz[:, None, :] + CHILD_OFFSETS[None]).reshape(-1, 3)
                grid[child[:, 0], child[:, 1], child[:, 2]] = lv.pattern.reshape(-1)
        if mixed_as != MIXED:
            grid = np.where(grid == MIXED, np.uint8(mixed_as), grid)
        return grid


def root_level() -> OctreeLevel:
    return OctreeLevel(0, np.zeros((1, 3), np.int64), np.full(1, 8, np.int64), np.full((1, 8), -1, np.int64),
                       np.full((1, 8), -1, np.int64))


def expand(lv: OctreeLevel) -> OctreeLevel:
    """Children of `lv` whose predicted state is MIXED, in Morton order."""
    pat = lv.pattern
    n_idx, c_idx = np.nonzero(pat == MIXED)  # row-major: parents in order, children in Morton order
    xyz = 2 * lv.xyz[n_idx] + CHILD_OFFSETS[c_idx]
    return OctreeLevel(lv.depth + 1, xyz, c_idx.astype(np.int64), pat[n_idx].astype(np.int64),
                       np.full((len(n_idx), 8), -1, np.int64))


def serialise(occ: np.ndarray, depth: int | None = None) -> Octree:
    """Occupancy grid (R, R, R) bool -> octree with `depth` levels (default log2 R: down to voxels).
    Level k's patterns describe the 2^(k+1) grid; the last level's patterns are the finest grid."""
    pyr = state_pyramid(occ)
    depth = len(pyr) - 1 if depth is None else depth
    if not 1 <= depth <= len(pyr) - 1:
        raise ValueError(f"depth must be in 1..{len(pyr) - 1}, got {depth}")
    tree = Octree()
    if pyr[0][0, 0, 0] != MIXED:
        raise ValueError("the grid is entirely empty or entirely full: nothing to serialise")
    lv = root_level()
    for k in range(depth):
        child = 2 * lv.xyz[:, None, :] + CHILD_OFFSETS[None]  # (N, 8, 3)
        lv.pattern = pyr[k + 1][child[..., 0], child[..., 1], child[..., 2]].astype(np.int64)
        tree.levels.append(lv)
        if k + 1 < depth:
            lv = expand(lv)
    return tree


def deserialise(tree: Octree, resolution: int | None = None) -> np.ndarray:
    """Octree -> occupancy (R, R, R) bool at the finest decoded level (MIXED leaves count as inside),
    upsampled to `resolution` when that is finer."""
    grid = tree.to_grid(mixed_as=FULL) == FULL
    if resolution is not None and resolution != grid.shape[0]:
        f = resolution // grid.shape[0]
        if f < 1 or f * grid.shape[0] != resolution:
            raise ValueError(f"cannot upsample a {grid.shape[0]}^3 grid to {resolution}^3")
        grid = np.repeat(np.repeat(np.repeat(grid, f, 0), f, 1), f, 2)
    return grid


def tokens(tree: Octree) -> dict[str, np.ndarray]:
    """Flat token arrays of a serialised octree: level (T,), xyz (T, 3), slot (T,), parent (T, 8), pattern (T, 8)."""
    lv = tree.levels
    return {
        "level": np.concatenate([np.full(len(x), x.depth, np.int64) for x in lv]),
        "xyz": np.concatenate([x.xyz for x in lv]),
        "slot": np.concatenate([x.slot for x in lv]),
        "parent": np.concatenate([x.parent_pattern for x in lv]),
        "pattern": np.concatenate([x.pattern for x in lv]),
    }


def rope_positions(level: np.ndarray, xyz: np.ndarray, finest: int = 64) -> np.ndarray:
    """Node centres in units of the finest grid (T, 3) float: the same place gets the same rotary
    position at every level, so attention across levels sees where things are."""
    size = finest / (2.0 ** np.asarray(level, np.float64))
    return (np.asarray(xyz, np.float64) + 0.5) * size[:, None]


def voxels(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """States grid (R, R, R) -> (centres (N, 3) float32 in [-0.5, 0.5], state (N,) uint8 FULL/MIXED,
    voxel size) of every non-empty cell: what the viewport draws for one level."""
    R = grid.shape[0]
    idx = np.argwhere(grid != EMPTY)
    centres = ((idx + 0.5) / R - 0.5).astype(np.float32)
    return centres, grid[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.uint8), 1.0 / R
