"""Octree serialisation of occupancy grids: round trips, z-order, levels, voxels."""
import numpy as np
import pytest

from models.shape import octree as oct


def _random_blobby(seed: int, R: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.arange(R)] * 3, indexing="ij")
    occ = np.zeros((R, R, R), bool)
    for _ in range(4):
        c, r = rng.uniform(6, R - 6, 3), rng.uniform(3, 9)
        occ |= (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= r * r
    return occ


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_exact(seed):
    occ = _random_blobby(seed)
    tree = oct.serialise(occ)
    assert len(tree.levels) == 5  # 32^3 -> levels 0..4
    assert np.array_equal(oct.deserialise(tree), occ)


def test_partial_depth_is_a_conservative_coarse_shape():
    occ = _random_blobby(3)
    tree = oct.serialise(occ, depth=3)  # 8^3 grid, MIXED leaves count as inside
    coarse = oct.deserialise(tree, resolution=32)
    assert coarse.shape == occ.shape
    assert (coarse | ~occ).all()  # covers every occupied voxel
    assert coarse.sum() > occ.sum()


def test_levels_are_in_z_order_and_only_mixed_nodes_split():
    occ = _random_blobby(4)
    tree = oct.serialise(occ)
    pyr = oct.state_pyramid(occ)
    for lv in tree.levels:
        codes = oct.morton(lv.xyz, max(lv.depth, 1))
        assert np.all(np.diff(codes) > 0)  # strictly increasing Morton codes
        assert np.all(pyr[lv.depth][lv.xyz[:, 0], lv.xyz[:, 1], lv.xyz[:, 2]] == oct.MIXED)
    # next level = the MIXED children of this one, in order
    for a, b in zip(tree.levels[:-1], tree.levels[1:]):
        assert len(b) == int((a.pattern == oct.MIXED).sum())
        assert np.array_equal(oct.expand(a).xyz, b.xyz)
        assert np.array_equal(oct.expand(a).parent_pattern, b.parent_pattern)


def test_tokens_and_rope_positions_line_up():
    tree = oct.serialise(_random_blobby(5), depth=4)
    t = oct.tokens(tree)
    assert len(t["level"]) == tree.n_tokens == len(t["xyz"]) == len(t["pattern"])
    pos = oct.rope_positions(t["level"], t["xyz"], finest=32)
    assert np.allclose(pos[0], [16, 16, 16])  # the root sits at the centre
    assert pos.min() > 0 and pos.max() < 32


def test_known_pattern_of_a_half_filled_cube():
    occ = np.zeros((4, 4, 4), bool)
    occ[:2] = True  # x < 2 solid
    tree = oct.serialise(occ)
    assert tree.levels[0].pattern.tolist() == [[1, 1, 1, 1, 0, 0, 0, 0]]  # the 4 children with x = 0 are full
    assert len(tree.levels) == 2 and len(tree.levels[1]) == 0


def test_rejects_empty_and_non_cubes():
    with pytest.raises(ValueError):
        oct.serialise(np.zeros((8, 8, 8), bool))
    with pytest.raises(ValueError):
        oct.serialise(np.zeros((8, 8, 4), bool))


def test_voxels_are_cell_centres():
    grid = np.zeros((4, 4, 4), np.uint8)
    grid[0, 0, 0] = oct.FULL
    grid[3, 3, 3] = oct.MIXED
    c, s, size = oct.voxels(grid)
    assert size == 0.25
    assert np.allclose(c, [[-0.375, -0.375, -0.375], [0.375, 0.375, 0.375]])
    assert s.tolist() == [oct.FULL, oct.MIXED]
