"""Mesh files for the 3D panel and `weft-cli shape`: export OBJ / PLY / GLB and import any of them
(plus STL / OFF) through trimesh, with plain-sentence errors for broken files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

EXPORT_FORMATS = (".obj", ".ply", ".glb")
IMPORT_FORMATS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")
MAX_IMPORT_MB = 200


class MeshFileError(ValueError):
    """A mesh file that cannot be written or read; the message is shown to the user as is."""


def export_mesh(vertices: np.ndarray, faces: np.ndarray, path: str | Path) -> Path:
    """Write a mesh (vertices (V, 3) in the unit cube, Y up; faces (F, 3)) as OBJ, PLY or GLB."""
    import trimesh

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXPORT_FORMATS:
        raise MeshFileError(f"Cannot save '{path.name}': choose a name ending in {', '.join(EXPORT_FORMATS)}.")
    v = np.asarray(vertices, np.float64).reshape(-1, 3)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(f) == 0:
        raise MeshFileError("There is no mesh to save yet: generate or import one first.")
    mesh = trimesh.Trimesh(v, f, process=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mesh.export(str(path), file_type=ext[1:])
    except OSError as e:
        raise MeshFileError(f"Could not write {path}: {e.strerror or e}") from None
    return path


def import_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a mesh file -> (vertices (V, 3) float32 centred with the longest side 1, faces (F, 3) uint32)."""
    import trimesh

    path = Path(path)
    if not path.exists():
        raise MeshFileError(f"{path} does not exist.")
    ext = path.suffix.lower()
    if ext not in IMPORT_FORMATS:
        raise MeshFileError(f"'{path.name}' is not a mesh file this panel reads ({', '.join(IMPORT_FORMATS)}).")
    if path.stat().st_size > MAX_IMPORT_MB * 2**20:
        raise MeshFileError(f"'{path.name}' is over {MAX_IMPORT_MB} MB; simplify it first.")
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many kinds for broken files
        raise MeshFileError(f"'{path.name}' could not be read as {ext[1:].upper()}: {str(e) or type(e).__name__}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshFileError(f"'{path.name}' holds no triangles to show.")
    v = np.asarray(loaded.vertices, np.float64)
    if not np.isfinite(v).all():
        raise MeshFileError(f"'{path.name}' has vertices that are not numbers (NaN or infinite).")
    lo, hi = v.min(0), v.max(0)
    span = float((hi - lo).max())
    if span <= 0:
        raise MeshFileError(f"'{path.name}' has no extent (all vertices at one point).")
    f = np.asarray(loaded.faces, np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise MeshFileError(f"'{path.name}' has faces that point at missing vertices.")
    return ((v - (lo + hi) / 2) / span).astype(np.float32), f.astype(np.uint32)
