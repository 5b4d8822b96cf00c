"""Mesh files for the 3D panel and `weft-cli shape`: export OBJ / PLY / GLB and import any of them
(plus STL / OFF) through trimesh, with plain-sentence errors for broken files."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

EXPORT_FORMATS = (".obj", ".ply", ".glb")
IMPORT_FORMATS = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")
MAX_IMPORT_MB = 200
MAX_VERTICES = 5_000_000
MAX_FACES = 10_000_000  # triangles (a face line may hold a polygon: counted again after loading)


class MeshFileError(ValueError):
    """A mesh file that cannot be written or read; the message is shown to the user as is."""


MAX_EXPORT_HEIGHT_RATIO = 4.0  # scaling by height: the longest side is taken as at most 4x the height
MATERIAL_NAME = "weft_default"
BASE_COLOR = (0.8, 0.8, 0.8, 1.0)  # light grey, linear
ROUGHNESS = 0.6
METALLIC = 0.0


def place(vertices: np.ndarray, metres: float = 1.0, measure: str = "longest") -> np.ndarray:
    """Vertices in any units (Y up, +Z front) -> metres, standing on the floor: min y = 0, the bounding
    box centred in x and z, scaled uniformly so that `measure` ("height": the Y extent, "longest": the
    largest side) is `metres`. A flat shape scaled by height counts its height as at least a quarter of
    its longest side, so a slab asked to be 0.75 m tall does not become 30 m wide. No rotation."""
    v = np.asarray(vertices, np.float64).reshape(-1, 3)
    if len(v) == 0 or not np.isfinite(v).all():
        raise MeshFileError("The mesh has no usable vertices (empty, NaN or infinite), so nothing was saved.")
    if not (np.isfinite(metres) and metres > 0):
        raise MeshFileError(f"The size must be a positive number of metres (got {metres}).")
    lo, hi = v.min(0), v.max(0)
    ext = hi - lo
    longest = float(ext.max())
    if not longest > 0:
        raise MeshFileError("The mesh has no extent (all its vertices are at one point), so nothing was saved.")
    ref = max(float(ext[1]), longest / MAX_EXPORT_HEIGHT_RATIO) if measure == "height" else longest
    s = float(metres) / ref
    out = (v - np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])) * s
    out[:, 1] = np.maximum(out[:, 1], 0.0)  # exactly 0 at the bottom despite rounding
    return out


def _mtl(name: str) -> str:
    """A plain Phong .mtl that Blender (Kd, Ns -> roughness, Pr/Pm when read) and three.js's MTLLoader
    (Kd, Ks, Ns) read as the same light grey, non-metallic, fairly rough material as the GLB's."""
    r, g, b, _ = BASE_COLOR
    ns = 1000 * (1 - ROUGHNESS) ** 2  # Blender's importer: roughness = 1 - sqrt(Ns / 1000)
    return (f"# Weft Studio default material\nnewmtl {name}\nKa 0 0 0\nKd {r:.4f} {g:.4f} {b:.4f}\n"
            f"Ks 0.04 0.04 0.04\nNs {ns:.1f}\nd 1\nillum 2\nPr {ROUGHNESS:g}\nPm {METALLIC:g}\n")


