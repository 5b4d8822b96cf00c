"""Fuzzing the 3D panel's file importers (GitHub issues 21, 24, 25): meshes (app/shape_files.py, via
trimesh) and sketch images (app/sketch_files.py, via PIL). Every malformed file is either read or
refused with the importer's own error: one plain line that names the file, in well under 2 s.
App code without Qt: these tests need neither a display nor PySide6."""
from __future__ import annotations

import io
import random
import time
import zlib

import numpy as np
import pytest

from app.shape_files import MAX_VERTICES, MeshFileError, import_mesh
from app.sketch_files import MAX_SIDE, SketchFileError, load_sketch
from tests.fuzz_util import FuzzTally, check_refusal, mutate_bytes, mutate_text

N_MESH = 300
N_SKETCH = 200

OBJ = """# a unit cube with quads
o cube
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
v 1 0 1
v 1 1 1
v 0 1 1
vn 0 0 -1
f 1 4 3 2
f 5 6 7 8
f 1 2 6 5
f 2 3 7 6
f 3 4 8 7
f 4 1 5 8
"""
PLY = """ply
format ascii 1.0
comment a tetrahedron
element vertex 4
property float x
property float y
property float z
element face 4
property list uchar int vertex_indices
end_header
0 0 0
1 0 0
0 1 0
0 0 1
3 0 1 2
3 0 1 3
3 0 2 3
3 1 2 3
"""
OFF = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


def _binary_seeds() -> dict[str, bytes]:
    import trimesh

    box = trimesh.creation.box()
    out = {}
    for ext in ("glb", "stl", "ply"):
        out[ext] = box.export(file_type=ext)
    return out


def _mesh_extra() -> list[str]:
    return ["f 1 2 99", "f 0 0 0", "f -1 -2 -99", "f 1/1/1 2/2/2 3/3/3", "v nan 0 0", "v 1e999 1 1", "v 1 2",
            "f", "element vertex 999999999", "element face -3", "property float w", "property list uchar int",
            "format binary_little_endian 1.0", "end_header", "mtllib missing.mtl", "usemtl x", "o", "g",
            "caf\xe9 mod\xe8le", "\n" * 20, "4000000000 1 0", "3 0 1 77"]


@pytest.fixture(scope="module")
def warm_trimesh():
    import trimesh  # noqa: F401  (importing trimesh takes ~1 s once: not part of a file's time)


@pytest.mark.timeout(60)
def test_mesh_fuzz_is_read_or_refused_plainly(tmp_path, warm_trimesh):
    rng = random.Random(25)
    text_seeds = {"obj": OBJ, "ply": PLY, "off": OFF}
    bin_seeds = _binary_seeds()
    tally = FuzzTally(MeshFileError)
    for i in range(N_MESH):
        if rng.random() < 0.6:
            ext = rng.choice(list(text_seeds))
            kind, text = mutate_text(rng, text_seeds[ext], _mesh_extra())
            data = text.encode("utf-8", errors="surrogatepass") if rng.random() < 0.8 else text.encode("latin-1", "replace")
        else:
            ext = rng.choice(list(bin_seeds))
            kind, data = mutate_bytes(rng, bin_seeds[ext])
        path = tmp_path / f"fuzz{i}.{ext}"
        path.write_bytes(data)
        tally.run(f"mesh #{i} ({ext}, {kind})", _import_named, path)
    for ext, data in [("obj", b""), ("ply", b"ply\n"), ("glb", b"glTF"), ("stl", b"\x00" * 84),
                      ("off", b"OFF\n"), ("obj", bytes(range(256)) * 8), ("glb", b"glTF\x02\x00\x00\x00" + b"\xff" * 40),
                      ("gltf", b"{not json"), ("gltf", b'{"asset": {"version": "2.0"}, "buffers": [{"uri": "../x.bin"}]}')]:
        path = tmp_path / f"literal.{ext}"
        path.write_bytes(data)
        tally.run(f"mesh literal {data[:16]!r}.{ext}", _import_named, path)
    print(tally.report("meshes"))
    assert tally.outcomes["ok"] > 0


def _import_named(path):
    """import_mesh, and every refusal names the file."""
    try:
        return import_mesh(path)
    except MeshFileError as e:
        assert path.name in str(e), str(e)
        raise


def _refused(path, words: str, error=MeshFileError, fn=None) -> str:
    t0 = time.perf_counter()
    with pytest.raises(error) as e:
        (fn or import_mesh)(path)
    dt = time.perf_counter() - t0
    msg = check_refusal(e.value, words)
    assert words in msg and path.name in msg, msg
    assert dt < 1.0, f"{dt:.2f} s for {msg}"
    return msg


@pytest.mark.timeout(60)
def test_obj_with_a_latin1_comment_loads(tmp_path, warm_trimesh):
    p = tmp_path / "chaise.obj"
    p.write_bytes(("# chaise de caf\xe9, mod\xe8le \xa9 2024\n" + OBJ).encode("latin-1"))
    v, f = import_mesh(p)
    assert v.shape == (8, 3) and f.shape == (12, 3)
    p = tmp_path / "chaise.ply"
    p.write_bytes(PLY.replace("a tetrahedron", "t\xe9tra\xe8dre").encode("latin-1"))
    v, f = import_mesh(p)
    assert v.shape == (4, 3) and f.shape == (4, 3)


