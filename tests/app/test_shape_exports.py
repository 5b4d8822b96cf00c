"""3D exports a DCC tool (Blender, three.js) takes as is (issue 25, item 5): each written file, loaded back
with trimesh, has vertex normals, stands on the floor (min y = 0), is centred in x and z, has the size of
its kind of object in metres (app/object_sizes.py) or the one asked for, keeps Y up / +Z front, and has
a material (GLB: PBR; OBJ: a .mtl next to it). The GLB is also checked by the Khronos glTF validator when
node and the npm package are there:

    npm install --prefix ~/.cache/weft/gltf-validator gltf-validator   (or set GLTF_VALIDATOR_DIR)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.object_sizes import MAX_SIZE_M, TABLE, check_size, explicit_size, find_object, size_for
from app.shape_files import MeshFileError, export_mesh, import_mesh, place

trimesh = pytest.importorskip("trimesh")

FORMATS = (".obj", ".ply", ".glb")


def _validator_dir() -> Path | None:
    """node_modules holding gltf-validator (looked up at import: the tests' own cache dir is a tmp dir)."""
    from platformdirs import user_cache_dir

    cache = Path(os.environ.get("WEFT_CACHE_DIR") or user_cache_dir("weft"))
    for d in (os.environ.get("GLTF_VALIDATOR_DIR"), cache / "gltf-validator" / "node_modules",
              Path(__file__).resolve().parents[2] / "node_modules"):
        if d and (Path(d) / "gltf-validator" / "package.json").exists():
            return Path(d)
    return None


VALIDATOR = _validator_dir()


def unit_chair() -> tuple[np.ndarray, np.ndarray]:
    """A chair-like mesh in generator coordinates: inside [-0.5, 0.5]^3, off-centre, Y up, the back at -Z
    (the front faces +Z): a seat slab, four legs and a back, 0.4 wide, 0.875 tall, 0.45 deep."""
    parts = [trimesh.creation.box(extents=(0.4, 0.05, 0.45), transform=_at(0, -0.1, 0))]
    for x in (-0.18, 0.18):
        for z in (-0.2, 0.2):
            parts.append(trimesh.creation.box(extents=(0.04, 0.4, 0.04), transform=_at(x, -0.3, z)))
    parts.append(trimesh.creation.box(extents=(0.4, 0.45, 0.04), transform=_at(0, 0.15, -0.205)))
    m = trimesh.util.concatenate(parts)
    m.apply_translation([0.05, -0.05, 0.02])  # not centred, as a generated mesh often is not
    return np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.uint32)


def unit_cup() -> tuple[np.ndarray, np.ndarray]:
    """A closed cylinder standing along Y, 0.6 wide and 0.8 tall, smooth (shared vertices)."""
    m = trimesh.creation.cylinder(radius=0.3, height=0.8, sections=32)
    m.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0]))
    return np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.uint32)


def _at(x, y, z):
    t = np.eye(4)
    t[:3, 3] = (x, y, z)
    return t


def load_back(path: Path) -> trimesh.Trimesh:
    loaded = trimesh.load(str(path), process=False)
    if isinstance(loaded, trimesh.Scene):
        assert len(loaded.geometry) == 1
        loaded = next(iter(loaded.geometry.values()))
    return loaded


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    n, kind = struct.unpack("<II", data[12:20])
    assert kind == 0x4E4F534A  # JSON chunk
    return json.loads(data[20:20 + n])


def file_normals(path: Path, n_vertices: int) -> np.ndarray:
    """The vertex normals as the file stores them (not as trimesh would recompute them)."""
    if path.suffix == ".obj":
        vn = [ln.split()[1:4] for ln in path.read_text().splitlines() if ln.startswith("vn ")]
        return np.array(vn, np.float64)
    if path.suffix == ".ply":
        head = path.read_bytes().split(b"end_header")[0].decode()
        assert all(f"property float {c}" in head for c in ("nx", "ny", "nz"))
    if path.suffix == ".glb":
        prim = glb_json(path)["meshes"][0]["primitives"][0]
        assert "NORMAL" in prim["attributes"]
    return np.asarray(load_back(path).vertex_normals)


