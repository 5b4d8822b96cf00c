"""Occupancy grid -> smooth triangle mesh (scikit-image marching cubes + trimesh Taubin smoothing).

The grid (R, R, R) covers the cube [-0.5, 0.5]^3, Y up; vertices come back in those units.
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi


def extract(occ: np.ndarray, sigma: float = 0.8, smooth_iters: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """occ: (R, R, R) bool -> (vertices (V, 3) float32, faces (F, 3) int32). Empty grid -> empty mesh."""
    from skimage.measure import marching_cubes

    occ = np.asarray(occ, bool)
    R = occ.shape[0]
    if not occ.any():
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    field = ndi.gaussian_filter(np.pad(occ, 2).astype(np.float32), sigma) if sigma > 0 else np.pad(occ, 2).astype(np.float32)
    level = min(0.5, float(field.max()) * 0.5)
    v, f, _, _ = marching_cubes(field, level=level, allow_degenerate=False)
    v = (v - 2 + 0.5) / R - 0.5
    if smooth_iters and len(f):
        import trimesh

        m = trimesh.Trimesh(v, f, process=False)
        trimesh.smoothing.filter_taubin(m, lamb=0.5, nu=-0.53, iterations=smooth_iters)
        v = np.asarray(m.vertices)
    # marching_cubes orients faces for a field that grows inwards; flip so normals point out
    return v.astype(np.float32), np.ascontiguousarray(f[:, ::-1]).astype(np.int32)


def points_on(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n points sampled uniformly on a mesh's surface (for Chamfer distances). (n, 3) float32."""
    import trimesh

    if len(faces) == 0:
        return np.zeros((n, 3), np.float32)
    pts, _ = trimesh.sample.sample_surface(trimesh.Trimesh(vertices, faces, process=False), n, seed=seed)
    return pts.astype(np.float32)