@pytest.mark.timeout(60)
def test_out_of_range_faces_and_nan_vertices_are_refused(tmp_path, warm_trimesh):
    cases = {"far.obj": (OBJ + "f 1 2 99\n", "faces that point at"),
             "neg.obj": (OBJ + "f -1 -2 -99\n", "faces that point at"),
             "far.ply": (PLY.replace("3 1 2 3", "3 1 2 77"), "faces that point at"),
             "neg.ply": (PLY.replace("3 1 2 3", "3 1 2 -5"), "faces that point at"),
             "nan.obj": (OBJ.replace("v 1 0 0", "v nan 0 0"), "not numbers"),
             "inf.ply": (PLY.replace("1 0 0\n", "1e999 0 0\n"), "not numbers"),
             "nox.ply": (PLY.replace("property float x\n", ""), "no x, y, z"),
             "short.ply": (PLY[:-20], "cut short"),
             "huge.ply": (PLY.replace("element vertex 4", "element vertex 4000000000"), f"{MAX_VERTICES:,}"),
             "huge.off": (OFF.replace("4 4 0", "900000000 4 0"), f"{MAX_VERTICES:,}")}
    for name, (text, words) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        _refused(p, words)


@pytest.mark.timeout(60)
def test_glb_garbage_and_empty_files_are_refused(tmp_path, warm_trimesh):
    rng = np.random.default_rng(0)
    cases = {"noise.glb": (rng.bytes(300), "GLB header"),
             "v1.glb": (b"glTF\x01\x00\x00\x00" + rng.bytes(100), "version 2"),
             "cut.glb": (_binary_seeds()["glb"][:200], "cut short"),
             "empty.obj": (b"", "empty (0 bytes)"),
             "noise.obj": (rng.bytes(400), "OBJ")}
    for name, (data, words) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        _refused(p, words)


# ---- sketch images -------------------------------------------------------------------------------
def _sketch_seeds() -> dict[str, bytes]:
    from PIL import Image

    a = np.full((96, 128), 255, np.uint8)
    a[20:80, 60:64] = 0
    a[70:74, 30:100] = 0
    out = {}
    for fmt, mode in (("png", "L"), ("jpeg", "RGB"), ("bmp", "RGB"), ("gif", "P"), ("png", "RGBA"), ("tiff", "L")):
        buf = io.BytesIO()
        img = Image.fromarray(a).convert(mode)
        img.save(buf, format=fmt)
        out[f"{fmt}_{mode}"] = buf.getvalue()
    return out


@pytest.mark.timeout(60)
def test_sketch_fuzz_is_read_or_refused_plainly(tmp_path):
    rng = random.Random(2125)
    seeds = _sketch_seeds()
    tally = FuzzTally(SketchFileError)
    for i in range(N_SKETCH):
        name = rng.choice(list(seeds))
        kind, data = mutate_bytes(rng, seeds[name])
        path = tmp_path / f"sketch{i}.{name.split('_')[0]}"
        path.write_bytes(data)
        tally.run(f"sketch #{i} ({name}, {kind})", _sketch_named, path)
    for data in (b"", b"\x89PNG\r\n\x1a\n", b"hello", bytes(range(256)) * 4, _png_header(0, 10), _png_header(70000, 70000)):
        path = tmp_path / "literal.png"
        path.write_bytes(data)
        tally.run(f"sketch literal {data[:16]!r}", _sketch_named, path)
    print(tally.report("sketches"))
    assert tally.outcomes["ok"] > 0


def _sketch_named(path):
    try:
        img = load_sketch(path)
    except SketchFileError as e:
        assert path.name in str(e), str(e)
        raise
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 4


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h pixels, followed by a tiny (wrong) IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.timeout(60)
def test_a_14000_pixel_png_is_refused_from_its_header(tmp_path):
    from PIL import Image

    p = tmp_path / "bomb.png"
    Image.new("1", (14000, 14000), 1).save(p)  # 50 KB on disk, 196 million pixels
    assert p.stat().st_size < 200_000
    msg = _refused(p, "14000×14000 pixels", SketchFileError, load_sketch)
    assert f"at most {MAX_SIDE}×{MAX_SIDE}" in msg
    p2 = tmp_path / "claims.png"
    p2.write_bytes(_png_header(9000, 9000))  # under PIL's own bomb limit, over ours
    _refused(p2, "9000×9000 pixels", SketchFileError, load_sketch)


@pytest.mark.timeout(60)
def test_sketch_files_empty_white_truncated_and_non_images(tmp_path):
    from PIL import Image

    white = tmp_path / "white.png"
    Image.new("L", (300, 200), 255).save(white)
    _refused(white, "the sketch is empty: draw something", SketchFileError, load_sketch)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(clear)
    _refused(clear, "empty", SketchFileError, load_sketch)
    ok = _sketch_seeds()["png_L"]
    cut = tmp_path / "cut.png"
    cut.write_bytes(ok[:len(ok) // 2])
    _refused(cut, "damaged or cut short", SketchFileError, load_sketch)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    _refused(text, "not an image", SketchFileError, load_sketch)
    zero = tmp_path / "zero.png"
    zero.write_bytes(b"")
    _refused(zero, "empty (0 bytes)", SketchFileError, load_sketch)
    nan = tmp_path / "nan.tiff"
    Image.fromarray(np.full((20, 20), np.nan, np.float32), "F").save(nan)
    _refused(nan, "not numbers", SketchFileError, load_sketch)
    # a large but allowed drawing is downscaled on the way in, ink kept
    big = tmp_path / "big.png"
    a = np.full((3000, 4000), 255, np.uint8)
    a[1000:2000, 1990:2030] = 0
    Image.fromarray(a).save(big)
    img = load_sketch(big)
    assert max(img.shape[:2]) == 2048 and img[..., :3].min() < 100