def check_placed(m: trimesh.Trimesh, size: float, measure: str) -> None:
    lo, hi = m.bounds
    assert abs(lo[1]) <= 1e-4, "stands on the floor"
    assert abs(lo[0] + hi[0]) <= 1e-4 and abs(lo[2] + hi[2]) <= 1e-4, "centred in x and z"
    got = (hi - lo)[1] if measure == "height" else (hi - lo).max()
    assert got == pytest.approx(size, rel=1e-4)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ext", FORMATS)
def test_export_is_placed_sized_with_normals_and_material(tmp_path, ext):
    v, f = unit_chair()
    size = size_for("a wooden dining chair")
    assert (size.metres, size.measure) == (0.9, "height")
    out = export_mesh(v, f, tmp_path / f"chair{ext}", size.metres, size.measure)
    m = load_back(out)
    assert len(m.faces) == len(f) and len(m.vertices) == len(v)
    check_placed(m, 0.9, "height")
    given = np.ptp(v.astype(np.float64), 0)
    assert m.extents == pytest.approx(given * 0.9 / given[1], rel=1e-4)  # uniform scale: proportions kept
    # orientation kept (Y up, +Z front): the back stays at -Z and at the top
    back = m.vertices[m.vertices[:, 1] > 0.8 * 0.9]
    assert len(back) and back[:, 2].max() < 0
    normals = file_normals(out, len(m.vertices))
    assert normals.shape == (len(m.vertices), 3)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-3)
    # outwards: at the top of the back the normals point up
    top = m.vertices[:, 1] > m.vertices[:, 1].max() - 1e-6
    assert (normals[top, 1] > 0).all()
    if ext == ".glb":
        mat = m.visual.material
        assert isinstance(mat, trimesh.visual.material.PBRMaterial)
        assert mat.metallicFactor == 0 and mat.roughnessFactor == pytest.approx(0.6)
        assert all(180 <= c <= 230 for c in np.asarray(mat.baseColorFactor)[:3])  # light grey
        doc = glb_json(out)
        pbr = doc["materials"][0]["pbrMetallicRoughness"]
        assert pbr["metallicFactor"] == 0 and pbr["roughnessFactor"] == pytest.approx(0.6)
        assert doc["meshes"][0]["primitives"][0]["material"] == 0
    if ext == ".obj":
        mtl = tmp_path / "chair.mtl"
        assert mtl.exists() and "newmtl weft_default" in mtl.read_text()
        lines = out.read_text().splitlines()
        assert "mtllib chair.mtl" in lines and "usemtl weft_default" in lines
        assert sum(ln.startswith("vn ") for ln in lines) == len(v)
        assert all(ln.count("//") == 3 for ln in lines if ln.startswith("f "))  # each corner has its normal
        assert isinstance(m.visual.material, trimesh.visual.material.SimpleMaterial)
        assert np.asarray(m.visual.material.diffuse)[:3].min() >= 180


@pytest.mark.timeout(60)
@pytest.mark.parametrize("prompt, name, metres, measure", [
    ("a wooden chair", "wooden chair", 0.9, "height"), ("an armchair", "armchair", 0.9, "height"),
    ("a coffee mug", "coffee mug", 0.1, "height"), ("a cup of tea", "cup", 0.1, "height"),
    ("a table lamp", "table lamp", 0.5, "height"), ("a tall floor lamp", "floor lamp", 1.6, "height"),
    ("a glass vase with flowers", "vase", 0.3, "height"), ("a tree house", "tree house", 6.0, "height"),
    ("two sofas", "sofa", 2.0, "longest"), ("a red car", "car", 4.5, "longest"),
    ("a dining table", "dining table", 0.75, "height"), ("bookshelves", "bookshelf", 1.8, "height"),
    ("a chair with a cup holder", "chair", 0.9, "height"), ("a chest of drawers", "chest of drawers", 0.8, "height"),
    ("Office_Chair_02", "office chair", 1.05, "height"), ("a double bed", "double bed", 2.0, "longest"),
])
def test_prompt_words_give_a_typical_size(prompt, name, metres, measure):
    s = size_for(prompt)
    assert (s.name, s.metres, s.measure) == (name, metres, measure)
    assert s.known and name in s.describe()


