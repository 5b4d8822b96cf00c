"""ShapeGPT: block-causal training forward == cached level-by-level decoding, token-parallel levels,
the leaf decoder, and a training step that learns."""
import numpy as np
import pytest
import torch

from models.common.sampling import SamplingParams
from models.shape import octree as oct
from models.shape.model import PREFIX, GenRequest, ShapeConfig, ShapeGPT, generate, leaf_voxels
from models.shape.train import losses


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a busy shared CPU, OpenMP spinning makes small ops 20x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_model(seed=0, cond_bias=False) -> ShapeGPT:
    torch.manual_seed(seed)
    cfg = ShapeConfig(d_model=48, n_layer=2, n_head=3, ar_depth=3, finest=16, max_tokens=256, leaf_width=32,
                      cond_bias=cond_bias)
    m = ShapeGPT(cfg).eval()
    if cond_bias:  # zero-initialised for fine-tuning; random here so that the path is exercised
        for lin in (m.text_bias, m.sketch_bias):
            torch.nn.init.normal_(lin.weight, std=0.2)
    return m


def blob(R=16) -> np.ndarray:
    x, y, z = np.meshgrid(*[np.arange(R)] * 3, indexing="ij")
    return ((x - 7.5) ** 2 / 30 + (y - 6) ** 2 / 12 + (z - 8) ** 2 / 20) <= 1


def tensors(tree):
    t = oct.tokens(tree)
    return {k: torch.as_tensor(v) for k, v in t.items()}


@pytest.mark.parametrize("cond_bias", [False, True])
def test_training_forward_matches_cached_level_decoding(cond_bias):
    m = tiny_model(cond_bias=cond_bias)
    tree = oct.serialise(blob(), depth=3)
    t = tensors(tree)
    text = torch.randn(1, 384)
    with torch.no_grad():
        pre = m.prefix(text, None, None, torch.tensor([True]), torch.tensor([False]))
        full = m(pre, t["level"], t["slot"], t["xyz"], t["parent"], t["pattern"], torch.zeros(len(t["level"]), dtype=torch.bool))
        # the same through the KV cache, one level per forward (what generate() does)
        m.gpt.setup_cache(1, PREFIX + 256)
        centre = torch.full((PREFIX, 3), 8.0, dtype=torch.float64)
        m.gpt(embeds=pre, input_pos=torch.arange(PREFIX), rope_pos=centre)
        pos, outs = PREFIX, []
        for k in range(3):
            sel = t["level"] == k
            n = int(sel.sum())
            emb = m.tokens(t["level"][sel], t["slot"][sel], t["parent"][sel], t["pattern"][sel], torch.zeros(n, dtype=torch.bool))
            out = m.gpt(embeds=emb[None] + m.bias(pre)[:, None], input_pos=torch.arange(pos, pos + n), attend_limit=torch.full((n,), pos + n - 1),
                        rope_pos=ShapeGPT.rope_pos(t["level"][sel], t["xyz"][sel], 16))
            outs.append(out[0].view(n, 8, 3))
            pos += n
        m.gpt.clear_cache()
    assert torch.allclose(full, torch.cat(outs), atol=1e-4)


@pytest.mark.parametrize("cond_bias", [False, True])
def test_packed_forward_equals_shape_by_shape(cond_bias):
    m = tiny_model(cond_bias=cond_bias)
    shapes = [blob(), np.roll(blob(), 3, axis=0), blob()[::-1].copy()]
    ts = [tensors(oct.serialise(o, depth=3)) for o in shapes]
    with torch.no_grad():
        pre = m.prefix(torch.randn(3, 384), None, None, torch.tensor([True, False, True]), torch.zeros(3, dtype=torch.bool))
        items = []
        for k, t in enumerate(ts):
            rev = torch.rand(len(t["level"])) < 0.3 * k  # different reveal patterns per shape
            items.append((t["level"], t["slot"], t["xyz"], t["parent"], t["pattern"], rev))
        packed = m.forward_packed(pre, items)
        for k, it in enumerate(items):
            alone = m(pre[k:k + 1], *it)
            assert packed[k].shape == alone.shape
            assert torch.allclose(packed[k], alone, atol=1e-4), k


def test_a_level_only_sees_earlier_levels_and_itself():
    m = tiny_model()
    tree = oct.serialise(blob(), depth=3)
    t = tensors(tree)
    pre = m.prefix(torch.randn(1, 384), None, None, torch.tensor([True]), torch.tensor([False]))
    masked = torch.zeros(len(t["level"]), dtype=torch.bool)
    with torch.no_grad():
        a = m(pre, t["level"], t["slot"], t["xyz"], t["parent"], t["pattern"], masked)
        revealed = t["level"] == 2  # reveal the last level's own patterns: earlier levels must not change
        b = m(pre, t["level"], t["slot"], t["xyz"], t["parent"], t["pattern"], revealed)
    early = t["level"] < 2
    assert torch.allclose(a[early], b[early], atol=1e-5)
    assert not torch.allclose(a[~early], b[~early])