def export_mesh(vertices: np.ndarray, faces: np.ndarray, path: str | Path, metres: float = 1.0,
                measure: str = "longest") -> Path:
    """Write a mesh (vertices (V, 3) Y up, +Z front, any units; faces (F, 3)) as OBJ, PLY or GLB the way
    a DCC tool (Blender, three.js) takes it as is: in metres (`metres` on `measure`, see `place`),
    standing on the floor and centred, with smooth vertex normals, and a default PBR material (GLB) or a
    .mtl next to the .obj (named after it). The mesh keeps its orientation (Y up, +Z front)."""
    import trimesh
    from trimesh.visual.material import PBRMaterial

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXPORT_FORMATS:
        raise MeshFileError(f"Cannot save '{path.name}': choose a name ending in {', '.join(EXPORT_FORMATS)}.")
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(f) == 0:
        raise MeshFileError("There is no mesh to save yet: generate or import one first.")
    v = place(vertices, metres, measure)
    if f.min() < 0 or f.max() >= len(v):
        raise MeshFileError("The mesh has faces that point at missing vertices, so nothing was saved.")
    mesh = trimesh.Trimesh(v, f, process=False)
    try:
        if mesh.is_watertight and mesh.volume < 0:  # inside out: normals must point outwards
            mesh.invert()
    except Exception:  # a degenerate mesh: keep its winding as given
        pass
    normals = np.asarray(mesh.vertex_normals, np.float64)  # area-weighted face normals, smooth
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if ext == ".glb":
            mesh.visual = trimesh.visual.TextureVisuals(material=PBRMaterial(
                name=MATERIAL_NAME, baseColorFactor=[round(c * 255) for c in BASE_COLOR],
                metallicFactor=METALLIC, roughnessFactor=ROUGHNESS, doubleSided=False))
            mesh.vertex_normals = normals
            path.write_bytes(trimesh.exchange.gltf.export_glb(mesh, include_normals=True))
        elif ext == ".obj":
            from trimesh.exchange.obj import export_obj

            mtl = path.with_suffix(".mtl")
            text = export_obj(mesh, include_normals=True, include_color=False, include_texture=False,
                              header=None)
            body = "\n".join(ln for ln in text.splitlines() if not ln.startswith(("mtllib", "usemtl")))
            path.write_text(f"# Weft Studio: metres, Y up, +Z front\nmtllib {mtl.name}\no {path.stem or 'shape'}\n"
                            f"usemtl {MATERIAL_NAME}\n{body}\n", encoding="utf-8")
            mtl.write_text(_mtl(MATERIAL_NAME), encoding="utf-8")
        else:
            mesh.vertex_normals = normals
            path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary", vertex_normal=True))
    except OSError as e:
        raise MeshFileError(f"Could not write {path}: {e.strerror or e}") from None
    return path


class _Refused(ValueError):
    """A check of ours before trimesh: the message is already a plain phrase ("it has ...")."""


def _shown(name: str, n: int = 60) -> str:
    """A file name for a message: printable, one line, not too long."""
    t = "".join(c if c.isprintable() else "?" for c in name)
    return t if len(t) <= n else t[:n - 1] + "…"


_PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
              "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "float16": 2,
              "int64": 8, "uint64": 8, "double": 8, "float64": 8}


def _check_ply(data: bytes) -> tuple[bytes, dict[str, int]]:
    """Read a PLY header ourselves: counts within the limits, x/y/z present, enough bytes for what the
    header promises. Returns the data with a non-UTF-8 header (e.g. a Latin-1 comment) re-encoded, and
    the header's element counts."""
    end = data.find(b"end_header", 0, 65536)
    if end < 0:
        raise _Refused("its PLY header is damaged or never ends")
    nl = data.find(b"\n", end)
    body_at = len(data) if nl < 0 else nl + 1
    head = data[:body_at]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        head = head.decode("latin-1").encode("utf-8")
        data = head + data[body_at:]
        body_at = len(head)
    lines = [ln.split() for ln in head.decode("utf-8").splitlines()]
    fmt = next((ln[1] for ln in lines if len(ln) >= 2 and ln[0] == "format"), "")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise _Refused("its PLY header does not say whether the data is text or binary")
    elements: list[list] = []  # [name, count, min bytes per row]
    for ln in lines:
        if not ln:
            continue
        if ln[0] == "element":
            if len(ln) != 3 or not ln[2].isdecimal() or len(ln[2]) > 12:
                raise _Refused("its PLY header has an element without a whole-number count")
            elements.append([ln[1], int(ln[2]), 0, set()])
        elif ln[0] == "property":
            if not elements:
                raise _Refused("its PLY header lists a property before any element")
            types = ln[2:4] if len(ln) >= 2 and ln[1] == "list" else ln[1:2]
            if len(ln) < (5 if ln[1:2] == ["list"] else 3) or any(t not in _PLY_SIZES for t in types):
                raise _Refused("its PLY header has a property of an unknown type")
            elements[-1][2] += 2 if fmt == "ascii" else _PLY_SIZES[types[0]]  # a list may be empty
            elements[-1][3].add(ln[-1])
    counts = {e[0]: e[1] for e in elements}
    vertex = next((e for e in elements if e[0] == "vertex"), None)
    if vertex is None or not {"x", "y", "z"} <= vertex[3]:
        raise _Refused("its vertices have no x, y, z coordinates")
    _check_counts(counts.get("vertex", 0), counts.get("face", 0))
    need = sum(e[1] * e[2] for e in elements) - (1 if fmt == "ascii" else 0)
    if need > len(data) - body_at:
        raise _Refused(f"it is cut short: the header promises {counts.get('vertex', 0):,} vertices and "
                         f"{counts.get('face', 0):,} faces but the file is smaller")
    return data, counts