@pytest.mark.timeout(60)
def test_unknown_objects_get_one_metre_and_say_so():
    for prompt in ("a blob", "", "something strange", "东京"):
        s = size_for(prompt)
        assert (s.metres, s.measure, s.known) == (1.0, "longest", False)
        assert "no typical size is known" in s.describe()
    assert find_object("zzz") is None


@pytest.mark.timeout(60)
def test_the_table_is_sane():
    names = [n for names, _, _ in TABLE for n in names]
    assert len(names) == len(set(names)), "a name in two lines"
    for names, metres, measure in TABLE:
        assert 0.01 <= metres <= 100 and measure in ("height", "longest"), names
        assert all(n == n.lower().strip() for n in names)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ext", FORMATS)
def test_explicit_size_overrides_the_prompt(tmp_path, ext):
    v, f = unit_cup()
    s = explicit_size("0.25")
    assert s.explicit and (s.metres, s.measure) == (0.25, "longest")
    out = export_mesh(v, f, tmp_path / f"cup{ext}", s.metres, s.measure)
    m = load_back(out)
    check_placed(m, 0.25, "longest")
    assert m.extents[1] == pytest.approx(0.25, rel=1e-4)  # the cup's height is its longest side
    assert "the size asked for" in s.describe(m.extents)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", [0, -1, "-0.5", float("nan"), "nan", float("inf"), 1e6, "huge", None, "0.0001"])
def test_bad_sizes_are_refused_with_one_sentence(bad):
    with pytest.raises(ValueError) as e:
        check_size(bad)
    msg = str(e.value)
    assert msg.startswith("The size must be") and msg.endswith(".") and msg.count(". ") == 0 and "\n" not in msg
    assert check_size("0.9") == 0.9 and check_size(MAX_SIZE_M) == MAX_SIZE_M


@pytest.mark.timeout(60)
def test_placing_refuses_what_cannot_be_sized(tmp_path):
    v, f = unit_cup()
    for metres in (0, -1, float("nan")):
        with pytest.raises(MeshFileError):
            export_mesh(v, f, tmp_path / "x.glb", metres)
    with pytest.raises(MeshFileError, match="one point"):
        place(np.zeros((3, 3)))
    with pytest.raises(MeshFileError, match="missing vertices"):
        export_mesh(v, np.array([[0, 1, len(v)]]), tmp_path / "x.glb")
    assert not (tmp_path / "x.glb").exists()
    # a flat slab scaled by height does not become huge: its height counts as at least 1/4 of its width
    slab = place(np.array([[-0.5, 0, -0.5], [0.5, 0.01, 0.5]]), 0.75, "height")
    assert np.ptp(slab, 0).max() == pytest.approx(3.0)


@pytest.mark.timeout(60)
def test_inside_out_meshes_are_turned_outwards(tmp_path):
    v, f = unit_cup()
    out = export_mesh(v, f[:, ::-1], tmp_path / "cup.glb", 0.1, "height")
    m = load_back(out)
    assert m.volume > 0
    top = m.vertices[:, 1] > m.vertices[:, 1].max() - 1e-6
    assert (m.vertex_normals[top, 1] > 0).all()


@pytest.mark.timeout(60)
def test_exports_import_again(tmp_path):
    v, f = unit_chair()
    for ext in FORMATS:
        out = export_mesh(v, f, tmp_path / f"again{ext}", 0.9, "height")
        v2, f2 = import_mesh(out)
        assert len(f2) == len(f) and np.abs(v2).max() <= 0.5 + 1e-6


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("node") is None or VALIDATOR is None,
                    reason="node or the gltf-validator npm package is missing (see the module docstring)")
def test_glb_passes_the_khronos_validator(tmp_path):
    v, f = unit_chair()
    out = export_mesh(v, f, tmp_path / "chair.glb", 0.9, "height")
    script = ("const v = require('gltf-validator'); const fs = require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))"
              ".then(r => console.log(JSON.stringify(r.issues)))"
              ".catch(e => { console.log(JSON.stringify({fatal: String(e)})); process.exit(1); });")
    r = subprocess.run(["node", "-e", script, str(out)], capture_output=True, text=True, timeout=50,
                       env={**os.environ, "NODE_PATH": str(VALIDATOR)})
    assert r.returncode == 0, r.stdout + r.stderr
    issues = json.loads(r.stdout)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]