@pytest.mark.parametrize("steps,cond_bias", [(1, False), (3, False), (3, True)])
def test_generation_is_token_parallel_per_level_and_seeded(steps, cond_bias):
    m = tiny_model(cond_bias=cond_bias)
    req = GenRequest(text=np.random.default_rng(0).normal(size=384).astype(np.float32), steps=steps)
    sp = SamplingParams(temperature=1.0, guidance=2.0, seed=7)
    trees = list(generate(m, req, sp))
    tree = trees[-1]
    assert 1 <= len(tree.levels) <= 3
    for a, b in zip(tree.levels[:-1], tree.levels[1:]):  # each level = the MIXED children of the one before
        assert len(b) == int((a.pattern == oct.MIXED).sum())
    for lv in tree.levels:
        assert lv.pattern.shape == (len(lv), 8) and lv.pattern.min() >= 0 and lv.pattern.max() <= 2
    again = list(generate(m, req, sp))[-1]
    assert all(np.array_equal(x.pattern, y.pattern) for x, y in zip(tree.levels, again.levels))
    occ = leaf_voxels(m, tree)
    assert occ.shape == (16, 16, 16)
    coarse = tree.to_grid(mixed_as=oct.MIXED)
    f = 16 // coarse.shape[0]
    full = np.kron(coarse == oct.FULL, np.ones((f, f, f), bool))
    assert occ[full].all()  # FULL cells stay solid
    empty = np.kron(coarse == oct.EMPTY, np.ones((f, f, f), bool))
    assert not occ[empty].any()


def test_condition_bias_reaches_every_token_and_starts_at_zero():
    m = tiny_model(cond_bias=True)
    t = tensors(oct.serialise(blob(), depth=3))
    masked = torch.zeros(len(t["level"]), dtype=torch.bool)
    with torch.no_grad():
        outs = [m(m.prefix(torch.randn(1, 384), None, None, torch.tensor([True]), torch.tensor([False])),
                  t["level"], t["slot"], t["xyz"], t["parent"], t["pattern"], masked) for _ in range(2)]
    assert not torch.allclose(outs[0], outs[1])  # another prompt changes the predictions
    fresh = ShapeGPT(m.cfg)  # as built for fine-tuning from weights without the bias: it adds nothing
    pre = fresh.prefix(torch.randn(2, 384), None, None, torch.tensor([True, False]), torch.tensor([False, False]))
    assert torch.count_nonzero(fresh.bias(pre)) == 0


def test_sketch_only_generation_runs():
    m = tiny_model()
    sk = np.zeros((64, 64), np.float32)
    sk[10:50, 20] = 1
    trees = list(generate(m, GenRequest(sketch=sk, view=1), SamplingParams(seed=1)))
    assert trees and len(trees[-1].levels[0]) == 1


def test_training_steps_reduce_the_loss():
    m = tiny_model().train()
    from models.shape.train import sample_inputs

    class OneShape:  # the dataset interface sample_inputs needs
        text_emb = np.random.default_rng(0).normal(size=(1, 2, 384)).astype(np.float32)

        def occ(self, i):
            return blob()

    ex = sample_inputs(OneShape(), 0, np.random.default_rng(0), m.cfg, aug=False, p_sketch=1.0, reveal=False)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(12):
        ar, leaf, n = losses(m, ex, "cpu")
        (ar + leaf).backward()
        opt.step()
        opt.zero_grad()
        first = first if first is not None else (float(ar.detach()), float(leaf.detach()))
    assert n == oct.serialise(blob(), 3).n_tokens
    assert float(ar) < 0.8 * first[0]
    assert float(leaf) < 0.9 * first[1]


def test_packed_losses_equal_the_mean_of_per_shape_losses():
    m = tiny_model()
    from models.shape.train import losses_packed, sample_inputs

    class Shapes:
        text_emb = np.random.default_rng(0).normal(size=(2, 2, 384)).astype(np.float32)

        def occ(self, i):
            return blob() if i == 0 else np.roll(blob(), 2, axis=2)

    rng = np.random.default_rng(1)
    exs = [sample_inputs(Shapes(), i % 2, rng, m.cfg, aug=True, p_sketch=0.5) for i in range(3)]
    with torch.no_grad():
        ar, leaf = losses_packed(m, exs, "cpu")
        each = [losses(m, e, "cpu") for e in exs]
    assert torch.allclose(ar, torch.stack([a for a, _, _ in each]).mean(), atol=1e-5)
    assert torch.allclose(leaf, torch.stack([b for _, b, _ in each]).mean(), atol=1e-5)
