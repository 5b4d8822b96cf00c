"""Meshes -> solid occupancy, sketches and their framing, procedural shapes, mesh extraction."""
import numpy as np
import pytest
import trimesh

from models.shape import data as sd
from models.shape import mesh as shape_mesh
from models.shape import procedural


def test_occupancy_of_a_sphere_matches_its_volume():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    occ = sd.occupancy(sphere, R=32)
    # the sphere is scaled to a diameter of FILL * R voxels; the shell errs outwards by <= 1/2 voxel
    expected = 4 / 3 * np.pi * (sd.FILL * 32 / 2) ** 3
    assert 0.97 < occ.sum() / expected < 1.2
    c = occ.shape[0] // 2
    assert occ[c, c, c] and not occ[0, 0, 0]  # solid inside, empty corner


def test_occupancy_of_a_box_with_a_missing_face_is_still_solid():
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.8))
    faces = box.faces[1:]  # remove one triangle (half of a side): the mesh is no longer watertight
    open_box = trimesh.Trimesh(box.vertices, faces, process=False)
    assert not open_box.is_watertight
    occ = sd.occupancy(open_box, R=32)
    full = sd.occupancy(box, R=32)
    assert occ.sum() >= 0.95 * full.sum()
    expected = (sd.FILL * 32) ** 3 * 0.5 * 0.8  # the shell errs outwards by <= 1/2 voxel on every side
    assert 0.97 < full.sum() / expected < 1.3


def test_load_mesh_rejects_garbage(tmp_path):
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nend_header\n\x00\x01")
    with pytest.raises(ValueError):
        sd.load_mesh(bad)


def test_sketch_of_a_box_front_view_and_framing():
    occ = np.zeros((64, 64, 64), bool)
    occ[10:54, 20:40, 16:48] = True  # wide and low box (x 44, y 20)
    sil, depth = sd.project(occ, "front")
    assert sil.sum() == 44 * 20
    img = sd.render_sketch(occ, "front", style="silhouette")
    assert img.shape == (sd.SKETCH, sd.SKETCH)
    ys, xs = np.nonzero(img > 0.5)
    assert (xs.max() - xs.min()) > 1.8 * (ys.max() - ys.min())  # aspect kept: wider than tall
    assert abs((xs.max() - xs.min() + 1) - round(0.86 * sd.SKETCH)) <= 2  # longer side fills 86%
    edges = sd.render_sketch(occ, "front")
    assert 0 < (edges > 0.5).sum() < (img > 0.5).sum()  # an outline is less ink than a silhouette
    region = sd.sketch_region(edges)
    assert (region & (img > 0.5)).sum() / (region | (img > 0.5)).sum() > 0.85
    hand = sd.render_sketch(occ, "front", np.random.default_rng(0))
    assert hand.shape == (sd.SKETCH, sd.SKETCH) and 0 < hand.max() <= 1


def test_user_sketch_preparation():
    pad = np.full((256, 256), 255, np.uint8)
    pad[60:200, 100:104] = 0  # a tall thin line, dark on white
    s = sd.prepare_user_sketch(pad)
    assert s.shape == (64, 64)
    ys, xs = np.nonzero(s > 0.3)
    assert ys.max() - ys.min() > 40 and xs.max() - xs.min() < 12
    with pytest.raises(ValueError, match="empty"):
        sd.prepare_user_sketch(np.full((100, 100), 255, np.uint8))


def test_augment_keeps_the_shape_upright():
    occ = np.zeros((8, 8, 8), bool)
    occ[1, 0:6, 2] = True  # a vertical pole
    for k in range(4):
        for flip in (False, True):
            a = sd.augment(occ, k, flip)
            assert a.sum() == occ.sum()
            assert a.any(axis=(0, 2)).tolist() == occ.any(axis=(0, 2)).tolist()  # same heights


@pytest.mark.parametrize("kind", ["mug", "chair", "bookshelf", "arch"])
def test_procedural_shapes_are_normalised(kind):
    occ, caption = procedural.make(kind, np.random.default_rng(0), R=32)
    assert caption.startswith("a")
    idx = np.argwhere(occ)
    extent = idx.max(0) - idx.min(0) + 1
    assert abs(extent.max() - procedural.FILL * 32) <= 2.5


def test_mesh_extraction_of_a_cube():
    occ = np.zeros((32, 32, 32), bool)
    occ[8:24, 8:24, 8:24] = True
    v, f = shape_mesh.extract(occ)
    m = trimesh.Trimesh(v, f)
    assert m.is_watertight
    assert m.volume > 0  # faces point outwards
    assert abs(m.volume / 0.5 ** 3 - 1) < 0.2
    assert np.abs(v).max() < 0.3
    v0, f0 = shape_mesh.extract(np.zeros((8, 8, 8), bool))
    assert len(v0) == 0 and len(f0) == 0