# ---- weft-cli shape --size -----------------------------------------------------------------------

def cli_args(**kw):
    base = dict(prompt="a wooden chair", sketch=None, view="front", output="chair.glb", seed=0, guidance=2.5,
                temperature=0.7, steps=4, size=None)
    return argparse.Namespace(**{**base, **kw})


class FakeClient:
    """Answers a shape job with a fixed mesh, as the engine would."""

    def __init__(self, mesh):
        self.mesh = mesh

    def run(self, task, params, on_event=None, timeout=None):
        from engine.protocol import Event

        ev = Event(job="j1", kind="output", seq=1, data={"vertices": self.mesh[0], "faces": self.mesh[1], "total_ms": 5.0})
        on_event(ev)
        return [ev]


@pytest.mark.timeout(60)
def test_cli_sizes_by_prompt_or_by_size(tmp_path, capsys):
    from app.cli import shape

    out = tmp_path / "chair.glb"
    assert shape.run(cli_args(output=str(out)), FakeClient(unit_chair())) == 0
    check_placed(load_back(out), 0.9, "height")
    said = capsys.readouterr().out
    assert "0.9 m tall (a typical wooden chair)" in said
    out = tmp_path / "blob.obj"
    assert shape.run(cli_args(prompt="a blob", output=str(out)), FakeClient(unit_cup())) == 0
    check_placed(load_back(out), 1.0, "longest")
    assert "no typical size is known" in capsys.readouterr().out and (tmp_path / "blob.mtl").exists()
    out = tmp_path / "big.ply"
    assert shape.run(cli_args(output=str(out), size="2.5"), FakeClient(unit_chair())) == 0
    check_placed(load_back(out), 2.5, "longest")
    assert "the size asked for" in capsys.readouterr().out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", ["0", "-1", "nan", "1e6", "big"])
def test_cli_bad_size_is_refused_before_an_engine_starts(size, capsys, monkeypatch, tmp_path):
    import engine.launch
    from app.cli import main

    def no_engine(*a, **k):
        raise AssertionError("an engine was started for a bad request")

    monkeypatch.setattr(engine.launch, "ensure_shared_engine", no_engine)
    monkeypatch.setattr(engine.launch, "EngineProcess", no_engine)
    assert main(["shape", "a chair", "-o", str(tmp_path / "c.glb"), "--size", size]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("weft-cli shape: The size must be") and "\n" not in err
    assert main(["shape", "a chair", "-o", str(tmp_path / "c.fbx")]) == 2
    assert "must end in .obj, .ply, .glb" in capsys.readouterr().err


# ---- the 3D panel's Size box ----------------------------------------------------------------------

@pytest.mark.gl
@pytest.mark.timeout(60)
def test_panel_exports_at_the_prompt_size_or_the_size_box(qtbot, tmp_path):
    from tests.app.test_shape_panel import _panel

    p = _panel(qtbot)
    p.show()
    p.mesh, p.mesh_source = unit_cup(), "a coffee mug"
    assert p.export_size.text() == "Auto"
    out = p.export_file(tmp_path / "mug.glb")
    check_placed(load_back(out), 0.1, "height")
    assert "0.1 m tall (a typical coffee mug)" in p.info.text()
    p.export_size.setValue(0.3)
    out = p.export_file(tmp_path / "mug.obj")
    check_placed(load_back(out), 0.3, "longest")
    assert "the size asked for" in p.info.text() and (tmp_path / "mug.mtl").exists()
    state = p.save_state()
    q = _panel(qtbot)
    q.restore_state(state)
    assert q.export_size.value() == pytest.approx(0.3)
    p.export_size.setValue(0)
    p.mesh_source = "blob.ply"  # an imported file: the words of its name
    p.export_file(tmp_path / "blob.ply")
    assert "no typical size is known" in p.info.text()