def _check_counts(n_vertices: int, n_faces: int) -> None:
    if n_vertices > MAX_VERTICES:
        raise _Refused(f"it has {n_vertices:,} vertices; at most {MAX_VERTICES:,} are read")
    if n_faces > MAX_FACES:
        raise _Refused(f"it has {n_faces:,} faces; at most {MAX_FACES:,} are read")


def _prepare(ext: str, data: bytes) -> tuple[bytes, dict[str, int]]:
    """Cheap checks before trimesh: counts from the header (or lines) within the limits, and text
    formats handed over as UTF-8 whatever their encoding (a Latin-1 comment must not stop a file).
    Returns the data to load and the counts a PLY header promises ({} for other formats)."""
    if ext == ".ply":
        return _check_ply(data)
    if ext in (".obj", ".off"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            if data.count(b"\0") > len(data) // 100:
                raise _Refused("it is binary data, not text") from None
            data = data.decode("latin-1").encode("utf-8")
    if ext == ".obj":
        _check_counts(len(re.findall(rb"(?m)^[ \t]*v[ \t]", data)), len(re.findall(rb"(?m)^[ \t]*f[ \t]", data)))
    elif ext == ".off":
        toks = re.sub(rb"#[^\n]*", b"", data[:4096]).split()
        if toks and toks[0].upper().endswith(b"OFF"):
            nums = toks[1:3]
            if len(nums) == 2 and all(t.isdigit() and len(t) < 13 for t in nums):
                _check_counts(int(nums[0]), int(nums[1]))
    elif ext == ".glb":
        if len(data) < 20 or data[:4] != b"glTF":
            raise _Refused("it lacks the GLB header, so it is not a glTF binary file")
        if int.from_bytes(data[4:8], "little") != 2:
            raise _Refused("it is not a glTF 2.0 binary file (only version 2 is read)")
        if int.from_bytes(data[8:12], "little") > len(data):
            raise _Refused("it is cut short: its header promises more bytes than the file holds")
    elif ext == ".stl" and len(data) >= 84 and not data[:5].lower() == b"solid":
        n = int.from_bytes(data[80:84], "little")
        if 84 + 50 * n == len(data):
            _check_counts(0, n)
    return data, {}


_PLAIN_MARKERS = re.compile(r"error|exception|traceback|index|range|module|attribute|nonetype|object|argument|"
                            r"dtype|shape|array|axis|buffer|unpack|[`_()\[\]{}'\"<>=\\/|]", re.I)


def _readable(msg: str) -> str | None:
    """A library's message when it is a short plain English phrase, else None."""
    msg = " ".join(str(msg).split()).rstrip(".!")
    if not 12 <= len(msg) <= 100 or len(msg.split()) < 3 or _PLAIN_MARKERS.search(msg):
        return None
    if sum(c.isalpha() or c == " " for c in msg) < 0.85 * len(msg):
        return None
    return msg[0].lower() + msg[1:] if msg[1:2].islower() else msg  # keep "PLY ..." as it is


def _reason(e: BaseException, fmt: str) -> str:
    """A plain phrase for what trimesh (or our checks) raised; never the library's own words unless
    they already read as plain English."""
    import json
    import struct

    text = str(e)
    if isinstance(e, _Refused):  # our own checks above
        return text
    if isinstance(e, MemoryError):
        return "it is too large to load into memory"
    if isinstance(e, RecursionError):
        return "its structure is nested too deeply"
    if isinstance(e, ImportError):
        return f"a library needed to read {fmt} files is missing (reinstall Weft Studio)"
    if isinstance(e, UnicodeError):
        return "it is not text in an encoding this importer knows"
    if isinstance(e, json.JSONDecodeError):
        return "its JSON part is damaged"
    if isinstance(e, (struct.error, EOFError)):
        return "it is cut short or damaged"
    if isinstance(e, KeyError):
        if e.args and e.args[0] in ("x", "y", "z"):
            return "its vertices have no x, y, z coordinates"
        return "a part the format requires is missing"
    if isinstance(e, IndexError):
        if "out of bounds" in text:
            return "it has faces that point at vertices that do not exist"
        return "it refers to data that is not in the file (it is damaged or cut short)"
    if isinstance(e, NotImplementedError):
        return "it uses a feature this importer does not support"
    if isinstance(e, ValueError) and ("could not convert" in text or "unmatched data" in text):
        return "it holds a value that is not a number"
    if isinstance(e, ValueError) and "invalid literal for int" in text:
        return "it holds an index or a count that is not a whole number"
    if isinstance(e, ValueError) and ("reshape" in text or "buffer" in text or "unexpected length" in text):
        return "its data does not match the counts it declares (it is damaged or cut short)"
    if isinstance(e, ValueError) and "values to unpack" in text:
        return "its header is damaged (a count or a field is missing)"
    if isinstance(e, ValueError) and ("inhomogeneous" in text or "with a sequence" in text):
        return "its rows do not all hold the same number of values"
    return _readable(text) or f"the file is damaged or not {_a(fmt)} file"


def _a(fmt: str) -> str:
    return ("an " if fmt[:1] in "AEFHILMNORSX" else "a ") + fmt


def import_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a mesh file -> (vertices (V, 3) float32 centred with the longest side 1, faces (F, 3) uint32).
    Every failure is a MeshFileError with one plain sentence that names the file: a size limit
    (MAX_IMPORT_MB) and count limits (MAX_VERTICES, MAX_FACES) are checked before trimesh reads it."""
    import trimesh

    path = Path(path)
    name = _shown(path.name)
    if not path.exists():
        raise MeshFileError(f"{_shown(str(path), 200)} does not exist.")
    if not path.is_file():
        raise MeshFileError(f"'{name}' is not a file.")
    ext = path.suffix.lower()
    if ext not in IMPORT_FORMATS:
        raise MeshFileError(f"'{name}' is not a mesh file this panel reads ({', '.join(IMPORT_FORMATS)}).")
    fmt = ext[1:].upper()
    size = path.stat().st_size
    if size == 0:
        raise MeshFileError(f"'{name}' is empty (0 bytes).")
    if size > MAX_IMPORT_MB * 2**20:
        raise MeshFileError(f"'{name}' is {size / 2**20:.0f} MB; at most {MAX_IMPORT_MB} MB are read (simplify it first).")
    try:
        data, promised = _prepare(ext, path.read_bytes())
        if ext == ".gltf":  # its buffers may live in files next to it
            loaded = trimesh.load(str(path), force="mesh", process=False)
        else:
            loaded = trimesh.load(io.BytesIO(data), file_type=ext[1:], force="mesh", process=False)
    except OSError as e:
        raise MeshFileError(f"'{name}' could not be opened: {(e.strerror or 'the system refused').lower()}.") from None
    except Exception as e:  # trimesh raises many kinds for broken files
        raise MeshFileError(f"'{name}' could not be read as {fmt}: {_reason(e, fmt)}.") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshFileError(f"'{name}' holds no triangles to show: it is empty, damaged or not {_a(fmt)} file.")
    if promised:  # trimesh reads a cut-short PLY without a word: compare with what its header promised
        if len(loaded.vertices) < promised.get("vertex", 0) or len(loaded.faces) < promised.get("face", 0):
            raise MeshFileError(f"'{name}' could not be read as PLY: it is cut short (its header promises "
                                f"{promised.get('vertex', 0):,} vertices and {promised.get('face', 0):,} faces).")
    try:
        _check_counts(len(loaded.vertices), len(loaded.faces))
    except _Refused as e:
        raise MeshFileError(f"'{name}' is too large to show: {e}.") from None
    v = np.asarray(loaded.vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshFileError(f"'{name}' could not be read as {fmt}: its vertices are not 3D points.")
    if not np.isfinite(v).all():
        raise MeshFileError(f"'{name}' has vertices that are not numbers (NaN or infinite).")
    lo, hi = v.min(0), v.max(0)
    span = float((hi - lo).max())
    if not span > 0 or not np.isfinite(span):
        raise MeshFileError(f"'{name}' has no usable extent (all vertices at one point, or too far apart).")
    f = np.asarray(loaded.faces, np.int64)
    if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= len(v):
        raise MeshFileError(f"'{name}' has faces that point at missing vertices.")
    return ((v - (lo + hi) / 2) / span).astype(np.float32), f.astype(np.uint32)
